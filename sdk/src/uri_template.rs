//! Matching URIs against simple RFC 6570 templates: `{name}` matches one path
//! segment, `{+name}` matches the rest of the URI (slashes included).

use std::collections::BTreeMap;

/// The variables of a URI matched against a resource template.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UriVars(BTreeMap<String, String>);

impl UriVars {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

enum Part<'a> {
    Literal(&'a str),
    Var { name: &'a str, greedy: bool },
}

fn parse(template: &str) -> Option<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Literal(&rest[..open]));
        }
        let close = rest[open..].find('}')? + open;
        let inner = &rest[open + 1..close];
        let (name, greedy) = match inner.strip_prefix('+') {
            Some(n) => (n, true),
            None => (inner, false),
        };
        if name.is_empty() {
            return None;
        }
        parts.push(Part::Var { name, greedy });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Literal(rest));
    }
    Some(parts)
}

/// The variables of `uri` if it matches `template`.
pub(crate) fn matches(template: &str, uri: &str) -> Option<UriVars> {
    let parts = parse(template)?;
    let mut vars = BTreeMap::new();
    let mut rest = uri;
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Literal(lit) => rest = rest.strip_prefix(lit)?,
            Part::Var { name, greedy } => {
                // A variable runs up to the next literal (or the end).
                let end = match parts.get(i + 1) {
                    Some(Part::Literal(next)) => rest.find(next)?,
                    _ => rest.len(),
                };
                let value = &rest[..end];
                if value.is_empty() || (!greedy && value.contains('/')) {
                    return None;
                }
                vars.insert((*name).to_owned(), value.to_owned());
                rest = &rest[end..];
            }
        }
    }
    rest.is_empty().then_some(UriVars(vars))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_and_greedy_variables() {
        let v = matches("disk://{host}/usage", "disk://web1/usage").unwrap();
        assert_eq!(v.get("host"), Some("web1"));
        assert!(matches("disk://{host}/usage", "disk://a/b/usage").is_none());
        let v = matches("file://{+path}", "file:///var/log").unwrap();
        assert_eq!(v.get("path"), Some("/var/log"));
        assert!(matches("x://{a}", "y://b").is_none());
        assert!(matches("x://{a}", "x://").is_none());
    }
}
