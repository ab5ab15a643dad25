//! Outbound HTTP grants: the grammar of a sidecar's `[grants] http` and
//! `[[grants.http_headers]]`, and the checks made on every request a plugin
//! sends.
//!
//! A request is checked twice. First its origin (scheme, host as written, port)
//! against the grants ([`HttpPolicy::check_origin`]); then, after the host has
//! resolved the name itself, every address against the special ranges
//! ([`HttpPolicy::check_address`]): an address in a loopback, private,
//! link-local, CGNAT, multicast, unspecified, documentation or translation range
//! is used only when a grant names that address or a network holding it (for
//! the same scheme and port). So a grant by name alone never reaches such an
//! address, whatever DNS says; once the operator grants a network, names that
//! the plugin may reach and that resolve into it reach it too.
//!
//! Pure code: no I/O. The runtime's egress (`runtime::egress`) resolves,
//! connects and counts.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use http::HeaderName;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The two schemes a grant may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A host a request names: a DNS name (lowercase, no trailing dot) or an IP
/// address written as one (dotted quad, or bracketed IPv6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// Where a request goes: `scheme://host:port`, the port always explicit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub scheme: Scheme,
    pub host: Host,
    pub port: u16,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

impl Origin {
    /// The origin of a request for `scheme` and the `authority` the plugin wrote.
    /// Refuses what a request must not carry (user info, a zone, a port of 0)
    /// and host spellings that hide an address: numeric names such as
    /// `2130706433` or `0x7f.1` and IPv4-mapped IPv6 literals.
    pub fn of_request(scheme: Scheme, authority: &str) -> Result<Self, String> {
        // Longer than any host name and port: refused before it is quoted anywhere.
        if authority.len() > MAX_AUTHORITY {
            return Err(format!("the URL's host and port are {} bytes; at most {MAX_AUTHORITY}", authority.len()));
        }
        if authority.contains('@') {
            return Err("a URL with user info (`user@host`) is not allowed".into());
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None => scheme.default_port(),
            Some(p) => parse_port(p)?,
        };
        let host = parse_host(host)?;
        if let Host::Ip(IpAddr::V6(v6)) = &host
            && v6.to_ipv4_mapped().is_some()
        {
            return Err(format!("`{host}` is an IPv4-mapped IPv6 address; write the IPv4 address"));
        }
        Ok(Origin { scheme, host, port })
    }
}

/// The longest `host:port` a request may name: a 253-byte name and a port.
const MAX_AUTHORITY: usize = 260;

/// `host[:port]`, `[v6][:port]`; the port is returned unparsed.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.is_empty() {
        return Err("the URL has no host".into());
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or_else(|| format!("`{authority}`: unclosed `[`"))?;
        let (host, after) = (&authority[..end + 2], &rest[end + 1..]);
        return match after {
            "" => Ok((host, None)),
            p => p.strip_prefix(':').map(|p| (host, Some(p))).ok_or_else(|| format!("`{authority}`: junk after `]`")),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    })
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(format!("`{p}` is not a port (1 to 65535)")),
    }
}

/// A host as written: `[v6]`, a dotted-quad IPv4 address, or a DNS name.
fn parse_host(host: &str) -> Result<Host, String> {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        if inner.contains('%') {
            return Err(format!("`{host}`: IPv6 zone identifiers are not allowed"));
        }
        return inner
            .parse::<Ipv6Addr>()
            .map(|a| Host::Ip(IpAddr::V6(a)))
            .map_err(|_| format!("`{host}` is not an IPv6 address"));
    }
    // The standard library's parser takes four decimal parts and nothing else:
    // no octal, hex or shortened spellings.
    if let Ok(v4) = Ipv4Addr::from_str(host) {
        return Ok(Host::Ip(IpAddr::V4(v4)));
    }
    parse_name(host).map(Host::Name)
}

/// A DNS name: labels of letters, digits, `-` and `_`, lowercased, without a
/// trailing dot. A name whose last label is a number is refused: resolvers read
/// `2130706433` and `0177.1` as addresses.
fn parse_name(name: &str) -> Result<String, String> {
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if lower.is_empty() || lower.len() > 253 {
        return Err(format!("`{name}` is not a host name"));
    }
    for label in lower.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(format!(
                "`{name}` is not a host name (letters, digits and `-` only; write international names in their xn-- form)"
            ));
        }
    }
    let last = lower.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    if numeric {
        return Err(format!(
            "`{name}` spells an IP address in a form other than a dotted quad; write the address as a.b.c.d"
        ));
    }
    Ok(lower)
}

