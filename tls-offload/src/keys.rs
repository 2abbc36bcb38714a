//! The key provider: private keys whose signing goes to QAT when the key is on it, and to
//! software (ring) otherwise or when a QAT call fails. Counters by backend and result.
//!
//! rustls asks a [`SigningKey`] for a [`Signer`] and calls `sign` synchronously inside the
//! handshake. The software path signs in place (tens of microseconds for ECDSA P-256 and
//! Ed25519). A QAT call can take much longer, so a listener with a key on QAT runs the
//! handshake steps that may sign on the offload pool (see `server::accept`); the signer
//! itself simply blocks the offload thread it runs on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, SubjectPublicKeyInfoDer};
use rustls::sign::{Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};

use crate::qat::{self, Curve};

/// Where a private-key operation ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Qat,
    Software,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Qat => "qat",
            Backend::Software => "software",
        }
    }
}

/// `[backend][ok, error]`. Process-wide: signing happens on workers and on offload threads,
/// once per full handshake, far from the per-request hot path.
static KEY_OPS: [[AtomicU64; 2]; 2] = [
    [AtomicU64::new(0), AtomicU64::new(0)],
    [AtomicU64::new(0), AtomicU64::new(0)],
];

fn count(backend: Backend, ok: bool) {
    let b = match backend {
        Backend::Qat => 0,
        Backend::Software => 1,
    };
    KEY_OPS[b][usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
}

/// Private-key operations so far: `(backend, result, count)` with result `ok` or `error`.
pub fn key_op_counts() -> Vec<(&'static str, &'static str, u64)> {
    let mut out = Vec::with_capacity(4);
    for (b, backend) in [Backend::Qat, Backend::Software].into_iter().enumerate() {
        for (r, result) in ["ok", "error"].into_iter().enumerate() {
            out.push((
                backend.label(),
                result,
                KEY_OPS[b][r].load(Ordering::Relaxed),
            ));
        }
    }
    out
}

/// A private key as rustls sees it: the software key always, and the QAT form of it when
/// the key lives on QAT too.
#[derive(Debug)]
pub struct OffloadKey {
    software: Arc<dyn SigningKey>,
    qat: Option<Arc<QatKey>>,
}

/// The private key material handed to QAT with each operation.
#[derive(Debug)]
enum QatKey {
    /// An ECDSA private scalar.
    Ec {
        curve: Curve,
        scalar: Vec<u8>,
    },
    Rsa(qat::der::RsaParts),
}

impl QatKey {
    /// Prepares `der` for QAT: ECDSA P-256/P-384, or RSA of a size QAT takes.
    fn from_der(der: &PrivateKeyDer<'_>, algorithm: SignatureAlgorithm) -> Option<QatKey> {
        match algorithm {
            SignatureAlgorithm::ECDSA => {
                qat::der::ec_private_scalar(der).map(|(curve, scalar)| QatKey::Ec { curve, scalar })
            }
            SignatureAlgorithm::RSA => qat::der::rsa_private_key(der)
                .filter(|k| qat::rsa_size_supported(k.n.len()))
                .map(QatKey::Rsa),
            _ => None,
        }
    }

    /// Signs through QAT if this key can make `scheme`; `None` when it cannot.
    fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Option<Result<Vec<u8>, String>> {
        match self {
            QatKey::Ec { curve, scalar } => {
                (curve.scheme() == scheme).then(|| qat::ecdsa_sign(*curve, scalar, message))
            }
            QatKey::Rsa(parts) => {
                qat::rsa::supports(scheme).then(|| qat::rsa_sign(parts, scheme, message))
            }
        }
    }
}

impl OffloadKey {
    /// Loads `der` in software and, when `use_qat`, prepares it for QAT (ECDSA P-256/P-384
    /// and RSA; Ed25519 stays in software). Returns the key and whether QAT serves it.
    pub fn load(der: &PrivateKeyDer<'_>, use_qat: bool) -> Result<(OffloadKey, bool), String> {
        let provider = rustls::crypto::ring::default_provider();
        let software = provider
            .key_provider
            .load_private_key(der.clone_key())
            .map_err(|e| format!("unsupported private key: {e}"))?;
        let qat = if use_qat {
            QatKey::from_der(der, software.algorithm()).map(Arc::new)
        } else {
            None
        };
        let on_qat = qat.is_some();
        Ok((OffloadKey { software, qat }, on_qat))
    }
}

impl SigningKey for OffloadKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let software = self.software.choose_scheme(offered)?;
        Some(Box::new(OffloadSigner {
            scheme: software.scheme(),
            software,
            qat: self.qat.clone(),
        }))
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        self.software.public_key()
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        self.software.algorithm()
    }
}

#[derive(Debug)]
struct OffloadSigner {
    scheme: SignatureScheme,
    software: Box<dyn Signer>,
    qat: Option<Arc<QatKey>>,
}

impl Signer for OffloadSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        if let Some(result) = self.qat.as_ref().and_then(|k| k.sign(self.scheme, message)) {
            match result {
                Ok(sig) => {
                    count(Backend::Qat, true);
                    return Ok(sig);
                }
                Err(why) => {
                    count(Backend::Qat, false);
                    qat::note_failure(&why);
                }
            }
        }
        let res = self.software.sign(message);
        count(Backend::Software, res.is_ok());
        res
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}
