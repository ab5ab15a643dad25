//! `moat keygen`, `moat push`, `moat sign` and `moat pull`: publishing plugins
//! to an OCI registry and fetching them back, verified.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use moat::config::{Config, PluginSettings, RequestedGrants};
use moat::oci::client::{Descriptor, Manifest};
use moat::oci::sign::{self, SigningKey};
use moat::oci::{
    ARTIFACT_TYPE, CONFIG_TYPE, Caps, Client, Credentials, Digest, MANIFEST_TYPE, PERMISSIONS_LAYER_TYPE, Reference,
    Trust, VerifyKey, WASM_LAYER_TYPE,
};
use serde_json::json;

/// Environment variables with registry credentials for these commands.
const USERNAME_ENV: &str = "MOAT_REGISTRY_USERNAME";
const PASSWORD_ENV: &str = "MOAT_REGISTRY_PASSWORD";

/// `moat keygen --out PREFIX`: `PREFIX.key` (0600, never overwritten) and `PREFIX.pub`.
pub fn keygen(prefix: &Path) -> Result<ExitCode> {
    let (private, public) = SigningKey::generate()?;
    let key = with_suffix(prefix, "key");
    let pub_path = with_suffix(prefix, "pub");
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key)
        .with_context(|| format!("cannot create {} (an existing key is never overwritten)", key.display()))?;
    f.write_all(private.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", key.display()))?;
    std::fs::write(&pub_path, public).with_context(|| format!("writing {}", pub_path.display()))?;
    println!(
        "moat: wrote {} (private: keep it secret, e.g. a CI secret) and {} (give it to servers as verify_keys)",
        key.display(),
        pub_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn with_suffix(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Credentials for `reference`'s registry: `MOAT_REGISTRY_USERNAME` and
/// `MOAT_REGISTRY_PASSWORD`, else the docker config file (`$DOCKER_CONFIG`,
/// else `~/.docker/config.json`) if it has an entry, else none.
fn credentials(reference: &Reference) -> Result<Option<Credentials>> {
    if std::env::var_os(USERNAME_ENV).is_some() || std::env::var_os(PASSWORD_ENV).is_some() {
        return Ok(Some(Credentials::from_env(USERNAME_ENV, PASSWORD_ENV)?));
    }
    let file = match std::env::var_os("DOCKER_CONFIG") {
        Some(d) => PathBuf::from(d).join("config.json"),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".docker/config.json"),
            None => return Ok(None),
        },
    };
    if !file.exists() {
        return Ok(None);
    }
    Ok(Credentials::from_docker_config(&file, &reference.registry)?)
}

fn client(reference: &Reference) -> Result<Client> {
    Ok(Client::new(reference, credentials(reference)?)?)
}

/// `moat push FILE.wasm REF [--sign-key KEY] [--permissions TOML]`.
pub async fn push(
    file: &Path,
    reference: &str,
    sign_key: Option<&Path>,
    permissions: Option<&Path>,
) -> Result<ExitCode> {
    let reference = Reference::parse(reference)?;
    let Some(tag) = reference.tag.clone().filter(|_| reference.digest.is_none()) else {
        bail!("push to a tag (…:1), not a digest: a digest is what a push produces");
    };
    // A key that cannot be read should stop the push before anything is sent.
    let key = sign_key.map(SigningKey::read).transpose()?;
    let component = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    // Publish only what moat would serve.
    let runtime = super::runtime(&Config::default_plugins(), None)?;
    let plugin = runtime
        .load(file, PluginSettings::default())
        .await
        .with_context(|| format!("{} is not a plugin moat can serve", file.display()))?;
    let beside = file.with_extension("toml");
    let permissions = match permissions {
        Some(p) => Some(p.to_owned()),
        None => beside.exists().then_some(beside),
    };
    let requested = match &permissions {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
            RequestedGrants::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            Some(text)
        }
    };
    let wasm_layer = {
        let mut d = Descriptor::of(WASM_LAYER_TYPE, &component);
        if let Some(name) = file.file_name().and_then(|n| n.to_str()) {
            d.annotations.insert("org.opencontainers.image.title".into(), name.to_owned());
        }
        d
    };
    // No timestamp: the same build pushed twice is the same digest.
    let config = serde_json::to_vec(&json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [wasm_layer.digest],
        "component": {
            "exports": [format!("moat:plugin/plugin@{}", plugin.wit_version)],
            "imports": plugin.imports,
        },
    }))?;
    let mut layers = vec![wasm_layer];
    if let Some(text) = &requested {
        layers.push(Descriptor::of(PERMISSIONS_LAYER_TYPE, text.as_bytes()));
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_TYPE.into()),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        config: Descriptor::of(CONFIG_TYPE, &config),
        layers,
        annotations: Default::default(),
    };
    let client = client(&reference)?;
    let started = Instant::now();
    client.push_blob(&reference, &config).await?;
    client.push_blob(&reference, &component).await?;
    if let Some(text) = &requested {
        client.push_blob(&reference, text.as_bytes()).await?;
    }
    let digest = client.push_manifest(&reference, &tag, &serde_json::to_vec(&manifest)?).await?;
    println!(
        "moat: pushed {} ({} bytes{}) as {}@{digest} in {:.0} ms",
        file.display(),
        component.len(),
        if requested.is_some() { ", with requested permissions" } else { "" },
        reference,
        started.elapsed().as_secs_f64() * 1e3
    );
    if let Some(key) = key {
        sign_digest(&client, &reference, &digest, &key).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `moat sign REF --key KEY`: signs the digest `REF` names now.
pub async fn sign(reference: &str, key: &Path) -> Result<ExitCode> {
    let reference = Reference::parse(reference)?;
    let key = SigningKey::read(key)?;
    let client = client(&reference)?;
    let (digest, _) = client.manifest(&reference).await?;
    sign_digest(&client, &reference, &digest, &key).await?;
    Ok(ExitCode::SUCCESS)
}

/// Adds a signature of `digest` by `key` to its signature manifest, as cosign
/// does (one layer per signature; an identical one is not added twice).
async fn sign_digest(client: &Client, reference: &Reference, digest: &Digest, key: &SigningKey) -> Result<()> {
    let payload = sign::payload(&reference.repository_name(), digest);
    let signature = key.sign(&payload)?;
    let mut layer = Descriptor::of(sign::PAYLOAD_TYPE, &payload);
    layer.annotations.insert(sign::SIGNATURE_ANNOTATION.into(), signature);
    let mut layers = match client.signature_manifest(reference, digest).await? {
        Some(m) => m.layers,
        None => Vec::new(),
    };
    let fingerprint = key.verify_key()?.fingerprint();
    layers.retain(|l| l.media_type == sign::PAYLOAD_TYPE);
    // ECDSA signatures differ each time: signed already if a layer with this
    // payload verifies with this key.
    let verify = key.verify_key()?;
    let signed = |l: &Descriptor| {
        l.digest == layer.digest
            && l.annotations.get(sign::SIGNATURE_ANNOTATION).is_some_and(|s| verify.verifies(&payload, s))
    };
    if layers.iter().any(signed) {
        println!("moat: {}@{digest} is already signed by key {fingerprint}", reference.repository_name());
        return Ok(());
    }
    layers.push(layer);
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let config = sign::config_blob(&diff_ids);
    client.push_blob(reference, &payload).await?;
    client.push_blob(reference, &config).await?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_TYPE.into()),
        artifact_type: None,
        config: Descriptor::of(sign::SIGNATURE_CONFIG_TYPE, &config),
        layers,
        annotations: Default::default(),
    };
    client.push_manifest(reference, &digest.signature_tag(), &serde_json::to_vec(&manifest)?).await?;
    println!(
        "moat: signed {}@{digest} with key {fingerprint} (tag {})",
        reference.repository_name(),
        digest.signature_tag()
    );
    Ok(())
}

