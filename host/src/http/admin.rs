//! The admin listener: `/metrics`, verbose `/readyz` and `POST /reload`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::fleet::{Fleet, replicas};
use crate::mcp::Shared;
use crate::oci::source::Sources;
use crate::watch::{Reloads, Trigger};

#[derive(Clone)]
struct Admin {
    state: Arc<Shared>,
    reloads: Reloads,
    sources: Sources,
    fleet: Option<Arc<Fleet>>,
}

/// The admin router, for the state `state` kept loaded by `reloads` (and the
/// registry `sources`), in `fleet` if there is one.
pub fn admin_app(state: Arc<Shared>, reloads: Reloads, sources: Sources, fleet: Option<Arc<Fleet>>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz_verbose))
        .route("/reload", post(reload))
        .with_state(Admin { state, reloads, sources, fleet })
}

/// The digest of what `state` serves (equal on replicas serving the same
/// versions) and how many plugins.
pub fn served(state: &Shared) -> (String, usize) {
    let snapshot = state.snapshot();
    let plugins = snapshot.registry.plugins();
    (replicas::digest(plugins.iter().map(|p| (p.name.as_str(), p.hash.as_str()))), plugins.len())
}

async fn metrics(State(a): State<Admin>) -> Response {
    let mut text = a.state.metrics.render();
    text.push_str("# HELP moat_calls_in_flight Plugin calls running now.\n# TYPE moat_calls_in_flight gauge\n");
    text.push_str(&format!("moat_calls_in_flight {}\n", a.state.calls().len()));
    text.push_str(&a.sources.render_metrics());
    plugin_info(&a.state, &mut text);
    if let Some(fleet) = &a.fleet {
        fleet.redis.render_metrics(&mut text);
    }
    if let Some(limits) = a.state.rate_limits.fleet() {
        limits.render_metrics(&mut text);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `POST /reload` (admin): check the registry sources, rescan the plugins
/// directory now and report. Browsers
/// send `Origin` on cross-site POSTs; such requests are refused, so a web page
/// cannot poke the admin port.
async fn reload(State(a): State<Admin>, headers: HeaderMap) -> Response {
    if headers.contains_key(header::ORIGIN) {
        return (StatusCode::FORBIDDEN, Json(json!({"error": "requests from browsers are not accepted here"})))
            .into_response();
    }
    a.sources.check_now().await;
    match a.reloads.rescan(Trigger::Admin).await {
        Ok(report) => {
            let snapshot = a.state.snapshot();
            let mut body = serde_json::to_value(&report).unwrap_or_default();
            body["failures"] = serde_json::to_value(snapshot.registry.failures()).unwrap_or_default();
            body["serving"] = json!(snapshot.registry.plugins().len());
            body["oci"] = serde_json::to_value(a.sources.status()).unwrap_or_default();
            Json(body).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": e.to_string()}))).into_response(),
    }
}

/// One line per plugin served, labelled with its SHA-256, and the digest of
/// them all: what an operator compares across replicas.
fn plugin_info(state: &Shared, out: &mut String) {
    use std::fmt::Write as _;
    let snapshot = state.snapshot();
    let _ = writeln!(out, "# HELP moat_plugin_info The plugins served, by name and SHA-256 of the component.");
    let _ = writeln!(out, "# TYPE moat_plugin_info gauge");
    for p in snapshot.registry.plugins() {
        let name = crate::metrics::escape(&p.name);
        let _ = writeln!(out, "moat_plugin_info{{plugin=\"{name}\",sha256=\"{}\"}} 1", p.hash);
    }
    let (digest, _) = served(state);
    let _ = writeln!(
        out,
        "# HELP moat_served_digest_info SHA-256 over every plugin served and its SHA-256; equal on replicas in step."
    );
    let _ = writeln!(out, "# TYPE moat_served_digest_info gauge");
    let _ = writeln!(out, "moat_served_digest_info{{digest=\"{digest}\"}} 1");
}

/// The fleet's view: every live replica's served digest, and whether they agree.
async fn fleet_view(fleet: &Fleet, mine: &str) -> Value {
    let replicas = fleet.replicas.all().await;
    let in_step = replicas.as_ref().map(|r| r.iter().all(|s| s.digest == mine));
    json!({
        "replica": fleet.replicas.me(),
        "redis": fleet.redis.status(),
        "replicas": replicas,
        "in_step": in_step,
    })
}

async fn readyz_verbose(State(a): State<Admin>) -> Json<Value> {
    let snapshot = a.state.snapshot();
    let registry = &snapshot.registry;
    let plugins: Vec<Value> = registry
        .plugins()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "file": p.path.display().to_string(),
                "sha256": p.hash,
                "wit": p.wit_version,
                "tools": p.tools.len(),
            })
        })
        .collect();
    let (reloads, last) = a.state.metrics.reload_summary();
    let (digest, _) = served(&a.state);
    let fleet = match &a.fleet {
        Some(f) => fleet_view(f, &digest).await,
        None => Value::Null,
    };
    Json(json!({
        "ready": a.state.is_ready(),
        "served_digest": digest,
        "fleet": fleet,
        "plugins": plugins,
        "failed": registry.failures(),
        "oci": a.sources.status(),
        "reload": {
            "watching": a.reloads.watching(),
            "rescans": reloads,
            "last_unix_s": last,
        },
    }))
}
