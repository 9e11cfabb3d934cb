//! Monitoring HTTP: `/healthz`, `/jsz`, and the operator's
//! `POST /admin/accept-loss/{stream|meta}`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::cluster::Cluster;

pub async fn serve(listener: TcpListener, cluster: Arc<Cluster>) {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/jsz", get(jsz))
        .route("/admin/accept-loss/{group}", post(accept_loss))
        .with_state(cluster);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "monitoring server stopped");
    }
}

/// 200 only when this node sees a meta leader and every group it hosts has
/// a leader and has applied everything it has in its log.
async fn healthz(State(cluster): State<Arc<Cluster>>) -> impl IntoResponse {
    match cluster.health() {
        Ok(()) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "unavailable", "error": why})),
        ),
    }
}

/// `POST /admin/accept-loss/{stream|meta}` (`jetraft admin accept-loss`).
async fn accept_loss(
    State(cluster): State<Arc<Cluster>>,
    Path(group): Path<String>,
) -> impl IntoResponse {
    match cluster.accept_loss(&group) {
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

async fn jsz(State(cluster): State<Arc<Cluster>>) -> impl IntoResponse {
    let c = cluster.clone();
    match tokio::task::spawn_blocking(move || c.jsz()).await {
        Ok(Ok(j)) => Json(j).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
