//! What listening clients hear when a reload swaps the snapshot:
//! `list_changed` for what changed, and `resources/updated` for each
//! subscribed URI whose serving plugin changed (a new version, or none). A
//! listener that falls behind the swaps resynchronises: it sends every
//! `list_changed` it may have missed and checks its subscriptions against
//! the current snapshot, then keeps listening.
//!
//! Each subscription remembers the plugin version that served it, so a swap
//! costs a listener one set lookup per subscription; a URI is looked up
//! again only when its version is gone, or (for a URI nobody serves) when the
//! swap brought new versions.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, Weak};

use rmcp::RoleServer;
use rmcp::model::SubscriptionFilter;
use rmcp::service::{Peer, SubscriptionContext, SubscriptionSendError};
use tokio::sync::broadcast::error::RecvError;

use super::{MAX_SUBSCRIPTIONS, McpSnapshot, MoatServer, ServerHandler as _};
use crate::runtime::LoadedPlugin;
use crate::state::Change;

const ALL: [Change; 3] = [Change::Tools, Change::Resources, Change::Prompts];

/// Where notifications go: a 2025-11-25 session's peer, or a 2026-07-28
/// subscription's sink (which drops what the client did not ask for).
trait Sink: Send + Sync {
    /// Sends one notification; `false` once the other side is gone.
    fn list_changed(&self, change: Change) -> impl Future<Output = bool> + Send;
    fn updated(&self, uri: &str) -> impl Future<Output = bool> + Send;
}

impl Sink for Peer<RoleServer> {
    async fn list_changed(&self, change: Change) -> bool {
        let sent = match change {
            Change::Tools => self.notify_tool_list_changed().await,
            Change::Resources => self.notify_resource_list_changed().await,
            Change::Prompts => self.notify_prompt_list_changed().await,
        };
        sent.is_ok() || !self.is_transport_closed()
    }

    async fn updated(&self, uri: &str) -> bool {
        let sent = self.notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(uri)).await;
        sent.is_ok() || !self.is_transport_closed()
    }
}

impl Sink for rmcp::service::SubscriptionSink {
    async fn list_changed(&self, change: Change) -> bool {
        let sent = match change {
            Change::Tools => self.notify_tool_list_changed().await,
            Change::Resources => self.notify_resource_list_changed().await,
            Change::Prompts => self.notify_prompt_list_changed().await,
        };
        !matches!(sent, Err(SubscriptionSendError::SubscriptionClosed))
    }

    async fn updated(&self, uri: &str) -> bool {
        !matches!(self.notify_resource_updated(uri).await, Err(SubscriptionSendError::SubscriptionClosed))
    }
}

/// Resource URIs a listener subscribed to, each with the plugin version that
/// serves it (none once it went). A `Weak` keeps no version alive, and keeps
/// its address from being reused, so comparing addresses is sound.
#[derive(Default)]
pub(super) struct Subscriptions(BTreeMap<String, Option<Weak<LoadedPlugin>>>);

impl Subscriptions {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn contains(&self, uri: &str) -> bool {
        self.0.contains_key(uri)
    }

    pub fn insert(&mut self, uri: String, served_by: &Arc<LoadedPlugin>) {
        self.0.insert(uri, Some(Arc::downgrade(served_by)));
    }

    pub fn remove(&mut self, uri: &str) {
        self.0.remove(uri);
    }

    /// The URIs whose serving version changed on the way to `now` (which
    /// then becomes what they remember). `before` are the versions served
    /// until now: a URI nobody served is looked up only if `now` serves a
    /// version `before` did not.
    fn updated(&mut self, before: &[Weak<LoadedPlugin>], now: &McpSnapshot) -> Vec<String> {
        let serving: HashSet<*const LoadedPlugin> = now.registry.plugins().iter().map(Arc::as_ptr).collect();
        let before: HashSet<*const LoadedPlugin> = before.iter().map(Weak::as_ptr).collect();
        let brought_new = serving.iter().any(|p| !before.contains(p));
        let mut updated = Vec::new();
        for (uri, served_by) in &mut self.0 {
            match served_by {
                Some(version) if serving.contains(&version.as_ptr()) => continue,
                None if !brought_new => continue,
                _ => {}
            }
            let current = now.registry.resource(uri).map(|r| r.plugin);
            if served_by.is_some() || current.is_some() {
                updated.push(uri.clone());
            }
            *served_by = current.map(Arc::downgrade);
        }
        updated
    }
}

/// The versions a snapshot serves.
fn versions(snapshot: &McpSnapshot) -> Vec<Weak<LoadedPlugin>> {
    snapshot.registry.plugins().iter().map(Arc::downgrade).collect()
}

