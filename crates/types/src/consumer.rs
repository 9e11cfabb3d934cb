//! Consumer configuration, state and API JSON with nats-server's field
//! names, defaults and validation (nats-server `server/consumer.go`
//! `setConsumerConfigDefaults`, `checkConsumerCfg`,
//! `checkNewConsumerConfig`).
//!
//! Durations are nanoseconds; times are Unix nanoseconds (`0`: unset),
//! rendered as RFC 3339 like nats-server.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{RetentionPolicy, StreamConfig};
use crate::error::ApiError;
use crate::subject;

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

fn invalid(msg: impl std::fmt::Display) -> ApiError {
    ApiError::stream_config_invalid(msg)
}

fn policy(msg: impl std::fmt::Display) -> ApiError {
    ApiError::new(400, 10094, msg.to_string())
}

/// Priority group names: `[A-Za-z0-9-_/=)+]{1,16}`.
fn valid_group_name(g: &str) -> bool {
    !g.is_empty()
        && g.len() <= 16
        && g.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-_/=)+".contains(&c))
}

impl ConsumerConfig {
    /// nats-server's `setStaticConsumerMetadata`: the API level the
    /// features used need (`_nats.req.level`), stored with the config.
    pub fn set_static_metadata(&mut self) {
        use crate::config::{META_REQUIRED_LEVEL, META_SERVER_LEVEL, META_SERVER_VERSION};
        self.metadata.remove(META_SERVER_VERSION);
        self.metadata.remove(META_SERVER_LEVEL);
        let mut level = 0;
        if self.pause_until.is_some_and(|t| t != 0) {
            level = 1;
        }
        if self.priority_policy != PriorityPolicy::None
            || self.pinned_ttl != 0
            || !self.priority_groups.is_empty()
        {
            level = 1;
        }
        if self.ack_policy == AckPolicy::FlowControl {
            level = 4;
        }
        self.metadata
            .insert(META_REQUIRED_LEVEL.to_string(), level.to_string());
    }

    /// What create and info responses show: the server's version and API
    /// level next to the stored keys.
    pub fn with_dynamic_metadata(mut self) -> Self {
        use crate::config::{META_SERVER_LEVEL, META_SERVER_VERSION};
        self.metadata.insert(
            META_SERVER_VERSION.to_string(),
            crate::api::NATS_VERSION.to_string(),
        );
        self.metadata.insert(
            META_SERVER_LEVEL.to_string(),
            crate::api::API_LEVEL.to_string(),
        );
        self
    }

    /// Whether the consumer is durable (`durable_name` set).
    pub fn is_durable(&self) -> bool {
        !self.durable.is_empty()
    }

    /// Push consumers deliver to `deliver_subject`; pull consumers answer
    /// `MSG.NEXT`.
    pub fn is_push(&self) -> bool {
        !self.deliver_subject.is_empty()
    }

    /// The filters it delivers (`filter_subject` or `filter_subjects`);
    /// empty: every subject of the stream.
    pub fn filters(&self) -> Vec<String> {
        if !self.filter_subject.is_empty() {
            vec![self.filter_subject.clone()]
        } else {
            self.filter_subjects.clone()
        }
    }

    /// Whether a message on `subj` is one this consumer delivers.
    pub fn wants(&self, subj: &str) -> bool {
        if !self.filter_subject.is_empty() {
            return subject::matches(&self.filter_subject, subj);
        }
        self.filter_subjects.is_empty()
            || self
                .filter_subjects
                .iter()
                .any(|f| subject::matches(f, subj))
    }

    /// nats-server's `setConsumerConfigDefaults` then `checkConsumerCfg`
    /// (the server limits are unset; pedantic mode refuses adjusting).
    pub fn normalize(mut self, stream: &StreamConfig, pedantic: bool) -> Result<Self, ApiError> {
        self.set_defaults(stream, pedantic)?;
        self.check(stream)?;
        Ok(self)
    }

