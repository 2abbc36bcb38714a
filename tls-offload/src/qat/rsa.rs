//! RSA signatures for TLS with QAT doing the private-key operation (`cpaCyRsaDecrypt`, the
//! RSA signature primitive): aigw encodes the message (EMSA-PSS for `rsa_pss_*`,
//! EMSA-PKCS1-v1_5 for `rsa_pkcs1_*`, RFC 8017) and QAT raises it to the private exponent.

use ring::rand::{SecureRandom, SystemRandom};
use rustls::SignatureScheme;

/// The hash of a scheme and whether it is PSS; `None` for schemes QAT does not serve here.
fn scheme_parts(scheme: SignatureScheme) -> Option<(&'static ring::digest::Algorithm, bool)> {
    use SignatureScheme as S;
    Some(match scheme {
        S::RSA_PSS_SHA256 => (&ring::digest::SHA256, true),
        S::RSA_PSS_SHA384 => (&ring::digest::SHA384, true),
        S::RSA_PSS_SHA512 => (&ring::digest::SHA512, true),
        S::RSA_PKCS1_SHA256 => (&ring::digest::SHA256, false),
        S::RSA_PKCS1_SHA384 => (&ring::digest::SHA384, false),
        S::RSA_PKCS1_SHA512 => (&ring::digest::SHA512, false),
        _ => return None,
    })
}

/// Whether [`encode`] handles `scheme`.
pub fn supports(scheme: SignatureScheme) -> bool {
    scheme_parts(scheme).is_some()
}

/// `DigestInfo` prefixes (RFC 8017 section 9.2, note 1).
fn digest_info_prefix(alg: &'static ring::digest::Algorithm) -> &'static [u8] {
    const SHA256: &[u8] = &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    const SHA384: &[u8] = &[
        0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
        0x05, 0x00, 0x04, 0x30,
    ];
    const SHA512: &[u8] = &[
        0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
        0x05, 0x00, 0x04, 0x40,
    ];
    if std::ptr::eq(alg, &ring::digest::SHA256) {
        SHA256
    } else if std::ptr::eq(alg, &ring::digest::SHA384) {
        SHA384
    } else {
        SHA512
    }
}

/// MGF1 (RFC 8017 B.2.1) of `seed`, `len` bytes.
fn mgf1(alg: &'static ring::digest::Algorithm, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + alg.output_len());
    let mut counter = 0u32;
    while out.len() < len {
        let mut ctx = ring::digest::Context::new(alg);
        ctx.update(seed);
        ctx.update(&counter.to_be_bytes());
        out.extend_from_slice(ctx.finish().as_ref());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// The encoded message for `scheme`, as a big-endian integer of `k` bytes (the modulus
/// length) for a modulus of `mod_bits` bits.
pub fn encode(
    scheme: SignatureScheme,
    message: &[u8],
    k: usize,
    mod_bits: usize,
) -> Result<Vec<u8>, String> {
    let (alg, pss) = scheme_parts(scheme).ok_or("unsupported RSA scheme")?;
    let m_hash = ring::digest::digest(alg, message);
    let h_len = alg.output_len();
    if !pss {
        let prefix = digest_info_prefix(alg);
        let t_len = prefix.len() + h_len;
        if k < t_len + 11 {
            return Err("RSA modulus too short for the digest".into());
        }
        let mut em = Vec::with_capacity(k);
        em.extend_from_slice(&[0x00, 0x01]);
        em.resize(k - t_len - 1, 0xff);
        em.push(0x00);
        em.extend_from_slice(prefix);
        em.extend_from_slice(m_hash.as_ref());
        return Ok(em);
    }
    // EMSA-PSS with a salt as long as the hash (what TLS 1.3 requires).
    let em_bits = mod_bits - 1;
    let em_len = em_bits.div_ceil(8);
    let s_len = h_len;
    if em_len < h_len + s_len + 2 {
        return Err("RSA modulus too short for PSS".into());
    }
    let mut salt = vec![0u8; s_len];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "no randomness")?;
    let mut ctx = ring::digest::Context::new(alg);
    ctx.update(&[0u8; 8]);
    ctx.update(m_hash.as_ref());
    ctx.update(&salt);
    let h = ctx.finish();
    let db_len = em_len - h_len - 1;
    let mut db = vec![0u8; db_len - s_len - 1];
    db.push(0x01);
    db.extend_from_slice(&salt);
    for (b, m) in db.iter_mut().zip(mgf1(alg, h.as_ref(), db_len)) {
        *b ^= m;
    }
    db[0] &= 0xff >> (8 * em_len - em_bits);
    let mut em = vec![0u8; k - em_len];
    em.extend_from_slice(&db);
    em.extend_from_slice(h.as_ref());
    em.push(0xbc);
    Ok(em)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_layout() {
        let em = encode(SignatureScheme::RSA_PKCS1_SHA256, b"abc", 256, 2048).unwrap();
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0, 1]);
        let t = 19 + 32;
        assert!(em[2..256 - t - 1].iter().all(|b| *b == 0xff));
        assert_eq!(em[256 - t - 1], 0);
        assert_eq!(
            &em[256 - 32..],
            ring::digest::digest(&ring::digest::SHA256, b"abc").as_ref()
        );
    }

    #[test]
    fn pss_layout() {
        for (bits, k) in [(2048, 256), (2047, 256), (3072, 384)] {
            let em = encode(SignatureScheme::RSA_PSS_SHA256, b"abc", k, bits).unwrap();
            assert_eq!(em.len(), k);
            assert_eq!(*em.last().unwrap(), 0xbc);
            // The top bit(s) beyond emBits are clear.
            let em_bits = bits - 1;
            let lead = k * 8 - em_bits;
            assert_eq!(u32::from(em[0]) >> (8 - lead.min(8)), 0, "bits={bits}");
        }
    }
}
