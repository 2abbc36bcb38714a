//! Test support: builds the QATzip stand-in (`standin/qatzip_standin.c`), a small C library
//! over zlib that exports the `qz*` functions with QATzip's ABI. It is not QATzip and
//! touches no hardware; tests load it in place of `libqatzip.so.3` to drive the FFI path.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The stand-in's C source.
pub fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("standin/qatzip_standin.c")
}

/// Compiles the stand-in into `dir/libqatzip_standin.so` with `cc` (needs a C compiler and
/// zlib's headers: `gcc` and `zlib1g-dev` on Debian) unless it is already there and newer
/// than its source. Safe to call from several tests or processes at once: the library is
/// built under a unique name and renamed into place.
pub fn build(dir: &Path) -> Result<PathBuf, String> {
    let lib = dir.join("libqatzip_standin.so");
    let src = source();
    let fresh = |p: &Path| -> bool {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((m(p), m(&src)), (Some(a), Some(b)) if a >= b)
    };
    if fresh(&lib) {
        return Ok(lib);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        "libqatzip_standin.{}.{:?}.so",
        std::process::id(),
        std::thread::current().id()
    ));
    let out = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&tmp)
        .arg(&src)
        .arg("-lz")
        .output()
        .map_err(|e| format!("cannot run cc (install gcc): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the QATzip stand-in failed (needs gcc and zlib1g-dev):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::rename(&tmp, &lib).map_err(|e| format!("rename: {e}"))?;
    Ok(lib)
}
