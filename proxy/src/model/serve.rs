//! The model API handler: one request from its body to the logged, charged answer.
//!
//! Attempts: every provider that serves the model is tried once in fallback order (priority,
//! then weight); `policies.retries.attempts` more attempts then cycle through them again, each
//! after a backoff that doubles up to `max_backoff`. An attempt fails over on a connection
//! failure, a 429 or 5xx answer, or a 401 while the provider has other keys. Nothing is
//! retried once the first byte went to the client, and everything stops at
//! `policies.timeout`. If every attempt failed, the last provider answer is passed through
//! (translated to the client's dialect), or else a 502/503/504 in it.

use std::borrow::Cow;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::runtime::clock::coarse_now;

use aigw_config::{Listener, ProviderKind};
use serde_json::{json, Value};

use super::metrics::Labels;
use super::mock::{self, MockReply};
use super::provider::{self, KeyChoice, ModelApiRt, Translation};
use super::request::{self, BadRequest, ModelRequest};
use super::respond::{self, finish_body, Finished};
use super::spec::ModelApiSpec;
use super::stream::{self, Events, StreamSetup};
use super::upstream_body::{BodyError, UpBody};
use super::usage::Usage;
use super::{anthropic, cache, Dialect, Op};
use crate::compress::response::plan;
use crate::error::{LocalResponse, ProxyError};
use crate::http::io::{BufConn, Transport};
use crate::http::{Framing, Header, ParsedRequest, ResponseHead};
use crate::plugin::{Chain, RequestCtx};
use crate::runtime::state::WorkerState;
use crate::runtime::worker::Worker;
use crate::server::body::BodyIn;
use crate::server::exchange::respond_local;
use crate::server::forward;
use crate::server::Next;

/// Largest whole answer read from a provider.
const MAX_ANSWER: usize = 64 << 20;

/// One model call's fixed facts.
struct Call<'a> {
    /// Index of the model API in the snapshot.
    api: usize,
    spec: &'a ModelApiSpec,
    rt: &'a ModelApiRt,
    op: Op,
    dialect: Dialect,
    api_label: Rc<str>,
    consumer: Rc<str>,
    model_label: Rc<str>,
    created: u64,
    deadline: Instant,
    /// The route's response compression, if any, and the process's QAT settings.
    compression: (
        Option<&'a crate::compress::Policy>,
        &'a crate::compress::QatSpec,
    ),
}

/// What a provider answered.
enum Reply {
    /// A whole body.
    Whole { head: ResponseHead, body: Vec<u8> },
    /// A stream from the network.
    Stream {
        head: ResponseHead,
        body: Box<UpBody>,
    },
    /// The mock's stream.
    MockStream(Vec<Vec<u8>>),
}

/// How a call ended, for metrics and the token charge.
struct Outcome {
    status: u16,
    next: Next,
    /// The provider that answered, if one did.
    provider: Option<usize>,
    usage: Usage,
    ttft: Option<Duration>,
    tpot: Option<Duration>,
    /// Why a stream ended early.
    stream_error: Option<&'static str>,
}

impl Outcome {
    fn local((status, next): (u16, Next), provider: Option<usize>) -> Outcome {
        Outcome {
            status,
            next,
            provider,
            usage: Usage::default(),
            ttft: None,
            tpot: None,
            stream_error: None,
        }
    }
}

/// Why an attempt did not produce an answer to deliver.
enum Failure {
    /// No usable answer: a connection failure, timeout, or unreadable body.
    Error(ProxyError),
    /// The provider answered with a status worth failing over on.
    Answer { head: ResponseHead, body: Vec<u8> },
}

