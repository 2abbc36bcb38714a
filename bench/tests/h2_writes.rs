//! How `aigw-bench load --http2` writes over TLS: the requests that take the stream slots freed
//! by answers that arrived together go out in one TLS record, with the acknowledgements those
//! answers called for, as `h2load` sends them. A server pays per record (a decryption, often a
//! wake-up), so a client that sends a record per request measures a slower server.
//!
//! The server here is this test's own: rustls over a blocking socket, fed one TLS record at a
//! time so that it knows which record brought each frame. It holds its answers until all of
//! the client's streams are busy (the client then has nothing left to send), then writes every
//! answer as its own record, plus a PING, in one socket write: they reach the client together.
//! What the client sends next, the requests for the 16 freed slots and the PING's ACK, must come
//! in one record. The count follows from the client's logic alone, not from timing; the run
//! only has to last for the four exchanges checked (1 s for a few milliseconds of work).

mod common;

use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;

use common::*;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};

const STREAMS: usize = 16;
/// Bursts checked per run; answers flow freely after them until the client stops.
const ROUNDS: usize = 4;

const HEADERS: u8 = 1;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const ACK: u8 = 1;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A frame received, and the number of the TLS record that completed it.
struct Frame {
    ty: u8,
    flags: u8,
    stream: u32,
    record: u32,
}

/// What the client sent after one flight of answers (the first: after our SETTINGS).
#[derive(Debug, Default)]
struct Burst {
    /// HEADERS frames: new requests.
    requests: usize,
    /// SETTINGS or PING acknowledgements.
    acks: usize,
    /// The records they came in.
    records: BTreeSet<u32>,
}

