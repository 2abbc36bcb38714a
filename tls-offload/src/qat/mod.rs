//! Intel QAT through its user-space library, loaded at run time.
//!
//! [`engine`] dlopens qatlib (`AIGW_QAT_LIB`, else `libqat.so.4`, then `libqat.so.3`) and its
//! memory driver (`AIGW_QAT_USDM_LIB`, else `libusdm.so.0`; symbols not found there are looked
//! up in the first library), starts user-space access (`icp_sal_userStart` with section
//! `AIGW_QAT_SECTION`, default `SSL`) and every crypto instance, once per process. Nothing is
//! needed at build time. Any failure leaves QAT unusable, with the reason kept for the log.
//!
//! Operations use the synchronous form of the API (a null callback): the calling thread, an
//! offload thread, blocks until the response arrives. Responses are collected by a poll
//! thread that calls `icp_sal_CyPollInstance` on every instance while any operation is in
//! flight, and sleeps otherwise.
//!
//! Offloaded: ECDSA P-256/P-384 (aigw hashes the message and draws the nonce k; QAT computes
//! (r, s) with `cpaCyEcdsaSignRS`) and RSA with moduli of 1024 to 4096 bits (aigw encodes the
//! message, PSS or PKCS#1 v1.5; QAT applies the private key with `cpaCyRsaDecrypt`). Ed25519
//! has no QAT operation and stays in software.

pub mod der;
mod ffi;
pub mod rsa;

use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libloading::Library;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::SignatureScheme;

use ffi::*;

/// The curves QAT signs for aigw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// Domain parameters, big-endian, each `size` bytes.
struct Params {
    p: &'static str,
    a: &'static str,
    b: &'static str,
    gx: &'static str,
    gy: &'static str,
    n: &'static str,
}

const P256: Params = Params {
    p: "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    a: "ffffffff00000001000000000000000000000000fffffffffffffffffffffffc",
    b: "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
    gx: "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
    gy: "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
    n: "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
};

const P384: Params = Params {
    p: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    a: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffc",
    b: "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    gx: "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
    gy: "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
    n: "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
};

impl Curve {
    /// Bytes of a field element or scalar.
    pub fn size(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }

    /// The TLS signature scheme this curve signs with.
    pub fn scheme(self) -> SignatureScheme {
        match self {
            Curve::P256 => SignatureScheme::ECDSA_NISTP256_SHA256,
            Curve::P384 => SignatureScheme::ECDSA_NISTP384_SHA384,
        }
    }

    fn digest(self) -> &'static ring::digest::Algorithm {
        match self {
            Curve::P256 => &ring::digest::SHA256,
            Curve::P384 => &ring::digest::SHA384,
        }
    }

    fn params(self) -> &'static Params {
        match self {
            Curve::P256 => &P256,
            Curve::P384 => &P384,
        }
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect()
}

/// A started crypto instance. QAT documents its instance handles as thread-safe.
#[derive(Clone, Copy)]
struct Instance(CpaInstanceHandle);
// SAFETY: the handle is an opaque token the library accepts from any thread (the CPA API
// marks these calls thread-safe); aigw never dereferences it.
unsafe impl Send for Instance {}
unsafe impl Sync for Instance {}

/// The loaded library and its started instances.
struct Engine {
    sign_rs: EcdsaSignRS,
    /// Absent from a library without RSA: RSA keys then stay in software.
    rsa_decrypt: Option<RsaDecrypt>,
    mem_alloc: MemAllocNuma,
    mem_free: MemFreeNuma,
    instances: Vec<Instance>,
    next: AtomicUsize,
    in_flight: Arc<AtomicUsize>,
    poller: std::thread::Thread,
    /// Keeps the code behind the function pointers mapped.
    _libs: Vec<Library>,
}

static ENGINE: OnceLock<Result<Engine, String>> = OnceLock::new();
static LAST_FAILURE: Mutex<Option<String>> = Mutex::new(None);

/// Loads and starts QAT once per process; `Err` says why it is not usable.
pub fn available() -> Result<(), String> {
    engine().map(|_| ())
}

fn engine() -> Result<&'static Engine, String> {
    ENGINE
        .get_or_init(|| {
            // SAFETY: loading a library runs its initialisers; qatlib's are ordinary
            // constructors. The function types match the public headers (see ffi.rs).
            unsafe { Engine::load() }
        })
        .as_ref()
        .map_err(|e| e.clone())
}

/// Remembers why a QAT call failed (the operation then ran in software).
pub fn note_failure(why: &str) {
    if let Ok(mut last) = LAST_FAILURE.lock() {
        *last = Some(why.to_string());
    }
}

/// The reason of the most recent failed QAT call, if any.
pub fn last_failure() -> Option<String> {
    LAST_FAILURE.lock().ok().and_then(|l| l.clone())
}

