//! The `STREAM.*` requests.

use std::sync::Arc;
use std::time::Duration;

use jetraft_meta::{MetaCommand, MetaReply, StreamAssignment};
use jetraft_raft::host::Group;
use jetraft_raft::sm::StreamView;
use jetraft_stream::{StreamCommand, StreamReply};
use jetraft_types::ApiError;
use jetraft_types::api::{
    self, ApiStoredMessage, MsgDeleteRequest, MsgGetQuery, MsgGetRequest, MsgGetResponse,
    PurgeRequest, PurgeResponse, StreamCreateResponse, StreamInfoRequest, StreamInfoResponse,
    StreamListResponse, StreamNamesRequest, StreamNamesResponse, SuccessResponse, types,
};
use jetraft_types::config::{ClusterInfo, PeerInfo, StorageType, StreamConfig, StreamInfo};
use jetraft_types::subject;
use serde::Serialize;

use super::{STREAM_INFO, parse_body};
use crate::cluster::Cluster;
use crate::wire::ApiRequest;

/// How long a create waits for the new stream's group to elect a leader.
const CREATE_LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long a create or delete waits for every reachable node to see it.
const CATALOG_WAIT: Duration = Duration::from_secs(5);

type Reply = Result<Vec<u8>, ApiError>;

fn respond<T: Serialize>(type_name: &str, r: Result<T, ApiError>) -> Vec<u8> {
    match r {
        Ok(body) => api::render(type_name, &body),
        Err(e) => api::render_error(type_name, &e),
    }
}

fn flatten(type_name: &str, r: Reply) -> Vec<u8> {
    r.unwrap_or_else(|e| api::render_error(type_name, &e))
}

fn parse_config(name: &str, payload: &[u8]) -> Result<StreamConfig, ApiError> {
    // An empty body is an empty config, whose name then does not match
    // (nats-server's decoder treats no input as the zero value).
    let config: StreamConfig = parse_body(payload)?;
    if config.name != name {
        return Err(ApiError::stream_mismatch());
    }
    Ok(config)
}

pub async fn create(cluster: &Cluster, name: &str, req: &ApiRequest) -> Vec<u8> {
    flatten(types::STREAM_CREATE, create_inner(cluster, name, req).await)
}

async fn create_inner(cluster: &Cluster, name: &str, req: &ApiRequest) -> Reply {
    let mut config = parse_config(name, &req.payload)?.normalize_for_create()?;
    config.set_static_metadata();
    // The founding replicas' incarnations: of their data directories, or
    // for a stream kept in memory, of their processes (decision 35).
    let incarnations = match config.storage {
        StorageType::File => cluster
            .host()
            .recorded_incarnations(jetraft_meta::META_GROUP),
        StorageType::Memory => cluster.host().seen_incarnations(StorageType::Memory),
    };
    let cmd = MetaCommand::CreateStream {
        account: req.account.clone(),
        config,
        nodes: cluster.node_ids(),
        now_ns: cluster.now_ns(),
        incarnations,
    };
    let (assignment, created) = match cluster.propose_meta(cmd).await? {
        MetaReply::Stream {
            assignment,
            created,
        } => (assignment, created),
        MetaReply::Error(e) => return Err(e),
        MetaReply::Deleted { .. } => return Err(ApiError::cluster_not_avail()),
    };
    if !cluster
        .await_stream_leader(&assignment, CREATE_LEADER_WAIT)
        .await
    {
        return Err(ApiError::cluster_not_avail());
    }
    // Publishing through any node works as soon as the create returns:
    // each node takes a stream's subjects once its catalog lists it.
    cluster
        .await_catalog_everywhere(&req.account, name, true, CATALOG_WAIT)
        .await;
    let info = remote_info(cluster, &assignment).await?;
    Ok(api::render(
        types::STREAM_CREATE,
        &StreamCreateResponse {
            info,
            did_create: created,
        },
    ))
}

