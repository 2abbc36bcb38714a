//! Routing: host, path, method and headers to a route.
//!
//! Precedence (documented in docs/architecture.md):
//! 1. Host: routes bound to a domain whose exact host matches come first, then routes of the
//!    domain with the longest matching wildcard (`*.example.com`), then routes with no domain.
//!    If no route of a level matches the request, the next level is tried.
//! 2. Within a level: `path_exact`, then `path_regex` (in file order), then `path_prefix`
//!    (longest first). Ties go to the route with more method/header conditions, then to the
//!    one earlier in the file.
//!
//! The router is compiled once per snapshot on the control thread and shared read-only.

use std::collections::HashMap;

use aigw_config::{Config, HeaderMatch};
use regex::bytes::Regex;

use crate::http::Headers;

/// A compiled route.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    path: PathMatch,
    methods: Vec<String>,
    headers: Vec<HeaderCond>,
    /// The replacement for the matched prefix, if the route rewrites.
    pub rewrite_prefix: Option<String>,
    /// What serves the matched requests.
    pub target: Target,
    /// Request body limit, if the route sets one.
    pub max_body_bytes: Option<u64>,
}

/// What a route hands its requests to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Proxied to the service with this index in the snapshot's services.
    Service(usize),
    /// Served by the model API with this index in the snapshot's model APIs.
    ModelApi(usize),
}

#[derive(Debug)]
enum PathMatch {
    Exact(String),
    Regex(Regex),
    Prefix(String),
}

#[derive(Debug)]
enum HeaderCond {
    Equals(String, Vec<u8>),
    Regex(String, Regex),
    Present(String, bool),
}

/// The route chosen for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    pub route: usize,
}

/// All routes of a snapshot, indexed by host.
#[derive(Debug, Default)]
pub struct Router {
    pub routes: Vec<Route>,
    /// Domain index by exact host.
    exact_hosts: HashMap<String, usize>,
    /// (suffix including the leading dot, domain index), longest suffix first.
    wildcard_hosts: Vec<(String, usize)>,
    /// Route indices per domain, in precedence order.
    by_domain: Vec<Vec<usize>>,
    /// Routes with no domain, in precedence order.
    any_host: Vec<usize>,
}

impl Router {
    /// Compiles the routes of a validated config. `service_index` maps a service name to its
    /// index. Errors only on what validation should already have refused.
    pub fn build(
        config: &Config,
        service_index: &HashMap<String, usize>,
    ) -> Result<Router, String> {
        let mut router = Router {
            by_domain: vec![Vec::new(); config.domains.len()],
            ..Router::default()
        };
        let domain_index: HashMap<&str, usize> = config
            .domains
            .iter()
            .enumerate()
            .map(|(i, d)| (d.name.as_str(), i))
            .collect();
        for (i, d) in config.domains.iter().enumerate() {
            for host in &d.hosts {
                let host = host.to_ascii_lowercase();
                match host.strip_prefix('*') {
                    Some(suffix) => router.wildcard_hosts.push((suffix.to_string(), i)),
                    None => {
                        router.exact_hosts.insert(host, i);
                    }
                }
            }
        }
        router
            .wildcard_hosts
            .sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        for (i, r) in config.routes.iter().enumerate() {
            let service = *service_index
                .get(&r.service)
                .ok_or_else(|| format!("route `{}`: unknown service `{}`", r.name, r.service))?;
            router.routes.push(compile_route(r, service)?);
            if r.domains.is_empty() {
                router.any_host.push(i);
            }
            for d in &r.domains {
                let di = *domain_index
                    .get(d.as_str())
                    .ok_or_else(|| format!("route `{}`: unknown domain `{d}`", r.name))?;
                router.by_domain[di].push(i);
            }
        }
        for (k, api) in config.model_apis.iter().enumerate() {
            let i = router.routes.len();
            router.routes.push(model_api_route(api, k));
            if api.domains.is_empty() {
                router.any_host.push(i);
            }
            for d in &api.domains {
                let di = *domain_index
                    .get(d.as_str())
                    .ok_or_else(|| format!("model API `{}`: unknown domain `{d}`", api.name))?;
                router.by_domain[di].push(i);
            }
        }
        let routes = &router.routes;
        let order = |list: &mut Vec<usize>| list.sort_by_key(|&i| routes[i].precedence_key(i));
        order(&mut router.any_host);
        for list in &mut router.by_domain {
            order(list);
        }
        Ok(router)
    }

