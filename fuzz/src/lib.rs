//! Helpers the fuzz targets share: cutting an input into pieces the way a network would, and
//! telling whether bytes are JSON that serde can judge (valid, no duplicate keys).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// An input for a target that feeds bytes in pieces: the first byte `k` (mod 8) says how many
/// of the following bytes are piece lengths (used in turn, cycling; 0 reads as 1); the rest is
/// the stream. `k = 0` feeds the stream whole, so a seed is `\0` followed by the bytes.
pub struct Split<'a> {
    lens: &'a [u8],
    /// The stream.
    pub bytes: &'a [u8],
}

impl<'a> Split<'a> {
    pub fn new(data: &'a [u8]) -> Split<'a> {
        let Some((&k, rest)) = data.split_first() else {
            return Split {
                lens: &[],
                bytes: &[],
            };
        };
        let k = usize::from(k % 8).min(rest.len());
        Split {
            lens: &rest[..k],
            bytes: &rest[k..],
        }
    }

    /// The stream cut into pieces (all of it in one piece when no lengths were given).
    pub fn pieces(&self) -> Vec<&'a [u8]> {
        if self.lens.is_empty() {
            return vec![self.bytes];
        }
        let mut out = Vec::new();
        let mut rest = self.bytes;
        let mut i = 0;
        while !rest.is_empty() {
            let n = usize::from(self.lens[i % self.lens.len()].max(1)).min(rest.len());
            let (piece, tail) = rest.split_at(n);
            out.push(piece);
            rest = tail;
            i += 1;
        }
        out
    }
}

/// Whether `bytes` is one JSON document that serde_json accepts (its nesting limit included)
/// and no object of which repeats a key. Only on such documents is serde's typed answer the
/// reference a fast scanner must match: with duplicate keys JSON leaves the meaning open
/// (RFC 8259 §4), and serde's derived structs refuse them.
pub fn strict_json(bytes: &[u8]) -> bool {
    serde_json::from_slice::<Strict>(bytes).is_ok()
}

/// A JSON value checked for duplicate keys and otherwise thrown away.
struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Strict, E> {
        Ok(Strict)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Strict, A::Error> {
        while seq.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strict, A::Error> {
        let mut keys = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            if !keys.insert(k) {
                return Err(de::Error::custom("duplicate key"));
            }
            map.next_value::<Strict>()?;
        }
        Ok(Strict)
    }
}