    fn set_defaults(&mut self, stream: &StreamConfig, pedantic: bool) -> Result<(), ApiError> {
        let pedantic_err = |m: &str| Err(ApiError::new(400, 10157, format!("pedantic mode: {m}")));
        if self.max_deliver == 0 || self.max_deliver < -1 {
            if pedantic && self.max_deliver < -1 {
                return pedantic_err("max_deliver must be set to -1");
            }
            self.max_deliver = -1;
        }
        let clamp = |v: &mut i64, floor: i64, what: &str| -> Result<(), ApiError> {
            if *v < floor {
                if pedantic {
                    return Err(ApiError::new(400, 10157, format!("pedantic mode: {what}")));
                }
                *v = if floor == 0 { 0 } else { -1 };
            }
            Ok(())
        };
        clamp(&mut self.max_waiting, 0, "max_waiting must not be negative")?;
        clamp(
            &mut self.max_ack_pending,
            -1,
            "max_ack_pending must be set to -1",
        )?;
        clamp(
            &mut self.max_request_batch,
            0,
            "max_batch must not be negative",
        )?;
        clamp(
            &mut self.max_request_expires,
            0,
            "max_expires must not be negative",
        )?;
        clamp(
            &mut self.max_request_max_bytes,
            0,
            "max_bytes must not be negative",
        )?;
        clamp(
            &mut self.heartbeat,
            0,
            "idle_heartbeat must not be negative",
        )?;
        clamp(
            &mut self.inactive_threshold,
            0,
            "inactive_threshold must not be negative",
        )?;
        clamp(
            &mut self.pinned_ttl,
            0,
            "priority_timeout must not be negative",
        )?;
        if self.deliver_subject.is_empty() && self.max_waiting == 0 {
            self.max_waiting = DEFAULT_MAX_WAITING;
        }
        if self.ack_wait == 0 && matches!(self.ack_policy, AckPolicy::Explicit | AckPolicy::All) {
            self.ack_wait = DEFAULT_ACK_WAIT_NS;
        }
        if let Some(first) = self.backoff.first() {
            if pedantic && self.ack_wait != *first {
                return pedantic_err("first backoff value has to equal batch AckWait");
            }
            self.ack_wait = *first;
        }
        let limits = &stream.consumer_limits;
        if self.max_ack_pending == 0 {
            if pedantic && limits.max_ack_pending > 0 {
                return pedantic_err(
                    "max_ack_pending must be set if it's configured in stream limits",
                );
            }
            self.max_ack_pending = limits.max_ack_pending;
        }
        if self.inactive_threshold == 0 {
            if pedantic && limits.inactive_threshold > 0 {
                return pedantic_err(
                    "inactive_threshold must be set if it's configured in stream limits",
                );
            }
            self.inactive_threshold = limits.inactive_threshold;
        }
        if self.max_ack_pending == 0 && self.ack_policy != AckPolicy::None {
            self.max_ack_pending = DEFAULT_MAX_ACK_PENDING;
        }
        if self.priority_policy == PriorityPolicy::PinnedClient && self.pinned_ttl == 0 {
            self.pinned_ttl = DEFAULT_PINNED_TTL_NS;
        }
        if self.ack_policy == AckPolicy::FlowControl && !pedantic {
            self.flow_control = true;
            self.heartbeat = 1_000_000_000;
        }
        if !self.is_durable() && self.inactive_threshold == 0 {
            self.inactive_threshold = DEFAULT_EPHEMERAL_INACTIVE_NS;
        }
        Ok(())
    }

