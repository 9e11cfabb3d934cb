//! `STREAM.LEADER.STEPDOWN.<stream>` and
//! `CONSUMER.LEADER.STEPDOWN.<stream>.<consumer>`: the stream's leader
//! hands its leadership to another replica (openraft's leader transfer).
//! A consumer's leader is its stream's (decision 41), so stepping down a
//! consumer moves the stream's leadership and with it every consumer of
//! the stream; its waiting pull requests hear `409 Leadership Change`.

use std::time::Duration;

use jetraft_raft::StepDownError;
use jetraft_types::ApiError;
use jetraft_types::api::{self, types};
use serde::{Deserialize, Serialize};

use crate::cluster::Cluster;
use crate::wire::ApiRequest;

/// How long a step-down waits for another replica to lead.
const STEP_DOWN_WAIT: Duration = Duration::from_secs(5);

#[derive(Serialize)]
struct Success {
    success: bool,
}

/// `{"placement": {...}}`: where the new leader should be.
#[derive(Debug, Default, Deserialize)]
struct StepDownRequest {
    #[serde(default)]
    placement: Option<Placement>,
}

#[derive(Debug, Default, Deserialize)]
struct Placement {
    #[serde(default)]
    cluster: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    preferred: String,
}

fn no_peers(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(400, 10005, why.to_string())
}

pub async fn stream(cluster: &Cluster, name: &str, req: &ApiRequest) -> Vec<u8> {
    let r = step_down(cluster, name, None, req).await;
    respond(types::STREAM_LEADER_STEPDOWN, r)
}

pub async fn consumer(cluster: &Cluster, stream: &str, name: &str, req: &ApiRequest) -> Vec<u8> {
    let r = step_down(cluster, stream, Some(name), req).await;
    respond(types::CONSUMER_LEADER_STEPDOWN, r)
}

fn respond(type_name: &str, r: Result<(), ApiError>) -> Vec<u8> {
    match r {
        Ok(()) => api::render(type_name, &Success { success: true }),
        Err(e) => api::render_error(type_name, &e),
    }
}

async fn step_down(
    cluster: &Cluster,
    stream: &str,
    consumer: Option<&str>,
    req: &ApiRequest,
) -> Result<(), ApiError> {
    let (a, g) = cluster.led_group(&req.account, stream)?;
    if let Some(name) = consumer
        && g.sm.consumer_with(name, |_| ()).is_none()
    {
        return Err(ApiError::consumer_not_found());
    }
    if a.peers.len() < 2 {
        // A single replica has nobody to hand over to: nothing to do.
        return Ok(());
    }
    let body = req.payload.trim_ascii();
    let ask: StepDownRequest = if body.starts_with(b"{") || body.starts_with(b"[") {
        serde_json::from_slice(body).map_err(ApiError::invalid_json)?
    } else {
        StepDownRequest::default()
    };
    let me = cluster.host().me();
    let others: Vec<_> = a.peers.iter().copied().filter(|p| *p != me).collect();
    let to = match ask.placement {
        None => None,
        Some(p) if !p.preferred.is_empty() => {
            let Some(id) = a
                .peers
                .iter()
                .copied()
                .find(|id| cluster.name_of(*id) == p.preferred)
            else {
                return Err(no_peers(format!(
                    "preferred server \"{}\" not known",
                    p.preferred
                )));
            };
            if id == me {
                return Err(no_peers(format!(
                    "preferred server \"{}\" is already leader",
                    p.preferred
                )));
            }
            Some(id)
        }
        // jetraft nodes carry no tags yet, and all are in one cluster.
        Some(p)
            if !p.tags.is_empty()
                || (!p.cluster.is_empty() && p.cluster != super::CLUSTER_NAME) =>
        {
            return Err(no_peers("no replacement peer connected"));
        }
        Some(_) => others.first().copied(),
    };
    tracing::info!(stream, ?consumer, ?to, "leader stepping down");
    match g.step_down(to, STEP_DOWN_WAIT).await {
        Ok(leader) => {
            tracing::info!(stream, new_leader = leader, "leadership handed over");
            cluster.consumers().stepped_down(g.id);
            Ok(())
        }
        Err(StepDownError::NotLeader(_)) => Err(ApiError::cluster_not_leader()),
        Err(StepDownError::NoPeers | StepDownError::NotAPeer(_)) => {
            Err(no_peers("no replacement peer connected"))
        }
        Err(e @ StepDownError::Unavailable(_)) => Err(ApiError::new(500, 10041, e.to_string())),
    }
}
