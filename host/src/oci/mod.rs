//! Plugins from OCI registries, signed and pinned.
//!
//! A plugin is published as a CNCF wasm artifact: an OCI image manifest whose
//! config is `application/vnd.wasm.config.v0+json` and whose one
//! `application/wasm` layer is the component, with an optional second layer
//! holding the permissions its author requests (a sidecar's text; the
//! operator's sidecar still decides what is granted). Signatures use cosign's
//! key-based simple-signing format (ECDSA P-256 over a small JSON payload naming
//! the manifest digest, stored under the `sha256-<digest>.sig` tag), so cosign
//! and moat verify each other's signatures.
//!
//! Pulling never trusts a tag twice: a tag is resolved to manifest bytes once,
//! their digest is what the signature must name, and every layer is then
//! fetched by digest and checked against it ([`fetch_verified`]). Every byte a
//! registry sends is counted against a cap before it is kept.
//!
//! - [`reference`]: references and digests.
//! - [`client`]: the distribution API over HTTP(S), with registry auth.
//! - [`sign`]: keys, payloads, signing and verification.
//! - [`store`]: verified artifacts kept on disk by digest, so a restart with the
//!   registry down serves the last verified versions.
//! - [`source`]: `[[plugins.oci]]` sources kept in step with their tags.

pub mod client;
pub mod reference;
pub mod sign;
pub mod source;
pub mod store;

use std::path::PathBuf;

pub use client::{Client, Credentials};
pub use reference::{Digest, Reference};
pub use sign::{SigningKey, VerifyKey};

/// The artifact's manifest.
pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker's manifest type, which older cosign versions wrote signatures in.
pub const DOCKER_MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// What kind of artifact a wasm component manifest is.
pub const ARTIFACT_TYPE: &str = "application/vnd.wasm.component.v1+wasm";
/// The wasm artifact's config.
pub const CONFIG_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The component layer.
pub const WASM_LAYER_TYPE: &str = "application/wasm";
/// The optional layer with the permissions the plugin requests (sidecar TOML).
pub const PERMISSIONS_LAYER_TYPE: &str = "application/vnd.moat.plugin.permissions.v1+toml";

/// Caps on what a registry may send, checked while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// A component layer.
    pub component_bytes: u64,
}

/// A manifest (the distribution spec's own limit is 4 MiB).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// A config blob, a signature payload, a permissions layer, a token response.
pub const MAX_SMALL_BLOB_BYTES: u64 = 64 << 10;
/// Signatures examined per digest: more are ignored (an attacker who can write
/// signatures can swap the artifact anyway; this only bounds the work).
pub const MAX_SIGNATURES: usize = 32;
/// Default cap on a component layer.
pub const DEFAULT_MAX_COMPONENT_MB: u64 = crate::config::DEFAULT_OCI_MAX_COMPONENT_MB;

impl Default for Caps {
    fn default() -> Self {
        Caps { component_bytes: DEFAULT_MAX_COMPONENT_MB << 20 }
    }
}

/// Why talking to a registry, or trusting what it sent, failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("reference {0}")]
    Reference(String),
    #[error("{what}: {source}")]
    Http { what: String, source: reqwest::Error },
    #[error("{what}: the registry answered {status}{detail}")]
    Status { what: String, status: u16, detail: String },
    #[error("{what}: not found in the registry")]
    NotFound { what: String },
    #[error("the registry {registry} refused the credentials{given}")]
    Unauthorized { registry: String, given: &'static str },
    #[error("{what} is larger than the {limit}-byte cap")]
    TooLarge { what: String, limit: u64 },
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch { what: String, expected: String, actual: String },
    #[error("the manifest {digest} is not a wasm component artifact: {why}")]
    Manifest { digest: String, why: String },
    #[error("{digest} is not signed (no {tag} in the registry); sign it with `moat sign` or `cosign sign --key`")]
    Unsigned { digest: String, tag: String },
    #[error("{digest}: {why}")]
    BadSignature { digest: String, why: String },
    #[error("{0}")]
    Key(String),
    #[error("registry auth: {0}")]
    Auth(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl OciError {
    /// Whether the registry served something moat must not run (as opposed to
    /// not answering): such a digest is refused until it changes, not retried.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            OciError::TooLarge { .. }
                | OciError::DigestMismatch { .. }
                | OciError::Manifest { .. }
                | OciError::Unsigned { .. }
                | OciError::BadSignature { .. }
        )
    }

    /// A short, stable name for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            OciError::Unsigned { .. } => "unsigned",
            OciError::BadSignature { .. } => "bad_signature",
            OciError::DigestMismatch { .. } => "digest_mismatch",
            OciError::TooLarge { .. } => "too_large",
            OciError::Manifest { .. } => "not_a_component",
            OciError::Unauthorized { .. } | OciError::Auth(_) => "auth",
            OciError::NotFound { .. } => "not_found",
            _ => "unreachable",
        }
    }
}

