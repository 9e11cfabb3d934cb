//! Monitoring HTTP: `/healthz`, `/jsz`, `/routez`, and the operator's
//! `POST /admin/accept-loss/{stream|meta}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{self, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::cluster::Cluster;

/// What the monitoring endpoints read.
#[derive(Clone)]
pub struct State {
    pub cluster: Arc<Cluster>,
    pub routes: Arc<jetraft_route::Routes>,
    pub gateway: Arc<jetraft_gateway::Gateway>,
}

type Ctx = extract::State<State>;

pub async fn serve(listener: TcpListener, state: State) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/jsz", get(jsz_handler))
        .route("/routez", get(routez))
        .route("/admin/accept-loss/{group}", post(accept_loss))
        .with_state(state);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "monitoring server stopped");
    }
}

/// 200 only when this node sees a meta leader and every group it hosts has
/// a leader and has applied everything it has in its log.
async fn healthz(extract::State(s): Ctx) -> impl IntoResponse {
    match health(&s.cluster) {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "error": why})),
        ),
    }
}

/// `POST /admin/accept-loss/{stream|meta}` (`jetraft admin accept-loss`).
async fn accept_loss(extract::State(s): Ctx, Path(group): Path<String>) -> impl IntoResponse {
    match s.cluster.accept_loss(&group) {
        Ok(v) => (StatusCode::OK, Json(v)),
        Err(e) => (StatusCode::NOT_FOUND, Json(serde_json::json!({"error": e}))),
    }
}

#[derive(Serialize)]
pub struct Jsz {
    pub server_name: String,
    pub node_id: u64,
    pub meta_leader: Option<String>,
    pub streams: Vec<StreamReplica>,
}

/// One stream replica on this node, with a digest over its stored
/// (seq, subject, headers, payload) so replicas can be proven identical.
#[derive(Serialize)]
pub struct StreamReplica {
    pub name: String,
    pub group: u64,
    pub role: String,
    pub leader: Option<String>,
    pub applied: Option<u64>,
    /// Entries still in this replica's Raft log (not yet purged behind a
    /// snapshot): what a restart would replay at most.
    pub log_entries: u64,
    /// The group's members as this replica's log has them (they differ from
    /// the stream's placement while its replica count changes).
    pub voters: Vec<String>,
    pub learners: Vec<String>,
    pub first_seq: u64,
    pub last_seq: u64,
    pub messages: u64,
    pub bytes: u64,
    pub digest: String,
}

/// The peers this node routes core NATS to, in the shape of nats-server's
/// `/routez` (plus jetraft's stream states and drop counters).
async fn routez(extract::State(s): Ctx) -> impl IntoResponse {
    let routes = s.routes.routez();
    Json(serde_json::json!({
        "server_id": s.gateway.config().server_id,
        "server_name": s.gateway.config().server_name,
        "num_routes": routes.iter().filter(|r| r.connected).count(),
        "routes": routes,
    }))
}

async fn jsz_handler(extract::State(s): Ctx) -> impl IntoResponse {
    let c = s.cluster.clone();
    match tokio::task::spawn_blocking(move || jsz(&c)).await {
        Ok(Ok(j)) => Json(j).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Why this node is not healthy, if it is not: it must see a meta leader,
/// and every group it hosts must have a leader and have applied all it
/// has logged.
pub fn health(cluster: &Cluster) -> Result<(), String> {
    if cluster.meta_leader().is_none() {
        return Err(match cluster.meta_group().standing.may_vote() {
            Ok(()) => "no meta leader".into(),
            Err(why) => format!("no meta leader; {why}"),
        });
    }
    let me = cluster.host().me();
    for a in cluster.catalog().streams() {
        if a.peers.contains(&me) && cluster.host().group(a.group).is_none() {
            return Err(format!("stream {} is not open here yet", a.config.name));
        }
    }
    for id in cluster.host().group_ids() {
        let Some(g) = cluster.host().group(id) else {
            continue;
        };
        let m = g.metrics();
        if m.current_leader.is_none() {
            return Err(match g.standing.may_vote() {
                Ok(()) => format!(
                    "group {id} has no leader (a quorum of replicas that kept their \
                     state is needed to elect one)"
                ),
                Err(why) => format!("group {id} has no leader; {why}"),
            });
        }
        let applied = m.last_applied.map(|l| l.index);
        let last_log = m.last_log_index;
        if applied < last_log {
            return Err(format!("group {id} applied {applied:?} of {last_log:?}"));
        }
    }
    Ok(())
}

/// This node's `/jsz`: the meta leader and every stream replica here.
pub fn jsz(cluster: &Cluster) -> std::io::Result<Jsz> {
    let catalog = cluster.catalog();
    let me = cluster.host().me();
    let mut streams = Vec::new();
    for a in catalog.streams() {
        let Some(g) = cluster.host().group(a.group) else {
            continue;
        };
        let Some(view) = g.sm.stream_view() else {
            continue;
        };
        let leader = g.leader();
        let members = g.members();
        let state = view.state();
        let metrics = g.metrics();
        let purged = metrics.purged.map_or(0, |l| l.index + 1);
        let log_entries = metrics
            .last_log_index
            .map_or(0, |l| (l + 1).saturating_sub(purged));
        streams.push(StreamReplica {
            name: a.config.name.clone(),
            group: a.group,
            role: if leader == Some(me) {
                "leader".into()
            } else {
                "follower".into()
            },
            leader: leader.map(|l| cluster.name_of(l)),
            applied: g.sm.applied().map(|l| l.index),
            log_entries,
            voters: members.voters.iter().map(|n| cluster.name_of(*n)).collect(),
            learners: members
                .learners
                .iter()
                .map(|n| cluster.name_of(*n))
                .collect(),
            first_seq: state.first_seq,
            last_seq: state.last_seq,
            messages: state.messages,
            bytes: state.bytes,
            digest: hex::encode(view.digest()?),
        });
    }
    Ok(Jsz {
        server_name: cluster.name_of(me),
        node_id: me,
        meta_leader: cluster.meta_leader().map(|l| cluster.name_of(l)),
        streams,
    })
}
