//! Resource URI templates as moat routes them, in one place for the host (which
//! routes a read to the plugin whose template matches) and the SDK (which finds
//! the resource and its variables inside the plugin), so both always agree.
//!
//! A template is literal text, `{name}` (one or more bytes of one path segment:
//! no `/`) and `{+name}` (one or more of any bytes). Other RFC 6570 operators are
//! refused. Matching is a dynamic programme over (template position, URI
//! position), linear in the URI for a given template and never backtracking, so
//! no template can make it exponential. When a URI splits more than one way
//! between variables, each variable takes as much as it can, left to right.
//! [`Template::overlaps`] decides whether two templates can match one URI.

use std::collections::BTreeSet;

/// Longest template accepted.
pub const MAX_TEMPLATE_BYTES: usize = 256;
/// Longest resource URI routed (a longer one is refused before any lookup).
pub const MAX_URI_BYTES: usize = 2048;
/// Most `{...}` expressions in one template.
pub const MAX_EXPRESSIONS: usize = 16;

/// One step of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atom {
    /// This byte, literally.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    atoms: Vec<Atom>,
    /// The variables' names, in order.
    names: Vec<String>,
}

/// A state of the overlap search: before atom `at`, or inside variable atom
/// `at` after at least one byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct State {
    at: usize,
    inside: bool,
}

impl Template {
    /// Parses `template`; the error says what is wrong with it.
    pub fn parse(template: &str) -> Result<Self, String> {
        if template.is_empty() || template.len() > MAX_TEMPLATE_BYTES {
            return Err(format!("must be 1 to {MAX_TEMPLATE_BYTES} bytes long"));
        }
        let mut atoms = Vec::new();
        let mut names = Vec::new();
        let mut rest = template;
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
                    if names.len() == MAX_EXPRESSIONS {
                        return Err(format!("has more than {MAX_EXPRESSIONS} expressions"));
                    }
                    names.push(name.to_owned());
                    atoms.push(atom);
                    rest = &rest[close + 1..];
                }
                None => {
                    literal(rest, &mut atoms)?;
                    rest = "";
                }
            }
        }
        Ok(Template { atoms, names })
    }

    /// The template's steps (a host may compile them into a faster matcher of
    /// the same language).
    pub fn atoms(&self) -> &[Atom] {
        &self.atoms
    }

    /// Whether `uri` matches.
    pub fn matches(&self, uri: &str) -> bool {
        let u = uri.as_bytes();
        // ok[a]: atoms[a..] match the part of the URI after the current position.
        let n = self.atoms.len();
        let mut ok = vec![false; n + 1];
        ok[n] = true;
        for i in (0..u.len()).rev() {
            // At position i, computed from the row for i + 1 (held in `ok`).
            let mut row = vec![false; n + 1];
            for a in (0..n).rev() {
                let atom = self.atoms[a];
                row[a] = atom.admits(u[i]) && (ok[a + 1] || (atom.is_var() && ok[a]));
            }
            ok = row;
        }
        ok[0]
    }

    /// The variables of `uri`, by name, if it matches.
    pub fn captures(&self, uri: &str) -> Option<Vec<(String, String)>> {
        let u = uri.as_bytes();
        let n = self.atoms.len();
        // table[i][a]: atoms[a..] match u[i..].
        let mut table = vec![vec![false; n + 1]; u.len() + 1];
        table[u.len()][n] = true;
        for i in (0..u.len()).rev() {
            for a in (0..n).rev() {
                let atom = self.atoms[a];
                table[i][a] = atom.admits(u[i]) && (table[i + 1][a + 1] || (atom.is_var() && table[i + 1][a]));
            }
        }
        if !table[0][0] {
            return None;
        }
        let mut vars = Vec::with_capacity(self.names.len());
        let mut names = self.names.iter();
        let (mut i, mut a) = (0, 0);
        while a < n {
            let atom = self.atoms[a];
            if !atom.is_var() {
                i += 1;
                a += 1;
                continue;
            }
            // The longest run of admitted bytes after which the rest matches.
            let mut end = None;
            let mut j = i;
            while j < u.len() && atom.admits(u[j]) {
                j += 1;
                if table[j][a + 1] {
                    end = Some(j);
                }
            }
            let end = end?;
            let name = names.next()?;
            vars.push((name.clone(), String::from_utf8_lossy(&u[i..end]).into_owned()));
            i = end;
            a += 1;
        }
        Some(vars)
    }

    /// Whether some URI matches both templates.
    pub fn overlaps(&self, other: &Template) -> bool {
        let start = State { at: 0, inside: false };
        let mut seen = BTreeSet::new();
        let mut todo = Vec::new();
        for a in self.closure(vec![start]) {
            for b in other.closure(vec![start]) {
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
                (Atom::Byte(c), _) | (_, Atom::Byte(c)) => *c,
                _ => b'x',
            };
            if !(x.admits(witness) && y.admits(witness)) {
                continue;
            }
            for na in self.closure(self.step(a, witness)) {
                for nb in other.closure(other.step(b, witness)) {
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

    fn t(s: &str) -> Template {
        Template::parse(s).unwrap()
    }

    fn vars(tpl: &str, uri: &str) -> Option<Vec<(String, String)>> {
        t(tpl).captures(uri)
    }

    fn pairs(list: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
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
        assert!(t("fixed://one").matches("fixed://one"));
        assert!(!t("fixed://one").matches("fixed://one/"));
    }

    #[test]
    fn captures_agree_with_matching() {
        // The case where a first-literal matcher and the router disagreed.
        assert_eq!(vars("file://{+path}.txt", "file://a.txt.txt"), pairs(&[("path", "a.txt")]));
        assert_eq!(vars("disk://{host}/usage", "disk://web1/usage"), pairs(&[("host", "web1")]));
        assert_eq!(vars("disk://{host}/usage", "disk://a/b/usage"), None);
        assert_eq!(vars("file://{+path}", "file:///var/log"), pairs(&[("path", "/var/log")]));
        assert_eq!(vars("x://{a}.{b}", "x://p.q.r"), pairs(&[("a", "p.q"), ("b", "r")]));
        assert_eq!(vars("x://{a}", "x://"), None);
        for (tpl, uri) in [
            ("file://{+p}.txt", "file://a.txt.txt"),
            ("a://{x}", "a://b/c"),
            ("{+a}/{b}", "q/r/s"),
            ("{a}{b}", "ab"),
            ("{a}{b}", "a"),
            ("x://{a}-{+b}-{c}", "x://1-2-3-4/5-6"),
        ] {
            assert_eq!(t(tpl).matches(uri), t(tpl).captures(uri).is_some(), "{tpl} {uri}");
        }
    }

    #[test]
    fn matching_is_linear_even_for_many_expressions() {
        let many = format!("x://{}!", (0..16).map(|i| format!("{{+v{i}}}a")).collect::<String>());
        let tpl = t(&many);
        let uri = format!("x://{}", "a".repeat(MAX_URI_BYTES));
        let started = std::time::Instant::now();
        assert!(!tpl.matches(&uri));
        assert!(tpl.captures(&uri).is_none());
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
            assert!(Template::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let seventeen = (0..17).map(|i| format!("{{v{i}}}/")).collect::<String>();
        assert!(Template::parse(&seventeen).is_err());
    }
}
