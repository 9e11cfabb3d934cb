//! Shared vocabulary of jetraft: NATS subjects and headers, JetStream
//! configuration/API JSON, API errors with nats-server's codes, and the
//! message record every layer passes around.
//!
//! This crate has no I/O and no async; every other crate may depend on it.

pub mod api;
pub mod bugs;
pub mod config;
pub mod consumer;
pub mod error;
pub mod headers;
pub mod message;
pub mod subject;

pub use error::ApiError;
pub use message::StoredMessage;

/// RFC 3339 timestamps as nats-server formats them (owned by the stream/API work).
pub mod rfc3339;

/// The account every client belongs to until authentication assigns
/// another (nats-server's global account). Streams, subjects and the
/// JetStream API are separate per account.
pub const GLOBAL_ACCOUNT: &str = "$G";

/// For serde defaults: [`GLOBAL_ACCOUNT`] as an owned string.
pub fn global_account() -> String {
    GLOBAL_ACCOUNT.to_string()
}
