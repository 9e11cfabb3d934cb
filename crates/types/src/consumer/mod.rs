//! Consumer configuration, state and API JSON with nats-server's field
//! names, defaults and validation (nats-server `server/consumer.go`
//! `setConsumerConfigDefaults`, `checkConsumerCfg`,
//! `checkNewConsumerConfig`).
//!
//! Durations are nanoseconds; times are Unix nanoseconds (`0`: unset),
//! rendered as RFC 3339 like nats-server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

mod check;
mod wire;

pub use wire::{ACK_PREFIX, AckKind, AckSubject, NextRequest, go_duration, parse_go_duration};

/// `JsAckWaitDefault`: 30 s.
pub const DEFAULT_ACK_WAIT_NS: i64 = 30_000_000_000;
/// `JSWaitQueueDefaultMax`: pull requests a consumer keeps waiting.
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// `JsDefaultMaxAckPending`.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// `JsDefaultPinnedTTL`: 2 min.
pub const DEFAULT_PINNED_TTL_NS: i64 = 120_000_000_000;
/// Ephemerals without `inactive_threshold` go 5 s after their last
/// interest (`JsDeleteWaitTimeDefault`).
pub const DEFAULT_EPHEMERAL_INACTIVE_NS: i64 = 5_000_000_000;
/// Length of the generated name of an ephemeral consumer.
pub const EPHEMERAL_NAME_LEN: usize = 8;
/// `JSMaxDescriptionLen`.
const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// `JSMaxMetadataLen`.
const MAX_METADATA_LEN: usize = 128 * 1024;
/// Smallest push heartbeat.
const MIN_HEARTBEAT_NS: i64 = 100_000_000;
/// Smallest `max_expires`.
const MIN_MAX_EXPIRES_NS: i64 = 1_000_000;

macro_rules! go_enum {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? } default $default:ident) => {
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            #[default]
            $default,
            $($variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self {
                    $name::$default => go_enum!(@text $name $default),
                    $($name::$variant => $text),+
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = serde_json::Value::deserialize(d)?;
                let pick = |s: &str| -> Option<Self> {
                    if s == go_enum!(@text $name $default) {
                        return Some($name::$default);
                    }
                    match s {
                        $($text => Some($name::$variant),)+
                        _ => None,
                    }
                };
                v.as_str().and_then(pick).ok_or_else(|| {
                    serde::de::Error::custom(format!("can not unmarshal {:?}", v.to_string()))
                })
            }
        }
    };
    (@text DeliverPolicy All) => { "all" };
    (@text AckPolicy None) => { "none" };
    (@text ReplayPolicy Instant) => { "instant" };
    (@text PriorityPolicy None) => { "none" };
}

go_enum!(DeliverPolicy {
    Last = "last",
    New = "new",
    ByStartSequence = "by_start_sequence",
    ByStartTime = "by_start_time",
    LastPerSubject = "last_per_subject",
} default All);

go_enum!(AckPolicy {
    All = "all",
    Explicit = "explicit",
    FlowControl = "flow_control",
} default None);

go_enum!(ReplayPolicy {
    Original = "original",
} default Instant);

go_enum!(PriorityPolicy {
    Overflow = "overflow",
    PinnedClient = "pinned_client",
    Prioritized = "prioritized",
} default None);

/// `ConsumerAction`: `""` create or update, `"create"`, `"update"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConsumerAction {
    #[default]
    CreateOrUpdate,
    Create,
    Update,
}

impl Serialize for ConsumerAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            ConsumerAction::CreateOrUpdate => "",
            ConsumerAction::Create => "create",
            ConsumerAction::Update => "update",
        })
    }
}

impl<'de> Deserialize<'de> for ConsumerAction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match v.as_str() {
            Some("") => Ok(Self::CreateOrUpdate),
            Some("create") => Ok(Self::Create),
            Some("update") => Ok(Self::Update),
            _ => Err(serde::de::Error::custom(format!(
                "unknown consumer action: {v}"
            ))),
        }
    }
}