/// A verified artifact: its manifest, its component, and the signatures that
/// vouched for it (kept, so the store can be verified again offline).
#[derive(Debug, Clone)]
pub struct Verified {
    pub digest: Digest,
    pub manifest: Vec<u8>,
    pub component: Vec<u8>,
    /// The permissions the plugin requests (a sidecar's text), if it says.
    pub requested: Option<String>,
    pub signatures: Vec<sign::Stored>,
    /// Fingerprint of the key that verified it (`None` for `insecure_unsigned`).
    pub signer: Option<String>,
}

/// Trust for one pull: the keys any of which must have signed the digest, or
/// none at all (`insecure_unsigned`).
#[derive(Debug, Clone)]
pub enum Trust {
    Keys(Vec<VerifyKey>),
    Unsigned,
}

/// Resolves `reference` to a manifest digest, checks the signature over that
/// digest, then fetches each layer by digest and checks it. `known` skips the
/// work when the tag still names that digest (returns `None`).
pub async fn fetch_verified(
    client: &Client,
    reference: &Reference,
    trust: &Trust,
    caps: Caps,
    known: Option<&Digest>,
) -> Result<Option<Verified>, OciError> {
    let (digest, manifest) = client.manifest(reference).await?;
    if known == Some(&digest) {
        return Ok(None);
    }
    let layers = artifact_layers(&digest, &manifest)?;
    let (signatures, signer) = match trust {
        Trust::Unsigned => (Vec::new(), None),
        Trust::Keys(keys) => {
            let found = client.signatures(reference, &digest).await?;
            let (stored, signer) = sign::verify_any(keys, &found, &digest)?;
            (vec![stored], Some(signer))
        }
    };
    let component = client.blob(reference, &layers.component, caps.component_bytes, "the component layer").await?;
    let requested = match &layers.permissions {
        None => None,
        Some(d) => {
            let bytes = client.blob(reference, d, MAX_SMALL_BLOB_BYTES, "the permissions layer").await?;
            Some(String::from_utf8(bytes).map_err(|_| OciError::Manifest {
                digest: digest.to_string(),
                why: "the permissions layer is not UTF-8 text".into(),
            })?)
        }
    };
    Ok(Some(Verified { digest, manifest, component, requested, signatures, signer }))
}

/// The digests of a wasm artifact's layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layers {
    pub component: Digest,
    pub permissions: Option<Digest>,
}

/// Checks that `manifest` is a wasm component artifact and names its layers.
pub fn artifact_layers(digest: &Digest, manifest: &[u8]) -> Result<Layers, OciError> {
    let bad = |why: String| OciError::Manifest { digest: digest.to_string(), why };
    let m: client::Manifest = serde_json::from_slice(manifest).map_err(|e| bad(format!("not a manifest: {e}")))?;
    if m.media_type.as_deref().is_some_and(|t| t != MANIFEST_TYPE) {
        return Err(bad(format!(
            "media type {} (want {MANIFEST_TYPE})",
            crate::text::shown(m.media_type.as_deref().unwrap_or_default())
        )));
    }
    if m.config.media_type != CONFIG_TYPE {
        return Err(bad(format!(
            "config media type {} (want {CONFIG_TYPE})",
            crate::text::shown(&m.config.media_type)
        )));
    }
    let of = |t: &str| m.layers.iter().filter(|l| l.media_type == t).collect::<Vec<_>>();
    let wasm = of(WASM_LAYER_TYPE);
    let [component] = wasm.as_slice() else {
        return Err(bad(format!("{} `{WASM_LAYER_TYPE}` layers (want exactly one)", wasm.len())));
    };
    let perms = of(PERMISSIONS_LAYER_TYPE);
    if perms.len() > 1 {
        return Err(bad(format!("{} permissions layers (want at most one)", perms.len())));
    }
    Ok(Layers {
        component: Digest::parse(&component.digest)?,
        permissions: perms.first().map(|l| Digest::parse(&l.digest)).transpose()?,
    })
}
