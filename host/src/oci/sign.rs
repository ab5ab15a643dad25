//! cosign's key-based simple signing: ECDSA P-256 keys in PEM, the JSON payload
//! that names a manifest digest, and the signature over it.
//!
//! A signature is a layer of the manifest at the `sha256-<digest>.sig` tag: its
//! blob is the payload, its `dev.cosignproject.cosign/signature` annotation the
//! base64 ASN.1 DER ECDSA signature over SHA-256 of the payload's bytes.

use std::path::Path;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::{Digest, OciError};

/// The signature layer's media type.
pub const PAYLOAD_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The annotation holding the signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// `critical.type` of every cosign payload.
pub const PAYLOAD_KIND: &str = "cosign container image signature";

/// A private key moat signs with.
pub struct SigningKey {
    pair: EcdsaKeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// A public key signatures are checked against.
#[derive(Debug, Clone)]
pub struct VerifyKey {
    /// SubjectPublicKeyInfo DER.
    spki: Vec<u8>,
    /// Where it was read from, for messages.
    pub source: String,
}

impl SigningKey {
    /// A new key: (`PRIVATE KEY` PKCS#8 PEM, `PUBLIC KEY` PEM).
    pub fn generate() -> Result<(String, String), OciError> {
        let alg = &signature::ECDSA_P256_SHA256_ASN1_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new())
            .map_err(|_| OciError::Key("cannot generate a P-256 key".into()))?;
        let key = SigningKey::from_pkcs8(pkcs8.as_ref())?;
        let private = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
        Ok((private, key.public_pem()?))
    }

    fn from_pkcs8(der: &[u8]) -> Result<Self, OciError> {
        let pair = EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|e| OciError::Key(format!("not an ECDSA P-256 private key: {e}")))?;
        Ok(SigningKey { pair })
    }

    /// Reads a PEM `PRIVATE KEY` (PKCS#8) or `EC PRIVATE KEY` (SEC 1) file.
    pub fn read(path: &Path) -> Result<Self, OciError> {
        let text = std::fs::read_to_string(path).map_err(|source| OciError::Io { path: path.to_owned(), source })?;
        let p = pem::parse(&text).map_err(|e| OciError::Key(format!("{}: not a PEM key: {e}", path.display())))?;
        match p.tag() {
            "PRIVATE KEY" | "EC PRIVATE KEY" => {
                SigningKey::from_pkcs8(p.contents()).map_err(|e| OciError::Key(format!("{}: {e}", path.display())))
            }
            t if t.starts_with("ENCRYPTED") => Err(OciError::Key(format!(
                "{}: an encrypted ({t}) key; moat signs with an unencrypted PKCS#8 key such as `moat keygen` writes (cosign can import one with `cosign import-key-pair`)",
                path.display()
            ))),
            t => Err(OciError::Key(format!("{}: a PEM `{t}`, not a private key", path.display()))),
        }
    }

    /// The public half as `PUBLIC KEY` PEM.
    pub fn public_pem(&self) -> Result<String, OciError> {
        let der = self.pair.public_key().as_der().map_err(|_| OciError::Key("cannot encode the public key".into()))?;
        Ok(pem::encode(&pem::Pem::new("PUBLIC KEY", der.as_ref().to_vec())))
    }

    /// The public half, for checking what this key signs.
    pub fn verify_key(&self) -> Result<VerifyKey, OciError> {
        VerifyKey::from_pem(&self.public_pem()?, "the signing key")
    }

    /// Signs `payload`: base64 of the ASN.1 DER signature.
    pub fn sign(&self, payload: &[u8]) -> Result<String, OciError> {
        let sig = self.pair.sign(&SystemRandom::new(), payload).map_err(|_| OciError::Key("signing failed".into()))?;
        Ok(B64.encode(sig.as_ref()))
    }
}

impl VerifyKey {
    /// Parses a `PUBLIC KEY` PEM (an ECDSA P-256 SubjectPublicKeyInfo).
    pub fn from_pem(text: &str, source: &str) -> Result<Self, OciError> {
        let p = pem::parse(text).map_err(|e| OciError::Key(format!("{source}: not a PEM public key: {e}")))?;
        if p.tag() != "PUBLIC KEY" {
            return Err(OciError::Key(format!("{source}: a PEM `{}`, not a `PUBLIC KEY`", p.tag())));
        }
        let key = VerifyKey { spki: p.contents().to_vec(), source: source.to_owned() };
        // Refuse what is not a P-256 key now, not when a signature fails.
        if !is_p256_spki(&key.spki) {
            return Err(OciError::Key(format!("{source}: not an ECDSA P-256 public key")));
        }
        Ok(key)
    }

    pub fn read(path: &Path) -> Result<Self, OciError> {
        let text = std::fs::read_to_string(path).map_err(|source| OciError::Io { path: path.to_owned(), source })?;
        VerifyKey::from_pem(&text, &path.display().to_string())
    }

    /// A short name for logs and status: the first 16 hex digits of SHA-256 of
    /// the key's DER.
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(&self.spki)[..8])
    }

    /// Whether `signature_b64` is this key's signature of `payload`.
    pub fn verifies(&self, payload: &[u8], signature_b64: &str) -> bool {
        let Ok(sig) = B64.decode(signature_b64.trim()) else { return false };
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, &self.spki).verify(payload, &sig).is_ok()
    }
}

