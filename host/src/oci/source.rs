//! `[[plugins.oci]]` sources: each a task that keeps its pin in step with its
//! reference. A tag is checked every `poll_s`; a new digest is verified, pulled,
//! compiled off the request path and pinned, and the plugins loader is told to
//! rescan (which swaps it in like any new file). A digest that fails a check is
//! refused and remembered, the serving version stays, and the refusal shows in
//! the status; a registry that does not answer is retried with backoff.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::future::BoxFuture;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::VerifyKey;
use super::store::Store;
use super::{Caps, Client, Credentials, Digest, OciError, Reference, Trust, fetch_verified};
use crate::config::{Limits, OciSourceConfig, PluginSettings, RegistryAuth, RequestedGrants};
use crate::runtime::Runtime;

/// Longest wait between retries of a registry that does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Refused digests remembered per source (older ones are forgotten).
const MAX_REFUSED: usize = 16;

/// One configured source, ready to run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub reference: Reference,
    pub trust: Trust,
    pub poll: Duration,
    pub sidecar: Option<PathBuf>,
    pub credentials: Option<Credentials>,
    pub caps: Caps,
    /// `[plugins.defaults]`, what the sidecar's limits start from.
    pub defaults: Limits,
}

/// A digest a source would not serve, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub digest: String,
    pub kind: &'static str,
    pub error: String,
}

/// What one source is doing, for `/readyz?verbose` and metrics.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    pub name: String,
    #[serde(rename = "ref")]
    pub reference: String,
    /// The digest pinned (serving, unless the loader refused it).
    pub digest: Option<String>,
    /// Fingerprint of the key that verified it.
    pub signer: Option<String>,
    /// What the artifact asks for that its sidecar does not grant.
    pub requested_not_granted: Vec<String>,
    pub last_check_unix_s: Option<f64>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub retry_in_s: Option<f64>,
    pub refused: Vec<Refused>,
    /// Checks by outcome: unchanged, updated, refused, error.
    pub checks: BTreeMap<&'static str, u64>,
    /// Refusals by kind (unsigned, bad_signature, digest_mismatch, ...).
    pub refusals: BTreeMap<&'static str, u64>,
    /// Time of the last update: pull, verify and compile, in milliseconds.
    pub last_update_ms: Option<f64>,
}

/// The sources of a configuration, checked and matched with what the store
/// verified at start.
pub struct Prepared {
    pub store: Store,
    pub specs: Vec<Spec>,
    /// Per spec: the digest verified from the store (what serves at start).
    pub pins: Vec<Option<Digest>>,
}

impl Prepared {
    /// The components and sidecars the plugins loader reads for these sources.
    pub fn loader_entries(&self) -> Vec<(PathBuf, Option<PathBuf>)> {
        self.specs.iter().map(|s| (self.store.serving_path(&s.name), s.sidecar.clone())).collect()
    }
}

/// Reads the keys and credentials of every source (an unreadable one stops
/// the start, naming it), then verifies each stored pin again, offline, and
/// drops what no longer verifies or is no longer configured.
pub fn prepare(
    configs: &[OciSourceConfig],
    store_dir: &std::path::Path,
    defaults: Limits,
) -> Result<Prepared, OciError> {
    let specs = specs(configs, defaults)?;
    let store = Store::open(store_dir)?;
    let mut pins = Vec::new();
    for s in &specs {
        match store.verified_pin(&s.name, &s.reference.to_string(), &s.trust) {
            Ok(Some(pin)) => {
                tracing::info!(source = %s.name, digest = %pin.digest, "serving the stored verified version until the registry is checked");
                pins.push(Some(pin.digest));
            }
            Ok(None) => pins.push(None),
            Err(why) => {
                tracing::warn!(source = %s.name, why = %why, "the stored version is not used");
                pins.push(None);
            }
        }
    }
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    store.collect(&names);
    Ok(Prepared { store, specs, pins })
}

