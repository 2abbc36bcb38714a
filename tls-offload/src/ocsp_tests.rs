use super::*;

/// One DER element.
pub(crate) fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    match body.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(body);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

/// A certificate as far as aigw reads it: version, serial, then anything.
fn cert(serial: &[u8]) -> CertificateDer<'static> {
    let tbs = seq(&[
        tlv(EXPLICIT_0, &tlv(INTEGER, &[2])),
        tlv(INTEGER, serial),
        seq(&[tlv(OID, &[0x2a, 0x86, 0x48])]),
    ]);
    CertificateDer::from(seq(&[tbs, seq(&[]), tlv(0x03, &[0, 1, 2])]))
}

pub(crate) fn single(serial: &[u8], status: Vec<u8>, this: &str, next: Option<&str>) -> Vec<u8> {
    let cert_id = seq(&[
        seq(&[tlv(OID, &[0x2b, 0x0e, 0x03, 0x02, 0x1a])]),
        tlv(OCTET_STRING, &[1; 20]),
        tlv(OCTET_STRING, &[2; 20]),
        tlv(INTEGER, serial),
    ]);
    let mut parts = vec![cert_id, status, tlv(GENERALIZED_TIME, this.as_bytes())];
    if let Some(n) = next {
        parts.push(tlv(EXPLICIT_0, &tlv(GENERALIZED_TIME, n.as_bytes())));
    }
    seq(&parts)
}

pub(crate) fn response(status: u8, singles: &[Vec<u8>]) -> Vec<u8> {
    let data = seq(&[
        tlv(EXPLICIT_2, &tlv(OCTET_STRING, &[3; 20])),
        tlv(GENERALIZED_TIME, b"20261125120000Z"),
        seq(singles),
    ]);
    let basic = seq(&[data, seq(&[tlv(OID, &[1])]), tlv(0x03, &[0, 9, 9])]);
    let bytes = seq(&[tlv(OID, BASIC), tlv(OCTET_STRING, &basic)]);
    let mut parts = vec![tlv(ENUMERATED, &[status])];
    if status == 0 {
        parts.push(tlv(EXPLICIT_0, &bytes));
    }
    seq(&parts)
}

pub(crate) fn good() -> Vec<u8> {
    tlv(GOOD, &[])
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

const NOON: u64 = 1_795_608_000; // 2026-11-25T12:00:00Z

#[test]
fn a_good_response_for_the_certificate_is_read() {
    let serial = [0x01, 0xab, 0xcd];
    let der = response(
        0,
        &[
            single(&[9, 9], good(), "20261101000000Z", None),
            single(
                &serial,
                good(),
                "20261125120000Z",
                Some("20261202120000.5Z"),
            ),
        ],
    );
    let s = Staple::check(der.clone(), &cert(&serial)).unwrap();
    assert_eq!(s.der, der, "stapled as read");
    assert_eq!(s.this_update, at(NOON));
    assert_eq!(s.next_update, Some(at(NOON + 7 * 86_400)));
    assert!(s.valid_at(at(NOON + 60)));
    assert_eq!(s.why_not_at(at(NOON + 60)), None);
    // Within the allowed skew of the responder's clock.
    assert!(s.valid_at(at(NOON - 60)));
    assert!(s.valid_at(at(NOON + 7 * 86_400 - 1)));
    assert!(!s.valid_at(at(NOON + 7 * 86_400)));
    let expired = s.why_not_at(at(NOON + 8 * 86_400)).unwrap();
    assert!(expired.contains("expired"), "{expired}");
    assert!(!s.valid_at(at(NOON - 3600)));
    let early = s.why_not_at(at(NOON - 3600)).unwrap();
    assert!(early.contains("not valid before"), "{early}");
}

#[test]
fn mistakes_that_clients_would_reject_are_errors() {
    let serial = [0x42];
    let leaf = cert(&serial);
    let cases: [(Vec<u8>, &str); 5] = [
        (
            response(0, &[single(&[0x43], good(), "20261125120000Z", None)]),
            "serial 42 is not among 43",
        ),
        (
            response(
                0,
                &[single(
                    &serial,
                    tlv(REVOKED, &tlv(GENERALIZED_TIME, b"20261101000000Z")),
                    "20261125120000Z",
                    None,
                )],
            ),
            "revoked",
        ),
        (
            response(
                0,
                &[single(&serial, tlv(UNKNOWN, &[]), "20261125120000Z", None)],
            ),
            "does not know",
        ),
        (response(3, &[]), "tryLater"),
        (
            response(0, &[single(&serial, good(), "2026112512Z", None)]),
            "GeneralizedTime",
        ),
    ];
    for (der, want) in cases {
        let e = Staple::check(der, &leaf).unwrap_err();
        assert!(e.contains(want), "{e} (wanted {want})");
    }
}

#[test]
fn truncated_or_padded_files_are_errors_not_panics() {
    let serial = [7];
    let der = response(0, &[single(&serial, good(), "20261125120000Z", None)]);
    for n in 0..der.len() {
        assert!(
            Staple::check(der[..n].to_vec(), &cert(&serial)).is_err(),
            "prefix {n}"
        );
    }
    let mut padded = der.clone();
    padded.push(0);
    let e = Staple::check(padded, &cert(&serial)).unwrap_err();
    assert!(e.contains("after its end"), "{e}");
    let e = Staple::check(b"-----BEGIN".to_vec(), &cert(&serial)).unwrap_err();
    assert!(e.contains("OCSPResponse") || e.contains("DER"), "{e}");
}

#[test]
fn generalized_times() {
    assert_eq!(generalized_time(b"20261125120000Z"), Ok(at(NOON)));
    assert_eq!(generalized_time(b"20000229235959Z"), Ok(at(951_868_799)));
    for bad in [
        &b"20261325120000Z"[..],
        b"20261125120000",
        b"2026112512000aZ",
        b"1969",
    ] {
        assert!(generalized_time(bad).is_err(), "{bad:?}");
    }
}
