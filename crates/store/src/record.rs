//! Framing of every stored value: `version (1) · crc32c (4, big-endian) · payload`.
//!
//! Version 1 stores the payload as it is. Version 2 stores it compressed
//! (Snappy's block format, the format S2 extends; a stream's
//! `compression: "s2"`): the CRC covers the stored, compressed bytes, so
//! verification ([`verify_for`], what the scrubber runs) never has to
//! decompress, and [`decode_for`] hands back the original payload either way.
//!
//! The CRC covers the key as well as the version and the payload (see
//! [`encode_for`]): a value that is intact but sits under the wrong key —
//! a bug that wrote message 7's bytes at seq 8, or a key damaged where the
//! engine's own block checksums do not reach — fails verification instead
//! of being served as the wrong message. Covering the key costs one more
//! CRC pass over a few dozen bytes.
//!
//! Use [`encode_for`] / [`decode_for`] for everything stored through an
//! [`Engine`](crate::Engine). [`encode`] / [`decode`] are the same framing
//! with an empty key, for values that have no key (e.g. a snapshot blob
//! shipped between nodes).

use std::borrow::Cow;

use thiserror::Error;

/// The payload as it is. A new layout gets a new number and `decode`
/// keeps reading the old ones (an upgrade chain, never a silent reinterpretation).
pub const VERSION_1: u8 = 1;

/// The payload Snappy-compressed ([`encode_compressed_for`]).
pub const VERSION_2_COMPRESSED: u8 = 2;

/// Version byte plus CRC.
pub const HEADER_LEN: usize = 5;

/// Why a stored record could not be trusted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Corruption {
    #[error("record too short: {len} bytes, header alone is {HEADER_LEN}")]
    Short { len: usize },
    #[error("record has unknown format version {0}")]
    UnknownVersion(u8),
    #[error("record checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    /// The checksum matched, so this is what was written: a compressor bug,
    /// not a damaged disk.
    #[error("compressed record does not decompress: {0}")]
    Decompress(String),
}

impl From<Corruption> for std::io::Error {
    fn from(c: Corruption) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, c)
    }
}

/// CRC over `len(key) · key · version · payload`. The length prefix keeps
/// the key/value boundary unambiguous.
fn checksum(key: &[u8], version: u8, payload: &[u8]) -> u32 {
    let key_len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut crc = crc32c::crc32c(&key_len.to_be_bytes());
    crc = crc32c::crc32c_append(crc, key);
    crc = crc32c::crc32c_append(crc, &[version]);
    crc32c::crc32c_append(crc, payload)
}

/// Frames `payload` to be stored under `key`.
pub fn encode_for(key: &[u8], payload: &[u8]) -> Vec<u8> {
    frame(key, VERSION_1, payload)
}

/// Frames `payload` compressed, or as it is when compressing does not
/// make it smaller (short or random payloads).
pub fn encode_compressed_for(key: &[u8], payload: &[u8]) -> Vec<u8> {
    match snap::raw::Encoder::new().compress_vec(payload) {
        Ok(packed) if packed.len() < payload.len() => frame(key, VERSION_2_COMPRESSED, &packed),
        _ => encode_for(key, payload),
    }
}

fn frame(key: &[u8], version: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(version);
    out.extend_from_slice(&checksum(key, version, payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Checks a record read from under `key` without decoding it; returns its
/// version and its stored payload.
pub fn verify_for<'a>(key: &[u8], bytes: &'a [u8]) -> Result<(u8, &'a [u8]), Corruption> {
    if bytes.len() < HEADER_LEN {
        return Err(Corruption::Short { len: bytes.len() });
    }
    let version = bytes[0];
    if version != VERSION_1 && version != VERSION_2_COMPRESSED {
        return Err(Corruption::UnknownVersion(version));
    }
    let stored = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let payload = &bytes[HEADER_LEN..];
    let computed = checksum(key, version, payload);
    if stored != computed {
        return Err(Corruption::Checksum { stored, computed });
    }
    Ok((version, payload))
}

/// Verifies a record read from under `key` and returns its payload
/// (decompressed if it was stored compressed).
pub fn decode_for<'a>(key: &[u8], bytes: &'a [u8]) -> Result<Cow<'a, [u8]>, Corruption> {
    match verify_for(key, bytes)? {
        (VERSION_2_COMPRESSED, packed) => snap::raw::Decoder::new()
            .decompress_vec(packed)
            .map(Cow::Owned)
            .map_err(|e| Corruption::Decompress(e.to_string())),
        (_, payload) => Ok(Cow::Borrowed(payload)),
    }
}

