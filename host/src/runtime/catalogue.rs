//! What a plugin declares, checked at load before any client sees it: counts and
//! sizes within the plugin's catalogue limits, names and URIs well formed, text
//! free of control, zero-width and bidi characters, schemas cheap to check, and
//! no credential-shaped strings.

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use super::LoadError;
use super::types::*;
use crate::config::CatalogueLimits;
use crate::schema::SchemaValidator;
use crate::secrets::find_credential;
use crate::text::shown;
use crate::uri_template::{UriTemplate, uri_byte};

/// Longest title or resource name.
const MAX_TITLE_BYTES: usize = 256;
/// Longest resource URI.
const MAX_URI_BYTES: usize = 2048;
/// Longest MIME type.
const MAX_MIME_BYTES: usize = 128;
/// Most arguments of one prompt.
const MAX_PROMPT_ARGUMENTS: usize = 64;
/// Most resource templates of one plugin (each is matched against the URIs of
/// reads, and checked for overlaps with every other plugin's at load).
pub const MAX_TEMPLATES: usize = 64;
/// Most regular expressions (`pattern`s) in all of one plugin's schemas: each
/// compiles to up to 256 KiB of host memory.
pub const MAX_PATTERNS: usize = 128;

/// Everything a plugin declared, before checks.
pub struct RawCatalogue {
    pub tools: Vec<RawTool>,
    pub resources: Vec<ResourceInfo>,
    pub templates: Vec<ResourceTemplateInfo>,
    pub prompts: Vec<PromptInfo>,
}

/// A checked catalogue.
pub struct Catalogue {
    pub tools: Vec<ToolInfo>,
    pub resources: Vec<ResourceInfo>,
    pub templates: Vec<ResourceTemplateInfo>,
    pub prompts: Vec<PromptInfo>,
}

fn meta(msg: String) -> LoadError {
    LoadError::Metadata(msg)
}

/// MCP tool and prompt names: 1 to 128 of `A-Z a-z 0-9 _ - .`.
fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Characters that change how text is displayed without being seen: controls
/// (except, where allowed, newline and tab), zero-width and bidi formatting,
/// line and paragraph separators, tags.
fn invisible(c: char, allow_newlines: bool) -> bool {
    if allow_newlines && matches!(c, '\n' | '\t') {
        return false;
    }
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{E0000}'..='\u{E007F}')
}

/// Checks display text (a title, a description, a resource name).
fn text(what: &dyn Fn() -> String, value: &str, max: usize, allow_newlines: bool) -> Result<(), LoadError> {
    if value.len() > max {
        return Err(meta(format!("{} is {} bytes; the limit is {max}", what(), value.len())));
    }
    if let Some(c) = value.chars().find(|&c| invisible(c, allow_newlines)) {
        return Err(meta(format!(
            "{} contains the invisible or control character U+{:04X}; plugin text reaches every client and the model",
            what(),
            c as u32
        )));
    }
    if let Some(kind) = find_credential(value) {
        return Err(LoadError::Credential(format!(
            "{} contains what looks like {kind}; descriptions and schemas are sent to every client, so secrets must come from granted environment variables",
            what()
        )));
    }
    Ok(())
}

/// A resource URI: an absolute URI (`scheme:...`) of URI characters only.
fn uri(what: &dyn Fn() -> String, value: &str) -> Result<(), LoadError> {
    if value.is_empty() || value.len() > MAX_URI_BYTES {
        return Err(meta(format!("{} must be 1 to {MAX_URI_BYTES} bytes long", what())));
    }
    if let Some(b) = value.bytes().find(|&b| !uri_byte(b)) {
        return Err(meta(format!(
            "{} holds {:?}, which a URI cannot hold unescaped (percent-encode it)",
            what(),
            char::from(b)
        )));
    }
    let scheme = value.split_once(':').map(|(s, _)| s).unwrap_or_default();
    let valid_scheme = scheme.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !valid_scheme {
        return Err(meta(format!("{} is not an absolute URI (`scheme:...`)", what())));
    }
    Ok(())
}

fn mime(what: &dyn Fn() -> String, value: Option<&str>) -> Result<(), LoadError> {
    let Some(m) = value else { return Ok(()) };
    let ok = (1..=MAX_MIME_BYTES).contains(&m.len())
        && m.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && m.contains('/');
    if ok { Ok(()) } else { Err(meta(format!("{} has an invalid MIME type", what()))) }
}

