//! What listening clients hear when a reload swaps the snapshot:
//! `list_changed` for what changed, and `resources/updated` for each
//! subscribed URI whose serving plugin changed (a new version, or none). A
//! listener that falls behind the swaps resynchronises: it sends every
//! `list_changed` it may have missed and compares its subscriptions against
//! the snapshot it last saw, then keeps listening.

use std::collections::BTreeSet;
use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::SubscriptionFilter;
use rmcp::service::{Peer, SubscriptionContext, SubscriptionSendError};
use tokio::sync::broadcast::error::RecvError;

use super::{MAX_SUBSCRIPTIONS, McpSnapshot, MoatServer, ServerHandler as _};
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

/// Whether the plugin serving `uri` differs between two snapshots.
fn owner_changed(old: &McpSnapshot, new: &McpSnapshot, uri: &str) -> bool {
    match (old.registry.resource(uri), new.registry.resource(uri)) {
        (Some(a), Some(b)) => !Arc::ptr_eq(a.plugin, b.plugin),
        (None, None) => false,
        _ => true,
    }
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
        let uris: BTreeSet<String> = cx
            .accepted()
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| snapshot.registry.resource(uri).is_some_and(|r| who.holds(&r.access.scopes)))
            .cloned()
            .collect();
        let sink = cx.sink().clone();
        let subscriptions = Arc::new(std::sync::Mutex::new(uris));
        let (swaps, seen) = (self.state().swaps(), self.state().snapshot());
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
        let (swaps, seen) = (self.state().swaps(), self.state().snapshot());
        tokio::spawn(async move { this.relay_swaps(peer, subscriptions, swaps, seen).await });
    }

    /// Relays every swap heard on `swaps` to `sink`, starting from the
    /// snapshot `seen`, until the sink is gone.
    async fn relay_swaps(
        &self,
        sink: impl Sink,
        subscriptions: Arc<std::sync::Mutex<BTreeSet<String>>>,
        mut swaps: tokio::sync::broadcast::Receiver<crate::state::Swap>,
        mut seen: Arc<McpSnapshot>,
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
            let updated: Vec<String> = {
                let subscribed = subscriptions.lock().unwrap_or_else(|e| e.into_inner());
                subscribed.iter().filter(|uri| owner_changed(&seen, &now, uri)).cloned().collect()
            };
            for uri in updated {
                if !sink.updated(&uri).await {
                    return;
                }
            }
            seen = now;
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
        let (swaps, seen) = (state.swaps(), state.snapshot());
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
