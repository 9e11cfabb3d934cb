//! nats-server's consumer config defaults and checks
//! (`setConsumerConfigDefaults`, `checkConsumerCfg`,
//! `checkNewConsumerConfig`, the work-queue rules of `addConsumer`).

use super::*;
use crate::config::{RetentionPolicy, StreamConfig};
use crate::error::ApiError;
use crate::subject;

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
    /// `sample_freq` as a percentage (`"50%"` or `"50"`); 0 when unset.
    pub fn sample_percent(&self) -> i64 {
        self.sample_frequency
            .trim_end_matches('%')
            .parse::<i64>()
            .unwrap_or(0)
    }

    /// nats-server's `setStaticConsumerMetadata`: the API level the
    /// features used need (`_nats.req.level`), stored with the config.
    pub fn set_static_metadata(&mut self) {
        crate::config::remove_dynamic_metadata(&mut self.metadata);
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
        self.metadata.insert(
            crate::config::META_REQUIRED_LEVEL.to_string(),
            level.to_string(),
        );
    }

    /// What create and info responses show: the server's version and API
    /// level next to the stored keys.
    pub fn with_dynamic_metadata(mut self) -> Self {
        crate::config::add_dynamic_metadata(&mut self.metadata);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::{
        AckPolicy, DEFAULT_ACK_WAIT_NS, DEFAULT_MAX_ACK_PENDING, DEFAULT_MAX_WAITING, DeliverPolicy,
    };

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
}
