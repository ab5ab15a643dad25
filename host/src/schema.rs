//! JSON Schema checks of what crosses the plugin boundary, under a budget.
//!
//! Schemas come from plugins, so checking against them is work the host does on a
//! plugin's behalf. Three bounds keep it finite:
//! - at load, a schema is refused when its checking cost can blow up: nesting
//!   deeper than [`MAX_DEPTH`] (`$ref`s followed), more than [`MAX_NODES`] subschemas once every
//!   `$ref` is expanded (so combinators repeated through `$defs` cannot hide
//!   exponential work), a `$ref` cycle that does not step into the instance,
//!   references that are not local JSON pointers, and patterns the linear-time
//!   `regex` engine cannot run (lookaround, backreferences) or that compile too
//!   big;
//! - every subschema visit during a check costs one step of a per-check budget
//!   ([`STEP_BUDGET`]); a check that runs out fails with
//!   [`Invalid::Budget`] instead of running on;
//! - callers cap the size of the instance itself (`max_argument_bytes`, the
//!   output cap) before it gets here.

use std::cell::Cell;
use std::collections::HashMap;

use serde_json::{Map, Value};

/// Deepest nesting of subschemas a schema may have, `$ref`s followed.
pub const MAX_DEPTH: usize = 64;
/// Most subschemas a schema may expand to (every `$ref` inlined once per use).
pub const MAX_NODES: usize = 2_000;
/// Subschema visits one check may make.
pub const STEP_BUDGET: u64 = 1_000_000;
/// Most (subschema, value node) pairs one check may cover: the schema's expanded
/// size times the value's node count. Each subschema applies to a value node at
/// most once per expansion, so this bounds the work of a check whatever its
/// keywords do, including the cheap ones that fail before a step is counted.
pub const MAX_WORK: usize = 20_000_000;
/// Compiled size of one `pattern` (bytes of the regex program).
const REGEX_SIZE_LIMIT: usize = 256 << 10;
/// Longest part of an error message quoting a value or a path.
const MAX_MESSAGE_BYTES: usize = 200;
/// The keyword moat adds to every subschema of its private copy to count steps.
const STEP_KEYWORD: &str = "x-moat-step";

/// Why a value failed a check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The value breaks the schema; the message names each offending field.
    #[error("{0}")]
    Fields(String),
    /// Checking ran out of its step budget.
    #[error("checking against the schema exceeded its budget of {STEP_BUDGET} steps")]
    Budget,
    /// The value is too big to check against a schema this large.
    #[error(
        "the value has more than {0} parts, too many to check against a schema of {1} subschemas (at most {MAX_WORK} checks)"
    )]
    TooBig(usize, usize),
}

/// A schema checked for cost and compiled, ready to validate values.
pub struct SchemaValidator {
    validator: jsonschema::Validator,
    /// Subschemas after `$ref` expansion: the cost of checking one value node.
    nodes: usize,
    /// Whether a `$ref` cycle that recurses into the value passes through a
    /// combinator (`anyOf`, `not`...). jsonschema memoises recursive references
    /// when it only answers valid or not, but not when it looks for the error,
    /// where such a recursion tries every branch at every level: exponential
    /// in the value's depth. For these schemas the error is named without it.
    branching: bool,
    /// The root's `required` names.
    required: Vec<String>,
    /// Regular expressions compiled for it (`pattern`, `patternProperties`).
    patterns: usize,
}

impl std::fmt::Debug for SchemaValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaValidator").field("nodes", &self.nodes).finish()
    }
}

impl SchemaValidator {
    /// Compiles a tool's input or output schema; it must describe an object.
    pub fn new(schema: &Value) -> Result<Self, String> {
        let obj = schema.as_object().ok_or("the schema is not a JSON object")?;
        if obj.get("type").and_then(Value::as_str) != Some("object") {
            return Err("the schema must have \"type\": \"object\"".into());
        }
        Self::any(schema)
    }

    /// Compiles any schema (an elicitation form, say) after the cost checks.
    pub fn any(schema: &Value) -> Result<Self, String> {
        if let Some(at) = nested_id(schema, "", true) {
            return Err(format!("`$id` at `#{at}` is not supported; only the root may have one"));
        }
        let (nodes, branching) = Cost::of(schema)?;
        let mut counted = schema.clone();
        add_step_keyword(&mut counted);
        let validator = compile(&counted)?;
        let required = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(SchemaValidator { validator, nodes, branching, required, patterns: count_patterns(schema) })
    }