fn open(names: &[String]) -> Result<Library, String> {
    let mut errors = Vec::new();
    for name in names {
        // SAFETY: see `engine`.
        match unsafe { Library::new(name) } {
            Ok(lib) => return Ok(lib),
            Err(e) => {
                let why = std::error::Error::source(&e).map_or(e.to_string(), |s| s.to_string());
                errors.push(why);
            }
        }
    }
    Err(errors.join("; "))
}

/// Looks `name` up in the first library that has it.
///
/// # Safety
/// `T` must be the symbol's real function type.
unsafe fn symbol<T: Copy>(libs: &[Library], name: &str) -> Result<T, String> {
    let cname = format!("{name}\0");
    for lib in libs {
        if let Ok(sym) = lib.get::<T>(cname.as_bytes()) {
            return Ok(*sym);
        }
    }
    Err(format!("symbol `{name}` not found"))
}

fn env_or(var: &str, defaults: &[&str]) -> Vec<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => vec![v],
        _ => defaults.iter().map(|s| s.to_string()).collect(),
    }
}

impl Engine {
    /// # Safety
    /// Calls into the loaded library; see `engine`.
    unsafe fn load() -> Result<Engine, String> {
        let qat = open(&env_or("AIGW_QAT_LIB", &["libqat.so.4", "libqat.so.3"]))
            .map_err(|e| format!("QAT library not loaded: {e}"))?;
        let mut libs = Vec::new();
        if let Ok(usdm) = open(&env_or("AIGW_QAT_USDM_LIB", &["libusdm.so.0"])) {
            libs.push(usdm);
        }
        libs.push(qat);
        let user_start: UserStart = symbol(&libs, "icp_sal_userStart")?;
        let get_num: GetNumInstances = symbol(&libs, "cpaCyGetNumInstances")?;
        let get_instances: GetInstances = symbol(&libs, "cpaCyGetInstances")?;
        let set_translation: SetAddressTranslation = symbol(&libs, "cpaCySetAddressTranslation")?;
        let start: StartInstance = symbol(&libs, "cpaCyStartInstance")?;
        let poll: PollInstance = symbol(&libs, "icp_sal_CyPollInstance")?;
        let virt_to_phys: VirtToPhys = symbol(&libs, "qaeVirtToPhysNUMA")?;
        let engine_fns = (
            symbol::<EcdsaSignRS>(&libs, "cpaCyEcdsaSignRS")?,
            symbol::<MemAllocNuma>(&libs, "qaeMemAllocNUMA")?,
            symbol::<MemFreeNuma>(&libs, "qaeMemFreeNUMA")?,
        );
        let section = std::env::var("AIGW_QAT_SECTION").unwrap_or_else(|_| "SSL".into());
        let section = CString::new(section).map_err(|_| "AIGW_QAT_SECTION has a NUL byte")?;
        let st = user_start(section.as_ptr());
        if st != CPA_STATUS_SUCCESS {
            return Err(format!(
                "icp_sal_userStart failed (status {st}): no QAT device or service"
            ));
        }
        let mut count = 0u16;
        let st = get_num(&mut count);
        if st != CPA_STATUS_SUCCESS || count == 0 {
            return Err(format!(
                "no QAT crypto instance (status {st}, {count} instances)"
            ));
        }
        let mut handles = vec![std::ptr::null_mut(); usize::from(count)];
        let st = get_instances(count, handles.as_mut_ptr());
        if st != CPA_STATUS_SUCCESS {
            return Err(format!("cpaCyGetInstances failed (status {st})"));
        }
        let mut instances = Vec::new();
        for h in handles {
            if set_translation(h, virt_to_phys) == CPA_STATUS_SUCCESS
                && start(h) == CPA_STATUS_SUCCESS
            {
                instances.push(Instance(h));
            }
        }
        if instances.is_empty() {
            return Err("no QAT crypto instance could be started".into());
        }
        let in_flight = Arc::new(AtomicUsize::new(0));
        let poller = spawn_poller(poll, instances.clone(), in_flight.clone())?;
        Ok(Engine {
            sign_rs: engine_fns.0,
            rsa_decrypt: symbol::<RsaDecrypt>(&libs, "cpaCyRsaDecrypt").ok(),
            mem_alloc: engine_fns.1,
            mem_free: engine_fns.2,
            instances,
            next: AtomicUsize::new(0),
            in_flight,
            poller,
            _libs: libs,
        })
    }
}

