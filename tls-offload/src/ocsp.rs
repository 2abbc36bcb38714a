//! OCSP stapling (RFC 6066 §8, RFC 6960): a listener certificate's `ocsp` file holds a DER
//! OCSP response that the operator refreshes (`openssl ocsp ... -respout FILE`, or what their
//! CA's tooling fetches); aigw sends it in the handshake to clients that ask for the status of
//! the certificate, which spares them a query to the CA's responder.
//!
//! Before a response is stapled it is read far enough to catch the mistakes that would make
//! clients reject the connection: a response that is not `successful`, not a basic response,
//! about another certificate (its serial number), or that says `revoked` or `unknown` is never
//! stapled, and neither is one outside its validity (`thisUpdate` ahead, `nextUpdate` passed).
//! None of these stops the listener (a certificate renewed before the OCSP refresh job ran
//! would otherwise be refused, and the old one kept): the handshake goes on without a staple,
//! as it would with no file, and the listener's build says why. The responder's signature is
//! the client's to check (it may be delegated to a responder certificate aigw knows nothing of).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const ENUMERATED: u8 = 0x0a;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0]` EXPLICIT (constructed, context-specific).
const EXPLICIT_0: u8 = 0xa0;
const EXPLICIT_1: u8 = 0xa1;
const EXPLICIT_2: u8 = 0xa2;
/// `CertStatus` choices: good `[0] IMPLICIT NULL`, revoked `[1] IMPLICIT RevokedInfo`,
/// unknown `[2] IMPLICIT NULL`.
const GOOD: u8 = 0x80;
const REVOKED: u8 = 0xa1;
const UNKNOWN: u8 = 0x82;
/// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1.
const BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// How far a responder's clock may run ahead of ours before `thisUpdate` counts as future.
const CLOCK_SKEW: Duration = Duration::from_secs(300);

/// An OCSP response checked against its certificate.
#[derive(Debug, Clone)]
pub struct Staple {
    /// The response as read from the file, sent as is.
    pub der: Vec<u8>,
    pub this_update: SystemTime,
    /// None: the responder gave no `nextUpdate` (newer information is always available).
    pub next_update: Option<SystemTime>,
}

impl Staple {
    /// Reads `der` as the OCSP response for `leaf`. Errors say what is wrong with the file.
    pub fn check(der: Vec<u8>, leaf: &CertificateDer<'_>) -> Result<Staple, String> {
        let serial = leaf_serial(leaf)?;
        let single = single_response_for(&der, serial)?;
        Ok(Staple {
            this_update: single.this_update,
            next_update: single.next_update,
            der,
        })
    }

    /// From when the response may be stapled: its `thisUpdate`, less [`CLOCK_SKEW`] for a
    /// responder whose clock runs ahead of ours.
    pub fn valid_from(&self) -> SystemTime {
        self.this_update
            .checked_sub(CLOCK_SKEW)
            .unwrap_or(UNIX_EPOCH)
    }

    /// Whether the response may be stapled at `now`: from [`Staple::valid_from`] until its
    /// `nextUpdate` (excluded).
    pub fn valid_at(&self, now: SystemTime) -> bool {
        now >= self.valid_from() && self.next_update.is_none_or(|t| now < t)
    }

    /// Why the response is out of its validity at `now` (for a warning), if it is.
    pub fn why_not_at(&self, now: SystemTime) -> Option<String> {
        if now < self.valid_from() {
            return Some(format!(
                "is not valid before {} (thisUpdate)",
                unix_seconds(self.this_update)
            ));
        }
        match self.next_update {
            Some(t) if t <= now => Some(format!("expired at {} (nextUpdate)", unix_seconds(t))),
            _ => None,
        }
    }
}

fn unix_seconds(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => format!("unix time {}", d.as_secs()),
        Err(_) => "a time before 1970".into(),
    }
}

/// A DER reader over one constructed value's contents.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next element's tag and contents (definite lengths only, as DER requires).
    fn next(&mut self) -> Result<(u8, &'a [u8]), String> {
        let b = self.0;
        let bad = || "not DER: a length runs past the end".to_string();
        let (&tag, rest) = b.split_first().ok_or("not DER: ends early")?;
        let (&first, rest) = rest.split_first().ok_or_else(bad)?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return Err("not DER: a length is indefinite or too long".into());
            }
            let len = rest[..n].iter().fold(0usize, |a, &x| (a << 8) | x as usize);
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(bad());
        }
        self.0 = &rest[len..];
        Ok((tag, &rest[..len]))
    }

    /// The next element, which must have `tag`; `what` names it in the error.
    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8], String> {
        match self.next()? {
            (t, body) if t == tag => Ok(body),
            (t, _) => Err(format!("{what}: expected tag {tag:#04x}, found {t:#04x}")),
        }
    }

    /// The next element if it has `tag`.
    fn optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, String> {
        if self.0.first() == Some(&tag) {
            return self.next().map(|(_, body)| Some(body));
        }
        Ok(None)
    }
}

