//! The aigw-bench HPACK decoder (bench/src/load/h2/hpack/).
//!
//! Input: one byte choosing the dynamic table limit, then header blocks separated by the
//! bytes 0xff 0x00, decoded in turn by one decoder as one connection's responses are. Checks:
//! errors are fine, panics are not, and the fields handed out add up to no more than the input
//! can encode (each field takes at least one byte of the block; its bytes come from the block,
//! the static table, or a dynamic table bounded by the limit).
#![no_main]

use aigw_bench::load::h2::hpack::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&l, rest)) = data.split_first() else {
        return;
    };
    let limit = usize::from(l) * 64;
    let mut dec = Decoder::new(limit);
    let mut start = 0;
    let mut blocks = Vec::new();
    for i in 0..rest.len().saturating_sub(1) {
        if rest[i] == 0xff && rest[i + 1] == 0x00 && i >= start {
            blocks.push(&rest[start..i]);
            start = i + 2;
        }
    }
    blocks.push(&rest[start.min(rest.len())..]);
    for block in blocks {
        let mut fields = 0usize;
        let mut bytes = 0usize;
        let r = dec.decode(block, |n, v| {
            fields += 1;
            bytes += n.len() + v.len();
        });
        assert!(fields <= block.len());
        // The largest static entry (name and value) is under 64 bytes; a dynamic one fits the
        // table; a literal's Huffman code takes at least 5 bits a byte.
        assert!(bytes <= fields * (64 + limit) + block.len() * 8 / 5 + 64);
        if r.is_err() {
            break;
        }
    }
});