/// Serves a request routed to model API `api`. `need_body` is what the plugin chain asked
/// for (the body is read whole here anyway, up to `policies.max_body_bytes`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<S: Transport>(
    conn: &mut BufConn<S>,
    req: &mut ParsedRequest,
    ctx: &mut RequestCtx,
    chain: &Chain,
    api: usize,
    state: &WorkerState,
    worker: &Worker,
    listener: &Listener,
    need_body: Option<usize>,
    compression: Option<&crate::compress::Policy>,
) -> (u16, Next) {
    let spec = &state.snap.model_apis[api];
    let base = spec.config.base_path.as_str();
    let path = req.head.path();
    let rest = if base == "/" {
        path
    } else {
        &path[base.len().min(path.len())..]
    };
    let op = match Op::classify(&req.head.method, rest) {
        Ok(op) => op,
        Err((status, msg)) => {
            let code = if status == 404 {
                "unknown_url"
            } else {
                "method_not_allowed"
            };
            let r = respond::error(Dialect::OpenAi, status, code, &msg, &ctx.request_id);
            return respond_local(conn, req, ctx, chain, r, true).await;
        }
    };
    if matches!(op, Op::ListModels | Op::GetModel) {
        let r = list_models(spec, op, rest, ctx);
        return respond_local(conn, req, ctx, chain, r, true).await;
    }
    let dialect = op.dialect();
    let pol = &spec.config.policies;
    // The body, whole.
    if let Framing::Length(n) = req.framing {
        if n > pol.max_body_bytes {
            let msg = format!(
                "request body of {n} bytes is larger than the limit of {} bytes",
                pol.max_body_bytes
            );
            let r = respond::error(dialect, 413, "body_too_large", &msg, &ctx.request_id);
            return respond_local(conn, req, ctx, chain, r, true).await;
        }
    }
    if req.expect_continue && req.framing.has_body() && BodyIn::send_continue(conn).await.is_err() {
        return (499, Next::Close);
    }
    let mut body = BodyIn::new(
        req.framing,
        pol.max_body_bytes,
        listener.limits.max_header_bytes,
    );
    let body_timeout = listener.timeouts.body_read.get();
    let ct = req.head.headers.get("content-type").cloned();
    let ct = ct.as_deref();
    // A large upload whose form fields come first (the SDKs write them before the file) is
    // read only until its `model` field; the rest streams on to the provider. A compressed
    // one is read whole, to be decoded.
    let upload = op == Op::Transcriptions
        && need_body.is_none()
        && !req.head.headers.contains("content-encoding")
        && matches!(req.framing, Framing::Length(n) if n >= STREAM_UPLOAD_MIN);
    let mut raw = Vec::new();
    // Whether the upload's first bytes hold its model field (found while reading them).
    let mut model_read = false;
    let enough = |b: &[u8]| {
        model_read = upload && request::multipart_model_in(ct, b);
        model_read || (upload && b.len() >= UPLOAD_PREFIX_MAX)
    };
    if let Err(e) = body.read_until(conn, &mut raw, body_timeout, enough).await {
        return body_failed(conn, req, ctx, chain, dialect, e).await;
    }
    if !body.is_done() && !model_read {
        if let Err(e) = body
            .read_until(conn, &mut raw, body_timeout, |_| false)
            .await
        {
            return body_failed(conn, req, ctx, chain, dialect, e).await;
        }
    }
    if body.is_done() {
        // A compressed body is decoded (to the same limit) before anything reads it.
        let settings = &state.snap.compression;
        let limit = pol.max_body_bytes;
        match crate::compress::request::decode(settings, worker, &mut req.head, raw, limit).await {
            Ok(d) => raw = d,
            Err(e) => return body_failed(conn, req, ctx, chain, dialect, e).await,
        }
    }
    req.framing = Framing::Empty;
    if need_body.is_some() {
        if let Some(r) = chain.request_body(ctx, &mut req.head, &mut raw) {
            return respond_local(conn, req, ctx, chain, r, false).await;
        }
    }
    let mut mreq = match ModelRequest::parse(op, ct, raw) {
        Ok(m) => m,
        Err(BadRequest(msg)) => {
            req.keep_alive &= body.is_done();
            let r = respond::error(dialect, 400, "invalid_request", &msg, &ctx.request_id);
            return respond_local(conn, req, ctx, chain, r, false).await;
        }
    };
    if !body.is_done() && !provider::takes_body_as_is(spec, op, &mreq.model) {
        if let Err(e) = body
            .read_until(conn, mreq.raw_mut(), body_timeout, |_| false)
            .await
        {
            return body_failed(conn, req, ctx, chain, dialect, e).await;
        }
    }
    let consumer: Rc<str> = ctx
        .consumer
        .clone()
        .unwrap_or_else(|| state.no_label.clone());
    let (api_label, model_label) = {
        let mut m = worker.metrics.borrow_mut();
        (
            state.model_api_labels[api].clone(),
            m.llm.model_label(&mreq.model),
        )
    };
    let call = Call {
        api,
        spec,
        rt: &state.model_apis[api],
        op,
        dialect,
        api_label,
        consumer,
        model_label,
        created: crate::runtime::unix_now(),
        deadline: ctx.started + pol.timeout.get(),
        compression: (compression, &state.snap.compression.qat),
    };
    let outcome = match admit(&call, &mut mreq, ctx, worker) {
        Err(r) => {
            req.keep_alive &= body.is_done();
            Outcome::local(respond_local(conn, req, ctx, chain, r, false).await, None)
        }
        Ok(()) => {
            let io = Io {
                upload: &mut body,
                upload_timeout: body_timeout,
            };
            run(conn, req, ctx, chain, &call, &mut mreq, io, state, worker).await
        }
    };
    record(&call, state, worker, &outcome);
    (outcome.status, outcome.next)
}