fn count(kind: &str, n: usize, max: u32) -> Result<(), LoadError> {
    if n > max as usize {
        return Err(meta(format!(
            "declares {n} {kind}; the limit is {max} (raise `max_{kind}` in [limits] or [plugins.defaults])"
        )));
    }
    Ok(())
}

fn schema(
    what: &dyn Fn() -> String,
    text: &str,
    limits: &CatalogueLimits,
) -> Result<(Value, SchemaValidator), LoadError> {
    if text.len() > limits.max_schema_bytes as usize {
        return Err(meta(format!(
            "{} is {} bytes; the limit is {} (`max_schema_bytes`)",
            what(),
            text.len(),
            limits.max_schema_bytes
        )));
    }
    if let Some(kind) = find_credential(text) {
        return Err(LoadError::Credential(format!(
            "{} contains what looks like {kind}; descriptions and schemas are sent to every client, so secrets must come from granted environment variables",
            what()
        )));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| meta(format!("{} is not JSON: {e}", what())))?;
    // Descriptions and enum values inside a schema reach the model too.
    if let Some(c) = schema_strings(&value).flat_map(str::chars).find(|&c| invisible(c, true)) {
        return Err(meta(format!(
            "{} contains the invisible or control character U+{:04X}; plugin text reaches every client and the model",
            what(),
            c as u32
        )));
    }
    let validator = SchemaValidator::new(&value).map_err(|e| meta(format!("{}: {e}", what())))?;
    Ok((value, validator))
}

/// Every string in a JSON value, keys included.
fn schema_strings(v: &Value) -> Box<dyn Iterator<Item = &str> + '_> {
    match v {
        Value::String(s) => Box::new(std::iter::once(s.as_str())),
        Value::Array(a) => Box::new(a.iter().flat_map(schema_strings)),
        Value::Object(m) => Box::new(m.iter().flat_map(|(k, v)| std::iter::once(k.as_str()).chain(schema_strings(v)))),
        _ => Box::new(std::iter::empty()),
    }
}

