//! Choosing a certificate by the server name the client asked for (SNI).
//!
//! Each configured certificate answers for the DNS names in its subjectAltName. A name
//! matches exactly (case-insensitive), or a `*.example.com` entry matches one label in front
//! of `example.com`. Exact matches come before wildcard ones; with no match, or no SNI at all
//! (clients connecting by IP address), the first configured certificate is the default.
//! Among several candidates, the first whose key can sign with a scheme the client offers
//! wins (an RSA and an ECDSA certificate for the same names serve old and new clients).
//!
//! A certificate with a stapled OCSP response is served with it while the response is valid
//! (from its `thisUpdate`, less a little clock skew, to its `nextUpdate`), and without it
//! otherwise (an expired staple makes clients that require one refuse the connection; no staple
//! lets them ask the responder themselves).

use std::sync::Arc;
use std::time::SystemTime;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// One certificate and the names it answers for.
#[derive(Debug)]
struct Entry {
    /// Lower-case DNS names.
    exact: Vec<String>,
    /// Lower-case suffixes of wildcard names, with the leading dot: `.example.com`.
    wildcard: Vec<String>,
    key: Arc<CertifiedKey>,
    /// When `key` carries an OCSP response: the response, and the same key without it for the
    /// times the response is not valid.
    staple: Option<(crate::ocsp::Staple, Arc<CertifiedKey>)>,
}

impl Entry {
    /// The key to serve at `now`.
    fn served(&self, now: SystemTime) -> &Arc<CertifiedKey> {
        match &self.staple {
            Some((staple, bare)) if !staple.valid_at(now) => bare,
            _ => &self.key,
        }
    }
}

/// The OCSP response stapled to `key`, and `key` without it; None without a response.
fn staple_of(key: &Arc<CertifiedKey>) -> Option<(crate::ocsp::Staple, Arc<CertifiedKey>)> {
    let der = key.ocsp.clone()?;
    let staple = crate::ocsp::Staple::check(der, key.end_entity_cert().ok()?).ok()?;
    let mut bare = CertifiedKey::clone(key);
    bare.ocsp = None;
    Some((staple, Arc::new(bare)))
}

/// The resolver a listener's rustls config uses.
#[derive(Debug)]
pub struct SniResolver {
    entries: Vec<Entry>,
}

impl SniResolver {
    /// `certs` in configuration order (the first is the default); each with the names read
    /// from its leaf certificate.
    pub fn new(certs: Vec<(Arc<CertifiedKey>, Vec<String>)>) -> SniResolver {
        let entries = certs
            .into_iter()
            .map(|(key, names)| {
                let (mut exact, mut wildcard) = (Vec::new(), Vec::new());
                for n in names {
                    let n = n.to_ascii_lowercase();
                    match n.strip_prefix('*') {
                        Some(suffix) if suffix.starts_with('.') => {
                            wildcard.push(suffix.to_string())
                        }
                        _ => exact.push(n),
                    }
                }
                Entry {
                    exact,
                    wildcard,
                    staple: staple_of(&key),
                    key,
                }
            })
            .collect();
        SniResolver { entries }
    }

