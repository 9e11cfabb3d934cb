//! The `CONSUMER.*` requests that manage consumers (create, info, delete,
//! names, list), run on the stream's leader: a consumer lives in its
//! stream's group (decision 41). Pull requests and acks are
//! [`crate::consumers`].

use jetraft_meta::StreamAssignment;
use jetraft_raft::host::Group;
use jetraft_stream::StreamReply;
use jetraft_stream::consumer::Consumer;
use jetraft_types::ApiError;
use jetraft_types::api::{self, types};
use jetraft_types::config::{ClusterInfo, PeerInfo};
use jetraft_types::consumer::{
    ConsumerDeleteResponse, ConsumerInfo, ConsumerListResponse, ConsumerNamesResponse,
    ConsumerPageRequest, CreateConsumerRequest, PauseRequest, PauseResponse, PriorityGroupState,
    SequenceInfo,
};
use serde::Serialize;

use super::parse_body;
use super::streams::{propose, read_group};
use crate::cluster::Cluster;
use crate::wire::ApiRequest;

/// `JSApiNamesLimit` / `JSApiListLimit` for consumers.
const NAMES_PAGE_LIMIT: usize = 1024;
const LIST_PAGE_LIMIT: usize = 256;

/// What a create subject says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CreateSubject {
    pub(crate) stream: String,
    /// The name in the subject (none: a legacy ephemeral create).
    pub(crate) name: Option<String>,
    /// `CREATE.<stream>.<name>.<filter>`.
    pub(crate) filter: Option<String>,
    /// `DURABLE.CREATE.<stream>.<durable>`; `None` name with it: the
    /// subject had the wrong number of tokens.
    pub(crate) legacy_durable: bool,
}

/// Recognises the part after `$JS.API.CONSUMER.`.
pub(crate) fn parse_subject(rest: &str) -> Option<super::Op> {
    use super::Op;
    let t: Vec<&str> = rest.split('.').collect();
    if t.iter().any(|x| x.is_empty()) {
        return None;
    }
    let two = |make: fn(String, String) -> Op| match t.as_slice() {
        [_, s, c] => Some(make(s.to_string(), c.to_string())),
        _ => None,
    };
    match t.first().copied()? {
        "CREATE" if t.len() >= 2 => Some(Op::ConsumerCreate(CreateSubject {
            stream: t[1].to_string(),
            name: t.get(2).map(|s| s.to_string()),
            filter: (t.len() > 3).then(|| t[3..].join(".")),
            legacy_durable: false,
        })),
        "DURABLE" if t.len() >= 3 && t[1] == "CREATE" => Some(Op::ConsumerCreate(CreateSubject {
            stream: t[2].to_string(),
            name: (t.len() == 4).then(|| t[3].to_string()),
            filter: None,
            legacy_durable: true,
        })),
        "INFO" => two(|stream, consumer| Op::ConsumerInfo { stream, consumer }),
        "DELETE" => two(|stream, consumer| Op::ConsumerDelete { stream, consumer }),
        "PAUSE" => two(|stream, consumer| Op::ConsumerPause { stream, consumer }),
        "RESET" => two(|stream, consumer| Op::ConsumerReset { stream, consumer }),
        "UNPIN" => two(|stream, consumer| Op::ConsumerUnpin { stream, consumer }),
        "LEADER" if t.len() == 4 && t[1] == "STEPDOWN" => Some(Op::ConsumerStepDown {
            stream: t[2].to_string(),
            consumer: t[3].to_string(),
        }),
        "NAMES" if t.len() == 2 => Some(Op::ConsumerNames(t[1].to_string())),
        "LIST" if t.len() == 2 => Some(Op::ConsumerList(t[1].to_string())),
        "MSG" if t.len() == 4 && t[1] == "NEXT" => Some(Op::ConsumerNext {
            stream: t[2].to_string(),
            consumer: t[3].to_string(),
        }),
        _ => None,
    }
}

/// Recognises the part after `$JS.ACK.` (v1 and v2 layouts).
pub(crate) fn parse_ack_subject(rest: &str) -> Option<super::Op> {
    let t: Vec<&str> = rest.split('.').collect();
    let (stream, consumer) = match t.len() {
        7 => (t[0], t[1]),
        9 | 10 => (t[2], t[3]),
        _ => return None,
    };
    Some(super::Op::Ack {
        stream: stream.to_string(),
        consumer: consumer.to_string(),
    })
}

fn respond<T: Serialize>(type_name: &str, r: Result<T, ApiError>) -> Vec<u8> {
    match r {
        Ok(body) => api::render(type_name, &body),
        Err(e) => api::render_error(type_name, &e),
    }
}

