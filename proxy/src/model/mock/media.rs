//! The mock provider's non-text operations: embeddings, image generation and speech.

use base64::Engine as _;
use serde_json::{json, Value};

use super::{bad_request, fnv1a64, json_reply, optional_u64, splitmix64, words, MockReply};

/// `dimensions` when the request gives none.
const DEFAULT_DIMENSIONS: u64 = 8;
/// Largest accepted `dimensions` for embeddings (a guard against huge allocations).
const MAX_DIMENSIONS: u64 = 8192;
/// Largest accepted `n` for image generation (OpenAI's own limit).
const MAX_IMAGES: u64 = 10;

// ---------------------------------------------------------------------------------------------
// Embeddings

/// One embeddings input: the bytes its vector is derived from and its token count.
pub(super) struct EmbeddingInput {
    pub(super) material: Vec<u8>,
    pub(super) tokens: u64,
}

pub(super) fn embedding_inputs(body: &Value) -> Result<Vec<EmbeddingInput>, MockReply> {
    let invalid = || {
        let msg =
            "'input' is required: a non-empty string, strings, token ids or lists of token ids.";
        bad_request(msg, Some("input"))
    };
    let one = |v: &Value| -> Option<EmbeddingInput> {
        match v {
            Value::String(s) if !s.is_empty() => Some(EmbeddingInput {
                material: s.as_bytes().to_vec(),
                tokens: words(s),
            }),
            Value::Array(ids) if !ids.is_empty() && ids.iter().all(Value::is_i64) => {
                let mut material = b"\0tokens".to_vec();
                ids.iter()
                    .filter_map(Value::as_i64)
                    .for_each(|t| material.extend(t.to_le_bytes()));
                Some(EmbeddingInput {
                    material,
                    tokens: ids.len() as u64,
                })
            }
            _ => None,
        }
    };
    match body.get("input") {
        Some(Value::Array(items)) if !items.is_empty() && !items.iter().all(Value::is_i64) => {
            items.iter().map(|i| one(i).ok_or_else(invalid)).collect()
        }
        Some(v) => one(v).map(|i| vec![i]).ok_or_else(invalid),
        None => Err(invalid()),
    }
}

/// A deterministic unit-length vector of `dims` values derived from `material`.
pub(super) fn embedding_vector(material: &[u8], dims: usize) -> Vec<f32> {
    let mut state = fnv1a64(material);
    let raw: Vec<f64> = (0..dims)
        .map(|_| (splitmix64(&mut state) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0)
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        let mut v = vec![0.0; dims];
        if let Some(first) = v.first_mut() {
            *first = 1.0;
        }
        return v;
    }
    raw.iter().map(|x| (x / norm) as f32).collect()
}

pub(super) fn embeddings(body: &Value, model: &str) -> Result<MockReply, MockReply> {
    let inputs = embedding_inputs(body)?;
    let dims = optional_u64(body, "dimensions")?.unwrap_or(DEFAULT_DIMENSIONS);
    if dims == 0 || dims > MAX_DIMENSIONS {
        let msg = format!("'dimensions' must be between 1 and {MAX_DIMENSIONS}.");
        return Err(bad_request(&msg, Some("dimensions")));
    }
    let base64 = match body.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(v) => match v.as_str() {
            Some("float") => false,
            Some("base64") => true,
            _ => {
                let msg = "'encoding_format' must be \"float\" or \"base64\".";
                return Err(bad_request(msg, Some("encoding_format")));
            }
        },
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = embedding_vector(&input.material, dims as usize);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|i| i.tokens).sum();
    Ok(json_reply(
        &json!({ "object": "list", "data": data, "model": model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens } }),
    ))
}

// ---------------------------------------------------------------------------------------------
// Images and audio

pub(super) fn images(body: &Value, created: u64) -> Result<MockReply, MockReply> {
    if !body.get("prompt").is_some_and(Value::is_string) {
        return Err(bad_request(
            "'prompt' is required and must be a string.",
            Some("prompt"),
        ));
    }
    let n = optional_u64(body, "n")?.unwrap_or(1);
    if n == 0 || n > MAX_IMAGES {
        return Err(bad_request(
            &format!("'n' must be between 1 and {MAX_IMAGES}."),
            Some("n"),
        ));
    }
    let url = match body.get("response_format").and_then(Value::as_str) {
        Some("url") => true,
        Some("b64_json") | None => false,
        Some(_) => {
            let msg = "'response_format' must be \"url\" or \"b64_json\".";
            return Err(bad_request(msg, Some("response_format")));
        }
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(png_1x1());
    let image = if url {
        json!({ "url": format!("data:image/png;base64,{b64}") })
    } else {
        json!({ "b64_json": b64 })
    };
    let data: Vec<Value> = (0..n).map(|_| image.clone()).collect();
    Ok(json_reply(&json!({ "created": created, "data": data })))
}

/// A valid 1x1 RGBA PNG (one opaque grey pixel), built with real CRCs and a stored zlib block.
pub(super) fn png_1x1() -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    // Width 1, height 1, bit depth 8, colour type 6 (RGBA), deflate, no filter, no interlace.
    chunk(&mut out, b"IHDR", &[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    let scanline = [0u8, 0x80, 0x80, 0x80, 0xff]; // filter type 0, then the pixel
    let mut zlib = vec![0x78, 0x01, 0x01]; // zlib header, final stored deflate block
    let len = scanline.len() as u16;
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&scanline);
    zlib.extend_from_slice(&adler32(&scanline).to_be_bytes());
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// CRC-32 (IEEE, reflected, as PNG uses).
pub(super) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

pub(super) fn speech(body: &Value) -> Result<MockReply, MockReply> {
    if !body.get("input").is_some_and(Value::is_string) {
        return Err(bad_request(
            "'input' is required and must be a string.",
            Some("input"),
        ));
    }
    Ok(MockReply::Body {
        status: 200,
        content_type: "audio/wav",
        body: wav_silence(),
    })
}

/// A 0.1 s mono 16-bit PCM WAV at 24 kHz, all samples zero.
pub(super) fn wav_silence() -> Vec<u8> {
    const RATE: u32 = 24_000;
    let data_len: u32 = RATE / 10 * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(44 + data_len as usize, 0);
    out
}