    /// Subschemas after `$ref` expansion.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// Regular expressions this schema compiled (each up to 256 KiB).
    pub fn patterns(&self) -> usize {
        self.patterns
    }

    /// Whether checking can be expensive enough to move off the async workers.
    pub fn is_heavy(&self, value_bytes: usize) -> bool {
        self.nodes.saturating_mul(value_bytes) > 64 << 10 || (self.branching && value_bytes > 1024)
    }

    /// Checks a value; the error names the first offending field.
    pub fn validate(&self, value: &Value) -> Result<(), Invalid> {
        let most = MAX_WORK / self.nodes.max(1);
        if count_nodes(value, most) > most {
            return Err(Invalid::TooBig(most, self.nodes));
        }
        let valid = with_budget(|| self.validator.is_valid(value));
        match valid {
            (true, _) => return Ok(()),
            (false, true) => return Err(Invalid::Budget),
            (false, false) => {}
        }
        let (first, exhausted) =
            with_budget(|| if self.branching { self.first_field(value) } else { self.first_error(value) });
        if exhausted {
            return Err(Invalid::Budget);
        }
        // The two passes disagree only if one ran out of steps.
        Err(Invalid::Fields(first.unwrap_or_else(|| "the value does not match the schema".into())))
    }

    /// jsonschema's first error: it stops at the first failing keyword, and
    /// without a branching recursion its work is bounded like the check's.
    fn first_error(&self, value: &Value) -> Option<String> {
        self.validator.validate(value).err().map(|e| {
            // jsonschema quotes the offending value, which may be huge.
            let msg = cut(e.to_string(), MAX_MESSAGE_BYTES);
            let at = cut(e.instance_path().to_string(), MAX_MESSAGE_BYTES);
            if at.is_empty() { msg } else { format!("`{}`: {msg}", at.trim_start_matches('/').replace('/', ".")) }
        })
    }

    /// For branching recursive schemas: a missing required property, else no
    /// field is named (finding it would be the exponential search).
    fn first_field(&self, value: &Value) -> Option<String> {
        let Value::Object(given) = value else { return Some("the value must be a JSON object".into()) };
        match self.required.iter().find(|r| !given.contains_key(r.as_str())) {
            Some(missing) => Some(format!("`{}` is required", cut(missing.clone(), MAX_MESSAGE_BYTES))),
            None => Some("the value does not match the schema (a recursive schema: no field is named)".into()),
        }
    }
}

/// Compiles moat's private copy of a schema.
fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .with_pattern_options(
            jsonschema::PatternOptions::regex().size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_SIZE_LIMIT),
        )
        .with_keyword(STEP_KEYWORD, step_keyword)
        .build(schema)
        .map_err(|e| {
                let msg = e.to_string();
                if msg.contains("regular expression") || msg.contains("regex") || msg.contains("pattern") {
                    format!(
                        "{msg} (patterns run on a linear-time engine: no lookaround or backreferences, at most {} KiB compiled)",
                        REGEX_SIZE_LIMIT >> 10
                    )
                } else {
                    format!("invalid schema: {msg}")
                }
        })
}

/// The `pattern`s and `patternProperties` keys in a schema document.
fn count_patterns(v: &Value) -> usize {
    match v {
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "const" | "enum" | "default" | "examples"))
            .map(|(k, x)| match (k.as_str(), x) {
                ("pattern", Value::String(_)) => 1,
                ("patternProperties", Value::Object(p)) => p.len() + p.values().map(count_patterns).sum::<usize>(),
                _ => count_patterns(x),
            })
            .sum(),
        Value::Array(items) => items.iter().map(count_patterns).sum(),
        _ => 0,
    }
}

