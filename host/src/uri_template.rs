//! Resource URI templates as moat routes them: literal text, `{name}` (one or more
//! characters of one path segment: no `/`) and `{+name}` (one or more of any
//! characters). Other RFC 6570 operators are refused at load.
//!
//! Matching runs a small NFA over the URI, so it is linear in the URI's length
//! for any template (no backtracking a plugin could make exponential), and
//! [`UriTemplate::overlaps`] decides whether two templates can match one URI,
//! which is how the registry refuses a plugin whose templates would answer
//! another plugin's resources.

/// Longest template accepted.
pub const MAX_TEMPLATE_BYTES: usize = 256;
/// Longest resource URI routed (a longer one is refused before any lookup).
pub const MAX_URI_BYTES: usize = 2048;
/// Most `{...}` expressions in one template.
pub const MAX_EXPRESSIONS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atom {
    Byte(u8),
    /// `{name}`: one or more bytes other than `/`.
    Segment,
    /// `{+name}`: one or more bytes.
    Rest,
}

impl Atom {
    fn admits(self, b: u8) -> bool {
        match self {
            Atom::Byte(x) => x == b,
            Atom::Segment => b != b'/',
            Atom::Rest => true,
        }
    }

    fn is_var(self) -> bool {
        !matches!(self, Atom::Byte(_))
    }
}

/// A parsed, validated template.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    atoms: Vec<Atom>,
    /// The same language as a `regex` (a DFA: one table step per byte), for
    /// routing requests; the atoms serve the overlap test at load.
    regex: regex::bytes::Regex,
}

impl PartialEq for UriTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.atoms == other.atoms
    }
}

/// A state of the matcher: before atom `i`, or inside variable atom `i` after
/// at least one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct State {
    at: usize,
    inside: bool,
}

impl UriTemplate {
    /// Parses `template`; the error says what is wrong with it.
    pub fn parse(template: &str) -> Result<Self, String> {
        if template.is_empty() || template.len() > MAX_TEMPLATE_BYTES {
            return Err(format!("must be 1 to {MAX_TEMPLATE_BYTES} bytes long"));
        }
        let mut atoms = Vec::new();
        let mut rest = template;
        let mut expressions = 0;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(i) if rest.as_bytes()[i] == b'}' => return Err("has a `}` without a `{`".into()),
                Some(i) => {
                    literal(&rest[..i], &mut atoms)?;
                    let close = rest[i..].find('}').ok_or("has a `{` without a `}`")? + i;
                    let expr = &rest[i + 1..close];
                    let (name, atom) = match expr.strip_prefix('+') {
                        Some(n) => (n, Atom::Rest),
                        None => (expr, Atom::Segment),
                    };
                    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') {
                        return Err(format!(
                            "expression `{{{expr}}}` is not supported: moat routes `{{name}}` and `{{+name}}`, names of A-Z a-z 0-9 _ ."
                        ));
                    }
                    expressions += 1;
                    if expressions > MAX_EXPRESSIONS {
                        return Err(format!("has more than {MAX_EXPRESSIONS} expressions"));
                    }
                    atoms.push(atom);
                    rest = &rest[close + 1..];
                }
                None => {
                    literal(rest, &mut atoms)?;
                    rest = "";
                }
            }
        }
        let mut pattern = String::from("(?s-u)\\A");
        for a in &atoms {
            match a {
                Atom::Byte(b) => pattern.push_str(&regex::escape(&char::from(*b).to_string())),
                Atom::Segment => pattern.push_str("[^/]+"),
                Atom::Rest => pattern.push_str(".+"),
            }
        }
        pattern.push_str("\\z");
        let regex = regex::bytes::RegexBuilder::new(&pattern)
            .size_limit(1 << 20)
            .dfa_size_limit(1 << 20)
            .build()
            .map_err(|e| format!("cannot be compiled for routing: {e}"))?;
        Ok(UriTemplate { atoms, regex })
    }

    /// Whether `uri` matches, in time linear in `uri.len()`.
    pub fn matches(&self, uri: &str) -> bool {
        self.regex.is_match(uri.as_bytes())
    }

    /// The same answer as [`Self::matches`], by simulating the template's NFA
    /// (used to cross-check the two in tests).
    #[cfg(test)]
    fn matches_nfa(&self, uri: &str) -> bool {
        let mut states = self.closure(vec![State { at: 0, inside: false }]);
        for &b in uri.as_bytes() {
            let next: Vec<State> = states.iter().flat_map(|&s| self.step(s, b)).collect();
            if next.is_empty() {
                return false;
            }
            states = self.closure(next);
        }
        states.iter().any(|s| self.accepts(*s))
    }

    /// Whether some URI matches both templates.
    pub fn overlaps(&self, other: &UriTemplate) -> bool {
        use std::collections::BTreeSet;
        let start = (State { at: 0, inside: false }, State { at: 0, inside: false });
        let mut seen = BTreeSet::new();
        let mut todo = Vec::new();
        for a in self.closure(vec![start.0]) {
            for b in other.closure(vec![start.1]) {
                todo.push((a, b));
            }
        }
        while let Some((a, b)) = todo.pop() {
            if !seen.insert((a, b)) {
                continue;
            }
            if self.accepts(a) && other.accepts(b) {
                return true;
            }
            let (Some(x), Some(y)) = (self.atoms.get(a.at), other.atoms.get(b.at)) else { continue };
            // Any byte both atoms admit will do: a literal, else any non-`/`.
            let witness = match (x, y) {
                (Atom::Byte(c), _) | (_, Atom::Byte(c)) => Some(*c),
                _ => Some(b'x'),
            }
            .filter(|&c| x.admits(c) && y.admits(c));
            let Some(c) = witness else { continue };
            for na in self.closure(self.step(a, c)) {
                for nb in other.closure(other.step(b, c)) {
                    todo.push((na, nb));
                }
            }
        }
        false
    }

    /// The states reached from `s` by reading `b`.
    fn step(&self, s: State, b: u8) -> Vec<State> {
        match self.atoms.get(s.at) {
            Some(&a) if a.admits(b) => {
                if a.is_var() {
                    vec![State { at: s.at, inside: true }]
                } else {
                    vec![State { at: s.at + 1, inside: false }]
                }
            }
            _ => Vec::new(),
        }
    }

    /// Adds the states reachable without reading: a variable that has read a
    /// byte may end.
    fn closure(&self, mut states: Vec<State>) -> Vec<State> {
        let extra: Vec<State> =
            states.iter().filter(|s| s.inside).map(|s| State { at: s.at + 1, inside: false }).collect();
        states.extend(extra);
        states.sort();
        states.dedup();
        states
    }

    fn accepts(&self, s: State) -> bool {
        s.at == self.atoms.len() && !s.inside
    }
}