    /// The domains a host belongs to, most specific first: its exact domain, then wildcard
    /// domains by decreasing suffix length. The first is the one plugin scopes use.
    pub fn domains_of<'a>(&'a self, host: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        let host = std::str::from_utf8(host).unwrap_or("");
        let exact = self.exact_hosts.get(host).copied();
        let wild = self
            .wildcard_hosts
            .iter()
            .filter(move |(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
            .map(|&(_, d)| d);
        exact.into_iter().chain(wild)
    }

    /// Finds the route for a request, trying the host's domains level by level, then the
    /// routes with no domain.
    pub fn find(
        &self,
        host: &[u8],
        method: &[u8],
        path: &[u8],
        headers: &Headers,
    ) -> Option<Matched> {
        self.domains_of(host)
            .flat_map(|d| self.by_domain[d].iter().copied())
            .chain(self.any_host.iter().copied())
            .find(|&i| self.routes[i].matches(method, path, headers))
            .map(|route| Matched { route })
    }
}

fn compile_route(r: &aigw_config::Route, service: usize) -> Result<Route, String> {
    let m = &r.matcher;
    let path = if let Some(p) = &m.path_exact {
        PathMatch::Exact(p.clone())
    } else if let Some(re) = &m.path_regex {
        PathMatch::Regex(anchored(re).map_err(|e| format!("route `{}`: {e}", r.name))?)
    } else {
        PathMatch::Prefix(m.path_prefix.clone().unwrap_or_else(|| "/".into()))
    };
    let mut headers = Vec::new();
    for h in &m.headers {
        headers.push(compile_header(h).map_err(|e| format!("route `{}`: {e}", r.name))?);
    }
    Ok(Route {
        name: r.name.clone(),
        path,
        methods: m.methods.iter().map(|s| s.to_ascii_uppercase()).collect(),
        headers,
        rewrite_prefix: r.rewrite.as_ref().map(|w| w.path_prefix.clone()),
        target: Target::Service(service),
        max_body_bytes: r.max_body_bytes,
    })
}

/// A model API as a route: every path under its base path (`/v1` serves `/v1/...`, not
/// `/v1beta`), named `model_api:NAME` in metrics.
fn model_api_route(api: &aigw_config::ModelApi, index: usize) -> Route {
    let prefix = if api.base_path == "/" {
        "/".to_string()
    } else {
        format!("{}/", api.base_path)
    };
    Route {
        name: format!("model_api:{}", api.name),
        path: PathMatch::Prefix(prefix),
        methods: Vec::new(),
        headers: Vec::new(),
        rewrite_prefix: None,
        target: Target::ModelApi(index),
        max_body_bytes: Some(api.policies.max_body_bytes),
    }
}

/// A path regex must match the whole path.
fn anchored(re: &str) -> Result<Regex, regex::Error> {
    aigw_config::pattern::bytes_regex_builder(&format!("^(?:{re})$")).build()
}

fn compile_header(h: &HeaderMatch) -> Result<HeaderCond, String> {
    let name = h.name.to_ascii_lowercase();
    if let Some(v) = &h.value {
        Ok(HeaderCond::Equals(name, v.as_bytes().to_vec()))
    } else if let Some(re) = &h.regex {
        Ok(HeaderCond::Regex(
            name,
            aigw_config::pattern::bytes_regex_builder(re)
                .build()
                .map_err(|e| e.to_string())?,
        ))
    } else {
        Ok(HeaderCond::Present(name, h.present.unwrap_or(true)))
    }
}

impl Route {
    /// Sort key for precedence within one host level.
    fn precedence_key(
        &self,
        index: usize,
    ) -> (
        u8,
        std::cmp::Reverse<usize>,
        std::cmp::Reverse<usize>,
        usize,
    ) {
        let (rank, len) = match &self.path {
            PathMatch::Exact(_) => (0, 0),
            PathMatch::Regex(_) => (1, 0),
            PathMatch::Prefix(p) => (2, p.len()),
        };
        let conditions = self.headers.len() + usize::from(!self.methods.is_empty());
        (
            rank,
            std::cmp::Reverse(len),
            std::cmp::Reverse(conditions),
            index,
        )
    }

    fn matches(&self, method: &[u8], path: &[u8], headers: &Headers) -> bool {
        let path_ok = match &self.path {
            PathMatch::Exact(p) => path == p.as_bytes(),
            PathMatch::Prefix(p) => path.starts_with(p.as_bytes()),
            PathMatch::Regex(re) => re.is_match(path),
        };
        path_ok
            && (self.methods.is_empty() || self.methods.iter().any(|m| m.as_bytes() == method))
            && self.headers.iter().all(|c| c.matches(headers))
    }

    /// The upstream URI after the route's prefix rewrite; `None` when it does not rewrite.
    pub fn rewrite(&self, uri: &[u8]) -> Option<Vec<u8>> {
        let (PathMatch::Prefix(prefix), Some(to)) = (&self.path, &self.rewrite_prefix) else {
            return None;
        };
        let rest = uri.get(prefix.len()..)?;
        let mut out = Vec::with_capacity(to.len() + rest.len() + 1);
        out.extend_from_slice(to.as_bytes());
        match (out.last() == Some(&b'/'), rest.first()) {
            (true, Some(b'/')) => out.extend_from_slice(&rest[1..]),
            (false, Some(b'/' | b'?')) | (_, None) => out.extend_from_slice(rest),
            (false, Some(_)) => {
                out.push(b'/');
                out.extend_from_slice(rest);
            }
            (true, Some(_)) => out.extend_from_slice(rest),
        }
        if out.first() != Some(&b'/') {
            out.insert(0, b'/');
        }
        Some(out)
    }
}

impl HeaderCond {
    fn matches(&self, headers: &Headers) -> bool {
        match self {
            HeaderCond::Equals(name, v) => headers.get_all(name).any(|x| x[..] == v[..]),
            HeaderCond::Regex(name, re) => headers.get_all(name).any(|x| re.is_match(x)),
            HeaderCond::Present(name, want) => headers.contains(name) == *want,
        }
    }
}

#[cfg(test)]
mod tests;