    fn check(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        if !self.name.is_empty() && !crate::config::is_valid_stream_name(&self.name) {
            return Err(invalid(
                "consumer name can not contain '.', '*', '>', '\\', '/'",
            ));
        }
        if !self.durable.is_empty() && !crate::config::is_valid_stream_name(&self.durable) {
            return Err(invalid(
                "consumer durable name can not contain '.', '*', '>', '\\', '/'",
            ));
        }
        if self.replicas > 0 && self.replicas > stream.num_replicas {
            return Err(ApiError::new(
                400,
                10126,
                "consumer config replica count exceeds parent stream",
            ));
        }
        if self.replicas < 0 {
            return Err(ApiError::new(
                400,
                10133,
                "replicas count cannot be negative",
            ));
        }
        if stream.retention != RetentionPolicy::Limits
            && self.replicas != 0
            && self.replicas != stream.num_replicas
        {
            return Err(ApiError::new(
                400,
                10134,
                "consumer config replicas must match interest retention stream's replicas",
            ));
        }
        if self.backoff.iter().any(|b| *b < 0) {
            return Err(ApiError::new(
                400,
                10184,
                "consumer backoff needs to be positive",
            ));
        }
        if self.ack_wait < 0 {
            return Err(ApiError::new(
                400,
                10183,
                "consumer ack wait needs to be positive",
            ));
        }
        if self.ack_policy == AckPolicy::FlowControl {
            self.check_ack_flow_control()?;
        }
        let lbo = self.backoff.len() as i64;
        if lbo > 0 && self.max_deliver != -1 && lbo > self.max_deliver {
            return Err(ApiError::new(
                400,
                10116,
                "max deliver is required to be > length of backoff values",
            ));
        }
        if self.description.len() > MAX_DESCRIPTION_LEN {
            return Err(ApiError::new(
                400,
                10107,
                format!(
                    "consumer description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
                ),
            ));
        }
        if self.is_push() {
            self.check_push(stream)?;
        } else {
            self.check_pull(stream)?;
        }
        if stream.consumer_limits.max_ack_pending > 0
            && self.max_ack_pending > stream.consumer_limits.max_ack_pending
        {
            return Err(ApiError::new(
                400,
                10121,
                format!(
                    "consumer max ack pending exceeds system limit of {}",
                    stream.consumer_limits.max_ack_pending
                ),
            ));
        }
        if stream.consumer_limits.inactive_threshold > 0
            && self.inactive_threshold > stream.consumer_limits.inactive_threshold
        {
            return Err(ApiError::new(
                400,
                10153,
                format!(
                    "consumer inactive threshold exceeds system limit of {}",
                    go_duration(stream.consumer_limits.inactive_threshold)
                ),
            ));
        }
        if self.direct {
            if !self.is_push() {
                return Err(ApiError::new(
                    400,
                    10090,
                    "consumer direct requires a push based consumer",
                ));
            }
            if self.is_durable() {
                return Err(ApiError::new(
                    400,
                    10091,
                    "consumer direct requires an ephemeral consumer",
                ));
            }
        }
        self.check_filters()?;
        self.check_start()?;
        if !self.sample_frequency.is_empty() {
            let s = self.sample_frequency.trim_end_matches('%');
            match s.parse::<i64>() {
                Ok(v) if v >= 0 => {}
                Ok(_) => {
                    return Err(ApiError::new(
                        400,
                        10095,
                        "failed to parse consumer sampling configuration: %!w(<nil>)",
                    ));
                }
                Err(_) => {
                    return Err(ApiError::new(
                        400,
                        10095,
                        format!(
                            "failed to parse consumer sampling configuration: strconv.Atoi: \
                             parsing {s:?}: invalid syntax"
                        ),
                    ));
                }
            }
        }
        if self.flow_control && self.heartbeat == 0 {
            return Err(ApiError::new(
                400,
                10108,
                "consumer with flow control also needs heartbeats",
            ));
        }
        if !self.durable.is_empty() && !self.name.is_empty() && self.name != self.durable {
            return Err(ApiError::new(
                400,
                10132,
                "Consumer Durable and Name have to be equal if both are provided",
            ));
        }
        let meta_len: usize = self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if meta_len > MAX_METADATA_LEN {
            return Err(ApiError::new(
                400,
                10135,
                format!(
                    "consumer metadata exceeds maximum size of {}KB",
                    MAX_METADATA_LEN / 1024
                ),
            ));
        }
        self.check_priority()
    }

    fn check_ack_flow_control(&self) -> Result<(), ApiError> {
        if !self.is_push() {
            return Err(ApiError::new(
                400,
                10218,
                "flow control ack policy requires a push based consumer",
            ));
        }
        if !self.flow_control {
            return Err(ApiError::new(
                400,
                10219,
                "flow control ack policy requires flow control",
            ));
        }
        if self.heartbeat != 1_000_000_000 {
            return Err(invalid("flow control ack policy heartbeat needs to be 1s"));
        }
        if self.max_ack_pending <= 0 {
            return Err(ApiError::new(
                400,
                10220,
                "flow control ack policy requires max ack pending",
            ));
        }
        if self.ack_wait != 0 || !self.backoff.is_empty() {
            return Err(ApiError::new(
                400,
                10221,
                "flow control ack policy requires unset ack wait",
            ));
        }
        if self.max_deliver > 0 {
            return Err(ApiError::new(
                400,
                10222,
                "flow control ack policy requires unset max deliver",
            ));
        }
        Ok(())
    }