    /// The certificate for `name` among those that `usable` accepts (in the order described
    /// in the module docs), as served at `now`; the default when nothing matches.
    fn choose(
        &self,
        name: Option<&str>,
        usable: impl Fn(&CertifiedKey) -> bool,
        now: SystemTime,
    ) -> Option<Arc<CertifiedKey>> {
        let name = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        let exact = |e: &&Entry| {
            name.as_deref()
                .is_some_and(|n| e.exact.iter().any(|x| x == n))
        };
        let wild = |e: &&Entry| {
            name.as_deref().is_some_and(|n| {
                e.wildcard.iter().any(|suffix| {
                    n.strip_suffix(suffix.as_str())
                        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
                })
            })
        };
        let exacts: Vec<&Entry> = self.entries.iter().filter(exact).collect();
        let candidates: Vec<&Entry> = if !exacts.is_empty() {
            exacts
        } else {
            let wilds: Vec<&Entry> = self.entries.iter().filter(wild).collect();
            if wilds.is_empty() {
                self.entries.iter().collect()
            } else {
                wilds
            }
        };
        candidates
            .iter()
            .find(|e| usable(&e.key))
            .or(candidates.first())
            .map(|e| e.served(now).clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let schemes = hello.signature_schemes();
        self.choose(
            hello.server_name(),
            |k| k.key.choose_scheme(schemes).is_some(),
            SystemTime::now(),
        )
    }
}

/// The DNS names of a leaf certificate's subjectAltName (wildcards included).
pub fn dns_names(leaf: &rustls::pki_types::CertificateDer<'_>) -> Result<Vec<String>, String> {
    let cert = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| format!("certificate not parsable: {e}"))?;
    Ok(cert.valid_dns_names().map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(names: &[&str]) -> (Arc<CertifiedKey>, Vec<String>) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let kp = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(names.clone())
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        let der = rustls::pki_types::PrivateKeyDer::try_from(kp.serialize_der()).unwrap();
        let signing = rustls::crypto::ring::sign::any_supported_type(&der).unwrap();
        let ck = Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing));
        let read = dns_names(cert.der()).unwrap();
        assert_eq!(read, names);
        (ck, read)
    }

    #[test]
    fn exact_then_wildcard_then_default() {
        let a = key(&["a.example.com"]);
        let w = key(&["*.example.com"]);
        let b = key(&["b.example.com", "B2.example.com"]);
        let (ka, kw, kb) = (a.0.clone(), w.0.clone(), b.0.clone());
        let r = SniResolver::new(vec![a, w, b]);
        let pick = |n: Option<&str>| r.choose(n, |_| true, SystemTime::now()).unwrap();
        assert!(Arc::ptr_eq(&pick(Some("a.example.com")), &ka));
        assert!(Arc::ptr_eq(&pick(Some("B.EXAMPLE.COM")), &kb));
        assert!(Arc::ptr_eq(&pick(Some("b2.example.com")), &kb));
        assert!(Arc::ptr_eq(&pick(Some("c.example.com")), &kw));
        // A wildcard covers one label only.
        assert!(Arc::ptr_eq(&pick(Some("x.c.example.com")), &ka));
        assert!(Arc::ptr_eq(&pick(Some("other.org")), &ka));
        assert!(Arc::ptr_eq(&pick(None), &ka));
    }

    #[test]
    fn usable_key_preferred_among_candidates() {
        let a = key(&["same.example.com"]);
        let b = key(&["same.example.com"]);
        let kb = b.0.clone();
        let r = SniResolver::new(vec![a, b]);
        let got = r
            .choose(
                Some("same.example.com"),
                |k| std::ptr::eq(k, &*kb),
                SystemTime::now(),
            )
            .unwrap();
        assert!(Arc::ptr_eq(&got, &kb));
    }

    #[test]
    fn an_ocsp_staple_is_served_while_valid() {
        use crate::ocsp::tests::{good, response, single};
        let (key, names) = key(&["s.example.com"]);
        let serial = crate::ocsp::leaf_serial(&key.cert[0]).unwrap().to_vec();
        let der = response(
            0,
            &[single(
                &serial,
                good(),
                "20261125120000Z",
                Some("20261202120000Z"),
            )],
        );
        let mut stapled = CertifiedKey::clone(&key);
        stapled.ocsp = Some(der.clone());
        let r = SniResolver::new(vec![(Arc::new(stapled), names)]);
        let at = |secs| std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let expiry = 1_795_608_000 + 7 * 86_400;
        let before = r.choose(None, |_| true, at(expiry - 1)).unwrap();
        assert_eq!(before.ocsp.as_deref(), Some(&der[..]));
        let after = r.choose(None, |_| true, at(expiry)).unwrap();
        assert_eq!(after.ocsp, None, "an expired response is not stapled");
        assert_eq!(after.cert, before.cert, "the same certificate");
        // Issued an hour from now (a responder's clock ahead): stapled from then on.
        let early = r.choose(None, |_| true, at(1_795_608_000 - 3600)).unwrap();
        assert_eq!(early.ocsp, None, "a response not yet valid is not stapled");
    }
}
