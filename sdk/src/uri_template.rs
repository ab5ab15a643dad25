//! Matching URIs against resource templates, with the very definition the host
//! routes by ([`moat_uri_template`]): a read the host sends to this plugin
//! always finds the template that made the host send it.

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

/// The variables of `uri` if it matches `template` (none if the template is
/// not one moat routes).
pub(crate) fn matches(template: &str, uri: &str) -> Option<UriVars> {
    let template = moat_uri_template::Template::parse(template).ok()?;
    template.captures(uri).map(|vars| UriVars(vars.into_iter().collect()))
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

    #[test]
    fn a_uri_the_host_routes_here_is_found() {
        // The host routes `file://a.txt.txt` to a plugin with `file://{+path}.txt`;
        // the plugin must find it too.
        let v = matches("file://{+path}.txt", "file://a.txt.txt").unwrap();
        assert_eq!(v.get("path"), Some("a.txt"));
    }
}