    fn check_push(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        if subject::has_wildcard(&self.deliver_subject) {
            return Err(ApiError::new(
                400,
                10079,
                "consumer deliver subject has wildcards",
            ));
        }
        if !subject::is_valid_subject(&self.deliver_subject) {
            return Err(ApiError::new(
                400,
                10112,
                "invalid push consumer deliver subject",
            ));
        }
        if stream
            .subjects
            .iter()
            .any(|s| subject::matches(s, &self.deliver_subject))
        {
            return Err(ApiError::new(
                400,
                10081,
                "consumer deliver subject forms a cycle",
            ));
        }
        if self.max_waiting != 0 {
            return Err(ApiError::new(
                400,
                10080,
                "consumer in push mode can not set max waiting",
            ));
        }
        if self.max_ack_pending > 0 && self.ack_policy == AckPolicy::None {
            return Err(ApiError::new(
                400,
                10082,
                "consumer requires ack policy for max ack pending",
            ));
        }
        if self.heartbeat > 0 && self.heartbeat < MIN_HEARTBEAT_NS {
            return Err(ApiError::new(
                400,
                10083,
                "consumer idle heartbeat needs to be >= 100ms",
            ));
        }
        Ok(())
    }

    fn check_pull(&self, stream: &StreamConfig) -> Result<(), ApiError> {
        if self.ack_policy == AckPolicy::None && stream.retention == RetentionPolicy::Workqueue {
            return Err(ApiError::new(
                400,
                10084,
                "consumer in pull mode requires explicit ack policy on workqueue stream",
            ));
        }
        if self.rate_limit > 0 {
            return Err(ApiError::new(
                400,
                10086,
                "consumer in pull mode can not have rate limit set",
            ));
        }
        if self.max_waiting < 0 {
            return Err(ApiError::new(
                400,
                10087,
                "consumer max waiting needs to be positive",
            ));
        }
        if self.heartbeat > 0 {
            return Err(ApiError::new(
                400,
                10088,
                "consumer idle heartbeat requires a push based consumer",
            ));
        }
        if self.flow_control {
            return Err(ApiError::new(
                400,
                10089,
                "consumer flow control requires a push based consumer",
            ));
        }
        if self.max_request_batch < 0 {
            return Err(ApiError::new(
                400,
                10114,
                "consumer max request batch needs to be > 0",
            ));
        }
        if self.max_request_expires != 0 && self.max_request_expires < MIN_MAX_EXPIRES_NS {
            return Err(ApiError::new(
                400,
                10115,
                "consumer max request expires needs to be >= 1ms",
            ));
        }
        Ok(())
    }

