//! HPACK (RFC 7541): the decoder of response header blocks, and the two primitives the
//! request encoder needs.
//!
//! [`Decoder`] keeps one connection's dynamic table and decodes every representation of §6:
//! indexed fields, literals with incremental indexing, without indexing and never indexed
//! (names indexed or literal, strings raw or Huffman-coded), and dynamic table size updates.
//! Fields are handed to a callback as byte slices, borrowed from the block, the tables or a
//! scratch buffer reused across blocks: decoding allocates only what it adds to the dynamic
//! table. The Huffman decoder's tables are built once per process ([`huffman`]).
//!
//! Every malformed block is an [`Error`], which HTTP/2 treats as a connection error of type
//! COMPRESSION_ERROR (RFC 9113 §4.3): an index of 0 or beyond both tables, an integer over
//! 2^32-1 or longer than 5 continuation octets, a string or representation cut off by the end
//! of the block, EOS or bad padding in a Huffman string, a size update over our limit or
//! after the first field of a block.

mod huffman;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;

/// The dynamic table size HTTP/2 allows until SETTINGS_HEADER_TABLE_SIZE says otherwise.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// HTTP/2 error code of a bad header block (RFC 9113 §7).
pub const COMPRESSION_ERROR: u32 = 0x9;

/// The static table (RFC 7541 Appendix A): index `i` is `STATIC[i - 1]`.
const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// What was wrong with a header block. Each is a connection error of type COMPRESSION_ERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The block ended inside a representation, an integer or a string.
    Truncated,
    /// An integer over 2^32-1, or encoded with more than 5 continuation octets.
    IntegerOverflow,
    /// Index 0, or one beyond the static and dynamic tables (`dynamic` entries).
    BadIndex { index: usize, dynamic: usize },
    /// A Huffman-coded string contains EOS.
    HuffmanEos,
    /// A Huffman-coded string ends with more than 7 bits of padding.
    PaddingTooLong,
    /// A Huffman-coded string ends with padding that is not the start of EOS (all ones).
    PaddingNotEos,
    /// A dynamic table size update above the limit we allow.
    SizeUpdateTooLarge { size: usize, limit: usize },
    /// A dynamic table size update after a header field of the same block.
    SizeUpdateAfterField,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HPACK COMPRESSION_ERROR: ")?;
        match self {
            Error::Truncated => f.write_str("header block ends inside a field"),
            Error::IntegerOverflow => f.write_str("integer too large"),
            Error::BadIndex { index: 0, .. } => f.write_str("index 0"),
            Error::BadIndex { index, dynamic } => write!(
                f,
                "index {index} beyond the tables ({} static + {dynamic} dynamic entries)",
                STATIC.len()
            ),
            Error::HuffmanEos => f.write_str("EOS inside a Huffman-coded string"),
            Error::PaddingTooLong => f.write_str("Huffman padding longer than 7 bits"),
            Error::PaddingNotEos => f.write_str("Huffman padding is not all ones"),
            Error::SizeUpdateTooLarge { size, limit } => write!(
                f,
                "dynamic table size update to {size} above the limit of {limit}"
            ),
            Error::SizeUpdateAfterField => {
                f.write_str("dynamic table size update after a header field")
            }
        }
    }
}

impl std::error::Error for Error {}

/// One entry of the dynamic table: name and value in one allocation.
struct Entry {
    bytes: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    fn new(name: &[u8], value: &[u8]) -> Entry {
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
        }
    }

    fn field(&self) -> (&[u8], &[u8]) {
        self.bytes.split_at(self.name_len)
    }

    /// The entry's size as §4.1 counts it.
    fn size(&self) -> usize {
        self.bytes.len() + 32
    }
}

/// The dynamic table (§2.3.2, §4): newest entry first.
struct Dynamic {
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
}

impl Dynamic {
    /// Sets the maximum size, evicting the oldest entries until the table fits (§4.3).
    fn resize(&mut self, max: usize) {
        self.max = max;
        self.evict(0);
    }

    /// Evicts the oldest entries until `room` more bytes fit.
    fn evict(&mut self, room: usize) {
        while self.size + room > self.max {
            let Some(old) = self.entries.pop_back() else {
                break;
            };
            self.size -= old.size();
        }
    }

    /// Adds an entry (§4.4): older ones are evicted to make room; one larger than the table
    /// empties it and is not added.
    fn insert(&mut self, e: Entry) {
        if e.size() > self.max {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict(e.size());
        self.size += e.size();
        self.entries.push_front(e);
    }
}

/// The field at `index` of the index address space (§2.3.3).
fn lookup(table: &Dynamic, index: usize) -> Result<(&[u8], &[u8]), Error> {
    let bad = || Error::BadIndex {
        index,
        dynamic: table.entries.len(),
    };
    match index {
        0 => Err(bad()),
        1..=61 => Ok(STATIC[index - 1]),
        _ => table
            .entries
            .get(index - 62)
            .map(Entry::field)
            .ok_or_else(bad),
    }
}

/// A header block being read.
struct Reader<'b> {
    buf: &'b [u8],
    pos: usize,
}

