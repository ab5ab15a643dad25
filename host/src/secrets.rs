//! Refuses plugin metadata that looks like it carries a credential.
//!
//! Tool descriptions and schemas are sent to the model and to every client; a key
//! pasted into one leaks to all of them. The scan reports what kind of secret it
//! saw, never the secret itself.

use std::sync::LazyLock;

use regex::Regex;

/// Well-known credential shapes, each with a name for the error message.
static PATTERNS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    [
        ("a private key block", r"-----BEGIN[A-Z ]*PRIVATE KEY( BLOCK)?-----"),
        ("an AWS access key id", r"\b(AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),
        ("a GitHub token", r"\b(gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
        ("a GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
        ("a Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
        ("a Stripe key", r"\b[rs]k_(live|test)_[A-Za-z0-9]{16,}"),
        ("an OpenAI-style API key", r"\bsk-(proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}"),
        ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
        ("a SendGrid key", r"\bSG\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}"),
        ("an npm token", r"\bnpm_[A-Za-z0-9]{36}"),
        ("a Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}"),
        ("a JSON Web Token", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ("a connection string with a password", r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s:@]{6,}@"),
    ]
    .into_iter()
    .map(|(name, re)| (name, Regex::new(re).expect("valid credential pattern")))
    .collect()
});

/// Runs of token characters long enough to be a key.
static TOKEN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/=_-]{32,}").expect("valid token pattern"));

/// Bits of Shannon entropy per character above which a long token is a secret.
const ENTROPY_THRESHOLD: f64 = 4.2;

fn entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in s.bytes() {
        counts[b as usize] += 1;
    }
    let n = s.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// What kind of credential `text` seems to contain, if any.
pub fn find_credential(text: &str) -> Option<&'static str> {
    if let Some((name, _)) = PATTERNS.iter().find(|(_, re)| re.is_match(text)) {
        return Some(name);
    }
    TOKEN.find_iter(text).find_map(|m| {
        let t = m.as_str();
        let classes = [
            t.bytes().any(|b| b.is_ascii_lowercase()),
            t.bytes().any(|b| b.is_ascii_uppercase()),
            t.bytes().any(|b| b.is_ascii_digit()),
        ];
        let mixed = classes.iter().filter(|&&c| c).count() >= 2;
        (mixed && entropy(t) >= ENTROPY_THRESHOLD).then_some("a long high-entropy token")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_credentials() {
        let cases = [
            (concat!("-----BEGIN RSA ", "PRIVATE KEY-----\nMIIE..."), "a private key block"),
            (concat!("use AKIA", "Z7QWERTYUIOPASDF to call"), "an AWS access key id"),
            (concat!("token ghp_", "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"), "a GitHub token"),
            (concat!("key: sk-", "proj-Ab12Cd34Ef56Gh78Ij90Kl12"), "an OpenAI-style API key"),
            (concat!("xox", "b-123456789012-abcdefghijkl"), "a Slack token"),
            (concat!("sk_live", "_4eC39HqLyjWDarjtT1zdp7dc"), "a Stripe key"),
            (concat!("postgres://admin:", "hunter2hunter2@db.internal/x"), "a connection string with a password"),
            ("secret Zx8Qp2Lm9Vt4Rb7Nc1Kd6Hs3Jf5Gw0Ya2Ue8", "a long high-entropy token"),
        ];
        for (text, want) in cases {
            assert_eq!(find_credential(text), Some(want), "{text}");
        }
    }

    #[test]
    fn ordinary_text_passes() {
        for text in [
            "Reports total, used and free space of the filesystem holding a path.",
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"older_than_days":{"type":"integer","format":"uint32","minimum":0}}}"#,
            "a_very_long_snake_case_identifier_that_is_not_secret",
            "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "https://example.com/some/long/path/to/a/resource/document.html",
            "config://limits",
        ] {
            assert_eq!(find_credential(text), None, "{text}");
        }
    }
}
