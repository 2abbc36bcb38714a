//! The compiled, immutable configuration every worker serves from.
//!
//! Built on the control thread (it resolves endpoint names, which blocks), shared read-only
//! with the workers through an `Arc`. Workers never write to it; their mutable state (pools,
//! buckets, plugin instances) lives in `runtime::state::WorkerState`, built from it.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};

use aigw_config::Config;

use crate::route::Router;

/// One resolved upstream address of a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Backend {
    pub addr: SocketAddr,
    pub weight: u32,
    /// The configured `host:port` it came from (for Host of health probes and metrics).
    pub endpoint: String,
}

/// A service with its endpoints resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    pub config: aigw_config::Service,
    pub backends: Vec<Backend>,
}

/// Everything a worker needs to serve requests under one configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every successful (re)load.
    pub generation: u64,
    pub config: Config,
    pub router: Router,
    pub services: Vec<ServiceSpec>,
}

/// Resolves `host:port` to addresses; the default uses the system resolver.
pub type Resolver = dyn Fn(&str) -> std::io::Result<Vec<SocketAddr>>;

/// The system resolver (blocking: control thread only).
pub fn system_resolve(endpoint: &str) -> std::io::Result<Vec<SocketAddr>> {
    endpoint.to_socket_addrs().map(|a| a.collect())
}

impl Snapshot {
    /// Compiles a validated config. Names that do not resolve leave the service with fewer
    /// backends (logged); they are retried at the next re-resolution.
    pub fn build(config: Config, generation: u64, resolve: &Resolver) -> Result<Snapshot, String> {
        let services = resolve_all(&config, resolve);
        Snapshot::compile(config, services, generation)
    }

    /// The next generation of this snapshot with endpoint names resolved again; `None` when
    /// no address changed.
    pub fn re_resolved(&self, resolve: &Resolver) -> Option<Result<Snapshot, String>> {
        let fresh = resolve_all(&self.config, resolve);
        (fresh != self.services)
            .then(|| Snapshot::compile(self.config.clone(), fresh, self.generation + 1))
    }

    fn compile(
        config: Config,
        services: Vec<ServiceSpec>,
        generation: u64,
    ) -> Result<Snapshot, String> {
        let index: HashMap<String, usize> = config
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let router = Router::build(&config, &index)?;
        Ok(Snapshot {
            generation,
            config,
            router,
            services,
        })
    }
}

fn resolve_all(config: &Config, resolve: &Resolver) -> Vec<ServiceSpec> {
    config
        .services
        .iter()
        .map(|s| ServiceSpec {
            config: s.clone(),
            backends: resolve_service(s, resolve),
        })
        .collect()
}

fn resolve_service(service: &aigw_config::Service, resolve: &Resolver) -> Vec<Backend> {
    let mut out = Vec::new();
    for ep in &service.endpoints {
        match resolve(&ep.address) {
            Ok(addrs) => {
                for addr in addrs {
                    let b = Backend {
                        addr,
                        weight: ep.weight,
                        endpoint: ep.address.clone(),
                    };
                    if !out.contains(&b) {
                        out.push(b);
                    }
                }
            }
            Err(e) => crate::log::warn(format_args!(
                "service `{}`: cannot resolve `{}`: {e}",
                service.name, ep.address
            )),
        }
    }
    out
}
