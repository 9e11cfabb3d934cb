//! Stream configuration, state and info JSON with nats-server's field names,
//! defaults and validation (nats-server `server/stream.go`
//! `checkStreamCfg` and `configUpdateCheck`).
//!
//! Deserialisation is lenient (every field defaults, unknown fields are
//! ignored); [`StreamConfig::normalize`] then applies the server's defaults
//! and rejects what it rejects, with the same error text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::rfc3339;
use crate::subject;

/// Default `duplicate_window`: two minutes (`StreamDefaultDuplicatesWindow`).
pub const DEFAULT_DUPLICATE_WINDOW_NS: i64 = 120_000_000_000;
/// Smallest non-zero `max_age` and `duplicate_window`.
pub const MIN_WINDOW_NS: i64 = 100_000_000;
/// `StreamMaxReplicas`.
pub const MAX_REPLICAS: i64 = 5;
/// `JSMaxNameLen`.
pub const MAX_NAME_LEN: usize = 255;
/// `JSMaxDescriptionLen`.
pub const MAX_DESCRIPTION_LEN: usize = 4 * 1024;
/// `JSMaxMetadataLen`, over the sum of key and value lengths.
pub const MAX_METADATA_LEN: usize = 128 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RetentionPolicy {
    #[default]
    Limits,
    Interest,
    Workqueue,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiscardPolicy {
    #[default]
    Old,
    New,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageType {
    #[default]
    File,
    Memory,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    S2,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PersistMode {
    #[default]
    Default,
    Async,
}

/// nats-server's enum decoding: one exact JSON string, else the error its
/// `UnmarshalJSON` returns (`can not unmarshal "\"bogus\""`), which the
/// API then reports as `invalid JSON: ...`.
fn enum_from_json<'de, D, T>(d: D, pick: impl Fn(&str) -> Option<T>) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let v = serde_json::Value::deserialize(d)?;
    v.as_str()
        .and_then(pick)
        .ok_or_else(|| serde::de::Error::custom(format!("can not unmarshal {:?}", v.to_string())))
}

impl<'de> Deserialize<'de> for RetentionPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum_from_json(d, |s| match s {
            "limits" => Some(Self::Limits),
            "interest" => Some(Self::Interest),
            "workqueue" => Some(Self::Workqueue),
            _ => None,
        })
    }
}

impl<'de> Deserialize<'de> for DiscardPolicy {
    /// Case-insensitive, as in nats-server.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum_from_json(d, |s| match s.to_ascii_lowercase().as_str() {
            "old" => Some(Self::Old),
            "new" => Some(Self::New),
            _ => None,
        })
    }
}

impl<'de> Deserialize<'de> for StorageType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum_from_json(d, |s| match s {
            "file" => Some(Self::File),
            "memory" => Some(Self::Memory),
            _ => None,
        })
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match String::deserialize(d)?.as_str() {
            "none" => Ok(Self::None),
            "s2" => Ok(Self::S2),
            _ => Err(serde::de::Error::custom("unknown compression algorithm")),
        }
    }
}

impl<'de> Deserialize<'de> for PersistMode {
    /// `""` is the default mode, as in nats-server.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum_from_json(d, |s| match s {
            "default" | "" => Some(Self::Default),
            "async" => Some(Self::Async),
            _ => None,
        })
    }
}

/// Defaults for consumers created on the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerLimits {
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub inactive_threshold: i64,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub max_ack_pending: i64,
}

/// `StreamConfig` exactly as nats-server's JSON. Durations are nanoseconds.
/// Mirror, sources, placement, transforms and republish are carried through
/// verbatim as JSON (jetraft does not act on them yet).
///
/// Unknown fields are refused, as nats-server 2.15 decodes API bodies
/// strictly (400/10025 `json: unknown field "..."`); the field list is
/// 2.15.1's, checked against it by `tests/differential.rs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    pub retention: RetentionPolicy,
    pub max_consumers: i64,
    pub max_msgs: i64,
    pub max_bytes: i64,
    pub max_age: i64,
    pub max_msgs_per_subject: i64,
    pub max_msg_size: i64,
    pub discard: DiscardPolicy,
    pub storage: StorageType,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub no_ack: bool,
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub duplicate_window: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<serde_json::Value>>,
    pub compression: Compression,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub first_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<serde_json::Value>,
    pub allow_direct: bool,
    pub mirror_direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    pub sealed: bool,
    pub deny_delete: bool,
    pub deny_purge: bool,
    pub allow_rollup_hdrs: bool,
    pub consumer_limits: ConsumerLimits,
    pub allow_msg_ttl: bool,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub subject_delete_marker_ttl: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_counter: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_atomic: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_schedules: bool,
    #[serde(skip_serializing_if = "is_default_persist")]
    pub persist_mode: PersistMode,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_batched: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Part of nats-server's create/update request, not of the config: it
    /// asks the server to refuse rather than adjust a config. Accepted, not
    /// acted on yet (defaults apply as without it), and cleared by
    /// [`StreamConfig::normalize`] so it never reaches the catalog.
    #[serde(skip_serializing)]
    pub pedantic: bool,
}