/// Polls every instance while operations are in flight, so synchronous calls complete.
fn spawn_poller(
    poll: PollInstance,
    instances: Vec<Instance>,
    in_flight: Arc<AtomicUsize>,
) -> Result<std::thread::Thread, String> {
    let handle = std::thread::Builder::new()
        .name("aigw-qat-poll".into())
        .spawn(move || loop {
            if in_flight.load(Ordering::Acquire) == 0 {
                std::thread::park_timeout(Duration::from_millis(100));
                continue;
            }
            for i in &instances {
                // SAFETY: a started instance; 0 = collect every available response.
                unsafe { poll(i.0, 0) };
            }
            std::thread::sleep(Duration::from_micros(20));
        })
        .map_err(|e| format!("cannot start the QAT poll thread: {e}"))?;
    Ok(handle.thread().clone())
}

impl Engine {
    /// Runs one synchronous operation on the next instance, resubmitting while QAT asks
    /// for a retry (up to 100 times, 50 µs apart), with the poll thread awake meanwhile.
    fn submit(&self, mut op: impl FnMut(CpaInstanceHandle) -> CpaStatus) -> CpaStatus {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.instances.len();
        let instance = self.instances[i];
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.poller.unpark();
        let mut status = CPA_STATUS_RETRY;
        for _ in 0..100 {
            status = op(instance.0);
            if status != CPA_STATUS_RETRY {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        status
    }
}

/// DMA-able memory from the QAT memory driver, freed on drop.
struct DmaBuf<'a> {
    ptr: *mut u8,
    len: usize,
    engine: &'a Engine,
}

impl<'a> DmaBuf<'a> {
    fn new(engine: &'a Engine, len: usize) -> Result<DmaBuf<'a>, String> {
        // SAFETY: plain allocation call; node 0, 64-byte alignment.
        let ptr = unsafe { (engine.mem_alloc)(len, 0, 64) }.cast::<u8>();
        if ptr.is_null() {
            return Err("qaeMemAllocNUMA returned no memory".into());
        }
        // SAFETY: `ptr` is valid for `len` bytes just allocated.
        unsafe { std::ptr::write_bytes(ptr, 0, len) };
        Ok(DmaBuf { ptr, len, engine })
    }

    /// A flat buffer over `[at, at + size)`, filled with `data` (right-aligned) if given.
    fn flat(&mut self, at: usize, size: usize, data: Option<&[u8]>) -> CpaFlatBuffer {
        assert!(at + size <= self.len);
        // SAFETY: in bounds (checked above) of the allocation this struct owns.
        let p = unsafe { self.ptr.add(at) };
        if let Some(d) = data {
            let d = &d[d.len().saturating_sub(size)..];
            // SAFETY: `p` is valid for `size` bytes and `d.len() <= size`.
            unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), p.add(size - d.len()), d.len()) };
        }
        CpaFlatBuffer {
            data_len_in_bytes: size as u32,
            p_data: p,
        }
    }

    fn read(&self, buf: &CpaFlatBuffer) -> Vec<u8> {
        // SAFETY: `buf` points into this allocation (made by `flat`), valid for its length.
        unsafe { std::slice::from_raw_parts(buf.p_data, buf.data_len_in_bytes as usize) }.to_vec()
    }
}

impl Drop for DmaBuf<'_> {
    fn drop(&mut self) {
        let mut p = self.ptr.cast::<c_void>();
        // SAFETY: `p` came from qaeMemAllocNUMA and is freed once.
        unsafe { (self.engine.mem_free)(&mut p) };
    }
}

/// A nonce in [1, n-1], drawn by rejection.
fn nonce(n: &[u8]) -> Result<Vec<u8>, String> {
    let rng = SystemRandom::new();
    let mut k = vec![0u8; n.len()];
    for _ in 0..64 {
        rng.fill(&mut k).map_err(|_| "no randomness")?;
        if k.iter().any(|b| *b != 0) && k.as_slice() < n {
            return Ok(k);
        }
    }
    Err("could not draw an ECDSA nonce".into())
}

