//! Large audio uploads stream to the provider: aigw reads the multipart body only up to its
//! `model` field (the SDKs write form fields before the file), picks the provider, renames the
//! model in place, and streams the file on while the client is still sending it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::*;
use crate::model_util::llm_config;

const BOUNDARY: &str = "aigw-upload-boundary";

/// What the provider saw of one request.
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// A provider that reports (on `first_bytes`) as soon as the upstream model name arrives,
/// then reads the whole Content-Length body and answers a transcription.
fn provider() -> (SocketAddr, mpsc::Receiver<()>, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (first_tx, first_rx) = mpsc::channel();
    let (seen_tx, seen_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = vec![0u8; 64 * 1024];
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .expect("content-length");
            let mut body = buf.split_off(head_end);
            let mut told = false;
            while body.len() < len {
                if !told && contains(&body, b"whisper-large-v3") {
                    told = true;
                    let _ = first_tx.send(());
                }
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
            let answer = format!("{{\"text\":\"{} bytes heard\"}}", body.len());
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
                answer.len()
            );
            let _ = seen_tx.send(Seen { head, body });
        }
    });
    (addr, first_rx, seen_rx)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The multipart body split where the client pauses: the form fields and the first MiB of
/// the file, then the rest of the file and the closing delimiter.
fn upload(file_len: usize) -> (Vec<u8>, Vec<u8>) {
    let mut first = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
         Content-Type: audio/wav\r\n\r\n"
    )
    .into_bytes();
    let file: Vec<u8> = (0..file_len).map(|i| (i * 7 % 251) as u8).collect();
    first.extend_from_slice(&file[..1 << 20]);
    let mut rest = file[1 << 20..].to_vec();
    rest.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    (first, rest)
}

/// The request head of an upload of `len` body bytes, with the client's own credential.
fn upload_head(len: usize) -> String {
    format!(
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-client\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {len}\r\n\r\n"
    )
}

fn config(providers: &[(&str, SocketAddr, u32)]) -> String {
    let items: String = providers
        .iter()
        .map(|(name, addr, priority)| {
            format!(
                "      - {{ name: {name}, kind: openai, base_url: \"http://{addr}/v1\", api_keys: [\"sk-up\"], models: {{ whisper: whisper-large-v3 }}, priority: {priority} }}\n"
            )
        })
        .collect();
    llm_config(&items, "", "")
}

/// Sends the upload with a pause after the first part; the provider must have seen the model
/// (renamed) before the client sends the rest.
fn send_paused(gw: &Gateway, first_rx: &mpsc::Receiver<()>, file_len: usize) -> (Conn, Vec<u8>) {
    let (first, rest) = upload(file_len);
    let mut c = Conn::connect(gw.addr);
    let head = upload_head(first.len() + rest.len());
    c.send(head.as_bytes());
    c.send(&first);
    first_rx
        .recv_timeout(WAIT)
        .expect("the provider saw nothing before the client sent the whole file: not streamed");
    c.send(&rest);
    let mut whole = first;
    whole.extend_from_slice(&rest);
    (c, whole)
}

fn large_upload_streams_to_the_provider(driver: &str) {
    let (addr, first_rx, seen_rx) = provider();
    let gw = Gateway::start(&config(&[("a", addr, 1)]), driver);
    let file_len = 8 << 20;
    let (mut c, sent) = send_paused(&gw, &first_rx, file_len);
    let r = c.read_response();
    let seen = seen_rx
        .recv_timeout(WAIT)
        .expect("the provider got the request");
    // The model is renamed in place and Content-Length follows the rename.
    let at = sent.windows(7).position(|w| w == b"whisper").unwrap() + 7;
    let want = [&sent[..at], b"-large-v3", &sent[at..]].concat();
    assert_eq!(seen.body.len(), want.len());
    assert!(seen.body == want, "the body arrived altered");
    assert!(
        seen.head.starts_with("POST /v1/audio/transcriptions "),
        "{}",
        seen.head
    );
    assert!(seen.head.contains("Bearer sk-up"), "{}", seen.head);
    assert!(!seen.head.contains("sk-client"), "{}", seen.head);
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        r.json()["text"],
        format!("{} bytes heard", want.len()),
        "{}",
        r.body_str()
    );
    // The connection is still good for another request.
    c.send(&request_bytes("GET", "/v1/models", &[], b""));
    assert_eq!(c.read_response().status, 200);
}

/// A provider that cannot be reached got none of the body, so the upload falls back to the
/// next one and still streams there.
fn upload_falls_back_while_nothing_was_sent(driver: &str) {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (addr, first_rx, seen_rx) = provider();
    let gw = Gateway::start(&config(&[("down", closed, 1), ("up", addr, 2)]), driver);
    let (mut c, sent) = send_paused(&gw, &first_rx, 3 << 20);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.body_str());
    let seen = seen_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(seen.body.len(), sent.len() + "-large-v3".len());
}

/// A provider that hangs up after part of the upload went to it cannot be retried with the
/// same body: the next provider never gets the request, the client gets a 502 (or, if the
/// gateway closed while it was still sending, a reset), and the gateway serves on.
fn upload_failure_mid_body_is_not_retried(driver: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bad = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { return };
            let mut b = vec![0u8; 64 * 1024];
            let _ = s.read(&mut b);
            drop(s); // hang up mid-body
        }
    });
    let (good, _first_rx, seen_rx) = provider();
    let gw = Gateway::start(&config(&[("bad", bad, 1), ("good", good, 2)]), driver);
    let (first, rest) = upload(4 << 20);
    let mut c = Conn::connect(gw.addr);
    let head = upload_head(first.len() + rest.len());
    let mut writer = c.stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&first);
        let _ = writer.write_all(&rest);
    });
    if let Ok(r) = c.try_read_any(false) {
        assert_eq!(r.status, 502, "{}", r.body_str());
        assert_eq!(r.error_code(), "upstream_write_failed", "{}", r.body_str());
    }
    drop(c);
    let _ = sending.join();
    assert!(
        seen_rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "a half-sent upload was sent again to another provider"
    );
    assert_eq!(
        get(gw.addr, "/v1/models", &[]).status,
        200,
        "the gateway serves on"
    );
}

both_drivers!(
    large_upload_streams_to_the_provider,
    upload_falls_back_while_nothing_was_sent,
    upload_failure_mid_body_is_not_retried
);