/// Where a `$id` (or draft 4's string `id`) sits below the root, if anywhere.
/// jsonschema changes the base of `#/...` references inside such a subschema,
/// so the cost analysis, which resolves from the root, would count another
/// schema than the one checked. Values of data keywords are not schemas.
fn nested_id(v: &Value, at: &str, root: bool) -> Option<String> {
    match v {
        Value::Object(m) => {
            if !root && (m.contains_key("$id") || m.get("id").is_some_and(Value::is_string)) {
                return Some(at.to_owned());
            }
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "const" | "enum" | "default" | "examples"))
                .find_map(|(k, x)| nested_id(x, &format!("{at}/{}", escape(k)), false))
        }
        Value::Array(items) => items.iter().enumerate().find_map(|(i, x)| nested_id(x, &format!("{at}/{i}"), false)),
        _ => None,
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), marked with `…`.
fn cut(mut text: String, max: usize) -> String {
    crate::text::cut(&mut text, max);
    text
}

/// The nodes of `value` (every object, array and scalar), counted up to just
/// past `limit`.
fn count_nodes(value: &Value, limit: usize) -> usize {
    let mut stack = vec![value];
    let mut n = 0;
    while let Some(v) = stack.pop() {
        n += 1;
        if n > limit {
            break;
        }
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    n
}

thread_local! {
    /// Steps left in the check running on this thread.
    static STEPS: Cell<u64> = const { Cell::new(u64::MAX) };
}

/// Runs `f` with a fresh step budget; returns its result and whether the
/// budget ran out.
fn with_budget<T>(f: impl FnOnce() -> T) -> (T, bool) {
    STEPS.with(|s| s.set(STEP_BUDGET));
    let out = f();
    let exhausted = STEPS.with(|s| {
        let left = s.get();
        s.set(u64::MAX);
        left == 0
    });
    (out, exhausted)
}

/// Costs one step; fails once the budget is spent.
struct Step;

fn step_keyword<'a>(
    _parent: &'a Map<String, Value>,
    _value: &'a Value,
    _at: jsonschema::paths::Location,
) -> Result<Box<dyn for<'i> jsonschema::Keyword<'i>>, jsonschema::ValidationError<'a>> {
    Ok(Box::new(Step))
}

impl Step {
    fn take() -> bool {
        STEPS.with(|s| {
            let left = s.get();
            if left == 0 {
                false
            } else {
                s.set(left - 1);
                true
            }
        })
    }
}

impl<'i> jsonschema::Keyword<'i> for Step {
    fn validate(&self, _instance: &'i Value) -> Result<(), jsonschema::ValidationError<'i>> {
        if Step::take() { Ok(()) } else { Err(jsonschema::ValidationError::custom("validation budget exceeded")) }
    }

    fn is_valid(&self, _instance: &'i Value) -> bool {
        Step::take()
    }
}

/// Keywords holding one subschema, and whether they step into the instance.
const ONE: &[(&str, bool)] = &[
    ("additionalProperties", true),
    ("additionalItems", true),
    ("items", true),
    ("contains", true),
    ("propertyNames", true),
    ("unevaluatedItems", true),
    ("unevaluatedProperties", true),
    ("not", false),
    ("if", false),
    ("then", false),
    ("else", false),
];
/// Keywords holding an array of subschemas.
const MANY: &[(&str, bool)] =
    &[("allOf", false), ("anyOf", false), ("oneOf", false), ("prefixItems", true), ("items", true)];
/// Keywords holding an object of subschemas.
const MAP: &[(&str, bool)] =
    &[("properties", true), ("patternProperties", true), ("dependentSchemas", false), ("dependencies", false)];

/// Each subschema directly inside `obj`: (pointer suffix, value, steps into the instance).
fn children(obj: &Map<String, Value>) -> Vec<(String, &Value, bool)> {
    let mut out = Vec::new();
    for &(k, descends) in ONE {
        if let Some(v) = obj.get(k).filter(|v| v.is_object() || v.is_boolean()) {
            out.push((format!("/{}", escape(k)), v, descends));
        }
    }
    for &(k, descends) in MANY {
        if let Some(Value::Array(items)) = obj.get(k) {
            for (i, v) in items.iter().enumerate() {
                out.push((format!("/{k}/{i}"), v, descends));
            }
        }
    }
    for &(k, descends) in MAP {
        if let Some(Value::Object(m)) = obj.get(k) {
            for (name, v) in m {
                if v.is_object() || v.is_boolean() {
                    out.push((format!("/{k}/{}", escape(name)), v, descends));
                }
            }
        }
    }
    out
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Adds the step keyword to every object subschema, and to every `$defs` /
/// `definitions` entry (reached through `$ref`).
fn add_step_keyword(schema: &mut Value) {
    let Value::Object(obj) = schema else { return };
    for &(k, _) in ONE {
        if let Some(v) = obj.get_mut(k) {
            add_step_keyword(v);
        }
    }
    for &(k, _) in MANY {
        if let Some(Value::Array(items)) = obj.get_mut(k) {
            items.iter_mut().for_each(add_step_keyword);
        }
    }
    for k in MAP.iter().map(|(k, _)| *k).chain(["$defs", "definitions"]) {
        if let Some(Value::Object(m)) = obj.get_mut(k) {
            m.values_mut().for_each(add_step_keyword);
        }
    }
    obj.insert(STEP_KEYWORD.into(), Value::Bool(true));
}

/// The load-time cost analysis: depth, expanded size, references.
struct Cost<'a> {
    root: &'a Value,
    memo: HashMap<String, usize>,
    /// Pointers being expanded, and the edge into each.
    stack: Vec<(String, Edge)>,
    branching: bool,
}

/// How a subschema was reached from its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// Through a keyword that applies to a part of the value (`properties`, `items`).
    Descend,
    /// Through a combinator, on the same value (`anyOf`, `not`, `if`...).
    Combine,
    /// Through `$ref`.
    Ref,
}

