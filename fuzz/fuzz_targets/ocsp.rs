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

/// DER `tag length body` (short or two-byte long form).
fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match body.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

/// A certificate as far as the reader looks into one: version, then the serial.
fn cert(serial: &[u8]) -> CertificateDer<'static> {
    let version = tlv(0xa0, &tlv(0x02, &[2]));
    let tbs = tlv(0x30, &[version, tlv(0x02, serial)].concat());
    CertificateDer::from(tlv(0x30, &tbs))
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
