//! Artifact references (`registry/repository:tag`, `registry/repository@sha256:…`)
//! and content digests.

use std::fmt;

use sha2::{Digest as _, Sha256};

use super::OciError;

/// Longest reference accepted (the distribution spec caps repository names at 255
/// characters in practice; tags at 128).
const MAX_REFERENCE: usize = 512;

/// A `sha256:<64 lowercase hex>` content digest. Other algorithms are refused:
/// the registries moat speaks to all use SHA-256, and a digest moat cannot
/// recompute could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    pub fn parse(text: &str) -> Result<Self, OciError> {
        let bad =
            || OciError::Reference(format!("`{}` is not a sha256:<64 hex digits> digest", crate::text::shown(text)));
        let hex = text.strip_prefix("sha256:").ok_or_else(bad)?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad());
        }
        Ok(Digest(text.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    /// The tag cosign stores this digest's signatures under.
    pub fn signature_tag(&self) -> String {
        format!("sha256-{}.sig", self.hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `registry/repository` with a tag or a digest (a digest wins when both are
/// given: `repo:1@sha256:…` pulls exactly that digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, as written.
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference. The registry must be named (`ghcr.io/org/tool:1`,
    /// `localhost:5000/tool:1`): moat does not guess one. A reference without a
    /// tag or digest means `:latest`, as with every container tool.
    pub fn parse(text: &str) -> Result<Self, OciError> {
        let bad = |why: &str| OciError::Reference(format!("`{}`: {why}", crate::text::shown(text)));
        if text.len() > MAX_REFERENCE {
            return Err(bad("longer than 512 bytes"));
        }
        let text = text.strip_prefix("oci://").unwrap_or(text);
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d).map_err(|e| bad(&e.to_string()))?)),
            None => (text, None),
        };
        let (registry, path) = rest.split_once('/').ok_or_else(|| bad("name the registry, e.g. ghcr.io/org/tool:1"))?;
        if !(registry.contains('.') || registry.contains(':') || registry == "localhost") {
            return Err(bad("the first part must be a registry host (with a dot or a port, or `localhost`)"));
        }
        if registry.is_empty() || !registry.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)) {
            return Err(bad("not a registry host"));
        }
        // A tag follows the last `:` after the last `/`.
        let (repository, tag) = match path.rfind(':').filter(|&i| !path[i..].contains('/')) {
            Some(i) => (&path[..i], Some(&path[i + 1..])),
            None => (path, None),
        };
        if repository.is_empty() || repository.split('/').any(|c| !valid_component(c)) {
            return Err(bad(
                "repository names are lowercase letters, digits and separators (`.`, `_`, `__`, `-`) between `/`",
            ));
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad("a tag is 1 to 128 of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, None) => Some("latest".to_owned()),
            (None, Some(_)) => None,
        };
        Ok(Reference { registry: registry.to_owned(), repository: repository.to_owned(), tag, digest })
    }

    /// What a manifest request names: the digest when there is one, else the tag.
    pub fn selector(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t,
            (None, None) => "latest",
        }
    }

    /// The same repository at `digest`.
    pub fn at(&self, digest: &Digest) -> Reference {
        Reference { digest: Some(digest.clone()), tag: None, ..self.clone() }
    }

    /// The same repository at `tag`.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { digest: None, tag: Some(tag.to_owned()), ..self.clone() }
    }

    /// `registry/repository`, what a signature's `docker-reference` names.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Whether the registry is on this machine: spoken to over plain HTTP, as
    /// Docker does; every other registry over HTTPS only.
    pub fn is_loopback(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => &self.registry,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host.ends_with(".localhost")
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The base of the registry's API, e.g. `https://ghcr.io/v2/org/tool`.
    pub fn api(&self) -> String {
        let scheme = if self.is_loopback() { "http" } else { "https" };
        // Docker Hub's API is not served at its name.
        let host = if self.registry == "docker.io" { "registry-1.docker.io" } else { &self.registry };
        format!("{scheme}://{host}/v2/{}", self.repository)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// One `/`-separated part of a repository name: `[a-z0-9]+` joined by `.`, `_`,
/// `__` or runs of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    (1..=128).contains(&b.len())
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || b"_.-".contains(&x))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn references_parse() {
        let r = Reference::parse("ghcr.io/org/tools/disk_usage:1").unwrap();
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("ghcr.io", "org/tools/disk_usage"));
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.api(), "https://ghcr.io/v2/org/tools/disk_usage");
        let r = Reference::parse("127.0.0.1:5000/tool").unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(r.is_loopback());
        assert_eq!(r.api(), "http://127.0.0.1:5000/v2/tool");
        let r = Reference::parse(&format!("localhost:5000/a/b@{D}")).unwrap();
        assert_eq!((r.tag.as_deref(), r.digest.as_ref().map(Digest::as_str)), (None, Some(D)));
        assert_eq!(r.selector(), D);
        let r = Reference::parse(&format!("oci://[::1]:5000/a:v2@{D}")).unwrap();
        assert!(r.is_loopback());
        assert_eq!(r.selector(), D, "a digest wins over a tag");
        assert_eq!(r.to_string(), format!("[::1]:5000/a:v2@{D}"));
        assert!(!Reference::parse("registry.example.com/t:1").unwrap().is_loopback());
        assert!(!Reference::parse("localhost.example.com/t:1").unwrap().is_loopback());
    }

    #[test]
    fn bad_references_say_why() {
        for (text, why) in [
            ("disk_usage:1", "name the registry"),
            ("tools/disk_usage:1", "registry host"),
            ("ghcr.io/Org/tool:1", "lowercase"),
            ("ghcr.io/org//tool", "lowercase"),
            ("ghcr.io/org/tool:-x", "a tag is"),
            ("ghcr.io/org/tool@sha256:abc", "digest"),
            ("ghcr.io/org/tool@md5:0123", "digest"),
        ] {
            let e = Reference::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
        assert!(Reference::parse(&format!("ghcr.io/{}", "a".repeat(600))).is_err());
    }

    #[test]
    fn digests_check_their_form() {
        let d = Digest::of(b"hello");
        assert_eq!(d.as_str(), "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
        assert_eq!(d.signature_tag(), "sha256-2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824.sig");
        assert!(Digest::parse(&D.to_uppercase()).is_err());
    }
}