/// The stream's info as its leader reports it (via the normal routing).
async fn remote_info(cluster: &Cluster, a: &StreamAssignment) -> Result<StreamInfo, ApiError> {
    let Some(me) = cluster.arc() else {
        return Err(ApiError::cluster_not_avail());
    };
    let probe = ApiRequest::empty(&a.account, format!("{STREAM_INFO}{}", a.config.name));
    let out = me.dispatch_request(probe, 0).await;
    let body = out.first().map(|o| o.payload.clone()).unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(ApiError::stream_store_failed)?;
    if let Some(err) = v.get("error") {
        return Err(
            serde_json::from_value(err.clone()).unwrap_or_else(|_| ApiError::cluster_not_avail())
        );
    }
    serde_json::from_value(v).map_err(ApiError::stream_store_failed)
}

pub async fn update(cluster: &Cluster, name: &str, req: &ApiRequest) -> Vec<u8> {
    flatten(types::STREAM_UPDATE, update_inner(cluster, name, req).await)
}

async fn update_inner(cluster: &Cluster, name: &str, req: &ApiRequest) -> Reply {
    // nats-server validates the config before comparing the name.
    let config = parse_body::<StreamConfig>(&req.payload)?.normalize()?;
    if config.name != name {
        return Err(ApiError::stream_mismatch());
    }
    let old = cluster
        .catalog()
        .stream(&req.account, name)
        .cloned()
        .ok_or_else(ApiError::stream_not_found)?;
    let mut config = StreamConfig::check_update(&old.config, config)?;
    config.set_static_metadata();
    // A replica change places the stream again; a shrink keeps the
    // current leader when it can (no election), then the replicas the
    // leader knows to be up and whole, so ask who leads: a hint from any
    // replica, not a confirmed read (a change that gives a group without a
    // quorum its replicas back must not wait for that quorum).
    let hint = if config.num_replicas == old.config.num_replicas {
        crate::wire::LeaderHint::default()
    } else {
        cluster.leader_hint(&old).await
    };
    let assignment = match cluster
        .propose_meta(MetaCommand::UpdateStream {
            account: req.account.clone(),
            config: config.clone(),
            nodes: cluster.node_ids(),
            keep: hint.leader,
            live: hint.live,
        })
        .await?
    {
        MetaReply::Stream { assignment, .. } => assignment,
        MetaReply::Error(e) => return Err(e),
        MetaReply::Deleted { .. } => return Err(ApiError::cluster_not_avail()),
    };
    cluster.apply_config_on_leader(&assignment, &config).await?;
    let info = remote_info(cluster, &assignment).await?;
    Ok(api::render(
        types::STREAM_UPDATE,
        &StreamCreateResponse {
            info,
            did_create: false,
        },
    ))
}

/// Runs on the stream's leader: adopt the config the meta group accepted
/// in the stream's own group.
pub(crate) async fn apply_config(
    cluster: &Cluster,
    account: &str,
    name: &str,
    config: StreamConfig,
) -> Result<(), ApiError> {
    let (_, g) = cluster.led_group(account, name)?;
    match propose(cluster, &g, StreamCommand::UpdateConfig(Box::new(config))).await? {
        StreamReply::Error(e) => Err(e),
        _ => Ok(()),
    }
}

/// Runs on the stream leader: drop messages older than `max_age`.
pub(crate) async fn expire(cluster: &Cluster, account: &str, name: &str) -> Vec<u8> {
    let r = async {
        let (_, g) = cluster.led_group(account, name)?;
        match propose(cluster, &g, StreamCommand::Expire).await? {
            StreamReply::Error(e) => Err(e),
            StreamReply::Expired(n) => Ok(PurgeResponse {
                success: true,
                purged: n,
            }),
            _ => Ok(PurgeResponse {
                success: true,
                purged: 0,
            }),
        }
    };
    respond(types::STREAM_PURGE, r.await)
}

pub async fn delete(cluster: &Cluster, account: &str, name: &str) -> Vec<u8> {
    let r = async {
        match cluster
            .propose_meta(MetaCommand::DeleteStream {
                account: account.to_string(),
                name: name.to_string(),
            })
            .await?
        {
            MetaReply::Deleted { .. } => {
                cluster
                    .await_catalog_everywhere(account, name, false, CATALOG_WAIT)
                    .await;
                Ok(SuccessResponse { success: true })
            }
            MetaReply::Error(e) => Err(e),
            MetaReply::Stream { .. } => Err(ApiError::cluster_not_avail()),
        }
    };
    respond(types::STREAM_DELETE, r.await)
}