/// What a grant's host part matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any host. Special addresses still need a grant of their own.
    Any,
    /// One name, exactly.
    Name(String),
    /// `*.example.com`: names below `example.com`, never `example.com` itself.
    Subdomains(String),
    /// An address (`10.1.2.3`, `[fd00::1]`) or a network (`10.0.0.0/8`).
    Net(IpNet),
}

/// The ports a grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ports {
    Any,
    Range(u16, u16),
}

impl Ports {
    fn contains(self, port: u16) -> bool {
        match self {
            Ports::Any => true,
            Ports::Range(lo, hi) => (lo..=hi).contains(&port),
        }
    }
}

/// One entry of `[grants] http`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    pub scheme: Scheme,
    pub host: HostPattern,
    pub ports: Ports,
    /// As the operator wrote it, for messages.
    pub text: String,
}

impl fmt::Display for HttpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for HttpGrant {
    type Err = String;

    /// `scheme://host[:port]`: scheme `http` or `https`; host a name, `*.name`,
    /// `*`, an IP address or a network (`10.0.0.0/8`, `[fd00::]/8`); port a
    /// number, a range `8000-8999` or `*`, the scheme's default when absent.
    fn from_str(text: &str) -> Result<Self, String> {
        let err = |why: String| format!("`{text}`: {why}");
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(if text.trim() == "*" {
                err("a bare `*` is not a grant; write \"https://*\" to allow every public HTTPS host".into())
            } else {
                err(format!("give the scheme, e.g. \"https://{text}\""))
            });
        };
        let scheme = Scheme::parse(scheme).ok_or_else(|| err("the scheme must be http or https".into()))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['@', '?', '#']) {
            return Err(err("a grant names an origin: no user, path, query or fragment".into()));
        }
        let (host, port) = split_grant_host_port(rest).map_err(err)?;
        let ports = match port {
            None => Ports::Range(scheme.default_port(), scheme.default_port()),
            Some("*") => Ports::Any,
            Some(p) => match p.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (parse_port(lo).map_err(err)?, parse_port(hi).map_err(err)?);
                    if lo > hi {
                        return Err(err(format!("the port range {lo}-{hi} is empty")));
                    }
                    Ports::Range(lo, hi)
                }
                None => {
                    let n = parse_port(p).map_err(err)?;
                    Ports::Range(n, n)
                }
            },
        };
        let host = parse_host_pattern(host).map_err(err)?;
        Ok(HttpGrant { scheme, host, ports, text: text.to_owned() })
    }
}

/// Like [`split_host_port`], but a network's `/len` stays with the host.
fn split_grant_host_port(rest: &str) -> Result<(&str, Option<&str>), String> {
    if rest.starts_with('[') {
        let end = rest.find(']').ok_or("unclosed `[`")?;
        let after = &rest[end + 1..];
        let (len, port) = match after.split_once(':') {
            Some((len, port)) => (len, Some(port)),
            None => (after, None),
        };
        if !(len.is_empty() || len.starts_with('/')) {
            return Err("junk after `]`".into());
        }
        return Ok((&rest[..end + 1 + len.len()], port));
    }
    Ok(match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    })
}

fn parse_host_pattern(host: &str) -> Result<HostPattern, String> {
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        return parse_name(suffix).map(HostPattern::Subdomains);
    }
    if host.contains('*') {
        return Err("`*` may only stand alone or begin the host as `*.`".into());
    }
    if let Some((addr, len)) = host.split_once('/') {
        let parsed = parse_host(addr);
        if !matches!(parsed, Ok(Host::Ip(_))) {
            return Err("a grant names an origin: no path (a `/len` prefix follows IP addresses only)".into());
        }
        let len: u8 = len.parse().map_err(|_| format!("`/{len}` is not a prefix length"))?;
        let net = match parsed? {
            Host::Ip(IpAddr::V4(a)) => Ipv4Net::new(a, len).map(IpNet::V4),
            Host::Ip(IpAddr::V6(a)) => Ipv6Net::new(a, len).map(IpNet::V6),
            Host::Name(_) => {
                return Err("a grant names an origin: no path (a `/len` prefix follows IP addresses only)".into());
            }
        }
        .map_err(|_| format!("`/{len}` is too long a prefix"))?;
        return Ok(HostPattern::Net(net.trunc()));
    }
    Ok(match parse_host(host)? {
        Host::Ip(ip) => HostPattern::Net(IpNet::from(ip)),
        Host::Name(n) => HostPattern::Name(n),
    })
}