impl<'b> Reader<'b> {
    fn byte(&mut self) -> Result<u8, Error> {
        let b = *self.buf.get(self.pos).ok_or(Error::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'b [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    /// An integer with an `n`-bit prefix (§5.1, `n` from 1 to 8), the prefix being the low
    /// bits of the next octet.
    fn int(&mut self, n: u32) -> Result<usize, Error> {
        let max = ((1u16 << n) - 1) as u8;
        let first = self.byte()? & max;
        if first < max {
            return Ok(usize::from(first));
        }
        let mut v = u64::from(first);
        let mut shift = 0;
        loop {
            if shift > 28 {
                return Err(Error::IntegerOverflow);
            }
            let b = self.byte()?;
            v += u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        if v > u64::from(u32::MAX) {
            return Err(Error::IntegerOverflow);
        }
        Ok(v as usize)
    }

    /// A string literal (§5.2): borrowed from the block, or Huffman-decoded into `scratch`.
    fn string<'s>(&mut self, scratch: &'s mut Vec<u8>) -> Result<&'s [u8], Error>
    where
        'b: 's,
    {
        let huffman = self.buf.get(self.pos).ok_or(Error::Truncated)? & 0x80 != 0;
        let len = self.int(7)?;
        let raw = self.take(len)?;
        if !huffman {
            return Ok(raw);
        }
        scratch.clear();
        huffman::decode(raw, scratch)?;
        Ok(scratch)
    }
}

/// One connection's HPACK decoding context.
pub struct Decoder {
    table: Dynamic,
    /// The largest dynamic table the encoder may ask for (our SETTINGS_HEADER_TABLE_SIZE).
    limit: usize,
    name: Vec<u8>,
    value: Vec<u8>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_TABLE_SIZE)
    }
}

impl Decoder {
    /// A decoder whose encoder may use a dynamic table of up to `limit` bytes (the table
    /// starts at that size, §4.2).
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            table: Dynamic {
                entries: VecDeque::new(),
                size: 0,
                max: limit,
            },
            limit,
            name: Vec::new(),
            value: Vec::new(),
        }
    }

    /// Decodes a complete header block, calling `field(name, value)` for each field in order.
    /// On an error the connection is unusable (the table may be out of step with the peer's).
    pub fn decode(
        &mut self,
        block: &[u8],
        mut field: impl FnMut(&[u8], &[u8]),
    ) -> Result<(), Error> {
        let mut r = Reader { buf: block, pos: 0 };
        let mut fields = false;
        while let Some(&first) = block.get(r.pos) {
            if first & 0x80 != 0 {
                // §6.1 indexed field: 1 + 7-bit index
                let index = r.int(7)?;
                let (n, v) = lookup(&self.table, index)?;
                field(n, v);
            } else if first & 0x40 != 0 {
                // §6.2.1 literal with incremental indexing: 01 + 6-bit name index
                self.literal(&mut r, 6, true, &mut field)?;
            } else if first & 0x20 != 0 {
                // §6.3 dynamic table size update: 001 + 5-bit size; only before any field
                // (§4.2: at the beginning of a block)
                if fields {
                    return Err(Error::SizeUpdateAfterField);
                }
                let size = r.int(5)?;
                if size > self.limit {
                    return Err(Error::SizeUpdateTooLarge {
                        size,
                        limit: self.limit,
                    });
                }
                self.table.resize(size);
                continue;
            } else {
                // §6.2.2 without indexing (0000) and §6.2.3 never indexed (0001): 4-bit index
                self.literal(&mut r, 4, false, &mut field)?;
            }
            fields = true;
        }
        Ok(())
    }

    /// A literal field whose name index has an `n`-bit prefix; added to the dynamic table if
    /// `index`.
    fn literal(
        &mut self,
        r: &mut Reader<'_>,
        n: u32,
        index: bool,
        field: &mut impl FnMut(&[u8], &[u8]),
    ) -> Result<(), Error> {
        let name_index = r.int(n)?;
        let name = match name_index {
            0 => r.string(&mut self.name)?,
            i => lookup(&self.table, i)?.0,
        };
        let value = r.string(&mut self.value)?;
        field(name, value);
        if index {
            // A copy first: the insertion may evict the entry the name came from (§4.4).
            let e = Entry::new(name, value);
            self.table.insert(e);
        }
        Ok(())
    }
}

/// Appends an integer with an `n`-bit prefix whose high bits are `first` (§5.1).
pub fn encode_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// Appends a string literal, not Huffman-coded (§5.2).
pub fn encode_str(out: &mut Vec<u8>, s: &[u8]) {
    encode_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}
