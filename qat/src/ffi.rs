//! The part of QATzip's C API (`qatzip.h` of the intel/QATzip project, API 2.x, the one
//! `libqatzip.so.3` exports) that aigw calls, written by hand: no binding crate exists, and
//! nothing here needs the header or the library to build. The symbols are looked up at run
//! time by [`crate::library::QatLibrary`].
//!
//! Layout choices (Linux, LP64: `long` is 64 bits):
//! - C enums (`QzDirection_T`, `QzDataFormat_T`, ...) are `int`-sized: fields typed as enums
//!   are declared `c_int` here, with the values as constants.
//! - Every struct is `#[repr(C)]` with the header's field order, so padding falls where the C
//!   compiler puts it (after `comp_algorithm`/`sw_backup`, both `unsigned char`).
//! - The header adds two pointer fields under `#ifdef ERR_INJECTION` (a test-only build of
//!   QATzip); release libraries have none, and neither do these structs.
//! - `QzSessionParamsCommon_T` has grown over QATzip releases (`polling_mode`,
//!   `is_sensitive_mode` came later). A library newer than this header may write more bytes
//!   into a params struct than we declare, so params always live inside [`ParamsBuf`], which
//!   leaves spare room after them.

// Struct fields carry the header's names and meanings; see qatzip.h for each.
#![allow(non_camel_case_types, non_snake_case, missing_docs)]

use std::os::raw::{c_int, c_long, c_uchar, c_uint, c_ulong, c_void};

/// `QZ_OK`: success.
pub const QZ_OK: c_int = 0;
/// `QZ_DUPLICATE`: already initialised (not a failure).
pub const QZ_DUPLICATE: c_int = 1;
/// `QZ_FORCE_SW`: QATzip switched to its own software path.
pub const QZ_FORCE_SW: c_int = 2;
/// `QZ_PARAMS`: an invalid parameter.
pub const QZ_PARAMS: c_int = -1;
/// `QZ_FAIL`: unspecified error.
pub const QZ_FAIL: c_int = -2;
/// `QZ_BUF_ERROR`: the destination buffer is too small.
pub const QZ_BUF_ERROR: c_int = -3;
/// `QZ_DATA_ERROR`: corrupt input.
pub const QZ_DATA_ERROR: c_int = -4;
/// `QZ_TIMEOUT`: the hardware did not answer in time.
pub const QZ_TIMEOUT: c_int = -5;
/// `QZ_NO_HW` .. `QZ_UNSUPPORTED_FMT` (11..=16): "using SW", QATzip fell back to its own
/// software engine because the device, memory driver, instance or pinned memory is missing.
pub const QZ_NO_HW: c_int = 11;
/// `QZ_NO_MDRV`: no memory driver, using QATzip's software.
pub const QZ_NO_MDRV: c_int = 12;
/// `QZ_NO_INST_ATTACH`: no instance could be attached, using QATzip's software.
pub const QZ_NO_INST_ATTACH: c_int = 13;
/// `QZ_LOW_MEM`: not enough pinned memory, using QATzip's software.
pub const QZ_LOW_MEM: c_int = 14;
/// `QZ_LOW_DEST_MEM`: not enough pinned memory for the destination, using software.
pub const QZ_LOW_DEST_MEM: c_int = 15;
/// `QZ_UNSUPPORTED_FMT`: the device does not support the format, using software.
pub const QZ_UNSUPPORTED_FMT: c_int = 16;
/// `QZ_NOSW_NO_HW`: no QAT hardware, and no software session either.
pub const QZ_NOSW_NO_HW: c_int = -101;
/// `QZ_NOSW_NO_MDRV`: no memory driver, no software session.
pub const QZ_NOSW_NO_MDRV: c_int = -102;
/// `QZ_NOSW_NO_INST_ATTACH`: no instance, no software session.
pub const QZ_NOSW_NO_INST_ATTACH: c_int = -103;
/// `QZ_NOSW_LOW_MEM`: not enough pinned memory, no software session.
pub const QZ_NOSW_LOW_MEM: c_int = -104;
/// `QZ_NO_SW_AVAIL`: software was asked for but is not available.
pub const QZ_NO_SW_AVAIL: c_int = -105;
/// `QZ_NOSW_UNSUPPORTED_FMT`: the device does not support the format, no software session.
pub const QZ_NOSW_UNSUPPORTED_FMT: c_int = -116;

/// Whether a return code says the hardware (device, driver, instance, pinned memory) is not
/// there, as opposed to a call that failed on working hardware.
pub fn is_hardware_missing(rc: c_int) -> bool {
    matches!(
        rc,
        QZ_NO_HW
            | QZ_NO_MDRV
            | QZ_NO_INST_ATTACH
            | QZ_LOW_MEM
            | QZ_LOW_DEST_MEM
            | QZ_UNSUPPORTED_FMT
            | QZ_NOSW_NO_HW
            | QZ_NOSW_NO_MDRV
            | QZ_NOSW_NO_INST_ATTACH
            | QZ_NOSW_LOW_MEM
            | QZ_NOSW_UNSUPPORTED_FMT
    )
}