/// Uploads at least this large (multipart, Content-Length) stream to the provider.
const STREAM_UPLOAD_MIN: u64 = 1 << 20;
/// How much of an upload is read looking for its `model` field before giving up streaming it.
const UPLOAD_PREFIX_MAX: usize = 256 * 1024;

/// The rest of the request body, when it streams to the provider rather than being read first.
struct Io<'b> {
    /// Done unless an upload streams.
    upload: &'b mut BodyIn,
    upload_timeout: Duration,
}

/// Answers a request whose body could not be read.
async fn body_failed<S: Transport>(
    conn: &mut BufConn<S>,
    req: &mut ParsedRequest,
    ctx: &mut RequestCtx,
    chain: &Chain,
    dialect: Dialect,
    e: ProxyError,
) -> (u16, Next) {
    if e.status == 499 {
        return (499, Next::Close);
    }
    req.keep_alive = false;
    let r = respond::error(dialect, e.status, e.code, &e.message, &ctx.request_id);
    respond_local(conn, req, ctx, chain, r, false).await
}

/// Policies that may refuse or change the request before any provider is asked: the
/// consumer's model allow-list, token budgets, the input guard, prompt decorators and
/// templates.
fn admit(
    call: &Call,
    mreq: &mut ModelRequest,
    ctx: &mut RequestCtx,
    worker: &Worker,
) -> Result<(), LocalResponse> {
    let pol = &call.spec.config.policies;
    let refuse = |reason: &'static str| {
        *worker
            .metrics
            .borrow_mut()
            .llm
            .refusals
            .entry((call.api_label.clone(), call.consumer.clone(), reason))
            .or_default() += 1;
    };
    if let Some(allowed) = pol.consumer_models.get(&*call.consumer) {
        if !allowed.contains(&mreq.model) {
            refuse("model_not_allowed");
            let msg = format!(
                "consumer `{}` may not use model `{}`",
                call.consumer, mreq.model
            );
            return Err(respond::error(
                call.dialect,
                403,
                "model_not_allowed",
                &msg,
                &ctx.request_id,
            ));
        }
    }
    if let Some(limiter) = &call.spec.token_limiter {
        match limiter.admit(&call.consumer, ctx.now) {
            Ok(rem) => {
                ctx.response_headers.push(Header::new(
                    "x-ratelimit-limit-tokens",
                    rem.limit.to_string(),
                ));
                ctx.response_headers.push(Header::new(
                    "x-ratelimit-remaining-tokens",
                    rem.remaining.to_string(),
                ));
                ctx.response_headers.push(Header::new(
                    "x-ratelimit-reset-tokens",
                    format!("{}s", rem.reset.as_secs().max(1)),
                ));
            }
            Err(r) => {
                refuse("token_limit");
                let msg = format!(
                    "token budget of {} per {} is spent; retry in {} s",
                    r.limit,
                    r.window.as_str(),
                    r.retry_after.as_secs().max(1)
                );
                let mut resp = respond::error(
                    call.dialect,
                    429,
                    "token_limit_exceeded",
                    &msg,
                    &ctx.request_id,
                );
                resp.head.headers.0.push(Header::new(
                    "retry-after",
                    r.retry_after.as_secs().max(1).to_string(),
                ));
                return Err(resp);
            }
        }
    }
    if let (Some(g), Some(gp)) = (&call.spec.guard, &pol.guard) {
        if gp.input {
            match g.check_request(mreq.value()) {
                Ok(true) => mreq.mark_edited(),
                Ok(false) => {}
                Err(b) => {
                    refuse("guard");
                    let msg = format!("the request was blocked: {b}");
                    return Err(respond::error(
                        call.dialect,
                        400,
                        "content_blocked",
                        &msg,
                        &ctx.request_id,
                    ));
                }
            }
        }
    }
    if let Err(BadRequest(msg)) = mreq.apply_prompt(
        call.op,
        &pol.prompt,
        usize::try_from(pol.max_body_bytes).unwrap_or(usize::MAX),
    ) {
        return Err(respond::error(
            call.dialect,
            400,
            "invalid_request",
            &msg,
            &ctx.request_id,
        ));
    }
    Ok(())
}

