//! Upstreams, per worker: each service's backends with their keep-alive pools, health and
//! load balancing.
//!
//! Everything here is worker-local (`Rc`, `Cell`): a worker's view of a backend's passive
//! health is its own, learned from its own traffic. The one exception is the active-health
//! verdict, probed by one worker and shared by all (see `health`).

pub mod balance;
pub mod health;
pub mod pool;
pub mod tls;

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::snapshot::{Backend, ServiceSpec};

pub use pool::PooledConn;

/// One backend address, as this worker sees it.
pub struct BackendRt {
    pub addr: SocketAddr,
    pub weight: u32,
    /// The configured `host:port` it was resolved from.
    pub endpoint: String,
    /// Requests in flight from this worker (least-request balancing).
    pub in_flight: Cell<u32>,
    /// Consecutive failures seen on real traffic (passive health).
    pub failures: Cell<u32>,
    /// Passive ejection: out of rotation until this time.
    pub ejected_until: Cell<Option<Instant>>,
    /// Active health, shared with the other workers' runtimes of this service and address.
    pub probe: Arc<health::ProbeState>,
    /// Idle keep-alive connections, most recently used last.
    pub idle: RefCell<Vec<PooledConn>>,
    /// Connections open to this backend (busy and idle).
    pub open: Cell<usize>,
    /// Smooth weighted round-robin state.
    pub current_weight: Cell<i64>,
}

impl BackendRt {
    fn new(b: &Backend, service: &str) -> BackendRt {
        BackendRt {
            addr: b.addr,
            weight: b.weight.max(1),
            endpoint: b.endpoint.clone(),
            in_flight: Cell::new(0),
            failures: Cell::new(0),
            ejected_until: Cell::new(None),
            probe: health::shared_state(service, b.addr),
            idle: RefCell::new(Vec::new()),
            open: Cell::new(0),
            current_weight: Cell::new(0),
        }
    }

    /// In rotation: not ejected and not failing its probes.
    pub fn is_healthy(&self, now: Instant) -> bool {
        self.probe.healthy() && self.ejected_until.get().is_none_or(|t| now >= t)
    }

    /// Records a request that reached this backend and got a response head.
    pub fn record_success(&self) {
        self.failures.set(0);
        self.ejected_until.set(None);
    }

    /// Records a connect or transport failure; ejects after `threshold` in a row.
    pub fn record_failure(&self, threshold: u32, ejection: std::time::Duration, now: Instant) {
        let n = self.failures.get() + 1;
        self.failures.set(n);
        if threshold > 0 && n >= threshold {
            self.ejected_until.set(Some(now + ejection));
            self.failures.set(0);
            crate::log::warn(format_args!(
                "upstream {} ejected for {:?} after {n} failures",
                self.addr, ejection
            ));
        }
    }
}

/// A service as this worker runs it.
pub struct ServiceRt {
    pub spec: ServiceSpec,
    pub backends: Vec<Rc<BackendRt>>,
    /// Round-robin cursor.
    pub cursor: Cell<usize>,
}

impl ServiceRt {
    /// A fresh runtime for a service. Backends that `previous` also had keep their pools and
    /// health state, so a reload or re-resolution that leaves them in place changes nothing
    /// (unless the TLS settings changed: then pooled connections speak the old ones).
    pub fn new(spec: &ServiceSpec, previous: Option<&ServiceRt>) -> ServiceRt {
        let previous = previous.filter(|p| p.spec.tls == spec.tls);
        let backends = spec
            .backends
            .iter()
            .map(|b| {
                previous
                    .and_then(|p| {
                        p.backends
                            .iter()
                            .find(|o| o.addr == b.addr && o.weight == b.weight)
                    })
                    .cloned()
                    .unwrap_or_else(|| Rc::new(BackendRt::new(b, &spec.config.name)))
            })
            .collect();
        ServiceRt {
            spec: spec.clone(),
            backends,
            cursor: Cell::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.spec.config.name
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::upstream::tls::TlsClient;

    fn spec(tls: Option<aigw_config::UpstreamTls>) -> ServiceSpec {
        let mut config: aigw_config::Service =
            serde_yaml_ng::from_str("name: s\nendpoints: [\"127.0.0.1:1\"]").unwrap();
        config.tls = tls.clone();
        ServiceSpec {
            config,
            backends: vec![Backend {
                addr: "127.0.0.1:1".parse().unwrap(),
                weight: 1,
                endpoint: "127.0.0.1:1".into(),
            }],
            tls: tls.map(|t| Arc::new(TlsClient::build(&t).unwrap())),
        }
    }

    #[test]
    fn backends_carry_over_only_with_the_same_tls_settings() {
        let unverified = Some(aigw_config::UpstreamTls {
            verify: false,
            ..Default::default()
        });
        let plain = ServiceRt::new(&spec(None), None);
        let again = ServiceRt::new(&spec(None), Some(&plain));
        assert!(Rc::ptr_eq(&plain.backends[0], &again.backends[0]));
        // Pooled plain connections must not serve a service that now speaks TLS.
        let tls = ServiceRt::new(&spec(unverified.clone()), Some(&again));
        assert!(!Rc::ptr_eq(&again.backends[0], &tls.backends[0]));
        let tls_again = ServiceRt::new(&spec(unverified), Some(&tls));
        assert!(Rc::ptr_eq(&tls.backends[0], &tls_again.backends[0]));
    }
}