/// Optional RFC 3339 times kept as Unix ns (`opt_start_time`, `pause_until`).
mod opt_time {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(ns: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ns {
            Some(ns) => s.serialize_str(&crate::rfc3339::format_ns(*ns)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let s = String::deserialize(d)?;
        crate::rfc3339::parse_ns(&s)
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("parsing time {s:?} as RFC 3339")))
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

/// `ConsumerConfig` exactly as nats-server's JSON (`omitempty` where it has
/// it). Unknown fields are refused, as nats-server 2.15 decodes strictly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    #[serde(rename = "durable_name", skip_serializing_if = "String::is_empty")]
    pub durable: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub deliver_policy: DeliverPolicy,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    #[serde(with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<i64>,
    pub ack_policy: AckPolicy,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub ack_wait: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_deliver: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<i64>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub filter_subject: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    pub replay_policy: ReplayPolicy,
    #[serde(rename = "rate_limit_bps", skip_serializing_if = "is_zero_u64")]
    pub rate_limit: u64,
    #[serde(rename = "sample_freq", skip_serializing_if = "String::is_empty")]
    pub sample_frequency: String,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_waiting: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    #[serde(rename = "max_batch", skip_serializing_if = "is_zero_i64")]
    pub max_request_batch: i64,
    #[serde(rename = "max_expires", skip_serializing_if = "is_zero_i64")]
    pub max_request_expires: i64,
    #[serde(rename = "max_bytes", skip_serializing_if = "is_zero_i64")]
    pub max_request_max_bytes: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_subject: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub deliver_group: String,
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    #[serde(rename = "idle_heartbeat", skip_serializing_if = "is_zero_i64")]
    pub heartbeat: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    #[serde(rename = "num_replicas")]
    pub replicas: i64,
    #[serde(rename = "mem_storage", skip_serializing_if = "is_false")]
    pub memory_storage: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub sourcing: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<String>,
    #[serde(skip_serializing_if = "is_default_priority")]
    pub priority_policy: PriorityPolicy,
    #[serde(rename = "priority_timeout", skip_serializing_if = "is_zero_i64")]
    pub pinned_ttl: i64,
}

fn is_default_priority(p: &PriorityPolicy) -> bool {
    *p == PriorityPolicy::None
}

/// `CreateConsumerRequest`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CreateConsumerRequest {
    #[serde(rename = "stream_name")]
    pub stream: String,
    pub config: ConsumerConfig,
    pub action: ConsumerAction,
    #[serde(skip_serializing_if = "is_false")]
    pub pedantic: bool,
}

impl crate::api::GoType for CreateConsumerRequest {
    const GO_TYPE: &'static str = "CreateConsumerRequest";
}

/// `SequenceInfo`: a consumer sequence, a stream sequence, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceInfo {
    pub consumer_seq: u64,
    pub stream_seq: u64,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub last_active: Option<i64>,
}

/// `PriorityGroupState`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityGroupState {
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pinned_client_id: String,
    #[serde(default, with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub pinned_ts: Option<i64>,
}

/// `ConsumerInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    pub stream_name: String,
    pub name: String,
    #[serde(with = "crate::rfc3339::serde_ns")]
    pub created: i64,
    pub config: ConsumerConfig,
    pub delivered: SequenceInfo,
    pub ack_floor: SequenceInfo,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    pub num_waiting: u64,
    pub num_pending: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::config::ClusterInfo>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub push_bound: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub paused: bool,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub pause_remaining: i64,
    #[serde(with = "crate::rfc3339::serde_ns")]
    pub ts: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priority_groups: Vec<PriorityGroupState>,
}

/// `CONSUMER.NAMES` / `CONSUMER.LIST` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerPageRequest {
    pub offset: usize,
}

impl crate::api::GoType for ConsumerPageRequest {
    const GO_TYPE: &'static str = "JSApiConsumersRequest";
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerNamesResponse {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub consumers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerListResponse {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub consumers: Vec<ConsumerInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// `CONSUMER.PAUSE` request: pause until this time (absent, zero or an
/// unreadable body: resume now).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PauseRequest {
    #[serde(with = "opt_time", skip_serializing_if = "Option::is_none")]
    pub pause_until: Option<i64>,
}

/// `JSApiConsumerPauseResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseResponse {
    pub paused: bool,
    #[serde(with = "crate::rfc3339::serde_ns")]
    pub pause_until: i64,
    #[serde(default, skip_serializing_if = "is_zero_i64")]
    pub pause_remaining: i64,
}

/// `JSApiConsumerDeleteResponse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerDeleteResponse {
    pub success: bool,
}