impl HttpGrant {
    /// Whether the grant allows requests to `origin` (the host as written).
    fn matches(&self, origin: &Origin) -> bool {
        if self.scheme != origin.scheme || !self.ports.contains(origin.port) {
            return false;
        }
        match (&self.host, &origin.host) {
            (HostPattern::Any, _) => true,
            (HostPattern::Name(g), Host::Name(n)) => g == n,
            (HostPattern::Subdomains(s), Host::Name(n)) => {
                n.len() > s.len() && n.ends_with(s.as_str()) && n.as_bytes()[n.len() - s.len() - 1] == b'.'
            }
            (HostPattern::Net(net), Host::Ip(ip)) => net.contains(ip),
            _ => false,
        }
    }

    /// Whether the grant names `ip` (or a network holding it) for this scheme and port.
    fn covers_address(&self, scheme: Scheme, port: u16, ip: IpAddr) -> bool {
        self.scheme == scheme
            && self.ports.contains(port)
            && matches!(&self.host, HostPattern::Net(n) if n.contains(&ip))
    }

    /// `https://*` and the like: every host. `moat check` warns about these.
    pub fn is_wildcard(&self) -> bool {
        self.host == HostPattern::Any
    }
}

/// The range an address lies in, when it is one a name grant may not reach:
/// loopback, private, link-local (cloud metadata lives there), CGNAT,
/// multicast, unspecified, broadcast, documentation, benchmarking, reserved,
/// and the IPv6 prefixes that embed an IPv4 address (NAT64, 6to4, Teredo,
/// IPv4-compatible). IPv4-mapped IPv6 addresses are judged as the IPv4 address.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    let ip = ip.to_canonical();
    SPECIAL_RANGES.iter().find(|(_, net)| net.contains(&ip)).map(|(name, _)| *name)
}

/// The special ranges, parsed once.
static SPECIAL_RANGES: std::sync::LazyLock<Vec<(&'static str, IpNet)>> = std::sync::LazyLock::new(|| {
    const V4: &[(&str, [u8; 4], u8)] = &[
        ("this network (0.0.0.0/8)", [0, 0, 0, 0], 8),
        ("private (10.0.0.0/8)", [10, 0, 0, 0], 8),
        ("shared CGNAT (100.64.0.0/10)", [100, 64, 0, 0], 10),
        ("loopback (127.0.0.0/8)", [127, 0, 0, 0], 8),
        ("link-local and cloud metadata (169.254.0.0/16)", [169, 254, 0, 0], 16),
        ("private (172.16.0.0/12)", [172, 16, 0, 0], 12),
        ("IETF protocol assignments (192.0.0.0/24)", [192, 0, 0, 0], 24),
        ("documentation (192.0.2.0/24)", [192, 0, 2, 0], 24),
        ("6to4 relay (192.88.99.0/24)", [192, 88, 99, 0], 24),
        ("private (192.168.0.0/16)", [192, 168, 0, 0], 16),
        ("benchmarking (198.18.0.0/15)", [198, 18, 0, 0], 15),
        ("documentation (198.51.100.0/24)", [198, 51, 100, 0], 24),
        ("documentation (203.0.113.0/24)", [203, 0, 113, 0], 24),
        ("multicast (224.0.0.0/4)", [224, 0, 0, 0], 4),
        ("reserved and broadcast (240.0.0.0/4)", [240, 0, 0, 0], 4),
    ];
    const V6: &[(&str, &str, u8)] = &[
        ("unspecified (::/128)", "::", 128),
        ("loopback (::1/128)", "::1", 128),
        ("IPv4-compatible (::/96)", "::", 96),
        ("NAT64 (64:ff9b::/96)", "64:ff9b::", 96),
        ("local NAT64 (64:ff9b:1::/48)", "64:ff9b:1::", 48),
        ("discard (100::/64)", "100::", 64),
        ("IETF protocol assignments and Teredo (2001::/23)", "2001::", 23),
        ("documentation (2001:db8::/32)", "2001:db8::", 32),
        ("6to4 (2002::/16)", "2002::", 16),
        ("unique local (fc00::/7)", "fc00::", 7),
        ("link-local (fe80::/10)", "fe80::", 10),
        ("site-local (fec0::/10)", "fec0::", 10),
        ("multicast (ff00::/8)", "ff00::", 8),
    ];
    let v4 = V4
        .iter()
        .map(|(name, net, len)| (*name, IpNet::V4(Ipv4Net::new(Ipv4Addr::from(*net), *len).expect("a valid range"))));
    let v6 = V6.iter().map(|(name, net, len)| {
        (*name, IpNet::V6(Ipv6Net::new(net.parse().expect("a valid address"), *len).expect("a valid range")))
    });
    v4.chain(v6).collect()
});

