//! Conditional requests on one list or subscriber (RFC 9110 §13). A representation's entity tag is a hash of the
//! exact JSON body `GET` answers, so it changes whenever anything in that answer changes (a list's counts
//! included), and two callers who see different subscriptions of one subscriber see different tags.
//! `If-None-Match` on a `GET` answers 304 while it names the current tag; `If-Match` on a write lets the write
//! happen only while it does, checked by the service inside the write's transaction.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::payload::to_json;

/// Bytes of the SHA-256 a tag keeps: 128 bits, as hex between quotes (openapi.yaml, the `ETag` header).
const TAG_BYTES: usize = 16;

/// A body and its entity tag.
pub struct Encoded {
    pub body: Vec<u8>,
    pub tag: String,
}

/// `value` as the JSON an answer carries, with its tag.
pub fn encode<T: Serialize>(value: &T) -> Result<Encoded, ApiError> {
    let body = to_json(value).ok_or_else(ApiError::internal)?;
    let digest = Sha256::digest(&body);
    let tag = format!("\"{}\"", hex::encode(&digest[..TAG_BYTES]));
    Ok(Encoded { body, tag })
}

/// The tags a condition lists (`None` for `*`); a tag with a comma inside its quotes is split, and so never
/// equals one of ours, which are hex.
fn listed(header: &str) -> Option<impl Iterator<Item = &str>> {
    let header = header.trim();
    (header != "*").then(|| header.split(',').map(str::trim))
}

/// `If-Match`: `*` (the resource exists, which the caller has checked) or a list naming `current` by strong
/// comparison (a weak tag never matches).
pub fn if_match(header: &str, current: &str) -> bool {
    listed(header).is_none_or(|mut tags| tags.any(|tag| tag == current))
}

/// `If-None-Match`: whether the caller already has the current representation (answered 304): `*`, or a list
/// naming `current` by weak comparison.
pub fn has_current(header: &str, current: &str) -> bool {
    listed(header)
        .is_none_or(|mut tags| tags.any(|tag| tag.strip_prefix("W/").unwrap_or(tag) == current))
}

/// The service's check of an `If-Match` against the current state `T`, whose answer `wire` builds: nothing when
/// the header is absent.
pub fn expectation<T: Clone, W: Serialize>(
    header: Option<String>,
    wire: fn(T) -> W,
) -> Option<impl Fn(&T) -> Result<(), String> + Send + Sync> {
    header.map(move |header| {
        move |current: &T| {
            // An answer that cannot be encoded has no tag to match: refuse with an empty one.
            let tag = encode(&wire(current.clone())).map_or_else(|_| String::new(), |e| e.tag);
            if if_match(&header, &tag) {
                Ok(())
            } else {
                Err(tag)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "\"00112233445566778899aabbccddeeff\"";

    #[test]
    fn a_tag_is_128_bits_of_the_bodys_sha256_in_hex_between_quotes() {
        let encoded = encode(&serde_json::json!({"data": 1})).unwrap();
        assert_eq!(encoded.body, br#"{"data":1}"#);
        assert_eq!(encoded.tag.len(), 2 + 2 * TAG_BYTES);
        assert!(encoded.tag.starts_with('"') && encoded.tag.ends_with('"'));
        assert_ne!(
            encoded.tag,
            encode(&serde_json::json!({"data": 2})).unwrap().tag
        );
    }

    #[test]
    fn if_match_compares_strongly_and_star_matches_anything() {
        assert!(if_match(TAG, TAG));
        assert!(if_match(&format!(" \"x\", {TAG} "), TAG));
        assert!(if_match("*", TAG));
        assert!(!if_match(&format!("W/{TAG}"), TAG));
        assert!(!if_match("\"other\"", TAG));
        assert!(!if_match("", TAG));
    }

    #[test]
    fn if_none_match_compares_weakly_and_star_matches_anything() {
        assert!(has_current(TAG, TAG));
        assert!(has_current(&format!("W/{TAG}"), TAG));
        assert!(has_current(&format!("\"x\",W/{TAG}"), TAG));
        assert!(has_current("*", TAG));
        assert!(!has_current("\"other\"", TAG));
    }
}