impl Default for StreamConfig {
    /// What a request body that omits everything decodes to (Go zero values);
    /// call [`StreamConfig::normalize`] to get the server's defaults.
    fn default() -> Self {
        Self {
            name: String::new(),
            description: None,
            subjects: Vec::new(),
            retention: RetentionPolicy::Limits,
            max_consumers: 0,
            max_msgs: 0,
            max_bytes: 0,
            max_age: 0,
            max_msgs_per_subject: 0,
            max_msg_size: 0,
            discard: DiscardPolicy::Old,
            storage: StorageType::File,
            num_replicas: 0,
            no_ack: false,
            duplicate_window: 0,
            placement: None,
            mirror: None,
            sources: None,
            compression: Compression::None,
            first_seq: 0,
            subject_transform: None,
            republish: None,
            allow_direct: false,
            mirror_direct: false,
            discard_new_per_subject: false,
            sealed: false,
            deny_delete: false,
            deny_purge: false,
            allow_rollup_hdrs: false,
            consumer_limits: ConsumerLimits::default(),
            allow_msg_ttl: false,
            subject_delete_marker_ttl: 0,
            allow_msg_counter: false,
            allow_atomic: false,
            allow_msg_schedules: false,
            persist_mode: PersistMode::Default,
            allow_batched: false,
            metadata: BTreeMap::new(),
            pedantic: false,
        }
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
fn is_default_persist(p: &PersistMode) -> bool {
    *p == PersistMode::Default
}

fn invalid(msg: impl std::fmt::Display) -> ApiError {
    ApiError::stream_config_invalid(msg)
}

/// nats-server's `isValidAssetName`: non-empty, no whitespace, `.`, `*`,
/// `>`, `\` or `/`.
pub fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(|c| {
            matches!(
                c,
                ' ' | '\t' | '\r' | '\n' | '\x0c' | '.' | '*' | '>' | '\\' | '/'
            )
        })
}

/// Metadata key: the API level a server needs to run the stream (stored).
pub const META_REQUIRED_LEVEL: &str = "_nats.req.level";
/// Metadata key: version of the answering server (responses only).
pub const META_SERVER_VERSION: &str = "_nats.ver";
/// Metadata key: API level of the answering server (responses only).
pub const META_SERVER_LEVEL: &str = "_nats.level";

/// Adds the per-response keys (server version and API level) to a
/// stream's or consumer's metadata.
pub fn add_dynamic_metadata(metadata: &mut BTreeMap<String, String>) {
    metadata.insert(
        META_SERVER_VERSION.to_string(),
        crate::api::NATS_VERSION.to_string(),
    );
    metadata.insert(
        META_SERVER_LEVEL.to_string(),
        crate::api::API_LEVEL.to_string(),
    );
}

/// Drops the per-response keys, which must never be stored.
pub fn remove_dynamic_metadata(metadata: &mut BTreeMap<String, String>) {
    metadata.remove(META_SERVER_VERSION);
    metadata.remove(META_SERVER_LEVEL);
}

impl StreamConfig {
    /// nats-server's `setStaticStreamMetadata`, run on create and update:
    /// records `_nats.req.level` (the features used decide it) and drops the
    /// per-response keys, which must never be stored.
    pub fn set_static_metadata(&mut self) {
        self.remove_dynamic_metadata();
        let mut level = 0;
        if self.allow_msg_ttl || self.subject_delete_marker_ttl > 0 {
            level = 1;
        }
        if self.allow_msg_counter
            || self.allow_atomic
            || self.allow_msg_schedules
            || self.persist_mode == PersistMode::Async
        {
            level = 2;
        }
        if self.allow_batched {
            level = 4;
        }
        self.metadata
            .insert(META_REQUIRED_LEVEL.to_string(), level.to_string());
    }

