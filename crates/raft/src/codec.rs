//! MessagePack (named fields) for everything jetraft stores or sends that is
//! not a protobuf message. Named fields keep openraft's optional fields
//! decodable across versions.

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub fn encode<T: Serialize + ?Sized>(value: &T) -> io::Result<Vec<u8>> {
    rmp_serde::to_vec_named(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}
