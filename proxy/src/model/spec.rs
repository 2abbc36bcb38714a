//! Model APIs as compiled into a snapshot: shared read-only by every worker, with the few
//! objects that must be process-wide (token budgets, the response cache) behind an `Arc`.
//!
//! Each provider that is reached over the network gets a synthesized service (named
//! `API/PROVIDER`, which no configured service can be called, since `/` is not allowed in
//! names), so it has the same pools, resolution, passive health and connect retries as any
//! proxied service.

use std::sync::Arc;
use std::time::Duration;

use aigw_config::{BaseUrl, Endpoint, ModelApi, Provider, ProviderKind, Service, ServiceTimeouts};

use super::cache::ResponseCache;
use super::guard::{Guard, GuardAction};
use super::token_limit::TokenLimiter;

/// One model API, compiled.
pub struct ModelApiSpec {
    pub config: ModelApi,
    pub providers: Vec<ProviderSpec>,
    /// Compiled from `policies.guard`.
    pub guard: Option<Arc<Guard>>,
    /// Process-wide token budgets per consumer.
    pub token_limiter: Option<Arc<TokenLimiter>>,
    /// Process-wide response cache.
    pub cache: Option<Arc<ResponseCache>>,
}

impl std::fmt::Debug for ModelApiSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelApiSpec")
            .field("name", &self.config.name)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

/// One provider, compiled.
#[derive(Debug)]
pub struct ProviderSpec {
    pub config: Provider,
    /// `None` for `mock`.
    pub base: Option<BaseUrl>,
    /// The Host header for requests to it (computed once).
    pub host_header: String,
    /// Index of its synthesized service in the snapshot's services (`None` for `mock`).
    pub service: Option<usize>,
}

impl ModelApiSpec {
    /// Compiles `api`; `first_service` is the index its first networked provider's service
    /// will have. Returns the spec and the services to append to the snapshot.
    pub fn compile(
        api: &ModelApi,
        first_service: usize,
    ) -> Result<(ModelApiSpec, Vec<Service>), String> {
        let mut services = Vec::new();
        let mut providers = Vec::with_capacity(api.providers.len());
        for p in &api.providers {
            let (base, service) = match p.effective_base_url() {
                Some(url) if p.kind != ProviderKind::Mock => {
                    let base = BaseUrl::parse(url).map_err(|e| {
                        format!("model API `{}`: provider `{}`: {e}", api.name, p.name)
                    })?;
                    services.push(provider_service(api, p, &base));
                    (Some(base), Some(first_service + services.len() - 1))
                }
                _ => (None, None),
            };
            providers.push(ProviderSpec {
                config: p.clone(),
                host_header: base.as_ref().map(BaseUrl::host_header).unwrap_or_default(),
                base,
                service,
            });
        }
        let pol = &api.policies;
        let guard = match &pol.guard {
            Some(g) => {
                let action = match g.action {
                    aigw_config::GuardActionKind::Block => GuardAction::Block,
                    aigw_config::GuardActionKind::Mask => GuardAction::Mask {
                        with: g.mask_with.clone(),
                    },
                };
                Some(Arc::new(
                    Guard::new(&g.keywords, &g.patterns, action, g.hold_back)
                        .map_err(|e| format!("model API `{}`: guard: {e}", api.name))?,
                ))
            }
            None => None,
        };
        let token_limiter = (!pol.token_limits.is_empty()).then(|| {
            Arc::new(TokenLimiter::new(
                pol.token_limits.iter().map(|l| (l.per, l.tokens)).collect(),
            ))
        });
        let cache = pol
            .cache
            .as_ref()
            .map(|c| Arc::new(ResponseCache::new(c.max_entries, c.max_bytes)));
        Ok((
            ModelApiSpec {
                config: api.clone(),
                providers,
                guard,
                token_limiter,
                cache,
            },
            services,
        ))
    }

    /// Keeps the previous generation's token budgets and cache when their policies did not
    /// change, so a reload neither forgives spent budgets nor empties the cache.
    pub fn carry_from(&mut self, prev: &ModelApiSpec) {
        let (now, old) = (&self.config.policies, &prev.config.policies);
        if now.token_limits == old.token_limits {
            self.token_limiter.clone_from(&prev.token_limiter);
        }
        if now.cache == old.cache && self.config.providers == prev.config.providers {
            self.cache.clone_from(&prev.cache);
        }
    }
}

/// The service a networked provider is reached through: TLS for an `https://` base URL, with
/// the provider's `tls` settings and the URL's host as the server name unless they name one.
fn provider_service(api: &ModelApi, p: &Provider, base: &BaseUrl) -> Service {
    let pol = &api.policies;
    Service {
        name: format!("{}/{}", api.name, p.name),
        endpoints: vec![Endpoint {
            address: base.endpoint(),
            weight: 1,
        }],
        balance: aigw_config::Balance::RoundRobin,
        resolve_interval: aigw_config::DurationStr(Duration::from_secs(30)),
        timeouts: ServiceTimeouts {
            connect: p.connect_timeout,
            response_header: pol.timeout,
            idle: pol.idle_timeout,
        },
        pool: p.pool.clone(),
        health_check: None,
        passive_health: aigw_config::PassiveHealth::default(),
        retries: 1,
        tls: base.tls.then(|| {
            let mut tls = p.tls.clone().unwrap_or_default();
            tls.sni.get_or_insert_with(|| base.host.clone());
            tls
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_providers_get_tls_with_the_url_host_as_server_name() {
        let api: ModelApi = serde_yaml_ng::from_str(
            "
name: llm
base_path: /v1
providers:
  - { name: public, kind: openai }
  - { name: lab, kind: openai, base_url: 'https://LLM.lab:8443/v1', tls: { verify: false } }
  - { name: named, kind: openai, base_url: 'https://10.0.0.7/v1', tls: { sni: llm.lab } }
  - { name: local, kind: openai, base_url: 'http://127.0.0.1:8000/v1' }
  - { name: mock, kind: mock }
",
        )
        .unwrap();
        let (_, services) = ModelApiSpec::compile(&api, 0).unwrap();
        let tls: Vec<_> = services.iter().map(|s| s.tls.clone()).collect();
        let want = |sni: &str, verify: bool| {
            Some(aigw_config::UpstreamTls {
                sni: Some(sni.into()),
                verify,
                ..Default::default()
            })
        };
        assert_eq!(
            tls,
            vec![
                want("api.openai.com", true),
                want("llm.lab", false),
                want("llm.lab", true),
                None,
            ]
        );
        assert_eq!(services[0].endpoints[0].address, "api.openai.com:443");
    }
}