    /// nats-server's `setDynamicStreamMetadata`: what create, update and
    /// info responses show (not `STREAM.LIST`).
    pub fn with_dynamic_metadata(mut self) -> Self {
        add_dynamic_metadata(&mut self.metadata);
        self
    }

    pub fn remove_dynamic_metadata(&mut self) {
        remove_dynamic_metadata(&mut self.metadata);
    }

    /// A config with just a name and subjects, normalised.
    pub fn named(name: &str, subjects: &[&str]) -> Result<Self, ApiError> {
        Self {
            name: name.to_string(),
            subjects: subjects.iter().map(|s| s.to_string()).collect(),
            ..Self::default()
        }
        .normalize()
    }

    /// The checks `STREAM.CREATE` runs before the general validation (after
    /// the gateway compared the name in the subject, 10056), then
    /// [`normalize`](Self::normalize).
    pub fn normalize_for_create(self) -> Result<Self, ApiError> {
        if self.name.contains(['\\', '/']) {
            return Err(ApiError::stream_name_contains_path_separators());
        }
        if self.sealed {
            return Err(invalid("stream configuration for create can not be sealed"));
        }
        if self.mirror_direct && self.mirror.is_none() {
            return Err(invalid("stream has no mirror but does have mirror direct"));
        }
        let cfg = self.normalize()?;
        cfg.refuse_unhonoured()?;
        Ok(cfg)
    }

    /// Refuses what jetraft accepts on the wire but does not act on yet,
    /// with nats-server's invalid-config error (500/10052) naming it,
    /// instead of storing a setting that would silently do nothing. Runs
    /// after nats-server's own validation, so an invalid config gets the
    /// error nats-server gives. Placement tags no node has get nats-server's
    /// answer for them (no suitable peers): jetraft nodes have no tags.
    pub fn refuse_unhonoured(&self) -> Result<(), ApiError> {
        let tags = self
            .placement
            .as_ref()
            .and_then(|p| p.get("tags"))
            .and_then(|t| t.as_array())
            .is_some_and(|t| !t.is_empty());
        if tags {
            return Err(ApiError::no_suitable_peers());
        }
        let unhonoured = [
            (self.mirror.is_some(), "mirrors (mirror)"),
            (
                self.sources.as_ref().is_some_and(|s| !s.is_empty()),
                "sources (sources)",
            ),
            (self.republish.is_some(), "republish (republish)"),
            (
                self.subject_transform.is_some(),
                "subject transforms (subject_transform)",
            ),
            (
                self.subject_delete_marker_ttl > 0,
                "subject delete markers (subject_delete_marker_ttl)",
            ),
            (self.allow_msg_ttl, "per-message TTL (allow_msg_ttl)"),
            (self.allow_msg_counter, "counters (allow_msg_counter)"),
            (self.allow_atomic, "atomic batch publish (allow_atomic)"),
            (self.allow_batched, "batched publish (allow_batched)"),
            (
                self.allow_msg_schedules,
                "message schedules (allow_msg_schedules)",
            ),
        ];
        match unhonoured.iter().find(|(set, _)| *set) {
            Some((_, what)) => Err(invalid(format!("{what} is not supported by jetraft yet"))),
            None => Ok(()),
        }
    }