/// The sources of a configuration with their keys, credentials and sidecars
/// read: what `moat check` checks too.
pub fn specs(configs: &[OciSourceConfig], defaults: Limits) -> Result<Vec<Spec>, OciError> {
    let mut specs = Vec::new();
    for c in configs {
        let at = |e: OciError| OciError::Key(format!("[[plugins.oci]] {}: {e}", c.reference));
        let reference = Reference::parse(&c.reference)?;
        let trust = if c.insecure_unsigned {
            Trust::Unsigned
        } else {
            Trust::Keys(c.verify_keys.iter().map(|p| VerifyKey::read(p)).collect::<Result<_, _>>().map_err(at)?)
        };
        let credentials = match &c.auth {
            RegistryAuth::Anonymous => None,
            RegistryAuth::Env { username, password } => Some(Credentials::from_env(username, password).map_err(at)?),
            RegistryAuth::File(path) => {
                Some(Credentials::from_docker_config(path, &reference.registry).map_err(at)?.ok_or_else(|| {
                    at(OciError::Auth(format!("{} has no entry for {}", path.display(), reference.registry)))
                })?)
            }
        };
        if let Some(sidecar) = &c.sidecar {
            let text = std::fs::read_to_string(sidecar)
                .map_err(|source| at(OciError::Io { path: sidecar.clone(), source }))?;
            PluginSettings::parse_sidecar(&text, sidecar, defaults)
                .map_err(|e| at(OciError::Key(format!("sidecar: {e}"))))?;
        }
        specs.push(Spec {
            name: c.name.clone(),
            reference,
            trust,
            poll: Duration::from_secs(c.poll_s),
            sidecar: c.sidecar.clone(),
            credentials,
            caps: Caps { component_bytes: c.max_size_mb << 20 },
            defaults,
        });
    }
    Ok(specs)
}

/// Runs after a new pin: rescans the plugins and waits until it is served.
pub type OnChange = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// The running sources. Cheap to clone.
#[derive(Clone, Default)]
pub struct Sources {
    status: Arc<Mutex<Vec<Status>>>,
    kicks: Vec<mpsc::Sender<oneshot::Sender<()>>>,
}

impl Sources {
    /// One task per spec, not yet running. `pins` are the digests the store
    /// verified at start (what serves already).
    pub fn prepare_start(
        Prepared { store, specs, pins }: Prepared,
        runtime: Arc<Runtime>,
    ) -> Result<Starting, OciError> {
        let status = Arc::new(Mutex::new(Vec::new()));
        let mut kicks = Vec::new();
        let mut tasks = Vec::new();
        for (i, (spec, pin)) in specs.into_iter().zip(pins).enumerate() {
            let client = Client::new(&spec.reference, spec.credentials.clone())?;
            status.lock().expect("status lock").push(Status {
                name: spec.name.clone(),
                reference: spec.reference.to_string(),
                digest: pin.as_ref().map(Digest::to_string),
                ..Default::default()
            });
            let (tx, rx) = mpsc::channel(4);
            kicks.push(tx);
            let task = Task {
                index: i,
                spec,
                client,
                store: store.clone(),
                runtime: runtime.clone(),
                status: status.clone(),
                on_change: None,
                pinned: pin,
                failures: 0,
            };
            // What the stored version asks for beyond its grants, shown from the start.
            if let Some(d) = &task.pinned {
                let missing = task.difference(store.requested(d).as_deref());
                status.lock().expect("status lock")[i].requested_not_granted = missing;
            }
            tasks.push((task, rx));
        }
        Ok(Starting { sources: Sources { status, kicks }, tasks })
    }

    /// Checks every source now and waits until each is done (and any new
    /// version swapped in).
    pub async fn check_now(&self) {
        let mut waits = Vec::new();
        for k in &self.kicks {
            let (tx, rx) = oneshot::channel();
            if k.send(tx).await.is_ok() {
                waits.push(rx);
            }
        }
        for w in waits {
            let _ = w.await;
        }
    }

    /// Asks every source to check now, without waiting.
    pub fn nudge(&self) {
        for k in &self.kicks {
            let (tx, _) = oneshot::channel();
            let _ = k.try_send(tx);
        }
    }

    pub fn status(&self) -> Vec<Status> {
        self.status.lock().expect("status lock").clone()
    }

    /// Prometheus text for the sources.
    pub fn render_metrics(&self) -> String {
        let status = self.status();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let mut out = String::new();
        out.push_str("# HELP moat_oci_checks_total Registry checks by source and outcome.\n# TYPE moat_oci_checks_total counter\n");
        for s in &status {
            for (outcome, n) in &s.checks {
                out.push_str(&format!(
                    "moat_oci_checks_total{{source=\"{}\",outcome=\"{outcome}\"}} {n}\n",
                    esc(&s.name)
                ));
            }
        }
        out.push_str("# HELP moat_oci_refusals_total Digests refused by source and reason.\n# TYPE moat_oci_refusals_total counter\n");
        for s in &status {
            for (kind, n) in &s.refusals {
                out.push_str(&format!(
                    "moat_oci_refusals_total{{source=\"{}\",reason=\"{kind}\"}} {n}\n",
                    esc(&s.name)
                ));
            }
        }
        out.push_str("# HELP moat_oci_consecutive_failures Registry checks failed in a row.\n# TYPE moat_oci_consecutive_failures gauge\n");
        for s in &status {
            out.push_str(&format!(
                "moat_oci_consecutive_failures{{source=\"{}\"}} {}\n",
                esc(&s.name),
                s.consecutive_failures
            ));
        }
        out
    }
}

/// Sources made, not yet running.
pub struct Starting {
    sources: Sources,
    tasks: Vec<(Task, mpsc::Receiver<oneshot::Sender<()>>)>,
}

