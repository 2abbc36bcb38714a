//! The one error type of the data plane, and the one place it becomes a response.
//!
//! An error knows where it came from (the client, the upstream, a policy, aigw itself), the
//! status it means, and whether retrying on another endpoint is safe. `to_response` is the only
//! function that turns an error into bytes for a client.

use bytes::Bytes;

use crate::http::{Header, ResponseHead};

/// Which side of the proxy an error started on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The client sent something wrong or went away.
    Downstream,
    /// The upstream failed, timed out or answered nonsense.
    Upstream,
    /// A plugin or limit refused the request.
    Policy,
    /// A bug or resource problem inside aigw.
    Internal,
}

/// A request that ended without a proxied response.
#[derive(Debug, Clone)]
pub struct ProxyError {
    pub source: Source,
    pub status: u16,
    /// Machine-readable code, e.g. `upstream_connect_failed`.
    pub code: &'static str,
    /// Human text for the client.
    pub message: String,
    /// The request provably never reached an upstream, so another endpoint may be tried.
    pub retry_safe: bool,
}

impl ProxyError {
    pub fn new(
        source: Source,
        status: u16,
        code: &'static str,
        message: impl Into<String>,
    ) -> ProxyError {
        ProxyError {
            source,
            status,
            code,
            message: message.into(),
            retry_safe: false,
        }
    }

    pub fn downstream(status: u16, code: &'static str, message: impl Into<String>) -> ProxyError {
        ProxyError::new(Source::Downstream, status, code, message)
    }

    pub fn upstream(status: u16, code: &'static str, message: impl Into<String>) -> ProxyError {
        ProxyError::new(Source::Upstream, status, code, message)
    }

    /// A bug or an impossible state inside aigw.
    pub fn internal(message: impl Into<String>) -> ProxyError {
        ProxyError::new(Source::Internal, 500, "internal_error", message)
    }

    /// The client went away mid-exchange: nothing more can be sent to it (logged as 499).
    pub fn client_gone() -> ProxyError {
        ProxyError::downstream(499, "client_closed", "the client went away")
    }

    pub fn retry_safe(mut self) -> ProxyError {
        self.retry_safe = true;
        self
    }
}

/// The `type` field of the JSON error body for a status.
pub fn error_type(status: u16) -> &'static str {
    match status {
        400 | 411 | 413 | 414 | 417 | 431 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 | 504 => "timeout_error",
        429 => "rate_limit_error",
        501 | 505 => "not_implemented_error",
        502 | 503 => "upstream_error",
        _ => "api_error",
    }
}

/// A locally made response: status, headers, and the whole body.
#[derive(Debug, Clone)]
pub struct LocalResponse {
    pub head: ResponseHead,
    pub body: Bytes,
}

impl LocalResponse {
    /// A JSON error body `{"error":{"message","type","code","request_id"}}` with this status.
    pub fn json_error(status: u16, code: &str, message: &str, request_id: &str) -> LocalResponse {
        let body = serde_json::json!({
            "error": {
                "message": message,
                "type": error_type(status),
                "code": code,
                "request_id": request_id,
            }
        });
        LocalResponse::json(status, body.to_string().into())
    }

    pub fn json(status: u16, body: Bytes) -> LocalResponse {
        let mut head = ResponseHead::new(status);
        head.headers
            .0
            .push(Header::new("content-type", "application/json"));
        LocalResponse { head, body }
    }

    /// An empty-bodied response (e.g. a CORS preflight answer).
    pub fn empty(status: u16) -> LocalResponse {
        LocalResponse {
            head: ResponseHead::new(status),
            body: Bytes::new(),
        }
    }
}

/// The response a client sees for an error.
pub fn to_response(err: &ProxyError, request_id: &str) -> LocalResponse {
    LocalResponse::json_error(err.status, err.code, &err.message, request_id)
}
