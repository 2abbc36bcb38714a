//! Decoding a compressed request body for the policies that read it.
//!
//! A body read whole for a plugin's body phase or a model API arrives here before any policy
//! sees it. With `Content-Encoding: gzip` (or `deflate`, `br`, `zstd`) it is decoded, at most
//! `limit` bytes: the same limit the body would have had uncompressed, so a zip bomb gets
//! 413 like any other oversized body, after reading at most `limit + 1` decoded bytes. The
//! decoded body then goes upstream in place of the encoded one, without `Content-Encoding`,
//! so what the policies checked is what the upstream gets. Bodies that no policy reads are
//! streamed through untouched.

use aigw_qat::{decompress, Algorithm, DecodeError};

use super::{accel, Direction, Settings};
use crate::error::ProxyError;
use crate::http::RequestHead;
use crate::runtime::worker::Worker;

/// Returns the body `policies` should read: `body` itself if it is not encoded, else decoded.
/// Refuses with 413 past `limit`, 415 for a coding aigw does not know (or several codings),
/// 400 for a body that is not valid data of its coding.
pub async fn decode(
    settings: &Settings,
    worker: &Worker,
    head: &mut RequestHead,
    body: Vec<u8>,
    limit: u64,
) -> Result<Vec<u8>, ProxyError> {
    let codings: Vec<Vec<u8>> = head
        .headers
        .get_all("content-encoding")
        .flat_map(|v| v.split(|&b| b == b','))
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case(b"identity"))
        .map(<[u8]>::to_vec)
        .collect();
    let Some(token) = codings.first() else {
        return Ok(body);
    };
    if codings.len() > 1 {
        return Err(ProxyError::downstream(
            415,
            "unsupported_content_encoding",
            "request bodies with more than one content coding are not supported",
        ));
    }
    let Some(alg) = Algorithm::from_token(token) else {
        return Err(ProxyError::downstream(
            415,
            "unsupported_content_encoding",
            format!(
                "request content coding `{}` is not supported (gzip, deflate, br, zstd are)",
                String::from_utf8_lossy(token)
            ),
        ));
    };
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX - 1);
    let d = decompress(
        &accel(&settings.qat),
        settings.request_backend,
        settings.qat.min_offload,
        alg,
        &body,
        limit_usize,
    )
    .await;
    {
        let mut m = worker.metrics.borrow_mut();
        if let Some(r) = d.fallback {
            m.compression.fallback(Direction::Request, r);
        }
        if let Ok(v) = &d.result {
            m.compression.record(
                Direction::Request,
                alg,
                d.backend,
                body.len() as u64,
                v.len() as u64,
            );
        }
    }
    match d.result {
        Ok(v) => {
            head.headers.remove("content-encoding");
            head.headers.remove("content-length");
            Ok(v)
        }
        Err(DecodeError::TooLarge) => Err(ProxyError::downstream(
            413,
            "body_too_large",
            format!(
                "the {} request body decodes to more than the limit of {limit} bytes",
                alg.token()
            ),
        )),
        Err(DecodeError::Corrupt(why)) => Err(ProxyError::downstream(
            400,
            "bad_content_encoding",
            format!("the request body is not valid {}: {why}", alg.token()),
        )),
    }
}