/// [`encode_for`] with no key.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    encode_for(&[], payload)
}

/// [`decode_for`] with no key.
pub fn decode(bytes: &[u8]) -> Result<Cow<'_, [u8]>, Corruption> {
    decode_for(&[], bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn round_trips() {
        for payload in [&b""[..], b"x", b"hello world", &[0u8; 4096]] {
            assert_eq!(decode(&encode(payload)).unwrap(), payload);
            assert_eq!(
                decode_for(b"k", &encode_for(b"k", payload)).unwrap(),
                payload
            );
            assert_eq!(
                decode_for(b"k", &encode_compressed_for(b"k", payload)).unwrap(),
                payload
            );
        }
    }

    #[test]
    fn compressible_payloads_are_stored_smaller_and_the_rest_as_they_are() {
        let text = b"temperature=21.5 unit=C sensor=kitchen ".repeat(50);
        let rec = encode_compressed_for(b"k", &text);
        assert_eq!(rec[0], VERSION_2_COMPRESSED);
        assert!(
            rec.len() < text.len() / 4,
            "{} of {}",
            rec.len(),
            text.len()
        );
        assert_eq!(
            verify_for(b"k", &rec).map(|(v, _)| v),
            Ok(VERSION_2_COMPRESSED)
        );
        // Too short to gain: stored as version 1.
        assert_eq!(encode_compressed_for(b"k", b"ab")[0], VERSION_1);
    }

    #[test]
    fn a_flip_in_a_compressed_record_is_detected_before_decompressing() {
        let key = b"\0\0\0\0\0\0\0\x01";
        let rec = encode_compressed_for(key, &b"abcabcabc".repeat(20));
        for byte in 0..rec.len() {
            let mut bad = rec.clone();
            bad[byte] ^= 0x10;
            assert!(decode_for(key, &bad).is_err(), "flip of byte {byte}");
        }
    }

    #[test]
    fn layout_is_version_crc_payload() {
        let rec = encode_for(b"key", b"abc");
        assert_eq!(rec.len(), HEADER_LEN + 3);
        assert_eq!(rec[0], VERSION_1);
        assert_eq!(&rec[HEADER_LEN..], b"abc");
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let key = b"\0\0\0\0\0\0\0\x01\0\0\0\0\0\0\0\x02";
        let rec = encode_for(key, b"payload!");
        for byte in 0..rec.len() {
            for bit in 0..8 {
                let mut bad = rec.clone();
                bad[byte] ^= 1 << bit;
                assert!(
                    decode_for(key, &bad).is_err(),
                    "flip of byte {byte} bit {bit} not detected"
                );
            }
        }
    }

    #[test]
    fn flip_in_version_byte_reports_version() {
        let mut rec = encode(b"p");
        rec[0] ^= 0x02;
        assert_eq!(
            decode(&rec),
            Err(Corruption::UnknownVersion(VERSION_1 ^ 0x02))
        );
        rec[0] = 9;
        assert_eq!(decode(&rec), Err(Corruption::UnknownVersion(9)));
    }

    #[test]
    fn truncation_is_detected() {
        let rec = encode_for(b"k", b"some payload");
        for len in 0..rec.len() {
            let err = decode_for(b"k", &rec[..len]).unwrap_err();
            if len < HEADER_LEN {
                assert_eq!(err, Corruption::Short { len });
            } else {
                assert!(
                    matches!(err, Corruption::Checksum { .. }),
                    "len {len}: {err}"
                );
            }
        }
    }

    #[test]
    fn record_under_wrong_key_is_rejected() {
        let rec = encode_for(&[0, 7], b"message seven");
        assert!(matches!(
            decode_for(&[0, 8], &rec),
            Err(Corruption::Checksum { .. })
        ));
        assert!(decode_for(&[0], &rec).is_err());
        assert!(decode(&rec).is_err());
        // The key/value boundary is part of the checksum.
        let a = encode_for(b"ab", b"c");
        assert!(decode_for(b"a", &a).is_err());
    }

    #[test]
    fn corruption_converts_to_invalid_data() {
        let io: std::io::Error = Corruption::Short { len: 1 }.into();
        assert_eq!(io.kind(), std::io::ErrorKind::InvalidData);
        assert!(io.to_string().contains("too short"));
    }
}