    fn check_filters(&self) -> Result<(), ApiError> {
        if !self.filter_subject.is_empty() && !self.filter_subjects.is_empty() {
            return Err(ApiError::new(
                400,
                10136,
                "consumer cannot have both FilterSubject and FilterSubjects specified",
            ));
        }
        if !self.filter_subject.is_empty() && !subject::is_valid_filter(&self.filter_subject) {
            return Err(invalid("invalid subject"));
        }
        if self.filter_subjects.iter().any(String::is_empty) {
            return Err(ApiError::new(
                400,
                10139,
                "consumer filter in FilterSubjects cannot be empty",
            ));
        }
        let filters = self.filters();
        for (i, a) in filters.iter().enumerate() {
            if !subject::is_valid_filter(a) {
                return Err(invalid("invalid subject"));
            }
            for (j, b) in filters.iter().enumerate() {
                if i != j && subject::is_subset(a, b) {
                    return Err(ApiError::new(
                        400,
                        10138,
                        "consumer subject filters cannot overlap",
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_start(&self) -> Result<(), ApiError> {
        let bad = |dp: &str, start: &str| {
            Err(policy(format!(
                "consumer delivery policy is deliver {dp}, but optional start {start} is also set"
            )))
        };
        let not_set = |dp: &str, what: &str| {
            Err(policy(format!(
                "consumer delivery policy is deliver {dp}, but optional {what} is not set"
            )))
        };
        let (seq, time) = (self.opt_start_seq > 0, self.opt_start_time.is_some());
        match self.deliver_policy {
            DeliverPolicy::All | DeliverPolicy::Last | DeliverPolicy::New => {
                let dp = match self.deliver_policy {
                    DeliverPolicy::All => "all",
                    DeliverPolicy::Last => "last",
                    _ => "new",
                };
                if seq {
                    return bad(dp, "sequence");
                }
                if time {
                    return bad(dp, "time");
                }
            }
            DeliverPolicy::LastPerSubject => {
                if seq {
                    return bad("last per subject", "sequence");
                }
                if time {
                    return bad("last per subject", "time");
                }
                if self.filters().is_empty() {
                    return not_set("last per subject", "filter subject");
                }
            }
            DeliverPolicy::ByStartSequence => {
                if !seq {
                    return not_set("by start sequence", "start sequence");
                }
                if time {
                    return bad("by start sequence", "time");
                }
            }
            DeliverPolicy::ByStartTime => {
                if !time {
                    return not_set("by start time", "start time");
                }
                if seq {
                    return bad("by start time", "start sequence");
                }
            }
        }
        Ok(())
    }

    fn check_priority(&self) -> Result<(), ApiError> {
        if self.priority_policy != PriorityPolicy::None {
            if self.is_push() {
                return Err(ApiError::new(
                    400,
                    10178,
                    "priority groups can not be used with push consumers",
                ));
            }
            if self.priority_groups.is_empty() {
                return Err(ApiError::new(
                    400,
                    10159,
                    "Setting PriorityPolicy requires at least one PriorityGroup to be set",
                ));
            }
            for g in &self.priority_groups {
                if g.is_empty() {
                    return Err(ApiError::new(
                        400,
                        10161,
                        "Group name cannot be an empty string",
                    ));
                }
                if !valid_group_name(g) {
                    return Err(ApiError::new(
                        400,
                        10162,
                        "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not \
                         exceed 16 characters",
                    ));
                }
            }
        } else {
            if !self.priority_groups.is_empty() {
                return Err(ApiError::new(
                    400,
                    10196,
                    "consumer can not have priority groups when policy is none",
                ));
            }
            if self.pinned_ttl > 0 {
                return Err(ApiError::new(
                    400,
                    10197,
                    "PinnedTTL cannot be set when PriorityPolicy is none",
                ));
            }
        }
        Ok(())
    }

    /// The checks nats-server runs against the stream (`addConsumer`):
    /// the work-queue rules. `others` are the stream's other consumers.
    /// (2.15.1 accepts filters outside the stream's subjects.)
    pub fn check_against_stream<'a>(
        &self,
        stream: &StreamConfig,
        others: impl Iterator<Item = &'a ConsumerConfig> + Clone,
    ) -> Result<(), ApiError> {
        if stream.retention == RetentionPolicy::Workqueue && !self.direct && !self.sourcing {
            if !matches!(
                self.ack_policy,
                AckPolicy::Explicit | AckPolicy::FlowControl
            ) {
                return Err(ApiError::new(
                    400,
                    10098,
                    "workqueue stream requires explicit ack",
                ));
            }
            if self.deliver_policy != DeliverPolicy::All {
                return Err(ApiError::new(
                    400,
                    10101,
                    "consumer must be deliver all on workqueue stream",
                ));
            }
            self.check_work_queue_unique(others)?;
        }
        Ok(())
    }

    /// Work-queue streams: one unfiltered consumer, or filtered ones whose
    /// filters never overlap (`partitionUnique`).
    pub fn check_work_queue_unique<'a>(
        &self,
        others: impl Iterator<Item = &'a ConsumerConfig> + Clone,
    ) -> Result<(), ApiError> {
        let mine = self.filters();
        if mine.is_empty() && others.clone().next().is_some() {
            return Err(ApiError::new(
                400,
                10099,
                "multiple non-filtered consumers not allowed on workqueue stream",
            ));
        }
        for o in others {
            let theirs = o.filters();
            if theirs.is_empty() {
                return Err(ApiError::new(
                    400,
                    10099,
                    "multiple non-filtered consumers not allowed on workqueue stream",
                ));
            }
            if mine
                .iter()
                .any(|a| theirs.iter().any(|b| subject::overlaps(a, b)))
            {
                return Err(ApiError::new(
                    400,
                    10100,
                    "filtered consumer not unique on workqueue stream",
                ));
            }
        }
        Ok(())
    }

    /// `checkNewConsumerConfig`: what an update may change. `Err` holds
    /// the text nats-server wraps in 500/10012.
    pub fn check_update(&self, new: &ConsumerConfig) -> Result<(), String> {
        if self == new {
            return Ok(());
        }
        let same = |changed: bool, what: &str| {
            if changed {
                Err(format!("{what} can not be updated"))
            } else {
                Ok(())
            }
        };
        same(self.deliver_policy != new.deliver_policy, "deliver policy")?;
        same(self.memory_storage != new.memory_storage, "storage type")?;
        same(self.direct != new.direct, "direct")?;
        same(self.sourcing != new.sourcing, "sourcing")?;
        same(self.opt_start_seq != new.opt_start_seq, "start sequence")?;
        same(self.opt_start_time != new.opt_start_time, "start time")?;
        same(self.ack_policy != new.ack_policy, "ack policy")?;
        same(self.replay_policy != new.replay_policy, "replay policy")?;
        same(self.heartbeat != new.heartbeat, "heart beats")?;
        same(self.flow_control != new.flow_control, "flow control")?;
        if self.deliver_subject != new.deliver_subject {
            if self.deliver_subject.is_empty() {
                return Err("can not update pull consumer to push based".into());
            }
            if new.deliver_subject.is_empty() {
                return Err("can not update push consumer to pull based".into());
            }
        }
        same(self.max_waiting != new.max_waiting, "max waiting")?;
        let lbo = new.backoff.len() as i64;
        if lbo > 0 && new.max_deliver != -1 && lbo > new.max_deliver {
            return Err("max deliver is required to be > length of backoff values".into());
        }
        Ok(())
    }
}

/// Go's `time.Duration.String` for whole milliseconds and above (what the
/// errors that name a duration print).
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let mut n = ns.unsigned_abs();
    let mut out = String::new();
    if n < 1_000_000_000 {
        let (unit, div) = if n < 1_000 {
            ("ns", 1)
        } else if n < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac(n, div));
        out.push_str(unit);
    } else {
        let h = n / 3_600_000_000_000;
        n %= 3_600_000_000_000;
        let m = n / 60_000_000_000;
        n %= 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac(n, 1_000_000_000));
        out.push('s');
    }
    if neg { format!("-{out}") } else { out }
}

/// Go's `time.ParseDuration` for the units NATS clients send
/// (`ns us µs ms s m h`, fractions allowed, e.g. `1m30s`, `1.5s`).
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

fn frac(n: u64, div: u64) -> String {
    let whole = n / div;
    let rest = n % div;
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
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

/// A pull request (`MSG.NEXT` body): a bare batch size or this JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NextRequest {
    pub batch: i64,
    /// Nanoseconds; 0: never (until the batch is filled).
    pub expires: i64,
    pub max_bytes: i64,
    pub no_wait: bool,
    /// Nanoseconds.
    pub idle_heartbeat: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub min_pending: i64,
    pub min_ack_pending: i64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub priority: i64,
}

impl NextRequest {
    /// Parses a `MSG.NEXT` body as nats-server does: empty is a batch of
    /// one, a bare integer is the batch, else the JSON form.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let one = Self {
            batch: 1,
            ..Self::default()
        };
        if text.starts_with('{') {
            // Clients send `"group":null` and the like: absent, for Go.
            let mut v: serde_json::Value =
                serde_json::from_str(text).map_err(|_| go_struct_error(text))?;
            if let serde_json::Value::Object(map) = &mut v {
                map.retain(|_, v| !v.is_null());
            }
            let mut r: Self = serde_json::from_value(v).map_err(|_| go_struct_error(text))?;
            if r.batch <= 0 {
                r.batch = 1;
            }
            return Ok(r);
        }
        // A bare number is the batch; anything else (nats-server's
        // `strconv.Atoi` failing) a batch of one.
        match text.parse::<i64>() {
            Ok(n) if n > 0 => Ok(Self { batch: n, ..one }),
            _ => Ok(one),
        }
    }
}

