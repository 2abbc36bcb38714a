//! The OCSP response reader (tls-offload/src/ocsp.rs), which reads the `ocsp` file an operator
//! (or their refresh job) puts next to a listener certificate.
//!
//! Input: one byte choosing the certificate's serial length (1 to 20), that many serial bytes,
//! then the response. Checks: no panic; a response accepted for the certificate is stapled as
//! read, and whether it may be stapled at a time agrees with the reason given when it may not.
#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use aigw_tls::ocsp::Staple;
use libfuzzer_sys::fuzz_target;
use rustls_pki_types::CertificateDer;

/// A certificate as far as the reader looks into one: a SEQUENCE holding a TBSCertificate
/// SEQUENCE of version 3 and the serial (at most 20 bytes, so every length is one byte).
fn cert(serial: &[u8]) -> CertificateDer<'static> {
    let n = serial.len() as u8;
    let mut tbs = vec![0x30, 7 + n, 0xa0, 3, 0x02, 1, 2, 0x02, n];
    tbs.extend_from_slice(serial);
    let mut der = vec![0x30, tbs.len() as u8];
    der.extend(tbs);
    CertificateDer::from(der)
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = 1 + usize::from(n) % 20;
    if rest.len() < n {
        return;
    }
    let (serial, response) = rest.split_at(n);
    let Ok(staple) = Staple::check(response.to_vec(), &cert(serial)) else {
        return;
    };
    assert_eq!(staple.der, response);
    for secs in [
        0u64,
        1_000_000_000,
        1_795_608_000,
        4_000_000_000,
        u32::MAX as u64 * 4,
    ] {
        let now = UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(
            staple.valid_at(now),
            staple.why_not_at(now).is_none(),
            "at {secs}"
        );
    }
});
