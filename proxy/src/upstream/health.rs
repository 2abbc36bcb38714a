//! Active health checks: the backends of services that configure `health_check` are probed
//! with HTTP/1.1 GETs (over TLS for a service with `tls`) and taken out of (or back into)
//! rotation after the configured number of consecutive failures (successes).
//!
//! One worker probes each service (chosen by the service's name, so services spread over the
//! workers) and publishes each backend's verdict in a [`ProbeState`] that every worker's
//! `BackendRt` for that service and address shares. A backend therefore sees one probe per
//! interval, not one per worker, and every worker takes it out of rotation at the same moment.
//! This is the one piece of upstream state shared across workers: a relaxed atomic flag read
//! when a backend is picked, written only by the probing worker.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aigw_config::HealthCheck;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

use super::tls::TlsClient;
use super::{pool, BackendRt, ServiceRt};

/// A backend's active-health verdict for one service, shared by every worker.
#[derive(Debug, Default)]
pub struct ProbeState {
    unhealthy: AtomicBool,
    /// Consecutive probe results in the current direction (written by the probing worker).
    streak: AtomicU32,
}

impl ProbeState {
    pub fn healthy(&self) -> bool {
        !self.unhealthy.load(Ordering::Relaxed)
    }

    /// Back in rotation, streak cleared (a service that no longer has a health check).
    fn reset(&self) {
        self.unhealthy.store(false, Ordering::Relaxed);
        self.streak.store(0, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn set_healthy(&self, healthy: bool) {
        self.unhealthy.store(!healthy, Ordering::Relaxed);
    }
}

/// The verdicts by (service name, backend address), held weakly: an entry lives while some
/// worker's runtime of that service has the backend, so it survives reloads and
/// re-resolutions that keep the pair, and is pruned once no worker has it.
type Registry = Mutex<HashMap<(String, SocketAddr), std::sync::Weak<ProbeState>>>;

/// The shared verdict for `addr` in `service` (the same `Arc` for every worker).
pub fn shared_state(service: &str, addr: SocketAddr) -> Arc<ProbeState> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let mut map = REGISTRY
        .get_or_init(Registry::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (service.to_string(), addr);
    if let Some(state) = map.get(&key).and_then(std::sync::Weak::upgrade) {
        return state;
    }
    map.retain(|_, w| w.strong_count() > 0);
    let state = Arc::new(ProbeState::default());
    map.insert(key, Arc::downgrade(&state));
    state
}

/// The worker (of `workers`) that probes the service named `name`.
pub fn prober_of(name: &str, workers: usize) -> usize {
    // FNV-1a: stable across runs and builds, unlike the std hasher.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (hash % workers.max(1) as u64) as usize
}

/// Sets up active health for a service runtime just built on worker `worker` of `workers`:
/// starts its probe loop if this worker is the service's prober (the loop ends when the
/// service runtime is dropped: replaced by a reload that changed it, or removed). A service
/// without a health check puts its backends back in rotation (a reload may have removed it).
pub fn spawn(service: &Rc<ServiceRt>, worker: usize, workers: usize) {
    let Some(hc) = service.spec.config.health_check.clone() else {
        for b in &service.backends {
            b.probe.reset();
        }
        return;
    };
    if prober_of(service.name(), workers) != worker {
        return;
    }
    let weak: Weak<ServiceRt> = Rc::downgrade(service);
    monoio::spawn(async move {
        loop {
            monoio::time::sleep(hc.interval.get()).await;
            let Some(service) = weak.upgrade() else {
                return;
            };
            for b in &service.backends {
                let b = b.clone();
                let hc = hc.clone();
                let tls = service.spec.tls.clone();
                monoio::spawn(async move {
                    let ok = probe(&b, &hc, tls.as_deref()).await;
                    apply(&b, &hc, ok);
                });
            }
        }
    });
}

/// Moves a backend in or out of rotation (for every worker) after enough results in a row.
/// Called only on the service's probing worker.
pub fn apply(b: &BackendRt, hc: &HealthCheck, ok: bool) {
    let p = &b.probe;
    if ok == p.healthy() {
        p.streak.store(0, Ordering::Relaxed);
        return;
    }
    let streak = p.streak.load(Ordering::Relaxed) + 1;
    let needed = if ok {
        hc.healthy_threshold
    } else {
        hc.unhealthy_threshold
    };
    if streak >= needed.max(1) {
        p.unhealthy.store(!ok, Ordering::Relaxed);
        p.streak.store(0, Ordering::Relaxed);
        let state = if ok { "healthy" } else { "unhealthy" };
        crate::log::warn(format_args!(
            "upstream {} is {state} (active health check)",
            b.addr
        ));
    } else {
        p.streak.store(streak, Ordering::Relaxed);
    }
}

/// One probe: connect (with TLS if the service has it), GET the path, read the status line.
/// Anything else is a failure.
async fn probe(b: &Rc<BackendRt>, hc: &HealthCheck, tls: Option<&TlsClient>) -> bool {
    let timeout = hc.timeout.get();
    let run = async {
        let mut conn = pool::connect(b, timeout, tls).await.ok()?;
        let host = hc.host.clone().unwrap_or_else(|| b.endpoint.clone());
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: aigw-health-check\r\nConnection: close\r\n\r\n",
            hc.path
        );
        let (res, _) = conn.io.write_all(req.into_bytes()).await;
        res.ok()?;
        let mut buf = Vec::with_capacity(1024);
        loop {
            let len = buf.len();
            let (res, slice) = conn
                .io
                .read(monoio::buf::IoBufMut::slice_mut(buf, len..1024))
                .await;
            buf = slice.into_inner();
            if res.ok()? == 0 {
                return None;
            }
            if let Ok(Some((head, _))) = crate::http::head::parse_response(&buf, 1024) {
                return Some(head.status);
            }
            if buf.len() >= 1024 {
                return None;
            }
        }
    };
    let status = monoio::time::timeout(timeout + Duration::from_millis(1), run)
        .await
        .ok()
        .flatten();
    match status {
        Some(s) if hc.expected_status.is_empty() => (200..400).contains(&s),
        Some(s) => hc.expected_status.contains(&s),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Backend;

    fn backend(service: &str) -> BackendRt {
        BackendRt::new(
            &Backend {
                addr: "127.0.0.1:1".parse().unwrap(),
                weight: 1,
                endpoint: String::new(),
            },
            service,
        )
    }

    #[test]
    fn thresholds_take_out_and_bring_back() {
        let hc: HealthCheck =
            serde_yaml_ng::from_str("healthy_threshold: 2\nunhealthy_threshold: 3").unwrap();
        let b = backend("thresholds");
        apply(&b, &hc, false);
        apply(&b, &hc, false);
        assert!(b.probe.healthy());
        apply(&b, &hc, true); // a success resets the streak
        apply(&b, &hc, false);
        apply(&b, &hc, false);
        assert!(b.probe.healthy());
        apply(&b, &hc, false);
        assert!(!b.probe.healthy());
        apply(&b, &hc, true);
        assert!(!b.probe.healthy());
        apply(&b, &hc, true);
        assert!(b.probe.healthy());
    }

    #[test]
    fn workers_share_one_verdict_per_service_and_address() {
        let on_worker_0 = backend("shared-a");
        let on_worker_1 = backend("shared-a");
        let other_service = backend("shared-b");
        assert!(Arc::ptr_eq(&on_worker_0.probe, &on_worker_1.probe));
        assert!(!Arc::ptr_eq(&on_worker_0.probe, &other_service.probe));
        let hc: HealthCheck = serde_yaml_ng::from_str("unhealthy_threshold: 1").unwrap();
        apply(&on_worker_0, &hc, false);
        assert!(
            !on_worker_1.probe.healthy(),
            "the other worker sees the verdict"
        );
        assert!(other_service.probe.healthy());
    }

    #[test]
    fn a_verdict_outlives_rebuilds_but_not_its_last_holder() {
        let first = backend("rebuilt");
        first.probe.set_healthy(false);
        let rebuilt = backend("rebuilt");
        assert!(!rebuilt.probe.healthy(), "kept while a runtime holds it");
        drop((first, rebuilt));
        assert!(
            backend("rebuilt").probe.healthy(),
            "a fresh start once none did"
        );
    }

    #[test]
    fn services_spread_over_workers_and_stay_put() {
        assert_eq!(prober_of("any", 1), 0);
        let names: Vec<String> = (0..64).map(|i| format!("svc-{i}")).collect();
        let on: std::collections::HashSet<usize> = names.iter().map(|n| prober_of(n, 4)).collect();
        assert_eq!(on.len(), 4, "64 services use every one of 4 workers");
        assert!(names.iter().all(|n| prober_of(n, 4) == prober_of(n, 4)));
    }
}
