//! Choosing a backend: round robin, smooth weighted round robin, or least request.
//! Unhealthy backends and those already tried for this request are skipped.

use std::rc::Rc;
use std::time::Instant;

use aigw_config::Balance;

use super::{BackendRt, ServiceRt};

/// Picks a healthy backend not in `tried` (indices into `service.backends`).
pub fn pick(service: &ServiceRt, tried: &[usize], now: Instant) -> Option<usize> {
    let usable = |i: usize| !tried.contains(&i) && service.backends[i].is_healthy(now);
    match service.spec.config.balance {
        Balance::RoundRobin => round_robin(service, usable),
        Balance::Weighted => weighted(&service.backends, usable),
        Balance::LeastRequest => least_request(service, usable),
    }
}

fn round_robin(service: &ServiceRt, usable: impl Fn(usize) -> bool) -> Option<usize> {
    let n = service.backends.len();
    let start = service.cursor.get();
    for k in 0..n {
        let i = (start + k) % n;
        if usable(i) {
            service.cursor.set(i + 1);
            return Some(i);
        }
    }
    None
}

/// nginx's smooth weighted round robin: every pick adds each weight to its backend's current
/// weight, takes the largest, and subtracts the total from it. Spreads picks evenly in time.
fn weighted(backends: &[Rc<BackendRt>], usable: impl Fn(usize) -> bool) -> Option<usize> {
    let mut total = 0i64;
    let mut best: Option<usize> = None;
    for (i, b) in backends.iter().enumerate() {
        if !usable(i) {
            continue;
        }
        let w = i64::from(b.weight);
        b.current_weight.set(b.current_weight.get() + w);
        total += w;
        if best.is_none_or(|j| b.current_weight.get() > backends[j].current_weight.get()) {
            best = Some(i);
        }
    }
    let i = best?;
    backends[i]
        .current_weight
        .set(backends[i].current_weight.get() - total);
    Some(i)
}

/// Fewest requests in flight; ties broken round robin so equal backends share the load.
fn least_request(service: &ServiceRt, usable: impl Fn(usize) -> bool) -> Option<usize> {
    let n = service.backends.len();
    let start = service.cursor.get();
    let mut best: Option<usize> = None;
    for k in 0..n {
        let i = (start + k) % n;
        if usable(i)
            && best.is_none_or(|j| {
                service.backends[i].in_flight.get() < service.backends[j].in_flight.get()
            })
        {
            best = Some(i);
        }
    }
    if let Some(i) = best {
        service.cursor.set(i + 1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{Backend, ServiceSpec};

    fn service(balance: &str, weights: &[u32]) -> ServiceRt {
        let eps: Vec<String> = weights
            .iter()
            .enumerate()
            .map(|(i, w)| format!("{{address: '127.0.0.{}:80', weight: {w}}}", i + 1))
            .collect();
        let yaml = format!(
            "name: s\nbalance: {balance}\nendpoints: [{}]\n",
            eps.join(", ")
        );
        let config: aigw_config::Service = serde_yaml_ng::from_str(&yaml).unwrap();
        let backends = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Backend {
                addr: format!("127.0.0.{}:80", i + 1).parse().unwrap(),
                weight: w,
                endpoint: String::new(),
            })
            .collect();
        ServiceRt::new(
            &ServiceSpec {
                config,
                backends,
                tls: None,
            },
            None,
        )
    }

    fn counts(s: &ServiceRt, picks: usize) -> Vec<usize> {
        let mut c = vec![0; s.backends.len()];
        let now = Instant::now();
        for _ in 0..picks {
            c[pick(s, &[], now).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn round_robin_is_even() {
        assert_eq!(
            counts(&service("round_robin", &[1, 1, 1]), 9),
            vec![3, 3, 3]
        );
    }

    #[test]
    fn weighted_follows_weights_smoothly() {
        let s = service("weighted", &[5, 1, 1]);
        assert_eq!(counts(&s, 70), vec![50, 10, 10]);
        let now = Instant::now();
        let seq: Vec<usize> = (0..7).map(|_| pick(&s, &[], now).unwrap()).collect();
        // smooth: the heavy backend never takes more than 3 in a row
        assert!(
            seq.windows(4).all(|w| !w.iter().all(|&x| x == 0)),
            "{seq:?}"
        );
    }

    #[test]
    fn least_request_prefers_idle() {
        let s = service("least_request", &[1, 1]);
        s.backends[0].in_flight.set(3);
        assert_eq!(counts(&s, 4), vec![0, 4]);
    }

    #[test]
    fn skips_tried_and_unhealthy() {
        let s = service("round_robin", &[1, 1, 1]);
        let now = Instant::now();
        s.backends[1].probe.set_healthy(false);
        s.backends[2].record_failure(1, std::time::Duration::from_secs(30), now);
        assert_eq!(pick(&s, &[], now), Some(0));
        assert_eq!(pick(&s, &[0], now), None);
        assert!(s.backends[2].is_healthy(now + std::time::Duration::from_secs(31)));
    }
}