/// The name of a return code, for logs.
pub fn rc_name(rc: c_int) -> &'static str {
    match rc {
        QZ_OK => "QZ_OK",
        QZ_DUPLICATE => "QZ_DUPLICATE",
        QZ_FORCE_SW => "QZ_FORCE_SW",
        QZ_PARAMS => "QZ_PARAMS",
        QZ_FAIL => "QZ_FAIL",
        QZ_BUF_ERROR => "QZ_BUF_ERROR",
        QZ_DATA_ERROR => "QZ_DATA_ERROR",
        QZ_TIMEOUT => "QZ_TIMEOUT",
        QZ_NO_HW => "QZ_NO_HW",
        QZ_NO_MDRV => "QZ_NO_MDRV",
        QZ_NO_INST_ATTACH => "QZ_NO_INST_ATTACH",
        QZ_LOW_MEM => "QZ_LOW_MEM",
        QZ_LOW_DEST_MEM => "QZ_LOW_DEST_MEM",
        QZ_UNSUPPORTED_FMT => "QZ_UNSUPPORTED_FMT",
        QZ_NOSW_NO_HW => "QZ_NOSW_NO_HW",
        QZ_NOSW_NO_MDRV => "QZ_NOSW_NO_MDRV",
        QZ_NOSW_NO_INST_ATTACH => "QZ_NOSW_NO_INST_ATTACH",
        QZ_NOSW_LOW_MEM => "QZ_NOSW_LOW_MEM",
        QZ_NO_SW_AVAIL => "QZ_NO_SW_AVAIL",
        QZ_NOSW_UNSUPPORTED_FMT => "QZ_NOSW_UNSUPPORTED_FMT",
        _ => "unknown QATzip return code",
    }
}

/// `QzHuffmanHdr_T::QZ_DYNAMIC_HDR`.
pub const QZ_DYNAMIC_HDR: c_int = 0;
/// `QzDirection_T::QZ_DIR_COMPRESS`.
pub const QZ_DIR_COMPRESS: c_int = 0;
/// `QzDirection_T::QZ_DIR_DECOMPRESS`.
pub const QZ_DIR_DECOMPRESS: c_int = 1;
/// `QzDataFormat_T::QZ_DEFLATE_GZIP`: deflate in a plain gzip header and footer.
pub const QZ_DEFLATE_GZIP: c_int = 1;
/// `QzDataFormat_T::QZ_DEFLATE_GZIP_EXT`: gzip with QATzip's extension header (the default).
pub const QZ_DEFLATE_GZIP_EXT: c_int = 2;
/// `QzDataFormat_T::QZ_DEFLATE_RAW`: raw deflate blocks (RFC 1951).
pub const QZ_DEFLATE_RAW: c_int = 3;
/// `QzCrcType_T::NONE`: the stream computes no checksum (aigw computes its own).
pub const QZ_CRC_NONE: c_int = 2;
/// `comp_algorithm` for deflate.
pub const QZ_DEFLATE: c_uchar = 8;
/// `QZ_STRM_BUFF_SZ_DEFAULT`: how much the stream API holds before it compresses.
pub const QZ_STRM_BUFF_SZ_DEFAULT: c_uint = 64 * 1024;

/// `QzSession_T`: the session handle; QATzip keeps its state behind `internal`.
#[repr(C)]
#[derive(Debug)]
pub struct QzSession_T {
    pub hw_session_stat: c_long,
    pub thd_sess_stat: c_int,
    pub internal: *mut c_void,
    pub total_in: c_ulong,
    pub total_out: c_ulong,
}

impl QzSession_T {
    /// An empty handle, as the header requires before `qzInit`.
    pub fn zeroed() -> QzSession_T {
        QzSession_T {
            hw_session_stat: 0,
            thd_sess_stat: 0,
            internal: std::ptr::null_mut(),
            total_in: 0,
            total_out: 0,
        }
    }
}

/// `QzSessionParamsCommon_T`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QzSessionParamsCommon_T {
    pub direction: c_int,
    pub comp_lvl: c_uint,
    pub comp_algorithm: c_uchar,
    pub max_forks: c_uint,
    pub sw_backup: c_uchar,
    pub hw_buff_sz: c_uint,
    pub strm_buff_sz: c_uint,
    pub input_sz_thrshold: c_uint,
    pub req_cnt_thrshold: c_uint,
    pub wait_cnt_thrshold: c_uint,
    pub polling_mode: c_int,
    pub is_sensitive_mode: c_uint,
}

/// `QzSessionParamsDeflate_T`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct QzSessionParamsDeflate_T {
    pub common_params: QzSessionParamsCommon_T,
    pub huffman_hdr: c_int,
    pub data_fmt: c_int,
}

/// A [`QzSessionParamsDeflate_T`] with spare room after it, so that a QATzip newer than
/// this declaration can write its longer struct into it without overrunning our memory.
#[repr(C)]
pub struct ParamsBuf {
    pub params: QzSessionParamsDeflate_T,
    _spare: [u8; 256],
}