impl MoatServer {
    /// What a 2026-07-28 subscription gets: what it asked for that moat
    /// offers, its resource URIs capped like a session's subscriptions.
    pub(super) fn accepted_filter(&self, requested: &SubscriptionFilter) -> SubscriptionFilter {
        let mut accepted = requested.supported_by(&self.get_info().capabilities);
        if let Some(uris) = &mut accepted.resource_subscriptions {
            uris.truncate(MAX_SUBSCRIPTIONS);
        }
        accepted
    }

    /// Relays swaps to a 2026-07-28 subscription until it ends.
    pub(super) async fn listen_for_swaps(&self, cx: SubscriptionContext) {
        // Only resources the caller may read now: an update says something
        // about a resource, and a listener hears nothing it could not read.
        let Ok(who) = self.principal(cx.request_context()) else { return };
        let snapshot = self.state().snapshot();
        let mut uris = Subscriptions::default();
        for uri in cx.accepted().resource_subscriptions.iter().flatten() {
            if let Some(r) = snapshot.registry.resource(uri).filter(|r| who.holds(&r.access.scopes)) {
                uris.insert(uri.clone(), r.plugin);
            }
        }
        let sink = cx.sink().clone();
        let subscriptions = Arc::new(Mutex::new(uris));
        let (swaps, seen) = (self.state().swaps(), versions(&snapshot));
        tokio::select! {
            () = cx.cancelled() => {}
            () = self.relay_swaps(sink, subscriptions, swaps, seen) => {}
        }
    }

    /// Relays swaps to a 2025-11-25 session's GET stream until it ends.
    pub(super) fn follow_swaps(&self, peer: Peer<RoleServer>) {
        let this = self.clone();
        let subscriptions = self.session.subscriptions.clone();
        // Listening starts now, not when the task first runs: no swap is missed.
        let (swaps, seen) = (self.state().swaps(), versions(&self.state().snapshot()));
        tokio::spawn(async move { this.relay_swaps(peer, subscriptions, swaps, seen).await });
    }

    /// Relays every swap heard on `swaps` to `sink`, starting from the
    /// versions `seen` served, until the sink is gone.
    async fn relay_swaps(
        &self,
        sink: impl Sink,
        subscriptions: Arc<Mutex<Subscriptions>>,
        mut swaps: tokio::sync::broadcast::Receiver<crate::state::Swap>,
        mut seen: Vec<Weak<LoadedPlugin>>,
    ) {
        loop {
            let changes: Vec<Change> = match swaps.recv().await {
                Ok(swap) => swap.changes.to_vec(),
                // Fell behind: anything may have changed.
                Err(RecvError::Lagged(_)) => ALL.to_vec(),
                Err(RecvError::Closed) => return,
            };
            for change in changes {
                if !sink.list_changed(change).await {
                    return;
                }
            }
            let now = self.state().snapshot();
            let updated = subscriptions.lock().unwrap_or_else(|e| e.into_inner()).updated(&seen, &now);
            seen = versions(&now);
            drop(now);
            for uri in updated {
                if !sink.updated(&uri).await {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::*;
    use crate::mcp::{Mcp, Shared, Transport};
    use crate::registry::Registry;
    use crate::state::Publish as _;

    /// Records what it is told to send.
    struct Recorder(mpsc::UnboundedSender<String>);

    impl Sink for Recorder {
        async fn list_changed(&self, change: Change) -> bool {
            self.0.send(format!("{change:?}")).is_ok()
        }

        async fn updated(&self, uri: &str) -> bool {
            self.0.send(format!("updated {uri}")).is_ok()
        }
    }

    #[tokio::test]
    async fn a_listener_that_falls_behind_resynchronises_and_keeps_listening() {
        let runtime =
            std::sync::Arc::new(crate::runtime::Runtime::new(crate::runtime::RuntimeOptions::default()).unwrap());
        let state = Shared::new(runtime, Default::default());
        let server = MoatServer::new(Mcp::new(state.clone(), Transport::Local));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (swaps, seen) = (state.swaps(), versions(&state.snapshot()));
        let task = tokio::spawn({
            let server = server.clone();
            async move { server.relay_swaps(Recorder(tx), Default::default(), swaps, seen).await }
        });
        for round in 0..2 {
            // More swaps than the channel holds, before the listener can run.
            for _ in 0..100 {
                state.publish(Registry::default());
            }
            let mut heard = Vec::new();
            for _ in 0..3 {
                let note = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
                heard.push(note.expect("a resync notification").expect("the listener lives"));
            }
            assert_eq!(heard, ["Tools", "Resources", "Prompts"], "round {round}");
        }
        assert!(!task.is_finished(), "still listening after falling behind twice");
        task.abort();
    }
}
