//! TLS settings: listener certificates and client authentication, and the client certificate
//! of an upstream. Files are read here so `aigw check` and a reload refuse a missing or
//! malformed one with its key path; whether a key suits its certificate is checked when the
//! snapshot is built (aigw-tls), which has the cryptography.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::{read_ca_file, read_small_file, Ctx};
use crate::model::{ListenerTls, UpstreamTls};

/// `listeners[i].tls`.
pub(super) fn check_listener(cx: &mut Ctx, p: &str, tls: &ListenerTls) {
    if tls.certificates.is_empty() {
        cx.err(
            format!("{p}.certificates"),
            "certificates is empty (give at least one `{ cert, key }`)",
        );
    }
    for (i, ck) in tls.certificates.iter().enumerate() {
        let q = format!("{p}.certificates[{i}]");
        if let Err(why) = read_cert_chain(&ck.cert) {
            cx.err(format!("{q}.cert"), why);
        }
        if let Err(why) = read_private_key(&ck.key) {
            cx.err(format!("{q}.key"), why);
        }
        if let Some(path) = &ck.ocsp {
            match read_small_file(path) {
                Err(e) => cx.err(format!("{q}.ocsp"), format!("cannot read `{path}`: {e}")),
                Ok(b) if b.is_empty() => cx.err(format!("{q}.ocsp"), format!("`{path}` is empty")),
                Ok(_) => {}
            }
        }
    }
    if let Some(auth) = &tls.client_auth {
        if let Err(why) = read_ca_file(&auth.ca) {
            cx.err(format!("{p}.client_auth.ca"), why);
        }
    }
}

/// `client_cert` / `client_key` of an upstream `tls:`: both or neither, both readable.
pub(super) fn check_client_identity(cx: &mut Ctx, p: &str, tls: &UpstreamTls) {
    match (&tls.client_cert, &tls.client_key) {
        (None, None) => {}
        (Some(_), None) => cx.err(
            format!("{p}.client_key"),
            "client_cert needs client_key (the PEM file of its private key)",
        ),
        (None, Some(_)) => cx.err(
            format!("{p}.client_cert"),
            "client_key needs client_cert (the PEM file of its certificate chain)",
        ),
        (Some(cert), Some(key)) => {
            if let Err(why) = read_cert_chain(cert) {
                cx.err(format!("{p}.client_cert"), why);
            }
            if let Err(why) = read_private_key(key) {
                cx.err(format!("{p}.client_key"), why);
            }
        }
    }
}

/// The certificates of a PEM chain file, leaf first; the error names the file.
pub fn read_cert_chain(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    if path.is_empty() {
        return Err("cert is empty (give the path of a PEM file)".into());
    }
    let pem = read_small_file(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{path}` is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "`{path}` holds no certificate (expected `-----BEGIN CERTIFICATE-----` blocks)"
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file (the first key block); the error names the file.
pub fn read_private_key(path: &str) -> Result<PrivateKeyDer<'static>, String> {
    if path.is_empty() {
        return Err("key is empty (give the path of a PEM file)".into());
    }
    let pem = read_small_file(path).map_err(|e| format!("cannot read `{path}`: {e}"))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        format!(
            "`{path}` holds no usable private key (expected a `PRIVATE KEY`, `RSA PRIVATE KEY` \
             or `EC PRIVATE KEY` block): {e}"
        )
    })
}
