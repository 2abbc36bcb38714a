//! The RFC 7541 Appendix C examples, every error the RFC names, the Huffman code's shape and a
//! round trip of every octet, and a cross-check against `fluke-hpack`'s decoder.

use super::huffman::{self, CODES};
use super::*;

/// Octets from the RFC's hex dumps (spaces and line breaks ignored).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn decode(d: &mut Decoder, block: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let mut got = Vec::new();
    d.decode(block, |n, v| {
        got.push((
            String::from_utf8(n.to_vec()).unwrap(),
            String::from_utf8(v.to_vec()).unwrap(),
        ))
    })?;
    Ok(got)
}

fn fields(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

/// The dynamic table, newest first, and its size.
fn table(d: &Decoder) -> (Vec<(String, String)>, usize) {
    let entries = d
        .table
        .entries
        .iter()
        .map(|e| {
            let (n, v) = e.field();
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect();
    (entries, d.table.size)
}

/// One step of an Appendix C sequence: a block, the list it decodes to, the table after.
struct Step<'a> {
    block: &'a str,
    list: &'a [(&'a str, &'a str)],
    table: &'a [(&'a str, &'a str)],
    size: usize,
}

fn run(limit: usize, steps: &[Step<'_>]) {
    let mut d = Decoder::new(limit);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(
            decode(&mut d, &hex(s.block)).unwrap(),
            fields(s.list),
            "block {i}"
        );
        assert_eq!(
            table(&d),
            (fields(s.table), s.size),
            "table after block {i}"
        );
    }
}

const REQ1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQ2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQ3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const REQ_T1: &[(&str, &str)] = &[(":authority", "www.example.com")];
const REQ_T2: &[(&str, &str)] = &[
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];
const REQ_T3: &[(&str, &str)] = &[
    ("custom-key", "custom-value"),
    ("cache-control", "no-cache"),
    (":authority", "www.example.com"),
];

#[test]
fn c2_single_representations() {
    let mut d = Decoder::default();
    let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    assert_eq!(
        decode(&mut d, &block).unwrap(),
        fields(&[("custom-key", "custom-header")])
    );
    assert_eq!(table(&d), (fields(&[("custom-key", "custom-header")]), 55));
    let mut d = Decoder::default();
    let block = hex("040c 2f73 616d 706c 652f 7061 7468");
    assert_eq!(
        decode(&mut d, &block).unwrap(),
        fields(&[(":path", "/sample/path")])
    );
    let block = hex("1008 7061 7373 776f 7264 0673 6563 7265 74");
    assert_eq!(
        decode(&mut d, &block).unwrap(),
        fields(&[("password", "secret")])
    );
    assert_eq!(
        decode(&mut d, &hex("82")).unwrap(),
        fields(&[(":method", "GET")])
    );
    assert_eq!(table(&d), (vec![], 0), "none of these is indexed");
}

#[test]
fn c3_requests_without_huffman() {
    run(
        DEFAULT_TABLE_SIZE,
        &[
            Step {
                block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                list: REQ1,
                table: REQ_T1,
                size: 57,
            },
            Step {
                block: "8286 84be 5808 6e6f 2d63 6163 6865",
                list: REQ2,
                table: REQ_T2,
                size: 110,
            },
            Step {
                block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
                list: REQ3,
                table: REQ_T3,
                size: 164,
            },
        ],
    );
}

#[test]
fn c4_requests_with_huffman() {
    run(
        DEFAULT_TABLE_SIZE,
        &[
            Step {
                block: "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                list: REQ1,
                table: REQ_T1,
                size: 57,
            },
            Step {
                block: "8286 84be 5886 a8eb 1064 9cbf",
                list: REQ2,
                table: REQ_T2,
                size: 110,
            },
            Step {
                block: "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
                list: REQ3,
                table: REQ_T3,
                size: 164,
            },
        ],
    );
}

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const LOC: &str = "https://www.example.com";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

/// C.5 and C.6 decode to the same lists and tables (SETTINGS_HEADER_TABLE_SIZE 256).
fn responses(blocks: [&str; 3]) {
    let res1 = [
        (":status", "302"),
        ("cache-control", "private"),
        ("date", DATE1),
        ("location", LOC),
    ];
    let res2 = [
        (":status", "307"),
        ("cache-control", "private"),
        ("date", DATE1),
        ("location", LOC),
    ];
    let res3 = [
        (":status", "200"),
        ("cache-control", "private"),
        ("date", DATE2),
        ("location", LOC),
        ("content-encoding", "gzip"),
        ("set-cookie", COOKIE),
    ];
    run(
        256,
        &[
            Step {
                block: blocks[0],
                list: &res1,
                table: &[
                    ("location", LOC),
                    ("date", DATE1),
                    ("cache-control", "private"),
                    (":status", "302"),
                ],
                size: 222,
            },
            Step {
                block: blocks[1],
                list: &res2,
                table: &[
                    (":status", "307"),
                    ("location", LOC),
                    ("date", DATE1),
                    ("cache-control", "private"),
                ],
                size: 222,
            },
            Step {
                block: blocks[2],
                list: &res3,
                table: &[
                    ("set-cookie", COOKIE),
                    ("content-encoding", "gzip"),
                    ("date", DATE2),
                ],
                size: 215,
            },
        ],
    );
}

#[test]
fn c5_responses_without_huffman_evict() {
    responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
         3d31",
    ]);
}