/// The request's config with the subject's name and filter applied, and
/// the refusals nats-server makes before it looks at the stream
/// (`jsConsumerCreateRequest`).
fn request_config(s: &CreateSubject, req: &ApiRequest) -> Result<CreateConsumerRequest, ApiError> {
    let mut r: CreateConsumerRequest = parse_body(&req.payload)?;
    if s.legacy_durable && s.name.is_none() {
        return Err(ApiError::new(
            400,
            10016,
            "consumer expected to be durable but no durable name set in subject",
        ));
    }
    if r.stream != s.stream {
        return Err(ApiError::stream_mismatch());
    }
    let name = s.name.clone().unwrap_or_else(|| r.config.name.clone());
    if name.contains(['\\', '/']) {
        return Err(ApiError::new(
            400,
            10127,
            "Consumer name can not contain path separators",
        ));
    }
    let not_match = || {
        ApiError::new(
            400,
            10017,
            "consumer name in subject does not match durable name in request",
        )
    };
    if s.legacy_durable {
        if r.config.durable.is_empty() {
            return Err(ApiError::new(
                400,
                10018,
                "consumer expected to be durable but a durable name was not set",
            ));
        }
        if name != r.config.durable {
            return Err(not_match());
        }
        r.config.name = name;
    } else if s.name.is_some() {
        if !r.config.durable.is_empty() && name != r.config.durable {
            return Err(not_match());
        }
        r.config.name = name;
    } else if !r.config.durable.is_empty() {
        return Err(ApiError::new(
            400,
            10020,
            "consumer expected to be ephemeral but a durable name was set in request",
        ));
    }
    if let Some(filter) = &s.filter {
        if !r.config.filter_subjects.is_empty() {
            return Err(ApiError::new(
                400,
                10137,
                "consumer with multiple subject filters cannot use subject based API",
            ));
        }
        if &r.config.filter_subject != filter {
            return Err(ApiError::new(
                400,
                10131,
                "Consumer create request did not match filtered subject from create subject",
            ));
        }
    }
    Ok(r)
}

pub async fn create(cluster: &Cluster, s: &CreateSubject, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        let request = request_config(s, req)?;
        let (a, g) = cluster.led_group(&req.account, &s.stream)?;
        let mut config = request.config.normalize(&a.config, request.pedantic)?;
        config.set_static_metadata();
        let known = (!config.name.is_empty()).then(|| config.name.clone());
        let paused_before = known
            .and_then(|n| g.sm.consumer_with(&n, |c| c.config.pause_until))
            .flatten();
        let cmd = jetraft_stream::StreamCommand::AddConsumer {
            config: Box::new(config),
            action: request.action,
        };
        let name = match propose(cluster, &g, cmd).await? {
            StreamReply::Consumer { name, created } => {
                if created {
                    cluster
                        .consumers()
                        .announce(&req.account, &s.stream, &name, true);
                }
                let paused =
                    g.sm.consumer_with(&name, |c| c.config.pause_until)
                        .flatten();
                let now = cluster.now_ns();
                let changed = if created {
                    paused.is_some_and(|t| t > now)
                } else {
                    paused != paused_before
                };
                if changed {
                    let key = (g.id, req.account.as_str(), s.stream.as_str(), name.as_str());
                    cluster.consumers().pause_changed(key, paused);
                }
                name
            }
            StreamReply::Error(e) => return Err(e),
            other => {
                return Err(ApiError::stream_store_failed(format!(
                    "unexpected reply {other:?}"
                )));
            }
        };
        cluster
            .consumers()
            .changed(g.id, &req.account, &s.stream, &name);
        consumer_info(cluster, &a, &g, &name)
    };
    respond(types::CONSUMER_CREATE, r.await)
}

/// A consumer's info from this replica's applied state.
fn consumer_info(
    cluster: &Cluster,
    a: &StreamAssignment,
    g: &Group,
    name: &str,
) -> Result<ConsumerInfo, ApiError> {
    let c =
        g.sm.consumer(name)
            .ok_or_else(ApiError::consumer_not_found)?;
    let mut info = info_of(cluster, a, g, &c);
    info.config = info.config.with_dynamic_metadata();
    Ok(info)
}