fn frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[ty, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// One h2 connection over TLS, read record by record.
struct Conn {
    sock: TcpStream,
    tls: ServerConnection,
    /// Ciphertext not yet a whole record.
    raw: Vec<u8>,
    /// Plaintext not yet a whole frame (after the preface).
    plain: Vec<u8>,
    preface_seen: bool,
    /// Records that carried plaintext so far.
    records: u32,
}

impl Conn {
    /// Reads the socket once and returns the frames completed by the whole records it
    /// brought; `None` when the client closed.
    fn read(&mut self) -> Option<Vec<Frame>> {
        let mut chunk = [0u8; 64 * 1024];
        let n = match self.sock.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        self.raw.extend_from_slice(&chunk[..n]);
        let mut frames = Vec::new();
        let mut pos = 0;
        while self.raw.len() - pos >= 5 {
            let len = u16::from_be_bytes([self.raw[pos + 3], self.raw[pos + 4]]) as usize;
            if self.raw.len() - pos < 5 + len {
                break;
            }
            let mut record = &self.raw[pos..pos + 5 + len];
            pos += 5 + len;
            while !record.is_empty() {
                self.tls.read_tls(&mut record).unwrap();
            }
            self.tls.process_new_packets().expect("the client's TLS");
            if self.take_plaintext()? {
                self.records += 1;
                self.frames(&mut frames);
            }
        }
        self.raw.drain(..pos);
        self.send_tls();
        Some(frames)
    }

    /// Moves the session's plaintext to `plain`; whether there was any (`None`: close_notify).
    fn take_plaintext(&mut self) -> Option<bool> {
        let mut buf = [0u8; 16 * 1024];
        let mut any = false;
        loop {
            match self.tls.reader().read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => {
                    self.plain.extend_from_slice(&buf[..n]);
                    any = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(any),
                Err(e) => panic!("reading plaintext: {e}"),
            }
        }
    }

    /// Parses the complete frames in `plain`, tagged with the current record.
    fn frames(&mut self, out: &mut Vec<Frame>) {
        if !self.preface_seen {
            if self.plain.len() < PREFACE.len() {
                return;
            }
            assert_eq!(&self.plain[..PREFACE.len()], PREFACE);
            self.plain.drain(..PREFACE.len());
            self.preface_seen = true;
        }
        let mut pos = 0;
        while self.plain.len() - pos >= 9 {
            let h = &self.plain[pos..pos + 9];
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            if self.plain.len() - pos < 9 + len {
                break;
            }
            out.push(Frame {
                ty: h[3],
                flags: h[4],
                stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
                record: self.records,
            });
            pos += 9 + len;
        }
        self.plain.drain(..pos);
    }

    /// Encrypts each of `frames` as a record of its own, and sends them all in one write.
    fn send(&mut self, frames: &[Vec<u8>]) {
        for f in frames {
            self.tls.writer().write_all(f).unwrap();
        }
        self.send_tls();
    }

    fn send_tls(&mut self) {
        let mut out = Vec::new();
        while self.tls.wants_write() {
            self.tls.write_tls(&mut out).unwrap();
        }
        // The client may have gone (end of its run); what it missed does not matter then.
        let _ = self.sock.write_all(&out);
    }
}

/// Serves one connection: holds answers for `ROUNDS` bursts (see the module comment), then
/// answers each read's requests at once until the client closes. Returns the bursts.
fn serve(listener: TcpListener) -> Vec<Burst> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let (sock, _) = listener.accept().unwrap();
    let mut c = Conn {
        sock,
        tls: ServerConnection::new(Arc::new(config)).unwrap(),
        raw: Vec::new(),
        plain: Vec::new(),
        preface_seen: false,
        records: 0,
    };
    let mut frames = Vec::new();
    while c.tls.is_handshaking() {
        frames.extend(c.read().expect("the client left during the handshake"));
    }
    c.send(&[frame(SETTINGS, 0, 0, &[])]);
    let (mut bursts, mut burst, mut unanswered) = (Vec::new(), Burst::default(), Vec::new());
    loop {
        for f in frames.drain(..) {
            match (f.ty, f.flags & ACK) {
                (HEADERS, _) => {
                    assert_ne!(f.flags & END_HEADERS, 0, "one frame per header block");
                    unanswered.push(f.stream);
                    burst.requests += 1;
                }
                (SETTINGS | PING, ACK) => burst.acks += 1,
                _ => continue,
            }
            burst.records.insert(f.record);
        }
        // `:status: 200` (static index 8), no body.
        let answer = |id| frame(HEADERS, END_HEADERS | END_STREAM, id, &[0x88]);
        if bursts.len() < ROUNDS {
            if unanswered.len() == STREAMS {
                bursts.push(std::mem::take(&mut burst));
                let mut flight: Vec<_> = unanswered.drain(..).map(answer).collect();
                flight.push(frame(PING, 0, 0, &[7; 8]));
                c.send(&flight);
            }
        } else if !unanswered.is_empty() {
            let all: Vec<u8> = unanswered.drain(..).flat_map(answer).collect();
            c.send(&[all]);
        }
        match c.read() {
            Some(f) => frames = f,
            None => return bursts,
        }
    }
}

#[test]
fn requests_for_slots_freed_together_go_out_in_one_tls_record() {
    for driver in ["legacy", "auto"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("https://{}/", listener.local_addr().unwrap());
        let server = std::thread::spawn(move || serve(listener));
        let out = Command::new(BENCH)
            .env("AIGW_BENCH_IO_DRIVER", driver)
            .args(["load", "--json", &url, "--insecure", "--http2"])
            .args(["--streams", &STREAMS.to_string(), "--connections", "1"])
            .args(["--threads", "1", "--seconds", "1", "--timeout", "5"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(r["errors"], serde_json::json!({}), "{driver}: {r}");
        answered_200(&r);
        let bursts = server.join().unwrap();
        assert_eq!(bursts.len(), ROUNDS, "{driver}: {bursts:?} {r}");
        for (i, b) in bursts.iter().enumerate() {
            // the first burst acknowledges our SETTINGS, the others our PING
            assert_eq!((b.requests, b.acks), (STREAMS, 1), "{driver}: burst {i}");
            assert_eq!(b.records.len(), 1, "{driver}: burst {i}: {b:?}");
        }
    }
}