impl<'a> Cost<'a> {
    /// The expanded size, and whether some `$ref` cycle passes through a combinator.
    fn of(root: &'a Value) -> Result<(usize, bool), String> {
        let mut c = Cost { root, memo: HashMap::new(), stack: Vec::new(), branching: false };
        let n = c.node(String::new(), root, Edge::Ref)?;
        Ok((n, c.branching))
    }

    fn node(&mut self, ptr: String, node: &'a Value, edge: Edge) -> Result<usize, String> {
        let at = || if ptr.is_empty() { "the root".to_owned() } else { format!("`#{ptr}`") };
        let Value::Object(obj) = node else { return Ok(1) };
        if let Some(&n) = self.memo.get(&ptr) {
            return Ok(n);
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(format!(
                "the schema is too costly to check: its subschemas nest deeper than {MAX_DEPTH} levels (`$ref`s followed) at {}",
                at()
            ));
        }
        for k in ["$dynamicRef", "$recursiveRef"] {
            if obj.contains_key(k) {
                return Err(format!("{k} at {} is not supported; use `$ref` to `#/$defs/...`", at()));
            }
        }
        if !ptr.is_empty() && (obj.contains_key("$id") || obj.contains_key("id") && obj["id"].is_string()) {
            return Err(format!("`$id` at {} is not supported; only the root may have one", at()));
        }
        self.stack.push((ptr.clone(), edge));
        let mut total: usize = 1;
        if let Some(r) = obj.get("$ref") {
            let r = r.as_str().ok_or_else(|| format!("`$ref` at {} is not a string", at()))?;
            total = total.saturating_add(self.reference(r, &at())?);
        }
        for (suffix, child, descends) in children(obj) {
            let edge = if descends { Edge::Descend } else { Edge::Combine };
            total = total.saturating_add(self.node(format!("{ptr}{suffix}"), child, edge)?);
            if total > MAX_NODES {
                break;
            }
        }
        self.stack.pop();
        if total > MAX_NODES {
            return Err(format!(
                "the schema is too costly to check: it expands to more than {MAX_NODES} subschemas (combinators and `$ref`s repeated), at {}",
                at()
            ));
        }
        self.memo.insert(ptr, total);
        Ok(total)
    }

