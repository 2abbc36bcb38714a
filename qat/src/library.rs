//! Loading QATzip at run time with `dlopen`, so that building and running aigw never needs
//! QAT headers, libraries or devices. A missing library is an ordinary, reported condition
//! (the software codecs do the work), never a start-up failure.

use std::ffi::{CStr, CString};
use std::os::raw::c_void;
use std::sync::{Arc, Mutex, OnceLock};

use crate::ffi;

/// The library name QATzip 1.1 and later install (`libqatzip.so.3`, API 2.x).
pub const DEFAULT_LIBRARY: &str = "libqatzip.so.3";

/// Environment variable that overrides the configured library path (tests point it at the
/// stand-in library they build).
pub const LIBRARY_ENV: &str = "AIGW_QATZIP_LIBRARY";

/// The QATzip functions aigw calls, resolved from one loaded library. The handle stays open
/// for the life of the process (a library whose functions may be on another thread's stack
/// must never be unloaded).
pub struct QatLibrary {
    /// The path or name it was loaded from.
    pub path: String,
    pub(crate) init: ffi::qzInit_fn,
    pub(crate) setup_deflate: ffi::qzSetupSessionDeflate_fn,
    pub(crate) get_defaults_deflate: ffi::qzGetDefaultsDeflate_fn,
    pub(crate) compress_stream: ffi::qzCompressStream_fn,
    pub(crate) end_stream: ffi::qzEndStream_fn,
    pub(crate) decompress: ffi::qzDecompress_fn,
    pub(crate) teardown: ffi::qzTeardownSession_fn,
    pub(crate) close: ffi::qzClose_fn,
}

impl std::fmt::Debug for QatLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QatLibrary")
            .field("path", &self.path)
            .finish()
    }
}

impl QatLibrary {
    /// Loads `path` (a file path, or a bare name searched the way the dynamic linker does)
    /// and resolves every symbol aigw uses. `Err` says what is missing.
    pub fn load(path: &str) -> Result<QatLibrary, String> {
        let cpath = CString::new(path).map_err(|_| format!("library path {path:?} has a NUL"))?;
        // SAFETY: dlopen with a valid C string; RTLD_NOW resolves everything up front so a
        // missing dependency is reported here, not on the first call.
        let handle = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!("cannot load {path}: {}", dl_error()));
        }
        let sym = |name: &str| -> Result<*mut c_void, String> {
            let cname = CString::new(name).expect("symbol names have no NUL");
            // SAFETY: `handle` is a live dlopen handle (never closed) and `cname` a C string.
            let p = unsafe { libc::dlsym(handle, cname.as_ptr()) };
            if p.is_null() {
                Err(format!("{path} has no symbol {name}: {}", dl_error()))
            } else {
                Ok(p)
            }
        };
        // SAFETY (every transmute below): each symbol is a function of the C signature its
        // `ffi::*_fn` type declares, as `qatzip.h` declares it; a function pointer and a data
        // pointer have the same size on every platform aigw supports.
        unsafe {
            Ok(QatLibrary {
                path: path.to_string(),
                init: std::mem::transmute::<*mut c_void, ffi::qzInit_fn>(sym("qzInit")?),
                setup_deflate: std::mem::transmute::<*mut c_void, ffi::qzSetupSessionDeflate_fn>(
                    sym("qzSetupSessionDeflate")?,
                ),
                get_defaults_deflate: std::mem::transmute::<
                    *mut c_void,
                    ffi::qzGetDefaultsDeflate_fn,
                >(sym("qzGetDefaultsDeflate")?),
                compress_stream: std::mem::transmute::<*mut c_void, ffi::qzCompressStream_fn>(sym(
                    "qzCompressStream",
                )?),
                end_stream: std::mem::transmute::<*mut c_void, ffi::qzEndStream_fn>(sym(
                    "qzEndStream",
                )?),
                decompress: std::mem::transmute::<*mut c_void, ffi::qzDecompress_fn>(sym(
                    "qzDecompress",
                )?),
                teardown: std::mem::transmute::<*mut c_void, ffi::qzTeardownSession_fn>(sym(
                    "qzTeardownSession",
                )?),
                close: std::mem::transmute::<*mut c_void, ffi::qzClose_fn>(sym("qzClose")?),
            })
        }
    }

    /// The library at `path` (or [`LIBRARY_ENV`] when set), loaded once per process and
    /// shared; a failed load is remembered too, so a missing library costs one `dlopen`.
    pub fn shared(path: &str) -> Result<Arc<QatLibrary>, String> {
        type Loaded = Vec<(String, Result<Arc<QatLibrary>, String>)>;
        static LOADED: OnceLock<Mutex<Loaded>> = OnceLock::new();
        let path = std::env::var(LIBRARY_ENV).unwrap_or_else(|_| path.to_string());
        let mut loaded = LOADED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((_, r)) = loaded.iter().find(|(p, _)| *p == path) {
            return r.clone();
        }
        let r = QatLibrary::load(&path).map(Arc::new);
        loaded.push((path, r.clone()));
        r
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string owned by libc, read at once.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}