    /// Applies nats-server's defaults and validation (`checkStreamCfg`),
    /// returning the config the server would store or the error it sends.
    pub fn normalize(mut self) -> Result<Self, ApiError> {
        self.pedantic = false;
        if !is_valid_stream_name(&self.name) {
            return Err(invalid(
                "stream name is required and can not contain '.', '*', '>', '\\', '/'",
            ));
        }
        if self.name.len() > MAX_NAME_LEN {
            return Err(invalid(format!(
                "stream name is too long, maximum allowed is {MAX_NAME_LEN}"
            )));
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.len() > MAX_DESCRIPTION_LEN)
        {
            return Err(invalid(format!(
                "stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
            )));
        }
        let metadata_len: usize = self.metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
        if metadata_len > MAX_METADATA_LEN {
            return Err(invalid(format!(
                "stream metadata exceeds maximum size of {MAX_METADATA_LEN} bytes"
            )));
        }
        if self.num_replicas == 0 {
            self.num_replicas = 1;
        }
        if self.num_replicas > MAX_REPLICAS {
            return Err(invalid(format!("maximum replicas is {MAX_REPLICAS}")));
        }
        if self.num_replicas < 0 {
            return Err(ApiError::replicas_negative());
        }
        for limit in [
            &mut self.max_msgs,
            &mut self.max_msgs_per_subject,
            &mut self.max_bytes,
            &mut self.max_msg_size,
            &mut self.max_consumers,
        ] {
            if *limit == 0 || *limit < -1 {
                *limit = -1;
            }
        }
        if self.max_age < 0 {
            return Err(invalid("max age can not be negative"));
        }
        if self.max_age != 0 && self.max_age < MIN_WINDOW_NS {
            return Err(invalid("max age needs to be >= 100ms"));
        }
        if self.duplicate_window == 0 && self.mirror.is_none() && self.sources.is_none() {
            self.duplicate_window =
                if self.max_age != 0 && self.max_age < DEFAULT_DUPLICATE_WINDOW_NS {
                    self.max_age
                } else {
                    DEFAULT_DUPLICATE_WINDOW_NS
                };
        }
        if self.duplicate_window < 0 {
            return Err(invalid("duplicates window can not be negative"));
        }
        if self.max_age != 0 && self.duplicate_window > self.max_age {
            return Err(invalid("duplicates window can not be larger then max age"));
        }
        if self.duplicate_window > 0 && self.duplicate_window < MIN_WINDOW_NS {
            return Err(invalid("duplicates window needs to be >= 100ms"));
        }
        if self.deny_purge && self.allow_rollup_hdrs {
            return Err(invalid("roll-ups require the purge permission"));
        }
        self.check_counter_and_discard()?;
        self.check_markers_and_schedules()?;
        self.check_subjects()?;
        Ok(self)
    }

    fn check_counter_and_discard(&self) -> Result<(), ApiError> {
        if self.allow_msg_counter {
            if self.discard == DiscardPolicy::New {
                return Err(invalid("counter stream cannot use discard new"));
            }
            if self.allow_msg_ttl {
                return Err(invalid("counter stream cannot use message TTLs"));
            }
            if self.allow_msg_schedules {
                return Err(invalid("counter stream cannot use message schedules"));
            }
            if self.retention != RetentionPolicy::Limits {
                return Err(invalid("counter stream can only use limits retention"));
            }
        }
        self.check_discard_new_per_subject()
    }

    fn check_discard_new_per_subject(&self) -> Result<(), ApiError> {
        if self.discard_new_per_subject {
            if self.discard != DiscardPolicy::New {
                return Err(invalid(
                    "discard new per subject requires discard new policy to be set",
                ));
            }
            if self.max_msgs_per_subject <= 0 {
                return Err(invalid(
                    "discard new per subject requires max msgs per subject > 0",
                ));
            }
        }
        Ok(())
    }

    fn check_markers_and_schedules(&mut self) -> Result<(), ApiError> {
        if self.subject_delete_marker_ttl > 0 {
            if self.subject_delete_marker_ttl < 1_000_000_000 {
                return Err(invalid(
                    "subject delete marker TTL must be at least 1 second",
                ));
            }
            self.allow_msg_ttl = true;
            if !self.allow_rollup_hdrs {
                self.allow_rollup_hdrs = true;
                self.deny_purge = false;
            }
        } else if self.subject_delete_marker_ttl < 0 {
            return Err(invalid("subject delete marker TTL must not be negative"));
        }
        if self.allow_msg_schedules {
            if self.discard == DiscardPolicy::New {
                return Err(invalid("message scheduling cannot use discard new"));
            }
            if !self.allow_rollup_hdrs {
                self.allow_rollup_hdrs = true;
                self.deny_purge = false;
            }
        }
        if self.persist_mode == PersistMode::Async {
            if self.storage != StorageType::File {
                return Err(invalid(
                    "async persist mode is only supported on file storage",
                ));
            }
            if self.num_replicas > 1 {
                return Err(invalid(
                    "async persist mode is not supported on replicated streams",
                ));
            }
        }
        Ok(())
    }

