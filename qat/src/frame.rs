//! The gzip (RFC 1952) and zlib (RFC 1950) wrappers around a raw deflate stream.
//!
//! QAT compresses as raw deflate (`QZ_DEFLATE_RAW` through the stream API), and aigw writes
//! the header and trailer itself. That yields one gzip member per response, which every
//! client decodes; QATzip's own gzip formats may emit several members, which some HTTP
//! clients silently cut after the first.

use crate::Algorithm;

/// The running state of one wrapper: checksum and length of the uncompressed data.
pub(crate) struct Frame {
    alg: Algorithm,
    level: u32,
    crc: crc32fast::Hasher,
    adler: adler2::Adler32,
    len: u64,
}

impl Frame {
    /// A wrapper for `alg` (gzip or deflate) at compression `level` (recorded in the header).
    pub fn new(alg: Algorithm, level: u32) -> Frame {
        Frame {
            alg,
            level,
            crc: crc32fast::Hasher::new(),
            adler: adler2::Adler32::new(),
            len: 0,
        }
    }

    /// Accounts for uncompressed input.
    pub fn update(&mut self, data: &[u8]) {
        match self.alg {
            Algorithm::Deflate => self.adler.write_slice(data),
            _ => self.crc.update(data),
        }
        self.len += data.len() as u64;
    }

    /// Appends the header.
    pub fn header(&self, out: &mut Vec<u8>) {
        match self.alg {
            Algorithm::Deflate => {
                // CMF 0x78: deflate, 32 KiB window. FLG carries FLEVEL and makes
                // CMF*256+FLG a multiple of 31.
                let flg = match self.level {
                    0..=1 => 0x01,
                    2..=5 => 0x5e,
                    6 => 0x9c,
                    _ => 0xda,
                };
                out.extend_from_slice(&[0x78, flg]);
            }
            _ => {
                // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL (4 = fastest, 2 = best) OS=255.
                let xfl = if self.level <= 1 { 4 } else { 0 };
                out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 0xff]);
            }
        }
    }

    /// Appends the trailer: Adler-32 (big-endian) for zlib, CRC-32 and length mod 2^32
    /// (little-endian) for gzip.
    pub fn trailer(&self, out: &mut Vec<u8>) {
        match self.alg {
            Algorithm::Deflate => out.extend_from_slice(&self.adler.checksum().to_be_bytes()),
            _ => {
                out.extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
                out.extend_from_slice(&(self.len as u32).to_le_bytes());
            }
        }
    }
}
