//! Just enough DER for QAT: the private scalar of an EC key (PKCS#8 or SEC1), and the
//! `ECDSA-Sig-Value` encoding of (r, s) that TLS carries.

use rustls::pki_types::PrivateKeyDer;

use super::Curve;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
/// `[0]` explicit (SEC1 `parameters`).
const CONTEXT_0: u8 = 0xa0;

/// OID 1.2.840.10045.3.1.7 (P-256) and 1.3.132.0.34 (P-384), contents only.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];

/// One TLV: `(tag, contents, rest)`.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |l, b| (l << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, body, rest) = tlv(input)?;
    (tag == want).then_some((body, rest))
}

fn curve_of(oid: &[u8]) -> Option<Curve> {
    match oid {
        OID_P256 => Some(Curve::P256),
        OID_P384 => Some(Curve::P384),
        _ => None,
    }
}

/// The curve and big-endian private scalar (padded to the curve's size) of an EC private
/// key; `None` for other keys or curves.
pub fn ec_private_scalar(der: &PrivateKeyDer<'_>) -> Option<(Curve, Vec<u8>)> {
    match der {
        PrivateKeyDer::Pkcs8(k) => {
            // PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING }
            let (info, _) = expect(k.secret_pkcs8_der(), SEQUENCE)?;
            let (_, rest) = expect(info, INTEGER)?;
            let (alg, rest) = expect(rest, SEQUENCE)?;
            let (_, params) = expect(alg, OID)?;
            let (curve_oid, _) = expect(params, OID)?;
            let curve = curve_of(curve_oid)?;
            let (inner, _) = expect(rest, OCTET_STRING)?;
            sec1_scalar(inner, Some(curve))
        }
        PrivateKeyDer::Sec1(k) => sec1_scalar(k.secret_sec1_der(), None),
        _ => None,
    }
}

/// `ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] parameters, ... }`.
fn sec1_scalar(der: &[u8], curve: Option<Curve>) -> Option<(Curve, Vec<u8>)> {
    let (seq, _) = expect(der, SEQUENCE)?;
    let (_, rest) = expect(seq, INTEGER)?;
    let (d, rest) = expect(rest, OCTET_STRING)?;
    let curve = match curve {
        Some(c) => c,
        None => {
            let (params, _) = expect(rest, CONTEXT_0)?;
            let (oid, _) = expect(params, OID)?;
            curve_of(oid)?
        }
    };
    let size = curve.size();
    if d.len() > size {
        return None;
    }
    let mut scalar = vec![0u8; size - d.len()];
    scalar.extend_from_slice(d);
    Some((curve, scalar))
}

/// The parts of an RSA private key QAT needs, big-endian without leading zeros.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaParts {
    pub n: Vec<u8>,
    pub d: Vec<u8>,
    pub p: Vec<u8>,
    pub q: Vec<u8>,
    pub dp: Vec<u8>,
    pub dq: Vec<u8>,
    pub qinv: Vec<u8>,
}

/// OID 1.2.840.113549.1.1.1 (rsaEncryption), contents only.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The parts of an RSA private key (PKCS#8 or PKCS#1); `None` for other keys or a
/// multi-prime key.
pub fn rsa_private_key(der: &PrivateKeyDer<'_>) -> Option<RsaParts> {
    let pkcs1 = match der {
        PrivateKeyDer::Pkcs8(k) => {
            let (info, _) = expect(k.secret_pkcs8_der(), SEQUENCE)?;
            let (_, rest) = expect(info, INTEGER)?;
            let (alg, rest) = expect(rest, SEQUENCE)?;
            let (oid, _) = expect(alg, OID)?;
            if oid != OID_RSA {
                return None;
            }
            expect(rest, OCTET_STRING)?.0
        }
        PrivateKeyDer::Pkcs1(k) => k.secret_pkcs1_der(),
        _ => return None,
    };
    // RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dP, dQ, qInv, [otherPrimeInfos] }
    let (seq, _) = expect(pkcs1, SEQUENCE)?;
    let mut ints = Vec::with_capacity(9);
    let mut rest = seq;
    while ints.len() < 9 {
        let (v, r) = expect(rest, INTEGER)?;
        let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
        ints.push(v[start..].to_vec());
        rest = r;
    }
    if !ints[0].is_empty() {
        return None; // version 1: multi-prime
    }
    let mut it = ints.into_iter().skip(1);
    let mut next = || it.next().unwrap_or_default();
    let n = next();
    let _e = next();
    Some(RsaParts {
        n,
        d: next(),
        p: next(),
        q: next(),
        dp: next(),
        dq: next(),
        qinv: next(),
    })
}

/// `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` from big-endian r and s.
pub fn ecdsa_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let r = integer(r);
    let s = integer(s);
    let mut out = Vec::with_capacity(r.len() + s.len() + 4);
    out.push(SEQUENCE);
    push_len(&mut out, r.len() + s.len());
    out.extend_from_slice(&r);
    out.extend_from_slice(&s);
    out
}

/// A non-negative DER INTEGER: leading zeros dropped, one added if the top bit is set.
fn integer(v: &[u8]) -> Vec<u8> {
    let start = v
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(v.len().saturating_sub(1));
    let v = &v[start.min(v.len())..];
    let pad = v.first().is_some_and(|b| b & 0x80 != 0);
    let len = v.len() + usize::from(pad);
    let mut out = Vec::with_capacity(len + 3);
    out.push(INTEGER);
    push_len(&mut out, len);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(v);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.push(0x81);
        out.push(len as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_minimal_and_positive() {
        assert_eq!(integer(&[0, 0, 0x12]), vec![INTEGER, 1, 0x12]);
        assert_eq!(integer(&[0, 0x80]), vec![INTEGER, 2, 0, 0x80]);
        assert_eq!(integer(&[0, 0]), vec![INTEGER, 1, 0]);
    }

    #[test]
    fn scalar_of_generated_keys() {
        for (alg, curve) in [
            (&rcgen::PKCS_ECDSA_P256_SHA256, Curve::P256),
            (&rcgen::PKCS_ECDSA_P384_SHA384, Curve::P384),
        ] {
            let key = rcgen::KeyPair::generate_for(alg).unwrap();
            let der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
            let (c, d) = ec_private_scalar(&der).unwrap();
            assert_eq!(c, curve);
            assert_eq!(d.len(), curve.size());
            assert!(d.iter().any(|b| *b != 0));
        }
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let der = PrivateKeyDer::try_from(ed.serialize_der()).unwrap();
        assert!(ec_private_scalar(&der).is_none());
    }
}