/// `moat pull REF --verify-key PUB --out FILE.wasm`: tag → digest → signature
/// → layer by digest → checked → written (with `FILE.requested.toml` when the
/// artifact carries requested permissions).
pub async fn pull(
    reference: &str,
    keys: &[PathBuf],
    insecure_unsigned: bool,
    out: &Path,
    max_size_mb: u64,
) -> Result<ExitCode> {
    let reference = Reference::parse(reference)?;
    let trust = match (keys.is_empty(), insecure_unsigned) {
        (false, false) => Trust::Keys(keys.iter().map(|k| VerifyKey::read(k)).collect::<Result<_, _>>()?),
        (true, true) => Trust::Unsigned,
        (true, false) => bail!("pass --verify-key PUB (unsigned plugins are refused unless --insecure-unsigned)"),
        (false, true) => bail!("--verify-key and --insecure-unsigned contradict each other"),
    };
    let client = client(&reference)?;
    let started = Instant::now();
    let caps = Caps { component_bytes: max_size_mb << 20 };
    let v = moat::oci::fetch_verified(&client, &reference, &trust, caps, None).await?.context("nothing fetched")?;
    let took = started.elapsed();
    write_beside(out, &v.component)?;
    let requested_path = out.with_extension("requested.toml");
    match &v.requested {
        Some(text) => write_beside(&requested_path, text.as_bytes())?,
        None => {
            let _ = std::fs::remove_file(&requested_path);
        }
    }
    println!(
        "moat: pulled {}@{} ({} bytes, {}) to {} in {:.0} ms",
        reference.repository_name(),
        v.digest,
        v.component.len(),
        match &v.signer {
            Some(k) => format!("signature verified with key {k}"),
            None => "UNSIGNED, not verified".into(),
        },
        out.display(),
        took.as_secs_f64() * 1e3
    );
    if v.requested.is_some() {
        println!("moat: it requests permissions: {} (see `moat inspect {}`)", requested_path.display(), out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`.
fn write_beside(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".moat-pull-")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    use std::io::Write as _;
    tmp.write_all(bytes)?;
    use std::os::unix::fs::PermissionsExt as _;
    tmp.as_file().set_permissions(std::fs::Permissions::from_mode(0o644))?;
    tmp.persist(path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