/// The serial number (INTEGER contents) of a certificate.
pub(crate) fn leaf_serial<'a>(leaf: &'a CertificateDer<'_>) -> Result<&'a [u8], String> {
    let at = |e: String| format!("the certificate: {e}");
    let cert = Der(leaf.as_ref())
        .expect(SEQUENCE, "Certificate")
        .map_err(at)?;
    let mut tbs = Der(Der(cert).expect(SEQUENCE, "TBSCertificate").map_err(at)?);
    tbs.optional(EXPLICIT_0).map_err(at)?;
    tbs.expect(INTEGER, "serialNumber").map_err(at)
}

/// What a `SingleResponse` says.
struct Single {
    this_update: SystemTime,
    next_update: Option<SystemTime>,
}

/// Finds the `SingleResponse` about `serial` and checks that it says `good`.
fn single_response_for(der: &[u8], serial: &[u8]) -> Result<Single, String> {
    let mut top = Der(der);
    let resp = top.expect(SEQUENCE, "OCSPResponse")?;
    if !top.0.is_empty() {
        return Err("not an OCSP response: bytes after its end".into());
    }
    let mut resp = Der(resp);
    let status = resp.expect(ENUMERATED, "responseStatus")?;
    if status != [0] {
        return Err(format!(
            "the responder did not answer: responseStatus {}",
            response_status(status)
        ));
    }
    let mut bytes =
        Der(Der(resp.expect(EXPLICIT_0, "responseBytes")?).expect(SEQUENCE, "ResponseBytes")?);
    if bytes.expect(OID, "responseType")? != BASIC {
        return Err("not a basic OCSP response (id-pkix-ocsp-basic)".into());
    }
    let basic =
        Der(bytes.expect(OCTET_STRING, "response")?).expect(SEQUENCE, "BasicOCSPResponse")?;
    let mut data = Der(Der(basic).expect(SEQUENCE, "ResponseData")?);
    data.optional(EXPLICIT_0)?;
    match data.next()? {
        (EXPLICIT_1 | EXPLICIT_2, _) => {}
        (t, _) => return Err(format!("responderID: unexpected tag {t:#04x}")),
    }
    data.expect(GENERALIZED_TIME, "producedAt")?;
    let mut responses = Der(data.expect(SEQUENCE, "responses")?);
    let mut seen = Vec::new();
    while !responses.0.is_empty() {
        let mut single = Der(responses.expect(SEQUENCE, "SingleResponse")?);
        let mut cert_id = Der(single.expect(SEQUENCE, "CertID")?);
        cert_id.expect(SEQUENCE, "hashAlgorithm")?;
        cert_id.expect(OCTET_STRING, "issuerNameHash")?;
        cert_id.expect(OCTET_STRING, "issuerKeyHash")?;
        let their_serial = cert_id.expect(INTEGER, "serialNumber")?;
        if their_serial != serial {
            seen.push(hex(their_serial));
            continue;
        }
        let (status, _) = single.next()?;
        match status {
            GOOD => {}
            REVOKED => return Err("the OCSP response says the certificate is revoked".into()),
            UNKNOWN => {
                return Err(
                    "the OCSP response says the responder does not know the certificate".into(),
                )
            }
            t => return Err(format!("certStatus: unexpected tag {t:#04x}")),
        }
        let this_update = generalized_time(single.expect(GENERALIZED_TIME, "thisUpdate")?)?;
        let next_update = match single.optional(EXPLICIT_0)? {
            Some(t) => Some(generalized_time(
                Der(t).expect(GENERALIZED_TIME, "nextUpdate")?,
            )?),
            None => None,
        };
        return Ok(Single {
            this_update,
            next_update,
        });
    }
    Err(format!(
        "the OCSP response is about another certificate: serial {} is not among {}",
        hex(serial),
        if seen.is_empty() {
            "none".to_string()
        } else {
            seen.join(", ")
        }
    ))
}

fn response_status(status: &[u8]) -> String {
    let name = match status {
        [1] => "malformedRequest",
        [2] => "internalError",
        [3] => "tryLater",
        [5] => "sigRequired",
        [6] => "unauthorized",
        _ => return format!("{status:02x?}"),
    };
    name.to_string()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `YYYYMMDDHHMMSS[.f...]Z` (RFC 5280 §4.1.2.5.2; responders add fractions at times).
fn generalized_time(t: &[u8]) -> Result<SystemTime, String> {
    let bad = || format!("not a GeneralizedTime: {}", String::from_utf8_lossy(t));
    let s = std::str::from_utf8(t).map_err(|_| bad())?;
    let s = s.strip_suffix('Z').ok_or_else(bad)?;
    let whole = s.split('.').next().unwrap_or(s);
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| whole[r].parse::<u64>().map_err(|_| bad());
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, min, sec) = (num(8..10)?, num(10..12)?, num(12..14)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return Err(bad());
    }
    let days = days_from_civil(year as i64, month as i64, day as i64);
    let secs = days * 86_400 + (hour * 3600 + min * 60 + sec) as i64;
    if secs < 0 {
        return Err(bad());
    }
    Ok(UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[path = "ocsp_tests.rs"]
pub(crate) mod tests;