/// Cache, then providers in fallback order.
#[allow(clippy::too_many_arguments)]
async fn run<S: Transport>(
    conn: &mut BufConn<S>,
    req: &mut ParsedRequest,
    ctx: &mut RequestCtx,
    chain: &Chain,
    call: &Call<'_>,
    mreq: &mut ModelRequest,
    io: Io<'_>,
    state: &WorkerState,
    worker: &Worker,
) -> Outcome {
    let Io {
        upload,
        upload_timeout,
    } = io;
    let pol = &call.spec.config.policies;
    let cache_key = match (&call.spec.cache, call.op.cacheable()) {
        (Some(c), true) if !mreq.stream || call.op == Op::Chat => {
            let model = mreq.model.clone();
            // The operation is part of the scope: an embeddings ask and a chat ask may share
            // a body.
            let scope = format!("{}/{}", call.op.as_str(), call.consumer);
            let key = cache::key(&scope, &model, mreq.value());
            let hit = c.get(&key, ctx.now);
            let result = if hit.is_some() { "hit" } else { "miss" };
            *worker
                .metrics
                .borrow_mut()
                .llm
                .cache
                .entry((call.api_label.clone(), result))
                .or_default() += 1;
            if let Some(hit) = hit {
                let answered = send_cached(conn, req, ctx, chain, call, mreq, &hit, worker).await;
                return Outcome::local(answered, None);
            }
            Some(key)
        }
        _ => None,
    };
    let order = provider::candidates(call.spec, call.op, &mreq.model);
    if order.is_empty() {
        let msg = format!(
            "The model `{}` does not exist or you do not have access to it.",
            mreq.model
        );
        let r = respond::error(call.dialect, 404, "model_not_found", &msg, &ctx.request_id);
        return Outcome::local(respond_local(conn, req, ctx, chain, r, false).await, None);
    }
    let total = order.len() + pol.retries.attempts as usize;
    let mut last: Option<(usize, Failure)> = None;
    for k in 0..total {
        let pi = order[k % order.len()];
        if k >= order.len() {
            let exp = (k - order.len()).min(16) as u32;
            let wait = pol
                .retries
                .backoff
                .get()
                .saturating_mul(1 << exp)
                .min(pol.retries.max_backoff.get());
            if coarse_now() + wait >= call.deadline {
                break;
            }
            monoio::time::sleep(wait).await;
        }
        if let Some((from, _)) = &last {
            if *from != pi {
                let names = (
                    provider_label(state, call, *from),
                    provider_label(state, call, pi),
                );
                *worker
                    .metrics
                    .borrow_mut()
                    .llm
                    .fallbacks
                    .entry((call.api_label.clone(), names.0, names.1))
                    .or_default() += 1;
            }
        }
        let key = match call.rt.providers[pi].pick_key(coarse_now()) {
            KeyChoice::AllCooling => {
                let msg = "every API key of this provider is cooling down after 401/429 answers";
                let e = ProxyError::upstream(429, "provider_keys_cooling", msg);
                if last.is_none() {
                    last = Some((pi, Failure::Error(e)));
                }
                continue;
            }
            KeyChoice::Key(i) => Some(i),
            KeyChoice::None => None,
        };
        let translation = Translation::of(call.op, call.spec.providers[pi].config.kind);
        let taken = upload.total;
        let reply = match attempt(
            conn,
            ctx,
            call,
            mreq,
            (pi, k == 0),
            key,
            translation,
            &req.head.headers,
            (&mut *upload, upload_timeout),
            state,
            worker,
        )
        .await
        {
            Ok(r) => r,
            Err(f) if upload.total != taken => {
                // Part of a streamed upload went to this provider and cannot be sent again.
                note_failure(call, state, worker, pi, key, &f);
                req.keep_alive &= upload.is_done();
                last = Some((pi, f));
                break;
            }
            Err(Failure::Error(e)) if e.status == 400 => {
                // The request cannot be put in this provider's dialect: the client's to fix.
                req.keep_alive &= upload.is_done();
                let r = respond::error(call.dialect, 400, e.code, &e.message, &ctx.request_id);
                return Outcome::local(
                    respond_local(conn, req, ctx, chain, r, false).await,
                    Some(pi),
                );
            }
            Err(f) => {
                note_failure(call, state, worker, pi, key, &f);
                last = Some((pi, f));
                continue;
            }
        };
        let mut o = deliver(
            conn,
            req,
            ctx,
            chain,
            call,
            mreq,
            translation,
            reply,
            cache_key,
            worker,
        )
        .await;
        o.provider = Some(pi);
        return o;
    }
    // Every attempt failed. An upload not wholly read leaves the connection unusable.
    req.keep_alive &= upload.is_done();
    match last {
        Some((pi, Failure::Answer { head, body })) => {
            let translation = Translation::of(call.op, call.spec.providers[pi].config.kind);
            let mut o = deliver(
                conn,
                req,
                ctx,
                chain,
                call,
                mreq,
                translation,
                Reply::Whole { head, body },
                None,
                worker,
            )
            .await;
            o.provider = Some(pi);
            o
        }
        Some((pi, Failure::Error(e))) => {
            let r = respond::error(call.dialect, e.status, e.code, &e.message, &ctx.request_id);
            Outcome::local(
                respond_local(conn, req, ctx, chain, r, false).await,
                Some(pi),
            )
        }
        None => {
            let msg = "the request timed out before a provider answered";
            let r = respond::error(call.dialect, 504, "timeout", msg, &ctx.request_id);
            Outcome::local(respond_local(conn, req, ctx, chain, r, false).await, None)
        }
    }
}

