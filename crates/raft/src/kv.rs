//! Typed, checksummed reads and writes over the node's engine (or a frozen view of it).
//!
//! Every value goes through `jetraft_store::record` (version + CRC32C), and
//! every read verifies it: a corrupt record is an `InvalidData` error, never
//! a silently wrong value.

use std::io;

use jetraft_store::{Cf, Dir, View, WriteBatch, record};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec;

pub fn put<T: Serialize + ?Sized>(
    batch: &mut WriteBatch,
    cf: Cf,
    key: Vec<u8>,
    value: &T,
) -> io::Result<()> {
    put_framed(batch, cf, key, value, record::encode_for)
}

/// [`put`], the value compressed when that makes it smaller
/// (`compression: "s2"`); [`get`] and [`scan`] read either form.
pub fn put_compressed<T: Serialize + ?Sized>(
    batch: &mut WriteBatch,
    cf: Cf,
    key: Vec<u8>,
    value: &T,
) -> io::Result<()> {
    put_framed(batch, cf, key, value, record::encode_compressed_for)
}

fn put_framed<T: Serialize + ?Sized>(
    batch: &mut WriteBatch,
    cf: Cf,
    key: Vec<u8>,
    value: &T,
    frame: fn(&[u8], &[u8]) -> Vec<u8>,
) -> io::Result<()> {
    let bytes = frame(&key, &codec::encode(value)?);
    batch.put(cf, key, bytes);
    Ok(())
}

pub fn get<T: DeserializeOwned>(engine: &dyn View, cf: Cf, key: &[u8]) -> io::Result<Option<T>> {
    match engine.get(cf, key)? {
        None => Ok(None),
        Some(raw) => Ok(Some(decode_value(cf, key, &raw)?)),
    }
}

pub fn decode_value<T: DeserializeOwned>(cf: Cf, key: &[u8], raw: &[u8]) -> io::Result<T> {
    let payload = record::decode_for(key, raw).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("corrupt record in {} at key {key:02x?}: {e}", cf.name()),
        )
    })?;
    codec::decode(&payload)
}

/// Decoded `(key, value)` pairs of a range scan.
pub fn scan<T: DeserializeOwned>(
    engine: &dyn View,
    cf: Cf,
    bounds: &(Vec<u8>, Vec<u8>),
    dir: Dir,
    limit: usize,
) -> io::Result<Vec<(Vec<u8>, T)>> {
    engine
        .scan(cf, &bounds.0, &bounds.1, dir, limit)?
        .into_iter()
        .map(|(k, v)| {
            let value = decode_value(cf, &k, &v)?;
            Ok((k, value))
        })
        .collect()
}