    /// The cost of following a local `$ref`.
    fn reference(&mut self, r: &str, at: &str) -> Result<usize, String> {
        let Some(pointer) = r.strip_prefix('#').filter(|p| p.is_empty() || p.starts_with('/')) else {
            return Err(format!("`$ref` \"{r}\" at {at} is not a local JSON pointer (`#/$defs/...`)"));
        };
        if pointer.contains('%') {
            return Err(format!("`$ref` \"{r}\" at {at}: percent-encoded pointers are not supported"));
        }
        let target = self.root.pointer(pointer).ok_or_else(|| format!("`$ref` \"{r}\" at {at} points at nothing"))?;
        if let Some(pos) = self.stack.iter().position(|(p, _)| p == pointer) {
            // A cycle: fine when it steps into the instance (each turn then
            // checks a smaller part of the value), endless otherwise.
            let cycle = &self.stack[pos + 1..];
            if cycle.iter().any(|(_, e)| *e == Edge::Descend) {
                self.branching |= cycle.iter().any(|(_, e)| *e == Edge::Combine);
                return Ok(1);
            }
            return Err(format!("`$ref` \"{r}\" at {at} loops back without stepping into the value"));
        }
        self.node(pointer.to_owned(), target, Edge::Ref)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_the_field() {
        let v = SchemaValidator::new(&json!({
            "type": "object",
            "properties": {"path": {"type": "string"}, "days": {"type": "integer", "minimum": 0}},
            "required": ["days"],
        }))
        .unwrap();
        assert!(v.validate(&json!({"days": 3})).is_ok());
        let e = v.validate(&json!({"path": 7, "days": 1})).unwrap_err().to_string();
        assert!(e.contains("`path`"), "{e}");
        let e = v.validate(&json!({"days": -1})).unwrap_err().to_string();
        assert!(e.contains("`days`"), "{e}");
        let e = v.validate(&json!({})).unwrap_err().to_string();
        assert!(e.contains("days"), "{e}");
        assert!(SchemaValidator::new(&json!({"type": "string"})).is_err());
    }

    /// `$defs` chained so each level uses the next twice: 2^depth subschemas.
    fn doubling(depth: usize, combinator: &str) -> Value {
        let mut defs = Map::new();
        for i in 0..depth {
            let next = json!({"$ref": format!("#/$defs/d{}", i + 1)});
            defs.insert(format!("d{i}"), json!({combinator: [next.clone(), {"not": next}]}));
        }
        defs.insert(format!("d{depth}"), json!({"type": "integer"}));
        json!({"type": "object", "$defs": defs, "properties": {"x": {"$ref": "#/$defs/d0"}}})
    }

    #[test]
    fn exponential_schemas_are_refused_at_load() {
        for combinator in ["anyOf", "oneOf", "allOf"] {
            let e = SchemaValidator::new(&doubling(30, combinator)).unwrap_err();
            assert!(e.contains("too costly"), "{e}");
        }
        // Nested inline (no refs) is caught by depth.
        let mut s = json!({"type": "integer"});
        for _ in 0..70 {
            s = json!({"anyOf": [s, {"type": "string"}]});
        }
        let e = SchemaValidator::new(&json!({"type": "object", "properties": {"x": s}})).unwrap_err();
        assert!(e.contains("too costly"), "{e}");
        // A small doubling chain is fine.
        assert!(SchemaValidator::new(&doubling(4, "anyOf")).is_ok());
    }

    #[test]
    fn references_must_be_local_and_cycles_must_descend() {
        let bad = [
            json!({"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}}),
            json!({"type": "object", "$defs": {"a": {"$ref": "#/$defs/a"}}, "properties": {"x": {"$ref": "#/$defs/a"}}}),
            json!({"type": "object", "$defs": {"a": {"anyOf": [{"$ref": "#/$defs/b"}]}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
                   "properties": {"x": {"$ref": "#/$defs/a"}}}),
            json!({"type": "object", "properties": {"x": {"$dynamicRef": "#meta"}}}),
            json!({"type": "object", "properties": {"x": {"$id": "other", "type": "string"}}}),
            json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}),
        ];
        for s in bad {
            assert!(SchemaValidator::new(&s).is_err(), "{s} should be refused");
        }
        // A recursive tree through `properties` (what schemars emits) is fine.
        let tree = json!({"type": "object", "$ref": "#/$defs/node", "$defs": {"node": {"type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}}});
        let v = SchemaValidator::new(&tree).unwrap();
        assert!(v.validate(&json!({"children": [{"children": []}]})).is_ok());
        assert!(v.validate(&json!({"children": [{"children": 3}]})).is_err());
    }

    #[test]
    fn recursion_through_combinators_is_checked_without_exponential_errors() {
        // Both branches recurse into `a` and fail only at the bottom: collecting
        // errors would try 2^40 paths; the memoised check and the field search do not.
        let s = json!({"type": "object", "$ref": "#/$defs/n", "$defs": {"n": {"anyOf": [
            {"properties": {"a": {"$ref": "#/$defs/n"}}, "required": ["x"]},
            {"properties": {"a": {"$ref": "#/$defs/n"}}, "required": ["y"]}]}}});
        let v = SchemaValidator::new(&s).unwrap();
        let mut value = json!({});
        for _ in 0..40 {
            value = json!({"x": 1, "a": value});
        }
        let started = std::time::Instant::now();
        let e = v.validate(&value).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
        assert!(matches!(e, Invalid::Fields(_)), "{e:?}");
        assert!(v.branching);
        // A recursion without combinators (a tree) keeps jsonschema's messages.
        let tree = json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"},
            "kids": {"type": "array", "items": {"$ref": "#"}}}});
        let v = SchemaValidator::new(&tree).unwrap();
        assert!(!v.branching);
        assert!(v.validate(&json!({"name": "a", "kids": [{"name": "b", "kids": []}]})).is_ok());
        let e = v.validate(&json!({"name": "a", "kids": [{"name": 3}]})).unwrap_err().to_string();
        assert!(e.contains("`kids.0.name`"), "{e}");
    }

    #[test]
    fn ids_below_the_root_are_refused_wherever_they_are() {
        // A `$id` in a subschema only reached through a pointer would make
        // `#/$defs/x` inside it mean another schema than the one counted.
        let s = json!({"type": "object", "$defs": {"x": {"type": "string"},
            "wrap": {"$id": "https://e/w", "properties": {"p": {"$ref": "#/$defs/x"}}}},
            "properties": {"a": {"$ref": "#/$defs/wrap/properties/p"}}});
        let e = SchemaValidator::new(&s).unwrap_err();
        assert!(e.contains("$id"), "{e}");
        // Data that merely holds an `id` is fine.
        let ok = json!({"type": "object", "properties": {"id": {"type": "string", "default": "x"}},
            "examples": [{"id": "y", "$id": "z"}]});
        assert!(SchemaValidator::new(&ok).is_ok());
    }

    #[test]
    fn patterns_run_in_linear_time() {
        // Catastrophic for a backtracking engine; linear here.
        let v = SchemaValidator::new(
            &json!({"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let mut s = "a".repeat(40_000);
        s.push('!');
        assert!(v.validate(&json!({"s": s})).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Lookaround and backreferences need backtracking: refused at load.
        for p in ["(?=a)a", "(a)\\1"] {
            let e =
                SchemaValidator::new(&json!({"type": "object", "properties": {"s": {"type": "string", "pattern": p}}}))
                    .unwrap_err();
            assert!(e.contains("linear-time"), "{p}: {e}");
        }
    }

    #[test]
    fn a_check_stops_at_its_step_budget() {
        // Within the load limits, yet each array item passes through 61 subschemas.
        let all: Vec<Value> = (0..60).map(|_| json!({"type": "integer"})).collect();
        let v = SchemaValidator::new(
            &json!({"type": "object", "properties": {"xs": {"type": "array", "items": {"allOf": all}}}}),
        )
        .unwrap();
        let xs: Vec<i32> = vec![1; 20_000];
        assert_eq!(v.validate(&json!({"xs": xs})), Err(Invalid::Budget));
        // The next check on this thread starts with a full budget.
        assert!(v.validate(&json!({"xs": [1, 2, 3]})).is_ok());
        assert!(matches!(v.validate(&json!({"xs": [1, "2"]})), Err(Invalid::Fields(m)) if m.contains("`xs.1`")));
    }

    #[test]
    fn the_value_is_sized_against_the_schema() {
        // 1,000 alternatives that fail on a cheap keyword count no step; the
        // size of the value times the size of the schema still bounds the work.
        let many: Vec<Value> = (0..1000).map(|i| json!({"const": i})).collect();
        let v = SchemaValidator::new(
            &json!({"type": "object", "properties": {"xs": {"type": "array", "items": {"anyOf": many}}}}),
        )
        .unwrap();
        assert!(v.nodes() > 1000);
        let most = MAX_WORK / v.nodes();
        let xs = vec![999; most + 10];
        assert_eq!(v.validate(&json!({"xs": xs})), Err(Invalid::TooBig(most, v.nodes())));
        assert!(v.validate(&json!({"xs": [999, 3]})).is_ok());
    }
}