fn provider_label(state: &WorkerState, call: &Call, pi: usize) -> Rc<str> {
    state.provider_labels[call.api][pi].clone()
}

/// Counts a failed attempt, and cools the key down on 401/429.
fn note_failure(
    call: &Call,
    state: &WorkerState,
    worker: &Worker,
    pi: usize,
    key: Option<usize>,
    f: &Failure,
) {
    let kind: &'static str = match f {
        Failure::Error(e) => e.code,
        Failure::Answer { head, .. } => match head.status {
            401 => "status_401",
            429 => "status_429",
            _ => "status_5xx",
        },
    };
    if let (Failure::Answer { head, .. }, Some(k)) = (f, key) {
        if matches!(head.status, 401 | 429) {
            let d = call.spec.config.policies.key_cooldown.get();
            call.rt.providers[pi].cool_down(k, d, coarse_now());
        }
    }
    let p = provider_label(state, call, pi);
    *worker
        .metrics
        .borrow_mut()
        .llm
        .errors
        .entry((call.api_label.clone(), p, kind))
        .or_default() += 1;
}

/// One attempt on provider `pi` (`first`: the call's first attempt).
#[allow(clippy::too_many_arguments)]
async fn attempt<S: Transport>(
    conn: &mut BufConn<S>,
    ctx: &mut RequestCtx,
    call: &Call<'_>,
    mreq: &mut ModelRequest,
    (pi, first): (usize, bool),
    key: Option<usize>,
    translation: Translation,
    client_headers: &crate::http::Headers,
    (upload, upload_timeout): (&mut BodyIn, Duration),
    state: &WorkerState,
    worker: &Worker,
) -> Result<Reply, Failure> {
    let p = &call.spec.providers[pi];
    if translation != Translation::None {
        mreq.value();
    }
    let mreq = &*mreq;
    let upstream_model = p
        .config
        .models
        .upstream_name(&mreq.model)
        .unwrap_or(&mreq.model);
    let up_op = translation.upstream_op(call.op);
    let body = provider_body(mreq, translation, upstream_model, call.op)?;
    if p.config.kind == ProviderKind::Mock {
        return mock_reply(up_op, &body, upstream_model, mreq, call);
    }
    let Some(si) = p.service else {
        return Err(Failure::Error(ProxyError::internal(
            "provider without a service",
        )));
    };
    let key = key.map(|i| p.config.api_keys[i].0.as_str());
    let mut out = Vec::with_capacity(512 + body.len());
    // What is read of the body, then (for a streamed upload) the rest as it arrives.
    let length = body.len() + upload.remaining_len().unwrap_or(0) as usize;
    provider::encode_head(
        &mut out,
        p,
        up_op,
        upstream_model,
        key,
        client_headers,
        &ctx.request_id,
        length,
    );
    out.extend_from_slice(&body);
    let service = state.services[si].clone();
    let label = state.service_labels[si].clone();
    let sent = forward::send(
        conn,
        ctx,
        &service,
        &label,
        worker,
        false,
        upload,
        out,
        upload_timeout,
    );
    // The first attempt is bounded by the provider service's own timeouts (its
    // response_header timeout is `policies.timeout`), which spares a timer per request; later
    // attempts by what is left of the deadline.
    let result = if first {
        sent.await
    } else {
        monoio::time::timeout_at(call.deadline.into(), sent)
            .await
            .unwrap_or_else(|_| {
                Err(ProxyError::upstream(
                    504,
                    "timeout",
                    "the model provider did not answer in time",
                ))
            })
    };
    let answered = result.map_err(Failure::Error)?;
    let cfg = &service.spec.config;
    let head = answered.head;
    let body = UpBody::new(
        answered.up,
        &head,
        cfg.timeouts.idle.get(),
        cfg.pool.max_idle_per_endpoint,
    )
    .map_err(|_| {
        Failure::Error(ProxyError::upstream(
            502,
            "upstream_invalid_response",
            "the provider's response framing is invalid",
        ))
    })?;
    let ok = (200..300).contains(&head.status);
    if ok && is_event_stream(&head) {
        return Ok(Reply::Stream {
            head,
            body: Box::new(body),
        });
    }
    let whole = match body.read_all(MAX_ANSWER).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            return Err(Failure::Error(ProxyError::upstream(
                502,
                "answer_too_large",
                "the provider's answer is larger than 64 MiB",
            )))
        }
        Err(BodyError::Upstream(kind)) => {
            return Err(Failure::Error(ProxyError::upstream(
                502,
                "upstream_read_failed",
                format!("reading the provider's answer failed ({kind})"),
            )))
        }
    };
    let many_keys = p.config.api_keys.len() > 1;
    if head.status == 429 || head.status >= 500 || (head.status == 401 && many_keys) {
        return Err(Failure::Answer { head, body: whole });
    }
    Ok(Reply::Whole { head, body: whole })
}

