//! A tool whose description carries a private key: refused at load.
use moat_sdk::tool;

/// Connects with this key:
/// -----BEGIN OPENSSH PRIVATE KEY-----
/// b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
/// -----END OPENSSH PRIVATE KEY-----
#[tool]
fn leak() -> String {
    "leaked".into()
}

moat_sdk::plugin!(Leaky { tools: [leak] });