/// Go's decoder error for a pull request field of the wrong JSON type
/// (`json: cannot unmarshal string into Go struct field .expires of type
/// time.Duration`), or serde's text for anything else.
fn go_struct_error(text: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return "unexpected end of JSON input".to_string();
    };
    for (field, v) in &map {
        let go_type = match field.as_str() {
            "expires" | "idle_heartbeat" => "time.Duration",
            "no_wait" => "bool",
            "group" | "id" => "string",
            "batch" | "max_bytes" | "priority" => "int",
            "min_pending" | "min_ack_pending" => "int64",
            _ => continue,
        };
        let ok = match go_type {
            "bool" => v.is_boolean(),
            "string" => v.is_string(),
            _ => v.is_i64(),
        };
        if !ok && !v.is_null() {
            let kind = match v {
                serde_json::Value::String(_) => "string",
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Array(_) => "array",
                serde_json::Value::Object(_) => "object",
                _ => "number",
            };
            return format!(
                "json: cannot unmarshal {kind} into Go struct field .{field} of type {go_type}"
            );
        }
    }
    "invalid request".to_string()
}

/// What an ack message says (the body published to a `$JS.ACK.` subject).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AckKind {
    /// `+ACK`, empty, or `+OK`.
    Ack,
    /// `-NAK` with an optional redelivery delay in ns.
    Nak { delay_ns: Option<i64> },
    /// `+WPI`: still working, restart the ack timer.
    Progress,
    /// `+NXT`: ack and send the next batch (the optional request).
    Next(Option<String>),
    /// `+TERM` with an optional reason: never deliver it again.
    Term(String),
}

