//! Choosing a coding from Accept-Encoding (RFC 9110 §12.5.3).
//!
//! Each listed coding has a quality (`;q=`, default 1); `*` rates every coding not listed;
//! `q=0` refuses. The best-rated coding the route enables wins; ties go to the route's
//! order (gzip, br, zstd, deflate: gzip first because it is the cheapest to produce and the
//! one QAT offloads). No header, or no acceptable coding, means identity.

use aigw_qat::Algorithm;

/// The coding to use among `enabled` (in preference order) for the Accept-Encoding values
/// `accept`, or `None` for identity.
pub fn choose<'a>(
    accept: impl Iterator<Item = &'a [u8]>,
    enabled: impl Iterator<Item = Algorithm> + Clone,
) -> Option<Algorithm> {
    // Quality per enabled coding (in thousandths), and of `*`.
    let mut rated: Vec<(Algorithm, Option<u16>)> = enabled.clone().map(|a| (a, None)).collect();
    let mut star: Option<u16> = None;
    let mut any = false;
    for value in accept {
        for item in value.split(|&b| b == b',') {
            let mut parts = item.split(|&b| b == b';');
            let token = parts.next().unwrap_or_default().trim_ascii();
            if token.is_empty() {
                continue;
            }
            any = true;
            let q = parts
                .filter_map(|p| {
                    let p = p.trim_ascii();
                    let (k, v) = p.split_at(p.iter().position(|&b| b == b'=')?);
                    k.trim_ascii()
                        .eq_ignore_ascii_case(b"q")
                        .then(|| qvalue(v[1..].trim_ascii()))
                        .flatten()
                })
                .next()
                .unwrap_or(1000);
            if token == b"*" {
                star = Some(q);
            } else if let Some(a) = Algorithm::from_token(token) {
                if let Some(r) = rated.iter_mut().find(|(x, _)| *x == a) {
                    r.1 = Some(q);
                }
            }
        }
    }
    if !any {
        return None;
    }
    let mut best: Option<(Algorithm, u16)> = None;
    for (a, q) in rated {
        let q = q.or(star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((a, q));
        }
    }
    best.map(|(a, _)| a)
}

/// A qvalue (`0`, `0.5`, `1.000`) in thousandths; `None` if malformed.
fn qvalue(v: &[u8]) -> Option<u16> {
    let s = std::str::from_utf8(v).ok()?;
    let f: f32 = s.parse().ok()?;
    (0.0..=1.0)
        .contains(&f)
        .then_some((f * 1000.0).round() as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Algorithm; 4] = [
        Algorithm::Gzip,
        Algorithm::Brotli,
        Algorithm::Zstd,
        Algorithm::Deflate,
    ];

    fn pick(accept: &str, enabled: &[Algorithm]) -> Option<Algorithm> {
        choose([accept.as_bytes()].into_iter(), enabled.iter().copied())
    }

    #[test]
    fn quality_values_decide_and_ties_follow_the_server_order() {
        assert_eq!(pick("gzip", &ALL), Some(Algorithm::Gzip));
        assert_eq!(pick("deflate, gzip, br, zstd", &ALL), Some(Algorithm::Gzip));
        assert_eq!(pick("gzip;q=0.5, br", &ALL), Some(Algorithm::Brotli));
        assert_eq!(
            pick("gzip;q=0.5, br;q=0.8", &[Algorithm::Gzip]),
            Some(Algorithm::Gzip)
        );
        assert_eq!(pick("br;q=1.0, zstd;q=0.9", &ALL), Some(Algorithm::Brotli));
        assert_eq!(pick("GZIP ; Q=0.2", &ALL), Some(Algorithm::Gzip));
        assert_eq!(pick("x-gzip", &ALL), Some(Algorithm::Gzip));
    }

    #[test]
    fn refusals_wildcards_and_identity() {
        assert_eq!(pick("", &ALL), None);
        assert_eq!(pick("identity", &ALL), None);
        assert_eq!(pick("gzip;q=0", &ALL), None);
        assert_eq!(pick("*", &ALL), Some(Algorithm::Gzip));
        assert_eq!(pick("*;q=0.5, gzip;q=0", &ALL), Some(Algorithm::Brotli));
        assert_eq!(pick("br", &[Algorithm::Gzip]), None);
        assert_eq!(pick("gzip;q=abc", &ALL), Some(Algorithm::Gzip));
        assert_eq!(pick("gzip;q=2", &ALL), Some(Algorithm::Gzip));
    }

    #[test]
    fn several_header_lines_add_up() {
        let got = choose(
            [&b"gzip;q=0.1"[..], &b"zstd"[..]].into_iter(),
            ALL.iter().copied(),
        );
        assert_eq!(got, Some(Algorithm::Zstd));
    }
}
