//! The subset of Intel QAT's user-space API (qatlib: `libqat` and its memory driver
//! `libusdm`) that aigw calls, declared from the public headers `cpa.h`, `cpa_cy_im.h`,
//! `cpa_cy_ecdsa.h`, `icp_sal_user.h`, `icp_sal_poll.h` and `qae_mem.h`. Nothing here links
//! against QAT: the functions are looked up with dlopen/dlsym at run time.

use std::ffi::{c_char, c_int, c_void};

/// `CpaStatus` (`Cpa32S`).
pub type CpaStatus = i32;
pub const CPA_STATUS_SUCCESS: CpaStatus = 0;
pub const CPA_STATUS_RETRY: CpaStatus = -2;
/// `CpaBoolean`: an enum, int-sized.
pub type CpaBoolean = c_int;
pub const CPA_TRUE: CpaBoolean = 1;
/// `CpaInstanceHandle`: an opaque pointer.
pub type CpaInstanceHandle = *mut c_void;
/// `CPA_CY_EC_FIELD_TYPE_PRIME` of `CpaCyEcFieldType`.
pub const CPA_CY_EC_FIELD_TYPE_PRIME: c_int = 1;

/// `CpaFlatBuffer`: a length and a pointer to DMA-able memory, most significant byte first.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct CpaFlatBuffer {
    pub data_len_in_bytes: u32,
    pub p_data: *mut u8,
}

/// `CpaCyEcdsaSignRSOpData`, field for field.
#[repr(C)]
#[derive(Debug)]
pub struct CpaCyEcdsaSignRSOpData {
    pub xg: CpaFlatBuffer,
    pub yg: CpaFlatBuffer,
    pub n: CpaFlatBuffer,
    pub q: CpaFlatBuffer,
    pub a: CpaFlatBuffer,
    pub b: CpaFlatBuffer,
    pub k: CpaFlatBuffer,
    pub m: CpaFlatBuffer,
    pub d: CpaFlatBuffer,
    pub field_type: c_int,
}

/// `CpaStatus icp_sal_userStart(const char *pProcessName)`.
pub type UserStart = unsafe extern "C" fn(*const c_char) -> CpaStatus;
/// `CpaStatus cpaCyGetNumInstances(Cpa16U *pNumInstances)`.
pub type GetNumInstances = unsafe extern "C" fn(*mut u16) -> CpaStatus;
/// `CpaStatus cpaCyGetInstances(Cpa16U numInstances, CpaInstanceHandle *cyInstances)`.
pub type GetInstances = unsafe extern "C" fn(u16, *mut CpaInstanceHandle) -> CpaStatus;
/// `CpaPhysicalAddr (*CpaVirtualToPhysical)(void *pVirtualAddr)`.
pub type VirtToPhys = unsafe extern "C" fn(*mut c_void) -> u64;
/// `CpaStatus cpaCySetAddressTranslation(CpaInstanceHandle, CpaVirtualToPhysical)`.
pub type SetAddressTranslation = unsafe extern "C" fn(CpaInstanceHandle, VirtToPhys) -> CpaStatus;
/// `CpaStatus cpaCyStartInstance(CpaInstanceHandle)`.
pub type StartInstance = unsafe extern "C" fn(CpaInstanceHandle) -> CpaStatus;
/// `CpaStatus icp_sal_CyPollInstance(CpaInstanceHandle, Cpa32U response_quota)`.
pub type PollInstance = unsafe extern "C" fn(CpaInstanceHandle, u32) -> CpaStatus;
/// `CpaStatus cpaCyEcdsaSignRS(instance, pCb, pCallbackTag, pOpData, pSignStatus, pR, pS)`;
/// a null `pCb` makes the call synchronous.
pub type EcdsaSignRS = unsafe extern "C" fn(
    CpaInstanceHandle,
    *const c_void,
    *mut c_void,
    *const CpaCyEcdsaSignRSOpData,
    *mut CpaBoolean,
    *mut CpaFlatBuffer,
    *mut CpaFlatBuffer,
) -> CpaStatus;
/// `void *qaeMemAllocNUMA(size_t size, int node, size_t phys_alignment_byte)` (libusdm).
pub type MemAllocNuma = unsafe extern "C" fn(usize, c_int, usize) -> *mut c_void;
/// `void qaeMemFreeNUMA(void **ptr)` (libusdm).
pub type MemFreeNuma = unsafe extern "C" fn(*mut *mut c_void);

/// `CPA_CY_RSA_VERSION_TWO_PRIME` of `CpaCyRsaVersion`.
pub const CPA_CY_RSA_VERSION_TWO_PRIME: c_int = 1;
/// `CPA_CY_RSA_PRIVATE_KEY_REP_TYPE_2` of `CpaCyRsaPrivateKeyRepType` (the CRT form).
pub const CPA_CY_RSA_PRIVATE_KEY_REP_TYPE_2: c_int = 2;

/// `CpaCyRsaPrivateKeyRep1`: modulus and private exponent.
#[repr(C)]
#[derive(Debug)]
pub struct CpaCyRsaPrivateKeyRep1 {
    pub modulus_n: CpaFlatBuffer,
    pub private_exponent_d: CpaFlatBuffer,
}

/// `CpaCyRsaPrivateKeyRep2`: the CRT quintuple.
#[repr(C)]
#[derive(Debug)]
pub struct CpaCyRsaPrivateKeyRep2 {
    pub prime1_p: CpaFlatBuffer,
    pub prime2_q: CpaFlatBuffer,
    pub exponent1_dp: CpaFlatBuffer,
    pub exponent2_dq: CpaFlatBuffer,
    pub coefficient_q_inv: CpaFlatBuffer,
}

/// `CpaCyRsaPrivateKey`.
#[repr(C)]
#[derive(Debug)]
pub struct CpaCyRsaPrivateKey {
    pub version: c_int,
    pub private_key_rep_type: c_int,
    pub private_key_rep1: CpaCyRsaPrivateKeyRep1,
    pub private_key_rep2: CpaCyRsaPrivateKeyRep2,
}

/// `CpaCyRsaDecryptOpData`: the key and the input (for a signature: the encoded message).
#[repr(C)]
#[derive(Debug)]
pub struct CpaCyRsaDecryptOpData {
    pub p_recipient_private_key: *mut CpaCyRsaPrivateKey,
    pub input_data: CpaFlatBuffer,
}

/// `CpaStatus cpaCyRsaDecrypt(instance, pRsaDecryptCb, pCallbackTag, pDecryptOpData,
/// pOutputData)`; a null callback makes the call synchronous.
pub type RsaDecrypt = unsafe extern "C" fn(
    CpaInstanceHandle,
    *const c_void,
    *mut c_void,
    *const CpaCyRsaDecryptOpData,
    *mut CpaFlatBuffer,
) -> CpaStatus;