impl AckKind {
    /// Parses an ack body; `None` for something that is not an ack.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(body).ok()?;
        if text.is_empty() || text == "+ACK" || text == "+OK" {
            return Some(Self::Ack);
        }
        if let Some(rest) = text.strip_prefix("-NAK") {
            let rest = rest.trim();
            if rest.is_empty() {
                return Some(Self::Nak { delay_ns: None });
            }
            #[derive(Deserialize)]
            struct Delay {
                delay: i64,
            }
            if let Ok(d) = serde_json::from_str::<Delay>(rest) {
                return Some(Self::Nak {
                    delay_ns: Some(d.delay),
                });
            }
            return Some(Self::Nak {
                delay_ns: parse_go_duration(rest),
            });
        }
        if text.starts_with("+WPI") {
            return Some(Self::Progress);
        }
        if let Some(rest) = text.strip_prefix("+NXT") {
            let rest = rest.trim();
            return Some(Self::Next((!rest.is_empty()).then(|| rest.to_string())));
        }
        if let Some(rest) = text.strip_prefix("+TERM") {
            return Some(Self::Term(rest.trim().to_string()));
        }
        if text.starts_with("+ACK") {
            return Some(Self::Ack);
        }
        None
    }
}

/// The parts of a `$JS.ACK.` reply subject: v1
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`
/// or v2 `$JS.ACK.<domain>.<acc hash>.<stream>.<consumer>.<delivered>.
/// <sseq>.<cseq>.<ts>.<pending>[.<token>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckSubject {
    pub stream: String,
    pub consumer: String,
    pub delivered: u64,
    pub stream_seq: u64,
    pub consumer_seq: u64,
    pub ts_ns: i64,
    pub pending: u64,
}

/// Prefix of every ack subject.
pub const ACK_PREFIX: &str = "$JS.ACK.";

impl AckSubject {
    pub fn parse(subj: &str) -> Option<Self> {
        let rest = subj.strip_prefix(ACK_PREFIX)?;
        let t: Vec<&str> = rest.split('.').collect();
        let (stream, consumer, nums) = match t.len() {
            7 => (t[0], t[1], &t[2..7]),
            9 | 10 => (t[2], t[3], &t[4..9]),
            _ => return None,
        };
        let n = |i: usize| nums[i].parse::<u64>().ok();
        Some(Self {
            stream: stream.to_string(),
            consumer: consumer.to_string(),
            delivered: n(0)?,
            stream_seq: n(1)?,
            consumer_seq: n(2)?,
            ts_ns: nums[3].parse().ok()?,
            pending: n(4)?,
        })
    }

