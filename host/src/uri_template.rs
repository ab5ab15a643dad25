//! Resource URI templates on the host: the shared definition
//! ([`moat_uri_template`], which the SDK uses inside plugins too) compiled once
//! into a `regex` DFA for routing (one table step per URI byte, whatever the
//! template), with the overlap test the registry uses to refuse a plugin whose
//! templates would answer another plugin's resources.

use moat_uri_template::{Atom, Template};
pub use moat_uri_template::{MAX_EXPRESSIONS, MAX_TEMPLATE_BYTES, MAX_URI_BYTES, uri_byte};

/// A parsed, validated template with its routing automaton.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    template: Template,
    /// The same language as `template`, compiled for speed.
    regex: regex::bytes::Regex,
}

impl PartialEq for UriTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.template == other.template
    }
}

impl UriTemplate {
    /// Parses `template`; the error says what is wrong with it.
    pub fn parse(template: &str) -> Result<Self, String> {
        let template = Template::parse(template)?;
        let mut pattern = String::from("(?s-u)\\A");
        for a in template.atoms() {
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
        Ok(UriTemplate { template, regex })
    }

    /// Whether `uri` matches: the answer of the shared definition, in time
    /// linear in `uri.len()`.
    pub fn matches(&self, uri: &str) -> bool {
        self.regex.is_match(uri.as_bytes())
    }

    /// Whether some URI matches both templates.
    pub fn overlaps(&self, other: &UriTemplate) -> bool {
        self.template.overlaps(&other.template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_agrees_with_the_shared_definition() {
        let cases = [
            ("file://{+path}.txt", "file://a.txt.txt"),
            ("file://{+path}.txt", "file://.txt"),
            ("file://{name}", "file://a/b"),
            ("x://{a}/{b}", "x://1/2"),
            ("x://{a}/{b}", "x://1/2/3"),
            ("{+a}/{b}", "q/r/s"),
            ("a://{x}.{y}", "a://p.q.r"),
            ("x://{a}-{+b}-{c}", "x://1-2-3-4/5-6"),
            ("x://(a)", "x://(a)"),
        ];
        for (tpl, uri) in cases {
            let shared = Template::parse(tpl).unwrap();
            let routed = UriTemplate::parse(tpl).unwrap();
            assert_eq!(routed.matches(uri), shared.matches(uri), "{tpl} {uri}");
            assert_eq!(routed.matches(uri), shared.captures(uri).is_some(), "{tpl} {uri}");
        }
    }
}