/// The body in the provider's dialect, with its model name (and, for streams the client
/// did not ask usage for, a request for usage).
/// Translations read the parsed document: call [`ModelRequest::value`] first.
fn provider_body<'m>(
    mreq: &'m ModelRequest,
    translation: Translation,
    upstream_model: &str,
    op: Op,
) -> Result<Cow<'m, [u8]>, Failure> {
    let bad = |e: anthropic::TranslateError| {
        Failure::Error(ProxyError::downstream(400, "invalid_request", e.0))
    };
    let doc = mreq.parsed().unwrap_or(&Value::Null);
    let translated = match translation {
        Translation::None => {
            let ask_usage = mreq.stream && matches!(op, Op::Chat | Op::Completions);
            return Ok(mreq.body_for(upstream_model, ask_usage));
        }
        Translation::ChatViaMessages => anthropic::chat_to_messages_request(doc, upstream_model),
        Translation::MessagesViaChat => anthropic::messages_to_chat_request(doc, upstream_model),
    };
    Ok(Cow::Owned(
        serde_json::to_vec(&translated.map_err(bad)?).unwrap_or_default(),
    ))
}

/// Asks the built-in mock provider.
fn mock_reply(
    op: Op,
    body: &[u8],
    model: &str,
    mreq: &ModelRequest,
    call: &Call,
) -> Result<Reply, Failure> {
    let Some(mop) = op.mock() else {
        return Err(Failure::Error(ProxyError::internal(
            "the mock serves no such operation",
        )));
    };
    let value: Value = if op == Op::Transcriptions {
        Value::Null
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    };
    let seed = fastrand::u64(..);
    match mock::respond(mop, &value, model, mreq.raw().len(), call.created, seed) {
        MockReply::Stream(events) => Ok(Reply::MockStream(events)),
        MockReply::Body {
            status,
            content_type,
            body,
        } => {
            let mut head = ResponseHead::new(status);
            head.headers
                .0
                .push(Header::new("content-type", content_type));
            if status == 429 || status >= 500 {
                Err(Failure::Answer { head, body })
            } else {
                Ok(Reply::Whole { head, body })
            }
        }
    }
}

fn is_event_stream(head: &ResponseHead) -> bool {
    head.headers
        .get("content-type")
        .is_some_and(|v| respond::starts_with_ci(v, b"text/event-stream"))
}