/// A header the host adds to every request to one origin, its value read
/// from an environment variable at the moment of the request. The plugin
/// never sees the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderGrant {
    pub origin: Origin,
    pub header: HeaderName,
    /// The environment variable holding the value.
    pub value_env: String,
    /// Written before the value, e.g. `Bearer `.
    pub value_prefix: String,
}

/// Headers a secret may not be put in: they frame the message or route it.
const FRAMING_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
    "http2-settings",
];

impl HeaderGrant {
    /// Validates one `[[grants.http_headers]]` entry (the caller checks that
    /// `value_env` names a variable).
    pub fn new(origin: &str, header: &str, value_env: &str, value_prefix: &str) -> Result<Self, String> {
        let (scheme, authority) =
            origin.split_once("://").ok_or_else(|| format!("http_headers origin `{origin}`: give the scheme"))?;
        let scheme = Scheme::parse(scheme)
            .ok_or_else(|| format!("http_headers origin `{origin}`: the scheme must be http or https"))?;
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.contains(['/', '?', '#', '*']) {
            return Err(format!("http_headers origin `{origin}`: one origin, no path and no wildcard"));
        }
        let origin =
            Origin::of_request(scheme, authority).map_err(|e| format!("http_headers origin `{origin}`: {e}"))?;
        let header = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| format!("http_headers header `{}` is not a header name", header.escape_debug()))?;
        if FRAMING_HEADERS.contains(&header.as_str()) {
            return Err(format!(
                "http_headers header `{header}` frames or routes the request; it cannot carry a secret"
            ));
        }
        if !value_prefix.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
            return Err("http_headers value_prefix: printable ASCII only".into());
        }
        Ok(HeaderGrant { origin, header, value_env: value_env.to_owned(), value_prefix: value_prefix.to_owned() })
    }
}

/// Why a request was refused before anything left the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("{0}")]
    BadUrl(String),
    #[error("{origin} is not granted (add it to the plugin's [grants] http)")]
    NotGranted { origin: Origin },
    #[error("{host} resolves to {ip}, in the {range} range, which no grant names")]
    SpecialAddress { host: Host, ip: IpAddr, range: &'static str },
    #[error("{0} resolves to no address")]
    NoAddress(Host),
}

/// What one plugin may reach: its grants and its secret headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpPolicy {
    pub grants: Vec<HttpGrant>,
    pub headers: Vec<HeaderGrant>,
}

impl HttpPolicy {
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// The first check: does a grant allow this origin, as written?
    pub fn check_origin(&self, origin: &Origin) -> Result<(), Denied> {
        if self.grants.iter().any(|g| g.matches(origin)) {
            Ok(())
        } else {
            Err(Denied::NotGranted { origin: origin.clone() })
        }
    }

    /// The second check, on every address the host resolved (or the literal
    /// one): a special address needs a grant naming it.
    pub fn check_address(&self, origin: &Origin, ip: IpAddr) -> Result<(), Denied> {
        let ip = ip.to_canonical();
        match special_range(ip) {
            None => Ok(()),
            Some(_) if self.grants.iter().any(|g| g.covers_address(origin.scheme, origin.port, ip)) => Ok(()),
            Some(range) => Err(Denied::SpecialAddress { host: origin.host.clone(), ip, range }),
        }
    }