/// Checks everything the plugin declared.
pub fn check(raw: RawCatalogue, limits: &CatalogueLimits) -> Result<Catalogue, LoadError> {
    count("tools", raw.tools.len(), limits.max_tools)?;
    count("resources", raw.resources.len() + raw.templates.len(), limits.max_resources)?;
    count("prompts", raw.prompts.len(), limits.max_prompts)?;
    if raw.templates.len() > MAX_TEMPLATES {
        return Err(meta(format!("declares {} resource templates; the limit is {MAX_TEMPLATES}", raw.templates.len())));
    }
    let description = limits.max_description_bytes as usize;

    let mut seen = HashSet::new();
    let mut tools = Vec::with_capacity(raw.tools.len());
    for t in raw.tools {
        identifier("tool", &t.name, &mut seen)?;
        let name = t.name.clone();
        let what = |field: &str| format!("tool `{name}` {field}");
        text(&|| what("description"), &t.description, description, true)?;
        if let Some(title) = &t.title {
            text(&|| what("title"), title, MAX_TITLE_BYTES, false)?;
        }
        let (input_schema, validator) = schema(&|| what("input schema"), &t.input_schema, limits)?;
        let output = match &t.output_schema {
            None => None,
            Some(s) => Some(schema(&|| what("output schema"), s, limits)?),
        };
        let (output_schema, output_validator) = output.unzip();
        tools.push(ToolInfo {
            name: t.name,
            title: t.title,
            description: t.description,
            input_schema,
            output_schema,
            annotations: t.annotations,
            validator: Arc::new(validator),
            output_validator: output_validator.map(Arc::new),
        });
    }

    let mut uris = HashSet::new();
    for r in &raw.resources {
        let at = shown(&r.uri);
        uri(&|| format!("resource \"{at}\" URI"), &r.uri)?;
        if !uris.insert(r.uri.as_str()) {
            return Err(meta(format!("resource `{}` is declared twice", r.uri)));
        }
        common(
            &|| format!("resource `{}`", r.uri),
            &r.name,
            r.title.as_deref(),
            r.description.as_deref(),
            description,
        )?;
        mime(&|| format!("resource `{}`", r.uri), r.mime_type.as_deref())?;
    }
    let mut templates = HashSet::new();
    for t in &raw.templates {
        let at = shown(&t.uri_template);
        UriTemplate::parse(&t.uri_template).map_err(|e| meta(format!("resource template \"{at}\" {e}")))?;
        if !templates.insert(t.uri_template.as_str()) {
            return Err(meta(format!("resource template `{}` is declared twice", t.uri_template)));
        }
        let what = || format!("resource template `{}`", t.uri_template);
        common(&what, &t.name, t.title.as_deref(), t.description.as_deref(), description)?;
        mime(&what, t.mime_type.as_deref())?;
    }
    let mut names = HashSet::new();
    for p in &raw.prompts {
        identifier("prompt", &p.name, &mut names)?;
        let what = || format!("prompt `{}`", p.name);
        if let Some(title) = &p.title {
            text(&|| format!("{} title", what()), title, MAX_TITLE_BYTES, false)?;
        }
        if let Some(d) = &p.description {
            text(&|| format!("{} description", what()), d, description, true)?;
        }
        if p.arguments.len() > MAX_PROMPT_ARGUMENTS {
            return Err(meta(format!("{} has more than {MAX_PROMPT_ARGUMENTS} arguments", what())));
        }
        let mut args = HashSet::new();
        for a in &p.arguments {
            if !valid_name(&a.name) || a.name.len() > 64 {
                return Err(meta(format!(
                    "{} argument name \"{}\" is invalid: use 1 to 64 characters of A-Z a-z 0-9 _ - .",
                    what(),
                    shown(&a.name)
                )));
            }
            if !args.insert(a.name.to_ascii_lowercase()) {
                return Err(meta(format!("{} argument `{}` is declared twice", what(), a.name)));
            }
            if let Some(d) = &a.description {
                text(&|| format!("{} argument `{}` description", what(), a.name), d, description, true)?;
            }
        }
    }
    let patterns: usize =
        tools.iter().map(|t| t.validator.patterns() + t.output_validator.as_ref().map_or(0, |v| v.patterns())).sum();
    if patterns > MAX_PATTERNS {
        return Err(meta(format!(
            "its schemas hold {patterns} regular expressions (`pattern`, `patternProperties`); the limit is {MAX_PATTERNS}"
        )));
    }
    Ok(Catalogue { tools, resources: raw.resources, templates: raw.templates, prompts: raw.prompts })
}

/// A tool or prompt name: valid, and unique among `seen` ignoring case (names
/// differing only in case look alike to people and models).
fn identifier(kind: &str, name: &str, seen: &mut HashSet<String>) -> Result<(), LoadError> {
    if !valid_name(name) {
        return Err(meta(format!(
            "{kind} name \"{}\" is invalid: use 1 to 128 characters of A-Z a-z 0-9 _ - .",
            shown(name)
        )));
    }
    if !seen.insert(name.to_ascii_lowercase()) {
        return Err(meta(format!("{kind} `{name}` is declared twice (names are compared ignoring case)")));
    }
    Ok(())
}

/// The name, title and description every resource and template has.
fn common(
    what: &dyn Fn() -> String,
    name: &str,
    title: Option<&str>,
    description: Option<&str>,
    max_description: usize,
) -> Result<(), LoadError> {
    if name.is_empty() {
        return Err(meta(format!("{} has an empty name", what())));
    }
    text(&|| format!("{} name", what()), name, MAX_TITLE_BYTES, false)?;
    if let Some(t) = title {
        text(&|| format!("{} title", what()), t, MAX_TITLE_BYTES, false)?;
    }
    if let Some(d) = description {
        text(&|| format!("{} description", what()), d, max_description, true)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("disk_usage"));
        assert!(valid_name("a.b-c"));
        assert!(!valid_name(""));
        assert!(!valid_name("has space"));
        assert!(!valid_name(&"x".repeat(129)));
        assert!(!valid_name("dіsk_usage"), "Cyrillic і");
    }

    #[test]
    fn invisible_characters_are_found() {
        for c in ['\u{0}', '\u{1b}', '\u{200B}', '\u{202E}', '\u{2066}', '\u{FEFF}', '\u{E0041}', '\u{2028}'] {
            assert!(invisible(c, true), "U+{:04X}", c as u32);
        }
        assert!(!invisible('\n', true) && invisible('\n', false));
        assert!(!invisible('é', false) && !invisible('日', false));
    }
}