impl Starting {
    /// Checks, once, every source that has nothing pinned, for at most `limit`
    /// in all: a first start serves what the registry has (a registry that
    /// does not answer is retried later, in the background).
    pub async fn first_pulls(&mut self, limit: Duration) {
        let checks = self.tasks.iter_mut().filter(|(t, _)| t.pinned.is_none()).map(|(t, _)| async move {
            let outcome = match tokio::time::timeout(limit, t.check()).await {
                Ok(o) => o,
                Err(_) => Err(OciError::Auth(format!("no answer within {} s at start", limit.as_secs()))),
            };
            let wait = Some(if outcome.as_ref().is_err_and(|e| !e.is_refusal()) { backoff(0) } else { t.spec.poll });
            t.record(&outcome, unix_now(), wait);
        });
        futures_util::future::join_all(checks).await;
    }

    /// Starts the tasks; each calls `on_change` after it pins a new version.
    pub fn start(self, on_change: OnChange, shutdown: CancellationToken) -> Sources {
        for (mut task, rx) in self.tasks {
            task.on_change = Some(on_change.clone());
            tokio::spawn(task.run(rx, shutdown.clone()));
        }
        self.sources
    }
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64()
}

struct Task {
    index: usize,
    spec: Spec,
    client: Client,
    store: Store,
    runtime: Arc<Runtime>,
    status: Arc<Mutex<Vec<Status>>>,
    on_change: Option<OnChange>,
    pinned: Option<Digest>,
    /// Checks failed in a row (the registry not answering).
    failures: u32,
}

enum Checked {
    Unchanged,
    Updated,
    /// Refused earlier: not logged again.
    StillRefused,
}