    fn check_subjects(&mut self) -> Result<(), ApiError> {
        if self.mirror.is_some() {
            if self.first_seq > 0 {
                return Err(ApiError::new(
                    400,
                    10143,
                    "stream mirrors can not have first sequence configured",
                ));
            }
            if !self.subjects.is_empty() {
                return Err(ApiError::new(
                    400,
                    10034,
                    "stream mirrors can not contain subjects",
                ));
            }
            if self.sources.as_ref().is_some_and(|s| !s.is_empty()) {
                return Err(ApiError::new(
                    400,
                    10031,
                    "stream mirrors can not also contain other sources",
                ));
            }
        }
        if self.subjects.is_empty() {
            if self.mirror.is_none() && self.sources.as_ref().is_none_or(|s| s.is_empty()) {
                self.subjects.push(self.name.clone());
            }
            return Ok(());
        }
        for (i, subj) in self.subjects.iter().enumerate() {
            if !subject::is_valid_filter(subj) {
                return Err(invalid("invalid subject"));
            }
            if self.subjects[..i].contains(subj) {
                return Err(invalid("duplicate subjects detected"));
            }
            if subj == ">" {
                if !self.no_ack {
                    return Err(invalid("capturing all subjects requires no-ack to be true"));
                }
                if self.num_replicas != 1 {
                    return Err(invalid("capturing all subjects requires replicas of 1"));
                }
            }
            if !self.no_ack {
                let js_api = ["$JS.>", "$JSC.>", "$NRG.>"]
                    .iter()
                    .any(|ns| subject::overlaps(subj, ns));
                if js_api && !subject::is_subset(subj, "$JS.EVENT.>") {
                    return Err(invalid(
                        "subjects that overlap with jetstream api require no-ack to be true",
                    ));
                }
                if subject::overlaps(subj, "$SYS.>") && !subject::is_subset(subj, "$SYS.ACCOUNT.>")
                {
                    return Err(invalid(
                        "subjects that overlap with system api require no-ack to be true",
                    ));
                }
            }
            for other in &self.subjects[i + 1..] {
                // An exact duplicate overlaps too; nats-server reports it so.
                if subject::overlaps(other, subj) {
                    return Err(invalid(format!("subject {subj:?} overlaps with {other:?}")));
                }
            }
        }
        Ok(())
    }

    /// `STREAM.UPDATE`: validates `new` against the stored `old` config
    /// (`configUpdateCheck`) and returns the config to store.
    pub fn check_update(old: &StreamConfig, new: StreamConfig) -> Result<StreamConfig, ApiError> {
        let mut cfg = new.normalize()?;
        cfg.refuse_unhonoured()?;
        if cfg.name != old.name {
            return Err(invalid("stream configuration name must match original"));
        }
        if cfg.storage != old.storage {
            return Err(invalid(
                "stream configuration update can not change storage type",
            ));
        }
        if cfg.retention != old.retention
            && (old.retention == RetentionPolicy::Workqueue
                || cfg.retention == RetentionPolicy::Workqueue)
        {
            return Err(invalid(
                "stream configuration update can not change retention policy to/from workqueue",
            ));
        }
        if !cfg.sealed && old.sealed {
            return Err(invalid(
                "stream configuration update can not unseal a sealed stream",
            ));
        }
        if !cfg.deny_delete && old.deny_delete {
            return Err(invalid(
                "stream configuration update can not cancel deny message deletes",
            ));
        }
        if !cfg.deny_purge && old.deny_purge {
            return Err(invalid(
                "stream configuration update can not cancel deny purge",
            ));
        }
        if cfg.mirror.is_some() && cfg.mirror != old.mirror {
            return Err(ApiError::new(
                400,
                10055,
                "stream mirror configuration can not be updated",
            ));
        }
        if old.allow_msg_ttl && !cfg.allow_msg_ttl {
            return Err(invalid("message TTL status can not be disabled"));
        }
        if cfg.allow_msg_counter != old.allow_msg_counter {
            return Err(invalid(
                "stream configuration update can not change message counter setting",
            ));
        }
        if old.allow_msg_schedules && !cfg.allow_msg_schedules {
            return Err(invalid("message schedules can not be disabled"));
        }
        if old.persist_mode != cfg.persist_mode {
            return Err(invalid(
                "stream configuration update can not change persist mode",
            ));
        }
        if cfg.sealed {
            cfg.max_age = 0;
            cfg.discard = DiscardPolicy::New;
            cfg.deny_delete = true;
            cfg.deny_purge = true;
            cfg.allow_rollup_hdrs = false;
        }
        Ok(cfg)
    }
}

/// `state` of `STREAM.INFO`. Times are Unix ns, `0` = unset (see
/// [`rfc3339`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamState {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    #[serde(with = "rfc3339::serde_ns")]
    pub first_ts: i64,
    pub last_seq: u64,
    #[serde(with = "rfc3339::serde_ns")]
    pub last_ts: i64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub num_subjects: u64,
    /// Per-subject counts, only when `subjects_filter` was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects: Option<BTreeMap<String, u64>>,
    /// Sequences missing between first and last.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub num_deleted: u64,
    /// Only when `deleted_details` was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Vec<u64>>,
    pub consumer_count: u64,
}