#[test]
fn c6_responses_with_huffman_evict() {
    responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

#[test]
fn integers() {
    // C.1: 10 and 1337 with a 5-bit prefix, 42 on a whole octet
    let read = |b: &[u8], n| Reader { buf: b, pos: 0 }.int(n);
    assert_eq!(read(&[0xea], 5), Ok(10));
    assert_eq!(read(&[0x1f, 0x9a, 0x0a], 5), Ok(1337));
    assert_eq!(read(&[42], 8), Ok(42));
    let mut out = Vec::new();
    encode_int(&mut out, 0, 5, 1337);
    assert_eq!(out, [31, 154, 10]);
    for v in [0, 30, 31, 127, 128, 1 << 20, u32::MAX as usize] {
        out.clear();
        encode_int(&mut out, 0, 5, v);
        assert_eq!(read(&out, 5), Ok(v));
    }
}

#[test]
fn every_error_the_rfc_names() {
    let err = |limit: usize, block: &[u8]| decode(&mut Decoder::new(limit), block).unwrap_err();
    // index 0, an index past the static table with an empty dynamic one, a literal's name
    assert_eq!(
        err(4096, &[0x80]),
        Error::BadIndex {
            index: 0,
            dynamic: 0
        }
    );
    assert_eq!(
        err(4096, &[0xbe]),
        Error::BadIndex {
            index: 62,
            dynamic: 0
        }
    );
    let bad_name = err(4096, &[0x7f, 0x05, 0x01, b'v']);
    assert_eq!(
        bad_name,
        Error::BadIndex {
            index: 68,
            dynamic: 0
        }
    );
    // integers: over 2^32-1, and too many continuation octets (even of zeros)
    let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(err(4096, &over), Error::IntegerOverflow);
    let long = [0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00];
    assert_eq!(err(4096, &long), Error::IntegerOverflow);
    // cut off: after a representation's first octet, inside an integer, inside a string
    assert_eq!(err(4096, &[0x82, 0x41]), Error::Truncated);
    assert_eq!(err(4096, &[0xff, 0x80]), Error::Truncated);
    assert_eq!(err(4096, &[0x41, 0x05, b'a']), Error::Truncated);
    // Huffman: EOS (30 ones) inside a string, padding over 7 bits, padding not all ones
    let eos = [0x01, 0x84, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(err(4096, &eos), Error::HuffmanEos);
    // 'a' (00011) + 3 bits of ones, then a whole octet of ones: 11 bits of padding
    assert_eq!(err(4096, &[0x01, 0x82, 0x1f, 0xff]), Error::PaddingTooLong);
    // 'a' + 000
    assert_eq!(err(4096, &[0x01, 0x81, 0x18]), Error::PaddingNotEos);
    // size updates: over the limit (4097 > 4096), and after a field
    assert_eq!(
        err(4096, &[0x3f, 0xe2, 0x1f]),
        Error::SizeUpdateTooLarge {
            size: 4097,
            limit: 4096
        }
    );
    assert_eq!(err(4096, &[0x82, 0x20]), Error::SizeUpdateAfterField);
    // and the messages say what happened
    let msg = Error::BadIndex {
        index: 70,
        dynamic: 3,
    }
    .to_string();
    assert_eq!(
        msg,
        "HPACK COMPRESSION_ERROR: index 70 beyond the tables (61 static + 3 dynamic entries)"
    );
}

#[test]
fn size_updates_evict_and_are_allowed_up_to_the_limit() {
    let mut d = Decoder::default();
    let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
    decode(&mut d, &block).unwrap();
    assert_eq!(
        decode(&mut d, &[0xbe]).unwrap(),
        fields(&[("custom-key", "custom-header")])
    );
    // two updates at the start of a block (the smallest, then the final one), then a field:
    // the table was emptied by the first
    let got = decode(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82]).unwrap();
    assert_eq!(got, fields(&[(":method", "GET")]));
    assert_eq!(table(&d), (vec![], 0));
    assert_eq!(d.table.max, 4096);
    assert_eq!(
        decode(&mut d, &[0xbe]).unwrap_err(),
        Error::BadIndex {
            index: 62,
            dynamic: 0
        }
    );
}

#[test]
fn an_entry_larger_than_the_table_empties_it() {
    let mut d = Decoder::new(64);
    decode(&mut d, &[0x41, 0x01, b'a']).unwrap(); // :authority: a (43 bytes)
    assert_eq!(table(&d).1, 43);
    let mut block = vec![0x41];
    encode_str(&mut block, &[b'x'; 40]);
    let got = decode(&mut d, &block).unwrap();
    assert_eq!(got, fields(&[(":authority", &"x".repeat(40))]));
    assert_eq!(table(&d), (vec![], 0));
}

#[test]
fn a_name_from_the_entry_its_insertion_evicts() {
    // §4.4: the new entry names the entry that must go to make room for it.
    let mut d = Decoder::new(100);
    let mut block = vec![0x40];
    encode_str(&mut block, &[b'n'; 30]);
    encode_str(&mut block, b"");
    decode(&mut d, &block).unwrap();
    let mut block = vec![0x7e]; // incremental indexing, name index 62
    encode_str(&mut block, &[b'v'; 30]);
    let got = decode(&mut d, &block).unwrap();
    let want = [("n".repeat(30), "v".repeat(30))];
    assert_eq!(got, want);
    assert_eq!(table(&d), (want.to_vec(), 92));
}

#[test]
fn huffman_code_is_the_canonical_code_of_its_lengths() {
    // Appendix B is a canonical Huffman code: ordered by (length, symbol), each code is the
    // previous one plus one, shifted left by the growth in length. That (and the decoder's own
    // checks: a complete prefix code) catches a mis-transcribed row.
    let mut order: Vec<usize> = (0..CODES.len()).collect();
    order.sort_by_key(|&s| (CODES[s].1, s));
    let mut next = 0u64;
    let mut len = CODES[order[0]].1;
    for &s in &order {
        let (code, l) = CODES[s];
        next <<= l - len;
        len = l;
        assert_eq!(u64::from(code), next, "symbol {s}");
        next += 1;
    }
    assert_eq!(next, 1 << 30, "the code space is full");
}

#[test]
fn huffman_round_trips_every_octet() {
    for b in 0..=255u8 {
        let mut enc = Vec::new();
        huffman::encode(&[b], &mut enc);
        let mut dec = Vec::new();
        huffman::decode(&enc, &mut dec).unwrap();
        assert_eq!(dec, [b], "octet {b}");
    }
    let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let mut enc = Vec::new();
    huffman::encode(&all, &mut enc);
    let mut dec = Vec::new();
    huffman::decode(&enc, &mut dec).unwrap();
    assert_eq!(dec, all);
}

/// A literal field without indexing, name and value Huffman-coded.
fn huffman_literal(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut block = vec![0x00];
    for s in [name, value] {
        let mut enc = Vec::new();
        huffman::encode(s, &mut enc);
        encode_int(&mut block, 0x80, 7, enc.len());
        block.extend_from_slice(&enc);
    }
    block
}

#[test]
fn fluke_hpack_decodes_our_huffman_strings_alike() {
    // An independent decoder agrees with ours on every octet's code and on long strings.
    let mut ours = Decoder::default();
    let mut fluke = fluke_hpack::Decoder::new();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut cases: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b, b, b]).collect();
    for len in 0..200 {
        cases.push(
            (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect(),
        );
    }
    for value in cases {
        let block = huffman_literal(b"x-test", &value);
        let mut got = Vec::new();
        ours.decode(&block, |n, v| got.push((n.to_vec(), v.to_vec())))
            .unwrap();
        assert_eq!(got, fluke.decode(&block).unwrap());
        assert_eq!(got, [(b"x-test".to_vec(), value)]);
    }
}

#[test]
fn fluke_hpack_encoded_lists_with_indexing_decode() {
    // fluke-hpack's encoder indexes fields (raw strings), so this drives our dynamic table.
    let mut enc = fluke_hpack::Encoder::new();
    let mut dec = Decoder::default();
    for i in 0..300 {
        let value = format!("value-{}", i % 37).repeat(1 + i % 5);
        let list: Vec<(&[u8], &[u8])> = vec![
            (b":status", b"200"),
            (b"server", b"nginx"),
            (b"x-counter", value.as_bytes()),
        ];
        let block = enc.encode(list.iter().copied());
        let mut got = Vec::new();
        dec.decode(&block, |n, v| got.push((n.to_vec(), v.to_vec())))
            .unwrap();
        let want: Vec<(Vec<u8>, Vec<u8>)> =
            list.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(got, want, "block {i}");
    }
}