/// The OID prefix of an id-ecPublicKey SubjectPublicKeyInfo on prime256v1.
fn is_p256_spki(der: &[u8]) -> bool {
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    const PRIME256V1: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    has(EC_PUBLIC_KEY) && has(PRIME256V1) && der.len() == 91
}

/// The config blob of a signature manifest, as cosign writes it: an empty
/// image config whose layers are the payloads.
pub fn config_blob(payload_digests: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": payload_digests},
        "config": {},
    }))
    .expect("a config serializes")
}

/// The media type of a signature manifest's config.
pub const SIGNATURE_CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// A signature as found in the registry (or kept in the store).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// The payload's bytes, base64.
    pub payload: String,
    /// The signature annotation, base64 DER.
    pub signature: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    critical: Critical,
    optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The payload cosign signs for `digest` in the repository `repository`
/// (`registry/name`).
pub fn payload(repository: &str, digest: &Digest) -> Vec<u8> {
    let p = Payload {
        critical: Critical {
            identity: Identity { docker_reference: repository.to_owned() },
            image: Image { docker_manifest_digest: digest.to_string() },
            kind: PAYLOAD_KIND.to_owned(),
        },
        optional: None,
    };
    serde_json::to_vec(&p).expect("a payload serializes")
}

/// The digest a payload vouches for, if it is a cosign payload.
fn payload_digest(payload: &[u8]) -> Result<String, String> {
    let p: Payload = serde_json::from_slice(payload).map_err(|e| format!("not a cosign payload: {e}"))?;
    if p.critical.kind != PAYLOAD_KIND {
        return Err(format!("payload type `{}`, not `{PAYLOAD_KIND}`", crate::text::shown(&p.critical.kind)));
    }
    Ok(p.critical.image.docker_manifest_digest)
}

/// The first of `found` that one of `keys` signed and whose payload names
/// `digest`, with the fingerprint of that key.
pub fn verify_any(keys: &[VerifyKey], found: &[Stored], digest: &Digest) -> Result<(Stored, String), OciError> {
    let refuse = |why: String| OciError::BadSignature { digest: digest.to_string(), why };
    let mut other_digest = None;
    let mut signed_by_key = false;
    for s in found {
        let Ok(payload) = B64.decode(&s.payload) else { continue };
        let Some(key) = keys.iter().find(|k| k.verifies(&payload, &s.signature)) else { continue };
        signed_by_key = true;
        match payload_digest(&payload) {
            Ok(d) if d == digest.as_str() => return Ok((s.clone(), key.fingerprint())),
            Ok(d) => other_digest = Some(d),
            Err(_) => {}
        }
    }
    Err(match (signed_by_key, other_digest) {
        (true, Some(d)) => refuse(format!(
            "the signature by a trusted key is over a different digest ({}): refusing",
            crate::text::shown(&d)
        )),
        (true, None) => refuse("the payload signed by a trusted key is not a cosign payload".into()),
        (false, _) => refuse(format!(
            "none of its {} signature(s) verifies with the trusted key(s) {}",
            found.len(),
            keys.iter().map(VerifyKey::fingerprint).collect::<Vec<_>>().join(", ")
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip() {
        let (private, public) = SigningKey::generate().unwrap();
        assert!(private.contains("BEGIN PRIVATE KEY") && public.contains("BEGIN PUBLIC KEY"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.key"), &private).unwrap();
        let key = SigningKey::read(&dir.path().join("k.key")).unwrap();
        let verify = VerifyKey::from_pem(&public, "k.pub").unwrap();
        assert_eq!(key.verify_key().unwrap().fingerprint(), verify.fingerprint());

        let digest = Digest::of(b"manifest");
        let payload = payload("localhost:5000/tools/x", &digest);
        let stored = Stored { payload: B64.encode(&payload), signature: key.sign(&payload).unwrap() };
        let (ok, signer) = verify_any(std::slice::from_ref(&verify), std::slice::from_ref(&stored), &digest).unwrap();
        assert_eq!((ok, signer), (stored.clone(), verify.fingerprint()));

        // Over another digest: refused, and says so.
        let e = verify_any(std::slice::from_ref(&verify), std::slice::from_ref(&stored), &Digest::of(b"other"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("different digest"), "{e}");
        // By another key: refused.
        let (_, other) = SigningKey::generate().unwrap();
        let other = VerifyKey::from_pem(&other, "other.pub").unwrap();
        let e = verify_any(&[other], std::slice::from_ref(&stored), &digest).unwrap_err().to_string();
        assert!(e.contains("none of its 1 signature"), "{e}");
        // A flipped payload byte: refused.
        let mut bent = payload.clone();
        bent[10] ^= 1;
        let forged = Stored { payload: B64.encode(&bent), ..stored };
        assert!(verify_any(&[verify], &[forged], &digest).is_err());
    }

    #[test]
    fn keys_that_are_not_p256_are_refused() {
        let e = VerifyKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "c.pem")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a `PUBLIC KEY`"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("enc.key");
        std::fs::write(
            &path,
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = SigningKey::read(&path).unwrap_err().to_string();
        assert!(e.contains("encrypted"), "{e}");
    }
}
