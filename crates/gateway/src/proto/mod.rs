//! The NATS client wire protocol, without I/O.

pub mod connect;
pub mod parser;
pub mod writer;

pub use connect::{ConnectError, ConnectOptions};
pub use parser::{ClientOp, MAX_CONTROL_LINE, Parser, ProtoError};
pub use writer::ServerInfo;
