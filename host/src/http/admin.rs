//! The admin listener: `/metrics`, verbose `/readyz` and `POST /reload`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::mcp::Shared;
use crate::oci::source::Sources;
use crate::watch::{Reloads, Trigger};

#[derive(Clone)]
struct Admin {
    state: Arc<Shared>,
    reloads: Reloads,
    sources: Sources,
}

/// The admin router, for the state `state` kept loaded by `reloads` (and the
/// registry `sources`).
pub fn admin_app(state: Arc<Shared>, reloads: Reloads, sources: Sources) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz_verbose))
        .route("/reload", post(reload))
        .with_state(Admin { state, reloads, sources })
}

async fn metrics(State(a): State<Admin>) -> Response {
    let mut text = a.state.metrics.render();
    text.push_str("# HELP moat_calls_in_flight Plugin calls running now.\n# TYPE moat_calls_in_flight gauge\n");
    text.push_str(&format!("moat_calls_in_flight {}\n", a.state.calls().len()));
    text.push_str(&a.sources.render_metrics());
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
    Json(json!({
        "ready": a.state.is_ready(),
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