impl Task {
    async fn run(mut self, mut kicks: mpsc::Receiver<oneshot::Sender<()>>, shutdown: CancellationToken) {
        let mut waiting: Vec<oneshot::Sender<()>> = Vec::new();
        let mut open = true;
        loop {
            let outcome = self.check().await;
            let wait = match &outcome {
                _ if self.done() => None,
                Err(e) if !e.is_refusal() => Some(backoff(self.failures)),
                _ => Some(self.spec.poll),
            };
            self.record(&outcome, unix_now(), wait);
            for reply in waiting.drain(..) {
                let _ = reply.send(());
            }
            // Asked while this check ran: it may have started before the
            // question, so check again.
            while let Ok(reply) = kicks.try_recv()
                && open
            {
                waiting.push(reply);
            }
            if !waiting.is_empty() {
                continue;
            }
            let sleep = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = sleep => {}
                // The handle may be dropped (no admin listener): polling goes on.
                kick = kicks.recv(), if open => match kick {
                    None => open = false,
                    Some(reply) => waiting.push(reply),
                }
            }
        }
    }

    /// A digest reference that is pinned never changes: nothing to poll.
    fn done(&self) -> bool {
        self.spec.reference.tag.is_none() && self.pinned.is_some()
    }

    async fn check(&mut self) -> Result<Checked, OciError> {
        if self.done() {
            return Ok(Checked::Unchanged);
        }
        let started = Instant::now();
        let found =
            fetch_verified(&self.client, &self.spec.reference, &self.spec.trust, self.spec.caps, self.pinned.as_ref())
                .await;
        let v = match found {
            Ok(None) => return Ok(Checked::Unchanged),
            Ok(Some(v)) => v,
            Err(e) => {
                return match self.refused_before(&e) {
                    true => Ok(Checked::StillRefused),
                    false => Err(e),
                };
            }
        };
        // Compile now, off the request path; the loader then finds it cached.
        if let Err(e) = self.runtime.compile(v.component.clone()).await {
            return Err(OciError::Manifest { digest: v.digest.to_string(), why: format!("the component: {e}") });
        }
        let store = self.store.clone();
        let (name, reference, v2) = (self.spec.name.clone(), self.spec.reference.to_string(), v.clone());
        tokio::task::spawn_blocking(move || store.pin(&name, &reference, &v2).map(|()| store.prune()))
            .await
            .map_err(|e| OciError::Auth(format!("the store task failed: {e}")))??;
        let took = started.elapsed().as_secs_f64() * 1e3;
        tracing::info!(
            source = %self.spec.name,
            reference = %self.spec.reference,
            digest = %v.digest,
            signer = v.signer.as_deref().unwrap_or("unsigned (insecure_unsigned)"),
            took_ms = took,
            "verified a new version; loading it"
        );
        self.pinned = Some(v.digest.clone());
        {
            let mut all = self.status.lock().expect("status lock");
            let s = &mut all[self.index];
            s.digest = Some(v.digest.to_string());
            s.signer = v.signer.clone();
            s.last_update_ms = Some(took);
            s.requested_not_granted = self.difference(v.requested.as_deref());
        }
        if let Some(on_change) = &self.on_change {
            on_change().await;
        }
        Ok(Checked::Updated)
    }

    /// Whether `e` refuses a digest refused already (logged once, not again).
    fn refused_before(&self, e: &OciError) -> bool {
        let Some(digest) = refused_digest(e) else { return false };
        self.status.lock().expect("status lock")[self.index]
            .refused
            .iter()
            .any(|r| r.digest == digest && r.error == e.to_string())
    }

    /// What `requested` asks for beyond the sidecar's grants.
    fn difference(&self, requested: Option<&str>) -> Vec<String> {
        let Some(text) = requested else { return Vec::new() };
        let requested = match RequestedGrants::parse(text) {
            Ok(r) => r,
            Err(e) => return vec![format!("the requested permissions do not parse: {e}")],
        };
        let granted = match &self.spec.sidecar {
            None => Ok(PluginSettings::with_limits(self.spec.defaults)),
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| e.to_string())
                .and_then(|t| PluginSettings::parse_sidecar(&t, p, self.spec.defaults).map_err(|e| e.to_string())),
        };
        match granted {
            Ok(g) => requested.not_granted(&g),
            Err(e) => vec![format!("the sidecar does not parse: {e}")],
        }
    }

    fn record(&mut self, outcome: &Result<Checked, OciError>, now: f64, wait: Option<Duration>) {
        let failures = &mut self.failures;
        let mut all = self.status.lock().expect("status lock");
        let s = &mut all[self.index];
        s.last_check_unix_s = Some(now);
        s.retry_in_s = wait.map(|d| d.as_secs_f64());
        let label = match outcome {
            Ok(Checked::Unchanged) => "unchanged",
            Ok(Checked::Updated) => "updated",
            Ok(Checked::StillRefused) => "refused",
            Err(e) if e.is_refusal() => "refused",
            Err(_) => "error",
        };
        *s.checks.entry(label).or_default() += 1;
        match outcome {
            Ok(Checked::StillRefused) => {
                if let Some(r) = s.refused.last() {
                    *s.refusals.entry(r.kind).or_default() += 1;
                }
            }
            Ok(_) => {
                if *failures > 0 {
                    tracing::info!(source = %self.spec.name, "the registry answers again");
                }
                *failures = 0;
                s.consecutive_failures = 0;
                s.last_error = None;
            }
            Err(e) if e.is_refusal() => {
                *failures = 0;
                s.consecutive_failures = 0;
                let error = e.to_string();
                tracing::error!(
                    source = %self.spec.name,
                    reference = %self.spec.reference,
                    error = %error,
                    serving = s.digest.as_deref().unwrap_or("nothing"),
                    "refused a new version from the registry; the serving version stays"
                );
                *s.refusals.entry(e.kind()).or_default() += 1;
                if s.refused.len() >= MAX_REFUSED {
                    s.refused.remove(0);
                }
                s.refused.push(Refused {
                    digest: refused_digest(e).unwrap_or_default(),
                    kind: e.kind(),
                    error: error.clone(),
                });
                s.last_error = Some(error);
            }
            Err(e) => {
                *failures += 1;
                s.consecutive_failures = *failures;
                s.last_error = Some(e.to_string());
                // One line when the registry stops answering, then one per
                // doubling of the outage: the log stays short.
                if failures.is_power_of_two() {
                    tracing::warn!(
                        source = %self.spec.name,
                        error = %e,
                        failures = *failures,
                        retry_in_s = wait.map(|d| d.as_secs_f64()),
                        serving = s.digest.as_deref().unwrap_or("nothing"),
                        "cannot check the registry; the serving version stays"
                    );
                }
            }
        }
    }
}

/// The digest a refusal is about.
fn refused_digest(e: &OciError) -> Option<String> {
    match e {
        OciError::Unsigned { digest, .. }
        | OciError::BadSignature { digest, .. }
        | OciError::Manifest { digest, .. } => Some(digest.clone()),
        OciError::DigestMismatch { expected, .. } => Some(expected.clone()),
        OciError::TooLarge { what, .. } => Some(what.clone()),
        _ => None,
    }
}

/// 1 s, 2 s, 4 s … up to [`MAX_BACKOFF`], each shortened by up to a quarter
/// (so replicas that lost the registry together do not retry together).
fn backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(1u64 << failures.min(9)).min(MAX_BACKOFF);
    let jitter =
        (SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos() % 250) as f64 / 1000.0;
    base.mul_f64(1.0 - jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert!(backoff(0) <= Duration::from_secs(1) && backoff(0) >= Duration::from_millis(750));
        assert!(backoff(3) <= Duration::from_secs(8) && backoff(3) >= Duration::from_secs(6));
        assert!(backoff(30) <= MAX_BACKOFF);
    }
}