/// One replica in [`ClusterInfo`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    pub name: String,
    pub current: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub offline: bool,
    /// Nanoseconds since last seen.
    pub active: i64,
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub lag: u64,
    /// nats-server's peer id (a hash of the node name).
    #[serde(default)]
    pub peer: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// The other replicas (not the leader), as nats-server lists them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<PeerInfo>,
}

/// `StreamInfo`: the body of create/update/info responses and the items
/// of `STREAM.LIST`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub config: StreamConfig,
    #[serde(with = "rfc3339::serde_ns")]
    pub created: i64,
    pub state: StreamState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    #[serde(with = "rfc3339::serde_ns")]
    pub ts: i64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(json: &str) -> StreamConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn settings_jetraft_does_not_act_on_are_refused_not_ignored() {
        let cases = [
            (r#""mirror":{"name":"O"}"#, "mirror"),
            (r#""sources":[{"name":"O"}]"#, "sources"),
            (r#""republish":{"src":">","dest":"x.>"}"#, "republish"),
            (
                r#""subject_transform":{"src":">","dest":"x.>"}"#,
                "subject_transform",
            ),
            (
                r#""subject_delete_marker_ttl":2000000000"#,
                "subject_delete_marker_ttl",
            ),
            (r#""allow_msg_ttl":true"#, "allow_msg_ttl"),
            (r#""allow_msg_counter":true"#, "allow_msg_counter"),
            (r#""allow_atomic":true"#, "allow_atomic"),
            (r#""allow_batched":true"#, "allow_batched"),
            (r#""allow_msg_schedules":true"#, "allow_msg_schedules"),
        ];
        let old = parse(r#"{"name":"S","subjects":["s.>"]}"#)
            .normalize()
            .unwrap();
        for (field, what) in cases {
            let subjects = if what == "mirror" {
                ""
            } else {
                r#","subjects":["s.>"]"#
            };
            let json = format!(r#"{{"name":"S"{subjects},{field}}}"#);
            for err in [
                parse(&json).normalize_for_create().unwrap_err(),
                StreamConfig::check_update(&old, parse(&json)).unwrap_err(),
            ] {
                assert_eq!((err.code, err.err_code), (500, 10052), "{json}");
                assert!(
                    err.description.contains(what) && err.description.contains("not supported"),
                    "{json}: {}",
                    err.description
                );
            }
        }
        // Placement on tags no node has: nats-server's no-suitable-peers.
        let err = parse(r#"{"name":"S","placement":{"tags":["ssd"]}}"#)
            .normalize_for_create()
            .unwrap_err();
        assert_eq!((err.code, err.err_code), (400, 10005));
        // nats-server's own validation still comes first.
        let err = parse(r#"{"name":"S","subject_delete_marker_ttl":5}"#)
            .normalize_for_create()
            .unwrap_err();
        assert!(
            err.description.contains("at least 1 second"),
            "{}",
            err.description
        );
    }

    #[test]
    fn floats_in_verbatim_fields_round_trip() {
        // Found by fuzz/ (target stream_config): serde_json's default float
        // parsing is not correctly rounded, so a stored config with such a
        // number decoded from its own JSON to a different one.
        let cfg = parse(
            r#"{"name":"S","placement":{"cluster":"c","x":9223372036854184467440737095516157758071}}"#,
        )
        .normalize_for_create()
        .unwrap();
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(
            serde_json::from_str::<StreamConfig>(&json).unwrap(),
            cfg,
            "{json}"
        );
    }

    #[test]
    fn unknown_fields_are_refused_like_nats_server() {
        let e = serde_json::from_str::<StreamConfig>(r#"{"name":"S","some_future_field":1}"#)
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown field `some_future_field`"),
            "{e}"
        );
    }

    #[test]
    fn defaults_match_nats_server() {
        let cfg = parse(r#"{"name":"S","subjects":["s.>"],"pedantic":true}"#)
            .normalize()
            .unwrap();
        assert!(!cfg.pedantic, "pedantic is not part of the kept config");
        assert_eq!(cfg.max_msgs, -1);
        assert_eq!(cfg.max_bytes, -1);
        assert_eq!(cfg.max_msg_size, -1);
        assert_eq!(cfg.max_msgs_per_subject, -1);
        assert_eq!(cfg.max_consumers, -1);
        assert_eq!(cfg.num_replicas, 1);
        assert_eq!(cfg.duplicate_window, DEFAULT_DUPLICATE_WINDOW_NS);
        let json = serde_json::to_value(&cfg).unwrap();
        // Fields nats-server always sends.
        for key in [
            "retention",
            "max_consumers",
            "max_msgs",
            "max_bytes",
            "max_age",
            "max_msgs_per_subject",
            "max_msg_size",
            "discard",
            "storage",
            "num_replicas",
            "duplicate_window",
            "compression",
            "allow_direct",
            "mirror_direct",
            "sealed",
            "deny_delete",
            "deny_purge",
            "allow_rollup_hdrs",
            "consumer_limits",
            "allow_msg_ttl",
        ] {
            assert!(json.get(key).is_some(), "missing {key}");
        }
        assert_eq!(json["retention"], "limits");
        assert_eq!(json["storage"], "file");
        assert_eq!(json["compression"], "none");
        assert_eq!(json["consumer_limits"], serde_json::json!({}));
        assert!(json.get("first_seq").is_none());
    }

    #[test]
    fn empty_subjects_default_to_name_and_window_clamps_to_max_age() {
        let cfg = parse(r#"{"name":"ORDERS","max_age":500000000}"#)
            .normalize()
            .unwrap();
        assert_eq!(cfg.subjects, vec!["ORDERS".to_string()]);
        assert_eq!(cfg.duplicate_window, 500_000_000);
    }

    #[test]
    fn invalid_configs_get_nats_errors() {
        let cases = [
            (
                r#"{"name":"a.b"}"#,
                "stream name is required and can not contain '.', '*', '>', '\\', '/'",
            ),
            (
                r#"{"name":"a b"}"#,
                "stream name is required and can not contain '.', '*', '>', '\\', '/'",
            ),
            (
                r#"{"name":""}"#,
                "stream name is required and can not contain '.', '*', '>', '\\', '/'",
            ),
            (r#"{"name":"U","num_replicas":6}"#, "maximum replicas is 5"),
            (r#"{"name":"U","subjects":["a..b"]}"#, "invalid subject"),
            (
                r#"{"name":"U","max_age":1000000000,"duplicate_window":2000000000}"#,
                "duplicates window can not be larger then max age",
            ),
            (
                r#"{"name":"U","subjects":["a.*","a.b"]}"#,
                "subject \"a.*\" overlaps with \"a.b\"",
            ),
            (
                r#"{"name":"U","subjects":["a","a"]}"#,
                "subject \"a\" overlaps with \"a\"",
            ),
            (
                r#"{"name":"U","deny_purge":true,"allow_rollup_hdrs":true}"#,
                "roll-ups require the purge permission",
            ),
            (
                r#"{"name":"U","discard_new_per_subject":true}"#,
                "discard new per subject requires discard new policy to be set",
            ),
            (
                r#"{"name":"U","discard":"new","discard_new_per_subject":true}"#,
                "discard new per subject requires max msgs per subject > 0",
            ),
            (
                r#"{"name":"U","max_age":50000000}"#,
                "max age needs to be >= 100ms",
            ),
            (
                r#"{"name":"U","subjects":[">"]}"#,
                "capturing all subjects requires no-ack to be true",
            ),
            (
                r#"{"name":"U","subjects":["$JS.API.>"]}"#,
                "subjects that overlap with jetstream api require no-ack to be true",
            ),
        ];
        for (json, want) in cases {
            let err = parse(json).normalize().unwrap_err();
            assert_eq!((err.code, err.err_code), (500, 10052), "{json}");
            assert_eq!(err.description, want, "{json}");
        }
        let err = parse(r#"{"name":"U","num_replicas":-1}"#)
            .normalize()
            .unwrap_err();
        assert_eq!(err.err_code, 10133);
        let err = parse(r#"{"name":"U","sealed":true}"#)
            .normalize_for_create()
            .unwrap_err();
        assert_eq!(
            err.description,
            "stream configuration for create can not be sealed"
        );
        let err = parse(r#"{"name":"a/b"}"#)
            .normalize_for_create()
            .unwrap_err();
        assert_eq!(err.err_code, 10128);
        assert!(
            serde_json::from_str::<StreamConfig>(r#"{"name":"U","retention":"bogus"}"#).is_err()
        );
    }

    #[test]
    fn enum_errors_and_metadata_match_nats_server() {
        let err = serde_json::from_str::<StreamConfig>(r#"{"name":"U","retention":"bogus"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(r#"can not unmarshal "\"bogus\"""#), "{err}");
        assert_eq!(parse(r#"{"discard":"NEW"}"#).discard, DiscardPolicy::New);
        assert_eq!(
            parse(r#"{"persist_mode":""}"#).persist_mode,
            PersistMode::Default
        );
        let mut cfg =
            parse(r#"{"name":"T","allow_msg_ttl":true,"metadata":{"_nats.ver":"x","k":"v"}}"#);
        cfg.set_static_metadata();
        assert_eq!(
            cfg.metadata.get(META_REQUIRED_LEVEL).map(String::as_str),
            Some("1")
        );
        assert!(!cfg.metadata.contains_key(META_SERVER_VERSION));
        let shown = cfg.clone().with_dynamic_metadata();
        assert_eq!(shown.metadata.len(), 4);
        let mut counter = parse(r#"{"name":"C","allow_msg_counter":true}"#);
        counter.set_static_metadata();
        assert_eq!(counter.metadata[META_REQUIRED_LEVEL], "2");
    }

    #[test]
    fn update_rules() {
        let old = parse(r#"{"name":"K","deny_delete":true}"#)
            .normalize()
            .unwrap();
        let err = StreamConfig::check_update(&old, parse(r#"{"name":"K"}"#)).unwrap_err();
        assert_eq!(
            err.description,
            "stream configuration update can not cancel deny message deletes"
        );
        let err = StreamConfig::check_update(
            &old,
            parse(r#"{"name":"K","deny_delete":true,"storage":"memory"}"#),
        )
        .unwrap_err();
        assert_eq!(
            err.description,
            "stream configuration update can not change storage type"
        );
        let err = StreamConfig::check_update(&old, parse(r#"{"name":"L","deny_delete":true}"#))
            .unwrap_err();
        assert_eq!(
            err.description,
            "stream configuration name must match original"
        );
        let sealed = StreamConfig::check_update(
            &old,
            parse(r#"{"name":"K","deny_delete":true,"sealed":true,"max_age":1000000000}"#),
        )
        .unwrap();
        assert!(sealed.sealed && sealed.deny_purge && sealed.deny_delete);
        assert_eq!((sealed.max_age, sealed.discard), (0, DiscardPolicy::New));
        let raised = StreamConfig::check_update(
            &old,
            parse(r#"{"name":"K","deny_delete":true,"max_msgs":10}"#),
        )
        .unwrap();
        assert_eq!(raised.max_msgs, 10);
    }

    #[test]
    fn info_round_trips_nats_server_json() {
        let json = r#"{"config":{"name":"S","subjects":["s.\u003e"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":-1,"max_msg_size":-1,"discard":"old","storage":"file","num_replicas":1,"duplicate_window":120000000000,"compression":"none","allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":false,"deny_purge":false,"allow_rollup_hdrs":false,"consumer_limits":{},"allow_msg_ttl":false,"metadata":{"_nats.level":"5"}},"created":"2026-11-25T01:21:39.389474637Z","state":{"messages":4,"bytes":302,"first_seq":2,"first_ts":"2026-11-25T01:21:39.392938343Z","last_seq":5,"last_ts":"2026-11-25T01:21:39.393745614Z","num_subjects":3,"consumer_count":0},"cluster":{"leader":"N1"},"ts":"2026-11-25T01:21:39.396659975Z"}"#;
        let info: StreamInfo = serde_json::from_str(json).unwrap();
        assert_eq!(info.state.bytes, 302);
        assert_eq!(info.state.num_subjects, 3);
        assert_eq!(info.cluster.as_ref().unwrap().leader.as_deref(), Some("N1"));
        let back: serde_json::Value = serde_json::to_value(&info).unwrap();
        let orig: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(back, orig);
        let empty = StreamState::default();
        let v = serde_json::to_value(&empty).unwrap();
        assert_eq!(v["first_ts"], rfc3339::ZERO_TIME);
        assert!(v.get("num_subjects").is_none() && v.get("num_deleted").is_none());
    }
}