    pub fn render(&self) -> String {
        format!(
            "{ACK_PREFIX}{}.{}.{}.{}.{}.{}.{}",
            self.stream,
            self.consumer,
            self.delivered,
            self.stream_seq,
            self.consumer_seq,
            self.ts_ns,
            self.pending
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamConfig {
        StreamConfig::named("S", &["s.>"]).unwrap_or_default()
    }

    #[test]
    fn defaults_match_nats_server() {
        let c = ConsumerConfig::default()
            .normalize(&stream(), false)
            .unwrap_or_default();
        assert_eq!(c.max_deliver, -1);
        assert_eq!(c.max_waiting, DEFAULT_MAX_WAITING);
        assert_eq!(c.ack_wait, 0);
        assert_eq!(c.max_ack_pending, 0);
        let c = ConsumerConfig {
            ack_policy: AckPolicy::Explicit,
            ..ConsumerConfig::default()
        }
        .normalize(&stream(), false)
        .unwrap_or_default();
        assert_eq!(c.ack_wait, DEFAULT_ACK_WAIT_NS);
        assert_eq!(c.max_ack_pending, DEFAULT_MAX_ACK_PENDING);
        let json = serde_json::to_value(&c).unwrap_or_default();
        assert_eq!(json["ack_policy"], "explicit");
        assert_eq!(json["deliver_policy"], "all");
        assert_eq!(json["replay_policy"], "instant");
        assert_eq!(json["num_replicas"], 0);
        assert!(json.get("durable_name").is_none());
    }

    #[test]
    fn refusals_carry_nats_server_codes() {
        let code = |c: ConsumerConfig| c.normalize(&stream(), false).err().map(|e| e.err_code);
        assert_eq!(
            code(ConsumerConfig {
                deliver_policy: DeliverPolicy::ByStartSequence,
                ..Default::default()
            }),
            Some(10094)
        );
        assert_eq!(
            code(ConsumerConfig {
                filter_subject: "s.a".into(),
                filter_subjects: vec!["s.b".into()],
                ..Default::default()
            }),
            Some(10136)
        );
        assert_eq!(
            code(ConsumerConfig {
                filter_subjects: vec!["s.>".into(), "s.a".into()],
                ..Default::default()
            }),
            Some(10138)
        );
        assert_eq!(
            code(ConsumerConfig {
                heartbeat: 1_000_000_000,
                ..Default::default()
            }),
            Some(10088)
        );
    }

    #[test]
    fn next_request_forms() {
        assert_eq!(NextRequest::parse(b"5").map(|r| r.batch), Ok(5));
        assert_eq!(NextRequest::parse(b"").map(|r| r.batch), Ok(1));
        let r = NextRequest::parse(br#"{"batch":3,"no_wait":true}"#).unwrap_or_default();
        assert_eq!((r.batch, r.no_wait), (3, true));
        assert_eq!(NextRequest::parse(b"abc").map(|r| r.batch), Ok(1));
        assert_eq!(NextRequest::parse(b"0").map(|r| r.batch), Ok(1));
        assert_eq!(
            NextRequest::parse(br#"{"batch":-1}"#).map(|r| r.batch),
            Ok(1)
        );
        assert!(NextRequest::parse(br#"{"expires":"x"}"#).is_err());
        assert_eq!(
            NextRequest::parse(br#"{"batch":2,"group":null,"min_pending":null}"#).map(|r| r.batch),
            Ok(2)
        );
    }

    #[test]
    fn ack_bodies_and_subjects() {
        assert_eq!(AckKind::parse(b""), Some(AckKind::Ack));
        assert_eq!(AckKind::parse(b"+ACK"), Some(AckKind::Ack));
        assert_eq!(
            AckKind::parse(br#"-NAK {"delay":1000}"#),
            Some(AckKind::Nak {
                delay_ns: Some(1000)
            })
        );
        assert_eq!(
            AckKind::parse(b"+TERM why"),
            Some(AckKind::Term("why".into()))
        );
        let s = "$JS.ACK.S.C.2.10.7.1700000000000000000.3";
        let a = AckSubject::parse(s);
        assert_eq!(
            a.as_ref().map(|a| (a.stream_seq, a.consumer_seq)),
            Some((10, 7))
        );
        assert_eq!(a.map(|a| a.render()).as_deref(), Some(s));
        assert!(
            AckSubject::parse("$JS.ACK._.hash.S.C.1.2.3.4.5.tok").is_some_and(|a| a.stream == "S")
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(120_000_000_000), "2m0s");
        assert_eq!(go_duration(5_000_000), "5ms");
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration("250ms"), Some(250_000_000));
        assert_eq!(parse_go_duration("x"), None);
    }
}