fn info_of(cluster: &Cluster, a: &StreamAssignment, g: &Group, c: &Consumer) -> ConsumerInfo {
    let now = cluster.now_ns();
    let when = |ns: i64| (ns > 0).then_some(ns);
    let metrics = g.metrics();
    let leader = metrics.current_leader;
    let pause_remaining = c
        .config
        .pause_until
        .map_or(0, |until| until.saturating_sub(now).max(0));
    ConsumerInfo {
        stream_name: a.config.name.clone(),
        name: c.name.clone(),
        created: c.created_ns,
        config: c.config.clone(),
        delivered: SequenceInfo {
            consumer_seq: c.delivered_cseq,
            stream_seq: c.delivered_sseq(),
            last_active: when(c.last_delivered_ns),
        },
        ack_floor: SequenceInfo {
            consumer_seq: c.ack_floor_cseq,
            stream_seq: c.ack_floor_sseq,
            last_active: when(c.last_ack_ns),
        },
        num_ack_pending: c.pending.len() as u64,
        num_redelivered: c.num_redelivered(),
        num_waiting: cluster.consumers().num_waiting(g.id, &c.name),
        num_pending: c.num_pending,
        cluster: (!cluster.standalone()).then(|| ClusterInfo {
            name: Some(super::CLUSTER_NAME.into()),
            raft_group: Some(format!("S-R{}-{}", a.peers.len(), a.group)),
            leader: leader.map(|l| cluster.name_of(l)),
            replicas: a
                .peers
                .iter()
                .filter(|p| Some(**p) != leader)
                .map(|p| PeerInfo {
                    name: cluster.name_of(*p),
                    current: true,
                    offline: false,
                    active: 0,
                    lag: 0,
                    peer: cluster.name_of(*p),
                })
                .collect(),
        }),
        push_bound: cluster.consumers().push_bound(g.id, &c.name),
        paused: pause_remaining > 0,
        pause_remaining,
        ts: now,
        // The first group's pin (none: Go's zero time).
        priority_groups: c
            .config
            .priority_groups
            .first()
            .map(|group| {
                let pin = cluster.consumers().pin(g.id, &c.name);
                PriorityGroupState {
                    group: group.clone(),
                    pinned_ts: Some(pin.as_ref().map_or(0, |p| p.1)),
                    pinned_client_id: pin.map(|p| p.0).unwrap_or_default(),
                }
            })
            .into_iter()
            .collect(),
    }
}

pub async fn info(cluster: &Cluster, stream: &str, name: &str, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        if !super::is_empty_request(&req.payload) {
            return Err(ApiError::not_empty_request());
        }
        let (a, g) = read_group(cluster, &req.account, stream).await?;
        consumer_info(cluster, &a, &g, name)
    };
    respond(types::CONSUMER_INFO, r.await)
}

pub async fn delete(cluster: &Cluster, stream: &str, name: &str, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        let (_, g) = cluster.led_group(&req.account, stream)?;
        let cmd = jetraft_stream::StreamCommand::DeleteConsumer {
            name: name.to_string(),
        };
        match propose(cluster, &g, cmd).await? {
            StreamReply::ConsumerDeleted => {
                cluster.consumers().deleted(g.id, name);
                cluster
                    .consumers()
                    .announce(&req.account, stream, name, false);
                Ok(ConsumerDeleteResponse { success: true })
            }
            StreamReply::Error(e) => Err(e),
            other => Err(ApiError::stream_store_failed(format!(
                "unexpected reply {other:?}"
            ))),
        }
    };
    respond(types::CONSUMER_DELETE, r.await)
}

pub async fn names(cluster: &Cluster, stream: &str, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        let page: ConsumerPageRequest = parse_body(&req.payload)?;
        let (_, g) = read_group(cluster, &req.account, stream).await?;
        let all = g.sm.consumers();
        Ok(ConsumerNamesResponse {
            total: all.len(),
            offset: page.offset,
            limit: NAMES_PAGE_LIMIT,
            consumers: all
                .into_iter()
                .skip(page.offset)
                .take(NAMES_PAGE_LIMIT)
                .map(|c| c.name)
                .collect(),
        })
    };
    respond(types::CONSUMER_NAMES, r.await)
}

pub async fn list(cluster: &Cluster, stream: &str, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        let page: ConsumerPageRequest = parse_body(&req.payload)?;
        let (a, g) = read_group(cluster, &req.account, stream).await?;
        let all = g.sm.consumers();
        Ok(ConsumerListResponse {
            total: all.len(),
            offset: page.offset,
            limit: LIST_PAGE_LIMIT,
            consumers: all
                .iter()
                .skip(page.offset)
                .take(LIST_PAGE_LIMIT)
                .map(|c| info_of(cluster, &a, &g, c))
                .collect(),
            missing: Vec::new(),
        })
    };
    respond(types::CONSUMER_LIST, r.await)
}