/// Sends a provider's reply to the client.
#[allow(clippy::too_many_arguments)]
async fn deliver<S: Transport>(
    conn: &mut BufConn<S>,
    req: &mut ParsedRequest,
    ctx: &mut RequestCtx,
    chain: &Chain,
    call: &Call<'_>,
    mreq: &ModelRequest,
    translation: Translation,
    reply: Reply,
    cache_key: Option<cache::CacheKey>,
    worker: &Worker,
) -> Outcome {
    let guard = match (&call.spec.guard, &call.spec.config.policies.guard) {
        (Some(g), Some(gp)) if gp.output => Some(g.as_ref()),
        _ => None,
    };
    let (head, events) = match reply {
        Reply::Whole { head, body } => {
            let ct = head.headers.get("content-type").cloned();
            let extra = respond::passed_headers(&head);
            let status = head.status;
            let finished = finish_body(
                status,
                ct,
                body,
                translation,
                &mreq.model,
                call.created,
                guard,
                extra,
            );
            let Finished { response, usage } = match finished {
                Ok(f) => f,
                Err(b) => {
                    let msg = format!("the answer was blocked: {b}");
                    let r =
                        respond::error(call.dialect, 400, "content_blocked", &msg, &ctx.request_id);
                    let mut o =
                        Outcome::local(respond_local(conn, req, ctx, chain, r, false).await, None);
                    o.stream_error = Some("guard_blocked");
                    return o;
                }
            };
            if let (Some(key), Some(c), 200) = (cache_key, &call.spec.cache, status) {
                let ttl = call
                    .spec
                    .config
                    .policies
                    .cache
                    .as_ref()
                    .map(|p| p.ttl.get())
                    .unwrap_or_default();
                let cached = cache::Cached {
                    status,
                    content_type: "application/json".into(),
                    body: response.body.clone(),
                    usage: (usage.input, usage.output),
                };
                c.put(key, cached, ttl, Instant::now());
            }
            let response = compress_whole(call, req, worker, response).await;
            let mut o = Outcome::local(
                respond_local(conn, req, ctx, chain, response, false).await,
                None,
            );
            o.usage = usage;
            return o;
        }
        Reply::Stream { head, body } => (head, Events::Upstream(body)),
        Reply::MockStream(events) => {
            let mut head = ResponseHead::new(200);
            head.headers
                .0
                .push(Header::new("content-type", "text/event-stream"));
            (head, Events::Mock(events.into_iter()))
        }
    };
    let mut client_head = ResponseHead::new(head.status);
    let ct = match translation {
        Translation::None => head
            .headers
            .get("content-type")
            .cloned()
            .unwrap_or_else(|| "text/event-stream".into()),
        _ => "text/event-stream".into(),
    };
    client_head.headers.0.push(Header::new("content-type", ct));
    client_head
        .headers
        .0
        .push(Header::new("cache-control", "no-cache"));
    client_head.headers.0.extend(respond::passed_headers(&head));
    let (policy, qat) = call.compression;
    let encoder = plan(policy, qat, &req.head, &mut client_head, Framing::Chunked);
    let setup = StreamSetup {
        translation,
        client: call.dialect,
        strip_usage_chunk: translation == Translation::None && !mreq.include_usage,
        client_include_usage: mreq.include_usage,
        client_model: &mreq.model,
        created: call.created,
        guard,
        head: client_head,
        encoder,
    };
    // Boxed: only streams pay for the relay's state.
    let o = Box::pin(stream::relay(conn, req, ctx, chain, setup, events)).await;
    if let Some(e) = &o.encoder {
        e.record(&mut worker.metrics.borrow_mut());
    }
    Outcome {
        status: o.status,
        next: o.next,
        provider: None,
        usage: o.usage,
        ttft: o.ttft,
        tpot: o.tpot,
        stream_error: o.error,
    }
}