/// Signs `message` with the private scalar `d` on `curve`: returns the DER signature TLS
/// expects. Blocks the calling thread until QAT answers.
pub fn ecdsa_sign(curve: Curve, d: &[u8], message: &[u8]) -> Result<Vec<u8>, String> {
    let engine = engine()?;
    let size = curve.size();
    let params = curve.params();
    let digest = ring::digest::digest(curve.digest(), message);
    let n = unhex(params.n);
    let k = nonce(&n)?;
    let mut mem = DmaBuf::new(engine, size * 11)?;
    let op = CpaCyEcdsaSignRSOpData {
        xg: mem.flat(0, size, Some(&unhex(params.gx))),
        yg: mem.flat(size, size, Some(&unhex(params.gy))),
        n: mem.flat(2 * size, size, Some(&n)),
        q: mem.flat(3 * size, size, Some(&unhex(params.p))),
        a: mem.flat(4 * size, size, Some(&unhex(params.a))),
        b: mem.flat(5 * size, size, Some(&unhex(params.b))),
        k: mem.flat(6 * size, size, Some(&k)),
        m: mem.flat(7 * size, size, Some(digest.as_ref())),
        d: mem.flat(8 * size, size, Some(d)),
        field_type: CPA_CY_EC_FIELD_TYPE_PRIME,
    };
    let mut r = mem.flat(9 * size, size, None);
    let mut s = mem.flat(10 * size, size, None);
    let mut valid: CpaBoolean = 0;
    let status = engine.submit(|instance| {
        // SAFETY: synchronous call (null callback) with operation data and output buffers
        // that live in `mem` until after it returns.
        unsafe {
            (engine.sign_rs)(
                instance,
                std::ptr::null(),
                std::ptr::null_mut(),
                &op,
                &mut valid,
                &mut r,
                &mut s,
            )
        }
    });
    if status != CPA_STATUS_SUCCESS {
        return Err(format!("cpaCyEcdsaSignRS failed (status {status})"));
    }
    if valid != CPA_TRUE {
        return Err("cpaCyEcdsaSignRS returned an invalid signature".into());
    }
    let (r, s) = (mem.read(&r), mem.read(&s));
    if r.iter().all(|b| *b == 0) || s.iter().all(|b| *b == 0) {
        return Err("cpaCyEcdsaSignRS returned a zero r or s".into());
    }
    Ok(der::ecdsa_signature(&r, &s))
}

/// Whether QAT can take an RSA key whose modulus is `k` bytes (the sizes the API permits,
/// 1024 bits and up).
pub fn rsa_size_supported(k: usize) -> bool {
    matches!(k, 128 | 192 | 256 | 384 | 512)
}

/// Signs `message` with `key` under the RSA `scheme` (PSS or PKCS#1 v1.5 with SHA-256/384/
/// 512): returns the signature TLS expects. Blocks the calling thread until QAT answers.
pub fn rsa_sign(
    key: &der::RsaParts,
    scheme: SignatureScheme,
    message: &[u8],
) -> Result<Vec<u8>, String> {
    let engine = engine()?;
    let decrypt = engine
        .rsa_decrypt
        .ok_or("the QAT library has no cpaCyRsaDecrypt")?;
    let k = key.n.len();
    let half = k / 2;
    let parts = [&key.p, &key.q, &key.dp, &key.dq, &key.qinv];
    if !rsa_size_supported(k) || parts.iter().any(|v| v.len() > half) {
        return Err(format!("an RSA key of {k} bytes is not one QAT takes"));
    }
    let mod_bits = k * 8 - key.n[0].leading_zeros() as usize;
    let em = rsa::encode(scheme, message, k, mod_bits)?;
    let mut mem = DmaBuf::new(engine, 4 * k + 5 * half)?;
    let mut private = CpaCyRsaPrivateKey {
        version: CPA_CY_RSA_VERSION_TWO_PRIME,
        private_key_rep_type: CPA_CY_RSA_PRIVATE_KEY_REP_TYPE_2,
        private_key_rep1: CpaCyRsaPrivateKeyRep1 {
            modulus_n: mem.flat(0, k, Some(&key.n)),
            private_exponent_d: mem.flat(k, k, Some(&key.d)),
        },
        private_key_rep2: CpaCyRsaPrivateKeyRep2 {
            prime1_p: mem.flat(2 * k, half, Some(&key.p)),
            prime2_q: mem.flat(2 * k + half, half, Some(&key.q)),
            exponent1_dp: mem.flat(2 * k + 2 * half, half, Some(&key.dp)),
            exponent2_dq: mem.flat(2 * k + 3 * half, half, Some(&key.dq)),
            coefficient_q_inv: mem.flat(2 * k + 4 * half, half, Some(&key.qinv)),
        },
    };
    let op = CpaCyRsaDecryptOpData {
        p_recipient_private_key: &mut private,
        input_data: mem.flat(2 * k + 5 * half, k, Some(&em)),
    };
    let mut out = mem.flat(3 * k + 5 * half, k, None);
    let status = engine.submit(|instance| {
        // SAFETY: synchronous call (null callback); the key, input and output live in `mem`
        // and on this stack frame until after it returns.
        unsafe {
            decrypt(
                instance,
                std::ptr::null(),
                std::ptr::null_mut(),
                &op,
                &mut out,
            )
        }
    });
    if status != CPA_STATUS_SUCCESS {
        return Err(format!("cpaCyRsaDecrypt failed (status {status})"));
    }
    let sig = mem.read(&out);
    if sig.iter().all(|b| *b == 0) {
        return Err("cpaCyRsaDecrypt returned zero".into());
    }
    Ok(sig)
}