/// `CONSUMER.PAUSE`: no deliveries until the given time (pull requests get
/// `404`/`408` meanwhile, push consumers wait); an empty, `{}` or
/// unreadable body resumes, as in nats-server.
pub async fn pause(cluster: &Cluster, stream: &str, name: &str, req: &ApiRequest) -> Vec<u8> {
    let r = async {
        let until = serde_json::from_slice::<PauseRequest>(&req.payload)
            .ok()
            .and_then(|p| p.pause_until)
            .filter(|t| *t != 0);
        let (a, g) = cluster.led_group(&req.account, stream)?;
        let before = g.sm.consumer_with(name, |c| c.config.pause_until).flatten();
        let cmd = jetraft_stream::StreamCommand::PauseConsumer {
            name: name.to_string(),
            until,
        };
        match propose(cluster, &g, cmd).await? {
            StreamReply::Consumer { .. } => {}
            StreamReply::Error(e) => return Err(e),
            other => {
                return Err(ApiError::stream_store_failed(format!(
                    "unexpected reply {other:?}"
                )));
            }
        }
        cluster.consumers().changed(g.id, &a.account, stream, name);
        if before != until {
            let key = (g.id, a.account.as_str(), stream, name);
            cluster.consumers().pause_changed(key, until);
        }
        let remaining = until.map_or(0, |t| (t - cluster.now_ns()).max(0));
        Ok(PauseResponse {
            paused: remaining > 0,
            pause_until: until.unwrap_or(0),
            pause_remaining: remaining,
        })
    };
    respond(types::CONSUMER_PAUSE, r.await)
}

/// `CONSUMER.RESET` (2.14): start over at `{"seq":N}` (default: just
/// above the ack floor). The answer is the consumer's info and
/// `reset_seq`; `None`: no answer (no such consumer, as nats-server).
pub async fn reset(
    cluster: &Cluster,
    stream: &str,
    name: &str,
    req: &ApiRequest,
) -> Option<Vec<u8>> {
    #[derive(Default, serde::Deserialize)]
    #[serde(default)]
    struct ResetRequest {
        seq: u64,
    }
    impl jetraft_types::api::GoType for ResetRequest {
        const GO_TYPE: &'static str = "JSApiConsumerResetRequest";
    }
    #[derive(Serialize)]
    struct ResetResponse {
        #[serde(flatten)]
        info: ConsumerInfo,
        reset_seq: u64,
    }
    let r = async {
        let body: ResetRequest = parse_body(&req.payload)?;
        let (a, g) = cluster.led_group(&req.account, stream)?;
        let cmd = jetraft_stream::StreamCommand::ResetConsumer {
            name: name.to_string(),
            seq: (body.seq > 0).then_some(body.seq),
        };
        let at = match propose(cluster, &g, cmd).await? {
            StreamReply::ConsumerReset(at) => at,
            StreamReply::Error(e) => return Err(e),
            other => {
                return Err(ApiError::stream_store_failed(format!(
                    "unexpected reply {other:?}"
                )));
            }
        };
        cluster.consumers().changed(g.id, &a.account, stream, name);
        let info = consumer_info(cluster, &a, &g, name)?;
        Ok(ResetResponse {
            info,
            reset_seq: at,
        })
    };
    match r.await {
        Err(e) if e.err_code == ApiError::consumer_not_found().err_code => None,
        r => Some(respond(types::CONSUMER_RESET, r)),
    }
}

/// `CONSUMER.UNPIN`: drops a priority group's pinned client (on the
/// stream leader, where the pin lives), with nats-server's refusals.
pub async fn unpin(cluster: &Cluster, stream: &str, name: &str, req: &ApiRequest) -> Vec<u8> {
    #[derive(Serialize)]
    struct Empty {}
    let r = async {
        if req.payload.trim_ascii().is_empty() {
            return Err(ApiError::invalid_json("unexpected end of JSON input"));
        }
        let v: serde_json::Value = serde_json::from_slice(&req.payload)
            .map_err(|e| ApiError::invalid_json(e.to_string()))?;
        let group = v
            .get("group")
            .and_then(|g| g.as_str())
            .filter(|g| !g.is_empty())
            .ok_or_else(|| ApiError::invalid_json("consumer group not specified"))?
            .to_string();
        let (_, g) = read_group(cluster, &req.account, stream).await?;
        let c =
            g.sm.consumer(name)
                .ok_or_else(ApiError::consumer_not_found)?;
        if !c.config.priority_groups.contains(&group) {
            return Err(ApiError::new(
                400,
                10160,
                "Provided priority group does not exist for this consumer",
            ));
        }
        cluster.consumers().unpin(g.id, name);
        Ok(Empty {})
    };
    respond(types::CONSUMER_UNPIN, r.await)
}