/// [`Cluster::led_group`], and leadership confirmed for a read (decision 33): what
/// is read after it includes every write acknowledged before the request
/// arrived. A deposed leader gets "not the leader" or 503/10008.
pub(crate) async fn read_group(
    cluster: &Cluster,
    account: &str,
    name: &str,
) -> Result<(StreamAssignment, Group), ApiError> {
    let (a, g) = cluster.led_group(account, name)?;
    g.read_barrier()
        .await
        .map_err(|e| crate::batcher::proposal_failed(g.id, e))?;
    Ok((a, g))
}

/// Proposes a stream command through the group's batcher (in arrival
/// order, together with whatever else is queued) and waits for its reply.
pub(crate) async fn propose(
    cluster: &Cluster,
    g: &Group,
    cmd: StreamCommand,
) -> Result<StreamReply, ApiError> {
    cluster.propose_stream(g, cmd).await
}

pub async fn info(cluster: &Cluster, name: &str, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        let opts: StreamInfoRequest = parse_body(&req.payload)?;
        let (a, g) = read_group(cluster, &req.account, name).await?;
        let view = g.sm.stream_view().ok_or_else(ApiError::cluster_not_avail)?;
        let mut info = stream_info(cluster, &a, &g, &view);
        info.config = info.config.with_dynamic_metadata();
        let mut page = (0, 0, 0);
        if let Some(filter) = opts.subjects_filter.filter(|f| !f.is_empty()) {
            let counts = view
                .subject_counts(&filter)
                .map_err(ApiError::stream_store_failed)?;
            // nats-server pages (by sorted subject) only when any matched.
            if !counts.is_empty() {
                page = (counts.len(), opts.offset, api::SUBJECT_DETAILS_LIMIT);
                info.state.subjects = Some(
                    counts
                        .into_iter()
                        .skip(opts.offset)
                        .take(api::SUBJECT_DETAILS_LIMIT)
                        .collect(),
                );
            }
        }
        if opts.deleted_details {
            info.state.deleted = Some(view.deleted().map_err(ApiError::stream_store_failed)?);
        }
        let (total, offset, limit) = page;
        Ok(StreamInfoResponse {
            total,
            offset,
            limit,
            info,
        })
    };
    respond(types::STREAM_INFO, r.await)
}

pub(crate) fn stream_info(
    cluster: &Cluster,
    a: &StreamAssignment,
    g: &Group,
    view: &StreamView,
) -> StreamInfo {
    let metrics = g.metrics();
    let leader = metrics.current_leader;
    let replicas = a
        .peers
        .iter()
        .filter(|p| Some(**p) != leader)
        .map(|p| {
            let matched = metrics
                .replication
                .as_ref()
                .and_then(|r| r.get(p).cloned().flatten())
                .map(|l| l.index);
            let last = metrics.last_log_index.unwrap_or(0);
            let lag = last.saturating_sub(matched.unwrap_or(0));
            PeerInfo {
                name: cluster.name_of(*p),
                current: lag == 0,
                offline: false,
                active: 0,
                lag,
                peer: cluster.name_of(*p),
            }
        })
        .collect();
    StreamInfo {
        config: view.config.clone(),
        created: a.created_ns,
        state: view.state().clone(),
        cluster: (!cluster.standalone()).then(|| ClusterInfo {
            name: Some(super::CLUSTER_NAME.into()),
            raft_group: Some(format!("S-R{}-{}", a.peers.len(), a.group)),
            leader: leader.map(|l| cluster.name_of(l)),
            replicas,
        }),
        ts: cluster.now_ns(),
    }
}

pub async fn purge(cluster: &Cluster, name: &str, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        let request: PurgeRequest = parse_body(&req.payload)?;
        request.validate()?;
        let (_, g) = cluster.led_group(&req.account, name)?;
        match propose(cluster, &g, StreamCommand::Purge(request)).await? {
            StreamReply::Purged(n) => Ok(PurgeResponse {
                success: true,
                purged: n,
            }),
            StreamReply::Error(e) => Err(e),
            _ => Err(ApiError::cluster_not_avail()),
        }
    };
    respond(types::STREAM_PURGE, r.await)
}