    /// The secret headers for requests to `origin`.
    pub fn headers_for<'a>(&'a self, origin: &'a Origin) -> impl Iterator<Item = &'a HeaderGrant> + 'a {
        self.headers.iter().filter(move |h| h.origin == *origin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(grants: &[&str]) -> HttpPolicy {
        HttpPolicy { grants: grants.iter().map(|g| g.parse().unwrap()).collect(), headers: vec![] }
    }

    fn origin(url: &str) -> Result<Origin, String> {
        let (scheme, authority) = url.split_once("://").unwrap();
        Origin::of_request(Scheme::parse(scheme).unwrap(), authority.trim_end_matches('/'))
    }

    fn allowed(p: &HttpPolicy, url: &str) -> bool {
        origin(url).is_ok_and(|o| p.check_origin(&o).is_ok())
    }

    #[test]
    fn grammar() {
        let g: HttpGrant = "https://api.github.com".parse().unwrap();
        assert_eq!((g.scheme, g.ports), (Scheme::Https, Ports::Range(443, 443)));
        let g: HttpGrant = "https://*.example.com:8443".parse().unwrap();
        assert_eq!(g.host, HostPattern::Subdomains("example.com".into()));
        let g: HttpGrant = "http://10.0.0.0/8:8000-8999".parse().unwrap();
        assert_eq!((g.host, g.ports), (HostPattern::Net("10.0.0.0/8".parse().unwrap()), Ports::Range(8000, 8999)));
        let g: HttpGrant = "http://[fd00::]/8:*".parse().unwrap();
        assert_eq!((g.host, g.ports), (HostPattern::Net("fd00::/8".parse().unwrap()), Ports::Any));
        assert!("https://*".parse::<HttpGrant>().unwrap().is_wildcard());
        for (bad, why) in [
            ("*", "bare `*`"),
            ("api.github.com", "give the scheme"),
            ("ftp://x.com", "http or https"),
            ("https://x.com/path", "no path"),
            ("https://user@x.com", "no user"),
            ("https://x.*.com", "`*` may only"),
            ("https://x.com:0", "not a port"),
            ("https://x.com:9-1", "empty"),
            ("http://2130706433", "dotted quad"),
            ("http://0x7f.1", "dotted quad"),
            ("http://example.com/8", "no path"),
        ] {
            let e = bad.parse::<HttpGrant>().unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn origins_match_as_written() {
        let p = policy(&["https://api.github.com", "https://*.example.com:8443", "http://127.0.0.1:9000"]);
        assert!(allowed(&p, "https://api.github.com"));
        assert!(allowed(&p, "https://API.GitHub.com.:443"));
        assert!(allowed(&p, "https://a.b.example.com:8443"));
        assert!(allowed(&p, "http://127.0.0.1:9000"));
        for denied in [
            "http://api.github.com",          // another scheme
            "https://api.github.com:8443",    // another port
            "https://example.com:8443",       // the wildcard's bare domain
            "https://badexample.com:8443",    // a name that merely ends alike
            "https://a.example.com",          // the wildcard's port is 8443
            "http://127.0.0.1:9001",          // another port
            "http://localhost:9000",          // a name the IP grant does not cover
            "http://2130706433:9000",         // 127.0.0.1 spelled as a number
            "http://0177.0.0.1:9000",         // and in octal
            "http://[::ffff:127.0.0.1]:9000", // and IPv4-mapped
            "https://user@api.github.com",
        ] {
            assert!(!allowed(&p, denied), "{denied} should be denied");
        }
        let e = origin("http://[::ffff:127.0.0.1]:9000").unwrap_err();
        assert!(e.contains("IPv4-mapped"), "{e}");
    }

    #[test]
    fn special_addresses_need_their_own_grant() {
        let p = policy(&["http://localhost:9000", "https://*", "http://10.1.0.0/16:*"]);
        let o = origin("http://localhost:9000").unwrap();
        let e = p.check_address(&o, "127.0.0.1".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let o = origin("https://metadata.example").unwrap();
        for ip in [
            "169.254.169.254",
            "::1",
            "::ffff:127.0.0.1",
            "fe80::1",
            "100.64.0.1",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "fd00:ec2::254",
            "0.0.0.0",
            "224.0.0.1",
        ] {
            assert!(p.check_address(&o, ip.parse().unwrap()).is_err(), "{ip} should be refused");
        }
        assert!(p.check_address(&o, "140.82.112.5".parse().unwrap()).is_ok());
        assert!(p.check_address(&o, "2606:4700::1111".parse().unwrap()).is_ok());
        // A network grant lets its own addresses through, on its scheme only.
        let o = origin("http://internal.corp:8080").unwrap();
        assert!(p.check_address(&o, "10.1.2.3".parse().unwrap()).is_ok());
        assert!(p.check_address(&o, "10.2.0.1".parse().unwrap()).is_err());
        let o = origin("https://internal.corp:8080").unwrap();
        assert!(p.check_address(&o, "10.1.2.3".parse().unwrap()).is_err());
    }

    #[test]
    fn header_grants() {
        let h = HeaderGrant::new("https://api.github.com", "Authorization", "GITHUB_TOKEN", "Bearer ").unwrap();
        assert_eq!(h.origin.to_string(), "https://api.github.com:443");
        assert_eq!(h.header, http::header::AUTHORIZATION);
        for (o, hd, env) in [
            ("https://*.github.com", "Authorization", "T"),
            ("https://api.github.com/x", "Authorization", "T"),
            ("https://api.github.com", "Host", "T"),
            ("https://api.github.com", "Bad Header", "T"),
        ] {
            assert!(HeaderGrant::new(o, hd, env, "").is_err(), "{o} {hd} {env}");
        }
    }
}
