//! Model APIs: the OpenAI-compatible (and Anthropic-compatible) model proxy.
//!
//! A model API is served under its `base_path`. For each request the handler
//! ([`serve::serve`]) reads the body, applies the API's policies (model allow-lists, token
//! budgets, the input guard, prompt decorators and templates, the cache), picks providers in
//! fallback order ([`provider`]), sends the request in the provider's dialect, and relays the
//! answer ([`respond`] for whole bodies, [`stream`] for server-sent events) while counting
//! tokens ([`usage`]) and recording business metrics ([`metrics`]).
//!
//! ```text
//! body ─▶ parse (model, stream) ─▶ policies ─▶ cache? ─▶ provider 1 ─┬▶ relay ─▶ charge tokens
//!                                                  429/5xx/connect ◀─┘ (before the first byte)
//!                                                  ─▶ backoff ─▶ provider 2 ...
//! ```

pub mod anthropic;
pub mod cache;
pub mod guard;
pub mod json_scan;
pub mod metrics;
pub mod mock;
pub mod provider;
pub mod request;
pub mod respond;
pub mod serve;
pub mod spec;
pub mod sse;
pub mod stream;
pub mod token_limit;
pub mod upstream_body;
pub mod usage;

/// The operations a model API serves, by path under its base path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `POST /chat/completions`.
    Chat,
    /// `POST /completions`.
    Completions,
    /// `POST /embeddings`.
    Embeddings,
    /// `POST /responses`.
    Responses,
    /// `POST /images/generations`.
    Images,
    /// `POST /audio/transcriptions` (multipart).
    Transcriptions,
    /// `POST /audio/speech`.
    Speech,
    /// `POST /messages` (Anthropic's shape).
    Messages,
    /// `GET /models`.
    ListModels,
    /// `GET /models/{id}`.
    GetModel,
}

impl Op {
    /// The operation for a method and the path below the base path (starting with `/`).
    /// `Err` carries the status (404 unknown path, 405 wrong method) and a message.
    pub fn classify(method: &[u8], rest: &[u8]) -> Result<Op, (u16, String)> {
        let rest = if rest.len() > 1 {
            rest.strip_suffix(b"/").unwrap_or(rest)
        } else {
            rest
        };
        let (op, want) = match rest {
            b"/chat/completions" => (Op::Chat, "POST"),
            b"/completions" => (Op::Completions, "POST"),
            b"/embeddings" => (Op::Embeddings, "POST"),
            b"/responses" => (Op::Responses, "POST"),
            b"/images/generations" => (Op::Images, "POST"),
            b"/audio/transcriptions" => (Op::Transcriptions, "POST"),
            b"/audio/speech" => (Op::Speech, "POST"),
            b"/messages" => (Op::Messages, "POST"),
            b"/models" => (Op::ListModels, "GET"),
            r if r.starts_with(b"/models/") && r.len() > 8 => (Op::GetModel, "GET"),
            _ => {
                return Err((
                    404,
                    format!(
                        "Invalid URL ({} {}): this model API serves chat/completions, \
                         completions, embeddings, responses, images/generations, \
                         audio/transcriptions, audio/speech, messages and models",
                        String::from_utf8_lossy(method),
                        String::from_utf8_lossy(rest)
                    ),
                ))
            }
        };
        if method != want.as_bytes() && !(want == "GET" && method == b"HEAD") {
            return Err((
                405,
                format!(
                    "{} is not allowed here; use {want}",
                    String::from_utf8_lossy(method)
                ),
            ));
        }
        Ok(op)
    }

    /// The path of the operation below a provider's base URL.
    pub fn path(self) -> &'static str {
        match self {
            Op::Chat => "/chat/completions",
            Op::Completions => "/completions",
            Op::Embeddings => "/embeddings",
            Op::Responses => "/responses",
            Op::Images => "/images/generations",
            Op::Transcriptions => "/audio/transcriptions",
            Op::Speech => "/audio/speech",
            Op::Messages => "/messages",
            Op::ListModels | Op::GetModel => "/models",
        }
    }

    /// The dialect the client speaks.
    pub fn dialect(self) -> Dialect {
        if self == Op::Messages {
            Dialect::Anthropic
        } else {
            Dialect::OpenAi
        }
    }

    /// Whether answers may be cached (deterministic asks with JSON answers).
    pub fn cacheable(self) -> bool {
        matches!(
            self,
            Op::Chat | Op::Completions | Op::Embeddings | Op::Messages
        )
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Chat => "chat.completions",
            Op::Completions => "completions",
            Op::Embeddings => "embeddings",
            Op::Responses => "responses",
            Op::Images => "images.generations",
            Op::Transcriptions => "audio.transcriptions",
            Op::Speech => "audio.speech",
            Op::Messages => "messages",
            Op::ListModels | Op::GetModel => "models",
        }
    }

    /// The mock provider's name for this operation (`None`: the mock translates it).
    fn mock(self) -> Option<mock::Operation> {
        Some(match self {
            Op::Chat => mock::Operation::ChatCompletions,
            Op::Completions => mock::Operation::Completions,
            Op::Embeddings => mock::Operation::Embeddings,
            Op::Responses => mock::Operation::Responses,
            Op::Images => mock::Operation::ImagesGenerations,
            Op::Transcriptions => mock::Operation::AudioTranscriptions,
            Op::Speech => mock::Operation::AudioSpeech,
            Op::Messages | Op::ListModels | Op::GetModel => return None,
        })
    }
}

/// An API dialect: how requests, answers, streams and errors are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Anthropic,
}

impl Dialect {
    /// The dialect a provider kind speaks.
    pub fn of(kind: aigw_config::ProviderKind) -> Dialect {
        match kind {
            aigw_config::ProviderKind::Anthropic => Dialect::Anthropic,
            _ => Dialect::OpenAi,
        }
    }
}