/// Answers from the cache: the body as stored, or replayed as a stream.
#[allow(clippy::too_many_arguments)]
async fn send_cached<S: Transport>(
    conn: &mut BufConn<S>,
    req: &mut ParsedRequest,
    ctx: &mut RequestCtx,
    chain: &Chain,
    call: &Call<'_>,
    mreq: &mut ModelRequest,
    hit: &cache::Cached,
    worker: &Worker,
) -> (u16, Next) {
    let mut head = ResponseHead::new(hit.status);
    head.headers.0.push(Header::new("x-aigw-cache", "hit"));
    if mreq.stream {
        let v: Value = serde_json::from_slice(&hit.body).unwrap_or(Value::Null);
        let sse = cache::replay_as_sse(&v, mreq.include_usage);
        head.headers
            .0
            .push(Header::new("content-type", "text/event-stream"));
        head.headers
            .0
            .push(Header::new("cache-control", "no-cache"));
        let r = LocalResponse {
            head,
            body: sse.into(),
        };
        let r = compress_whole(call, req, worker, r).await;
        return respond_local(conn, req, ctx, chain, r, false).await;
    }
    head.headers
        .0
        .push(Header::new("content-type", hit.content_type.clone()));
    let r = LocalResponse {
        head,
        body: hit.body.clone(),
    };
    let r = compress_whole(call, req, worker, r).await;
    respond_local(conn, req, ctx, chain, r, false).await
}

/// A whole answer compressed, when the route's `compression` and the client's
/// Accept-Encoding ask for it (with `Vary` added whenever the answer depends on them). A codec
/// failure leaves it as it was.
async fn compress_whole(
    call: &Call<'_>,
    req: &ParsedRequest,
    worker: &Worker,
    mut r: LocalResponse,
) -> LocalResponse {
    let (Some(policy), qat) = call.compression else {
        return r;
    };
    let mut head = r.head.clone();
    let len = r.body.len() as u64;
    let Some(mut enc) = plan(
        Some(policy),
        qat,
        &req.head,
        &mut head,
        Framing::Length(len),
    ) else {
        r.head = head;
        return r;
    };
    let mut out = Vec::with_capacity(r.body.len() / 2 + 64);
    match enc.encode(&r.body, true, &mut out).await {
        Ok(()) => {
            enc.record(&mut worker.metrics.borrow_mut());
            r.head = head;
            r.body = out.into();
        }
        Err(e) => crate::log::warn(format_args!("an answer was sent uncompressed: {e}")),
    }
    r
}

/// `GET /models` and `GET /models/{id}`: the client-facing names this API serves (to this
/// consumer, when it has an allow-list).
fn list_models(spec: &ModelApiSpec, op: Op, rest: &[u8], ctx: &RequestCtx) -> LocalResponse {
    let allowed = ctx
        .consumer
        .as_ref()
        .and_then(|c| spec.config.policies.consumer_models.get(&**c));
    let mut seen = std::collections::HashSet::new();
    let mut data = Vec::new();
    for p in &spec.providers {
        for (name, _) in &p.config.models.0 {
            if allowed.is_some_and(|a| !a.contains(name)) || !seen.insert(name.clone()) {
                continue;
            }
            data.push(
                json!({"id": name, "object": "model", "created": 0, "owned_by": p.config.name}),
            );
        }
    }
    if op == Op::GetModel {
        let id = String::from_utf8_lossy(&rest[b"/models/".len()..]).into_owned();
        return match data.into_iter().find(|m| m["id"] == id.as_str()) {
            Some(m) => LocalResponse::json(200, m.to_string().into()),
            None => {
                let msg =
                    format!("The model `{id}` does not exist or you do not have access to it.");
                LocalResponse::json_error(404, "model_not_found", &msg, &ctx.request_id)
            }
        };
    }
    LocalResponse::json(
        200,
        json!({"object": "list", "data": data}).to_string().into(),
    )
}

/// Metrics and the token charge of a finished call.
fn record(call: &Call, state: &WorkerState, worker: &Worker, o: &Outcome) {
    let total = o.usage.input + o.usage.output;
    if let (Some(limiter), true) = (&call.spec.token_limiter, total > 0) {
        limiter.charge(&call.consumer, total, Instant::now());
    }
    let provider: Rc<str> = match o.provider {
        Some(pi) => provider_label(state, call, pi),
        None => state.no_label.clone(),
    };
    let mut m = worker.metrics.borrow_mut();
    let llm = &mut m.llm;
    if let Some(ttft) = o.ttft {
        llm.latency(&call.api_label, &provider, &call.model_label, ttft, o.tpot);
    }
    if let Some(kind) = o.stream_error {
        *llm.errors
            .entry((call.api_label.clone(), provider.clone(), kind))
            .or_default() += 1;
    }
    let labels: Labels = (
        call.api_label.clone(),
        provider,
        call.model_label.clone(),
        call.consumer.clone(),
    );
    llm.counts
        .entry(labels)
        .or_default()
        .add(o.status, o.usage.input, o.usage.output);
}