impl ParamsBuf {
    /// All zero, to be filled by `qzGetDefaultsDeflate`.
    pub fn zeroed() -> ParamsBuf {
        ParamsBuf {
            params: QzSessionParamsDeflate_T {
                common_params: QzSessionParamsCommon_T {
                    direction: 0,
                    comp_lvl: 0,
                    comp_algorithm: 0,
                    max_forks: 0,
                    sw_backup: 0,
                    hw_buff_sz: 0,
                    strm_buff_sz: 0,
                    input_sz_thrshold: 0,
                    req_cnt_thrshold: 0,
                    wait_cnt_thrshold: 0,
                    polling_mode: 0,
                    is_sensitive_mode: 0,
                },
                huffman_hdr: 0,
                data_fmt: 0,
            },
            _spare: [0; 256],
        }
    }
}

/// `QzStream_T`: one compression stream; QATzip keeps its buffers behind `opaque`.
#[repr(C)]
#[derive(Debug)]
pub struct QzStream_T {
    pub in_sz: c_uint,
    pub out_sz: c_uint,
    pub in_: *mut c_uchar,
    pub out: *mut c_uchar,
    pub pending_in: c_uint,
    pub pending_out: c_uint,
    pub crc_type: c_int,
    pub crc_32: c_uint,
    pub reserved: u64,
    pub opaque: *mut c_void,
}

impl QzStream_T {
    /// A fresh stream with no checksum.
    pub fn new() -> QzStream_T {
        QzStream_T {
            in_sz: 0,
            out_sz: 0,
            in_: std::ptr::null_mut(),
            out: std::ptr::null_mut(),
            pending_in: 0,
            pending_out: 0,
            crc_type: QZ_CRC_NONE,
            crc_32: 0,
            reserved: 0,
            opaque: std::ptr::null_mut(),
        }
    }
}

impl Default for QzStream_T {
    fn default() -> Self {
        QzStream_T::new()
    }
}

/// `int qzInit(QzSession_T *sess, unsigned char sw_backup)`.
pub type qzInit_fn = unsafe extern "C" fn(*mut QzSession_T, c_uchar) -> c_int;
/// `int qzSetupSessionDeflate(QzSession_T *sess, QzSessionParamsDeflate_T *params)`.
pub type qzSetupSessionDeflate_fn =
    unsafe extern "C" fn(*mut QzSession_T, *mut QzSessionParamsDeflate_T) -> c_int;
/// `int qzGetDefaultsDeflate(QzSessionParamsDeflate_T *defaults)`.
pub type qzGetDefaultsDeflate_fn = unsafe extern "C" fn(*mut QzSessionParamsDeflate_T) -> c_int;
/// `int qzCompressStream(QzSession_T *sess, QzStream_T *strm, unsigned int last)`.
pub type qzCompressStream_fn =
    unsafe extern "C" fn(*mut QzSession_T, *mut QzStream_T, c_uint) -> c_int;
/// `int qzEndStream(QzSession_T *sess, QzStream_T *strm)`.
pub type qzEndStream_fn = unsafe extern "C" fn(*mut QzSession_T, *mut QzStream_T) -> c_int;
/// `int qzDecompress(QzSession_T *sess, const unsigned char *src, unsigned int *src_len,
/// unsigned char *dest, unsigned int *dest_len)`.
pub type qzDecompress_fn = unsafe extern "C" fn(
    *mut QzSession_T,
    *const c_uchar,
    *mut c_uint,
    *mut c_uchar,
    *mut c_uint,
) -> c_int;
/// `int qzTeardownSession(QzSession_T *sess)`.
pub type qzTeardownSession_fn = unsafe extern "C" fn(*mut QzSession_T) -> c_int;
/// `int qzClose(QzSession_T *sess)`.
pub type qzClose_fn = unsafe extern "C" fn(*mut QzSession_T) -> c_int;

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes and offsets a C compiler gives the header's structs on LP64 Linux.
    #[test]
    fn layouts_match_the_header_on_lp64() {
        use std::mem::{offset_of, size_of};
        assert_eq!(size_of::<QzSession_T>(), 40);
        assert_eq!(offset_of!(QzSession_T, internal), 16);
        assert_eq!(size_of::<QzSessionParamsCommon_T>(), 48);
        assert_eq!(offset_of!(QzSessionParamsCommon_T, max_forks), 12);
        assert_eq!(offset_of!(QzSessionParamsCommon_T, hw_buff_sz), 20);
        assert_eq!(size_of::<QzSessionParamsDeflate_T>(), 56);
        assert_eq!(offset_of!(QzSessionParamsDeflate_T, data_fmt), 52);
        assert_eq!(size_of::<QzStream_T>(), 56);
        assert_eq!(offset_of!(QzStream_T, pending_in), 24);
        assert_eq!(offset_of!(QzStream_T, opaque), 48);
    }
}