/// Literal template text: printable ASCII without spaces or the characters a URI
/// never holds unescaped.
fn literal(text: &str, atoms: &mut Vec<Atom>) -> Result<(), String> {
    for b in text.bytes() {
        if !uri_byte(b) {
            return Err(format!("holds {:?}, which a URI cannot hold unescaped", char::from(b)));
        }
        atoms.push(Atom::Byte(b));
    }
    Ok(())
}

/// Bytes a URI may hold (RFC 3986 unreserved, reserved and `%`).
pub fn uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=%".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> UriTemplate {
        UriTemplate::parse(s).unwrap()
    }

    #[test]
    fn matches_segments_and_rests() {
        assert!(t("file://{name}").matches("file://a.txt"));
        assert!(!t("file://{name}").matches("file://a/b"));
        assert!(t("file://{+path}").matches("file://a/b"));
        assert!(t("file://{+path}.txt").matches("file://a.txt.txt"));
        assert!(!t("file://{+path}.txt").matches("file://.txt"));
        assert!(!t("file://{name}").matches("file://"));
        assert!(t("x://{a}/{b}").matches("x://1/2"));
        assert!(!t("x://{a}/{b}").matches("x://1/2/3"));
        for (tpl, uri) in [("file://{+p}.txt", "file://a.txt.txt"), ("a://{x}", "a://b/c"), ("{+a}/{b}", "q/r/s")] {
            assert_eq!(t(tpl).matches(uri), t(tpl).matches_nfa(uri), "{tpl} {uri}");
        }
    }

    #[test]
    fn matching_is_linear_even_for_many_expressions() {
        let many = format!("x://{}!", (0..16).map(|i| format!("{{+v{i}}}a")).collect::<String>());
        let tpl = t(&many);
        let uri = format!("x://{}", "a".repeat(100_000));
        let started = std::time::Instant::now();
        assert!(!tpl.matches(&uri));
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn overlaps_are_found() {
        assert!(t("{+all}").overlaps(&t("config://{name}")));
        assert!(t("file://{+p}").overlaps(&t("file://{a}/{b}")));
        assert!(t("a://{x}.txt").overlaps(&t("a://b.{y}")));
        assert!(!t("a://{x}").overlaps(&t("b://{x}")));
        assert!(!t("a://{x}").overlaps(&t("a://{x}/{y}")));
        assert!(!t("a://{x}.txt").overlaps(&t("a://{x}.md")));
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in ["", "a://{", "a://}", "a://{}", "a://{?q}", "a://{#f}", "a b://{x}", "a://\u{7}{x}", "a://é{x}"] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