pub async fn msg_delete(cluster: &Cluster, name: &str, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        if req.payload.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_request());
        }
        let request: MsgDeleteRequest = super::parse_json(&req.payload)?;
        let (_, g) = cluster.led_group(&req.account, name)?;
        let cmd = StreamCommand::DeleteMsg {
            seq: request.seq,
            no_erase: request.no_erase,
        };
        match propose(cluster, &g, cmd).await? {
            StreamReply::Deleted => Ok(SuccessResponse { success: true }),
            StreamReply::Error(e) => Err(e),
            _ => Err(ApiError::cluster_not_avail()),
        }
    };
    respond(types::STREAM_MSG_DELETE, r.await)
}

pub async fn msg_get(cluster: &Cluster, name: &str, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        // Empty is the default request, which asks for nothing: 10003.
        let request: MsgGetRequest = parse_body(&req.payload)?;
        let query = request.query()?;
        let (_, g) = read_group(cluster, &req.account, name).await?;
        let view = g.sm.stream_view().ok_or_else(ApiError::cluster_not_avail)?;
        let found = lookup(&view, &query).map_err(ApiError::stream_store_failed)?;
        let msg = found.ok_or_else(ApiError::no_message_found)?;
        Ok(MsgGetResponse {
            message: ApiStoredMessage::from(&msg),
        })
    };
    respond(types::STREAM_MSG_GET, r.await)
}

pub(crate) fn lookup(
    view: &StreamView,
    q: &MsgGetQuery,
) -> std::io::Result<Option<jetraft_types::StoredMessage>> {
    match q {
        MsgGetQuery::Seq(seq) => view.message(*seq),
        MsgGetQuery::LastBySubject(s) => view.last_for_subject(s),
        MsgGetQuery::NextBySubject { filter, from } => view.next_matching(*from, filter),
    }
}

pub async fn names(cluster: &Cluster, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        let request: StreamNamesRequest = parse_body(&req.payload)?;
        cluster.meta_read_barrier().await?;
        let all = filtered(cluster, &req.account, request.subject.as_deref());
        let streams: Vec<String> = all
            .iter()
            .skip(request.offset)
            .take(api::NAMES_PAGE_LIMIT)
            .map(|a| a.config.name.clone())
            .collect();
        Ok(StreamNamesResponse {
            total: all.len(),
            offset: request.offset,
            limit: api::NAMES_PAGE_LIMIT,
            streams,
        })
    };
    respond(types::STREAM_NAMES, r.await)
}

fn filtered(
    cluster: &Cluster,
    account: &str,
    subject_filter: Option<&str>,
) -> Vec<StreamAssignment> {
    let catalog = cluster.catalog();
    catalog
        .streams_in(account)
        .filter(|a| {
            subject_filter
                .filter(|f| !f.is_empty())
                .is_none_or(|f| a.config.subjects.iter().any(|s| subject::overlaps(s, f)))
        })
        .cloned()
        .collect()
}

pub async fn list(cluster: Arc<Cluster>, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        let request: StreamNamesRequest = parse_body(&req.payload)?;
        cluster.meta_read_barrier().await?;
        let all = filtered(&cluster, &req.account, request.subject.as_deref());
        let mut streams = Vec::new();
        let mut missing = Vec::new();
        for a in all.iter().skip(request.offset).take(api::LIST_PAGE_LIMIT) {
            match remote_info(&cluster, a).await {
                Ok(mut info) => {
                    // nats-server lists the stored config, without the
                    // per-response metadata that `STREAM.INFO` adds.
                    info.config.remove_dynamic_metadata();
                    streams.push(info)
                }
                Err(_) => missing.push(a.config.name.clone()),
            }
        }
        Ok(StreamListResponse {
            total: all.len(),
            offset: request.offset,
            limit: api::LIST_PAGE_LIMIT,
            streams,
            missing,
        })
    };
    respond(types::STREAM_LIST, r.await)
}
