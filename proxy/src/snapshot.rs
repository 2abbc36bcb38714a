//! The compiled, immutable configuration every worker serves from.
//!
//! Built on the control thread (it resolves endpoint names, which blocks), shared read-only
//! with the workers through an `Arc`. Workers never write to it; their mutable state (pools,
//! buckets, plugin instances) lives in `runtime::state::WorkerState`, built from it.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};

use std::sync::Arc;

use aigw_config::Config;

use crate::model::spec::ModelApiSpec;
use crate::route::Router;
use crate::upstream::tls::TlsClient;

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
    /// Compiled from `config.tls`; shared by every worker.
    pub tls: Option<Arc<TlsClient>>,
}

/// Everything a worker needs to serve requests under one configuration.
#[derive(Debug)]
pub struct Snapshot {
    /// Increases by one with every successful (re)load.
    pub generation: u64,
    pub config: Config,
    pub router: Router,
    /// The configured services, then one synthesized service per networked model provider.
    pub services: Vec<ServiceSpec>,
    /// By index of `config.model_apis`.
    pub model_apis: Vec<ModelApiSpec>,
    /// Response compression per route, request decoding, QAT settings.
    pub compression: crate::compress::Settings,
    /// The compiled TLS of each listener that has `tls`, by listener name; shared by every
    /// worker.
    pub listener_tls: HashMap<String, Arc<aigw_tls::ServerTls>>,
}

/// Resolves `host:port` to addresses; the default uses the system resolver.
pub type Resolver = dyn Fn(&str) -> std::io::Result<Vec<SocketAddr>>;

/// The system resolver (blocking: control thread only).
pub fn system_resolve(endpoint: &str) -> std::io::Result<Vec<SocketAddr>> {
    endpoint.to_socket_addrs().map(|a| a.collect())
}

impl Snapshot {
    /// The listener named `name` in this config (`None` once a reload removed it).
    pub fn listener(&self, name: &str) -> Option<&aigw_config::Listener> {
        self.config.listeners.iter().find(|l| l.name == name)
    }

    /// Compiles a validated config. Names that do not resolve leave the service with fewer
    /// backends (logged); they are retried at the next re-resolution.
    pub fn build(config: Config, generation: u64, resolve: &Resolver) -> Result<Snapshot, String> {
        let (apis, all) = compile_model_apis(&config)?;
        let mut services = resolve_all(&all, resolve);
        for s in &mut services {
            if let Some(tls) = &s.config.tls {
                s.tls =
                    Some(Arc::new(TlsClient::build(tls).map_err(|e| {
                        format!("service `{}`: tls: {e}", s.config.name)
                    })?));
            }
        }
        let listener_tls = compile_listener_tls(&config)?;
        let mut snap = Snapshot::compile(config, services, apis, generation)?;
        snap.listener_tls = listener_tls;
        Ok(snap)
    }

    /// Takes over the process-wide state of `prev` (token budgets, caches) for model APIs
    /// whose policies did not change.
    pub fn carry_from(&mut self, prev: &Snapshot) {
        for api in &mut self.model_apis {
            if let Some(old) = prev
                .model_apis
                .iter()
                .find(|o| o.config.name == api.config.name)
            {
                api.carry_from(old);
            }
        }
    }

    /// The next generation of this snapshot with endpoint names resolved again; `None` when
    /// no address changed.
    pub fn re_resolved(&self, resolve: &Resolver) -> Option<Result<Snapshot, String>> {
        let configs: Vec<aigw_config::Service> =
            self.services.iter().map(|s| s.config.clone()).collect();
        let mut fresh = resolve_all(&configs, resolve);
        for (f, old) in fresh.iter_mut().zip(&self.services) {
            f.tls.clone_from(&old.tls);
        }
        if fresh == self.services {
            return None;
        }
        Some(compile_model_apis(&self.config).and_then(|(apis, _)| {
            let mut next =
                Snapshot::compile(self.config.clone(), fresh, apis, self.generation + 1)?;
            next.listener_tls.clone_from(&self.listener_tls);
            next.carry_from(self);
            Ok(next)
        }))
    }

    fn compile(
        config: Config,
        services: Vec<ServiceSpec>,
        model_apis: Vec<ModelApiSpec>,
        generation: u64,
    ) -> Result<Snapshot, String> {
        let index: HashMap<String, usize> = services
            .iter()
            .map(|s| &s.config)
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect();
        let router = Router::build(&config, &index)?;
        let compression = crate::compress::Settings::build(&config, router.routes.len())?;
        Ok(Snapshot {
            generation,
            config,
            router,
            services,
            model_apis,
            compression,
            listener_tls: HashMap::new(),
        })
    }

    /// Every file the config refers to for TLS (certificates, keys, CAs), to watch for
    /// changes: a changed file is a reload.
    pub fn tls_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.config.listeners {
            if let Some(tls) = &l.tls {
                out.extend(aigw_tls::server::files(tls));
            }
        }
        for s in &self.services {
            if let Some(t) = &s.config.tls {
                out.extend(
                    [&t.ca, &t.client_cert, &t.client_key]
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
        }
        out
    }
}

/// Compiles `listeners[].tls` (reads certificates and keys, checks that they belong
/// together). ALPN comes from the one place that decides it, `server::tls::alpn_protocols`.
fn compile_listener_tls(
    config: &Config,
) -> Result<HashMap<String, Arc<aigw_tls::ServerTls>>, String> {
    let mut out = HashMap::new();
    for l in &config.listeners {
        let Some(tls) = &l.tls else { continue };
        let alpn = crate::server::tls::alpn_protocols(l);
        let built = aigw_tls::ServerTls::build(&l.name, tls, alpn)
            .map_err(|e| format!("listener `{}`: tls: {e}", l.name))?;
        for note in &built.notes {
            crate::log::warn(format_args!("listener `{}`: tls: {note}", l.name));
        }
        if built.offload {
            crate::log::info(format_args!("listener `{}`: TLS keys on QAT", l.name));
        } else if tls.key_offload != aigw_config::KeyOffload::Software {
            let why = aigw_tls::qat::available()
                .err()
                .unwrap_or_else(|| "no key QAT can sign with".into());
            crate::log::info(format_args!(
                "listener `{}`: TLS keys in software ({why})",
                l.name
            ));
        }
        out.insert(l.name.clone(), Arc::new(built));
    }
    Ok(out)
}

/// The model APIs compiled, and every service to resolve: the configured ones, then the
/// synthesized ones of the model providers.
fn compile_model_apis(
    config: &Config,
) -> Result<(Vec<ModelApiSpec>, Vec<aigw_config::Service>), String> {
    let mut all = config.services.clone();
    let mut apis = Vec::with_capacity(config.model_apis.len());
    for api in &config.model_apis {
        let (spec, services) = ModelApiSpec::compile(api, all.len())?;
        all.extend(services);
        apis.push(spec);
    }
    Ok((apis, all))
}

fn resolve_all(services: &[aigw_config::Service], resolve: &Resolver) -> Vec<ServiceSpec> {
    services
        .iter()
        .map(|s| ServiceSpec {
            config: s.clone(),
            backends: resolve_service(s, resolve),
            tls: None,
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
