//! What one worker serves from: the shared snapshot plus this worker's own live objects built
//! from it (service runtimes with their pools and health, plugin instances, consumers, chains).
//!
//! A new `WorkerState` is built when a snapshot arrives. Whatever did not change carries over
//! from the previous state: a service with the same config and addresses keeps its `ServiceRt`
//! (pools, health, balancer position); a rate-limit plugin with the same spec keeps its
//! buckets. Requests in flight hold an `Rc` of the state they started with, so they finish on
//! it; the old state is freed when the last of them ends.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::observe::access_log::AccessLog;
use crate::plugin::{self, Chain, ConsumerTable, Plugin};
use crate::snapshot::Snapshot;
use crate::upstream::{health, ServiceRt};

/// Key of a cached chain: (route index, domain index of the host).
type ChainKey = (Option<usize>, Option<usize>);

/// One worker's view of one snapshot.
pub struct WorkerState {
    pub snap: Arc<Snapshot>,
    pub services: Vec<Rc<ServiceRt>>,
    /// Instances by index of `snap.config.plugins`.
    plugins: Vec<Rc<dyn Plugin>>,
    pub consumers: Rc<ConsumerTable>,
    chains: RefCell<HashMap<ChainKey, Rc<Chain>>>,
    /// Route names as metric labels, by route index.
    pub route_labels: Vec<Rc<str>>,
    /// The label of requests that matched no route.
    pub unmatched_label: Rc<str>,
    /// Service names as metric labels, by service index.
    pub service_labels: Vec<Rc<str>>,
    pub access_log: Option<AccessLog>,
    /// The instance type's client connection cap (process-wide).
    pub connection_cap: usize,
    /// Key rotation per model API, by index of `snap.model_apis`.
    pub model_apis: Vec<crate::model::provider::ModelApiRt>,
    /// Model API names as metric labels.
    pub model_api_labels: Vec<Rc<str>>,
    /// Provider names as metric labels, per model API.
    pub provider_labels: Vec<Vec<Rc<str>>>,
    /// The empty label value (no consumer, no provider).
    pub no_label: Rc<str>,
}

impl WorkerState {
    /// Builds the state for `snap`, carrying over what `prev` had that did not change.
    pub fn build(
        snap: Arc<Snapshot>,
        prev: Option<&WorkerState>,
        worker: usize,
        workers: usize,
        access_log: Option<AccessLog>,
    ) -> Result<WorkerState, String> {
        let services = snap
            .services
            .iter()
            .map(|spec| {
                let old =
                    prev.and_then(|p| p.services.iter().find(|s| s.name() == spec.config.name));
                match old {
                    Some(o) if o.spec == *spec => o.clone(),
                    _ => {
                        let rt = Rc::new(ServiceRt::new(spec, old.map(|o| o.as_ref())));
                        health::spawn(&rt, worker, workers);
                        rt
                    }
                }
            })
            .collect();
        let consumers = Rc::new(ConsumerTable::new(&snap.config.consumers));
        let mut plugins = Vec::with_capacity(snap.config.plugins.len());
        for spec in &snap.config.plugins {
            let kept = prev.and_then(|p| p.carried_plugin(spec));
            plugins.push(match kept {
                Some(p) => p,
                None => plugin::build(spec, &consumers, workers)?,
            });
        }
        let cap = snap.config.instance.instance_type.connection_target() as usize;
        Ok(WorkerState {
            route_labels: snap
                .router
                .routes
                .iter()
                .map(|r| Rc::from(r.name.as_str()))
                .collect(),
            service_labels: snap
                .services
                .iter()
                .map(|s| Rc::from(s.config.name.as_str()))
                .collect(),
            unmatched_label: Rc::from("unmatched"),
            connection_cap: cap,
            model_apis: snap
                .model_apis
                .iter()
                .map(crate::model::provider::ModelApiRt::new)
                .collect(),
            no_label: Rc::from(""),
            model_api_labels: snap
                .model_apis
                .iter()
                .map(|a| Rc::from(a.config.name.as_str()))
                .collect(),
            provider_labels: snap
                .model_apis
                .iter()
                .map(|a| {
                    a.providers
                        .iter()
                        .map(|p| Rc::from(p.config.name.as_str()))
                        .collect()
                })
                .collect(),
            snap,
            services,
            plugins,
            consumers,
            chains: RefCell::new(HashMap::new()),
            access_log,
        })
    }

    /// Builds, and drops, what only a worker builds from `snap` (plugin instances), so that the
    /// control thread can refuse a snapshot no worker could serve before sending it to any.
    pub fn check(snap: &Snapshot, workers: usize) -> Result<(), String> {
        let consumers = Rc::new(ConsumerTable::new(&snap.config.consumers));
        for spec in &snap.config.plugins {
            plugin::build(spec, &consumers, workers)?;
        }
        Ok(())
    }

    /// A plugin instance worth keeping for `spec`: only stateful ones (rate-limit buckets);
    /// the others are cheap to rebuild and may depend on the consumer table.
    fn carried_plugin(&self, spec: &aigw_config::PluginSpec) -> Option<Rc<dyn Plugin>> {
        if spec.name != "rate-limit" {
            return None;
        }
        let i = self.snap.config.plugins.iter().position(|p| p == spec)?;
        self.plugins.get(i).cloned()
    }

    /// The plugin chain for a route (or none) on a host of `domain` (or none), composed once
    /// and cached for the life of this state.
    pub fn chain(&self, route: Option<usize>, domain: Option<usize>) -> Rc<Chain> {
        if let Some(c) = self.chains.borrow().get(&(route, domain)) {
            return c.clone();
        }
        let config = &self.snap.config;
        let route_name = route.map(|r| self.snap.router.routes[r].name.as_str());
        let model_api = route.and_then(|r| match self.snap.router.routes[r].target {
            crate::route::Target::ModelApi(k) => Some(config.model_apis[k].name.as_str()),
            crate::route::Target::Service(_) => None,
        });
        let domain_name = domain.map(|d| config.domains[d].name.as_str());
        let applicable = config
            .plugins
            .iter()
            .zip(&self.plugins)
            .filter_map(|(spec, inst)| {
                let level = match &spec.scope {
                    aigw_config::Scope::Global => 0,
                    aigw_config::Scope::Domain(d) if Some(d.as_str()) == domain_name => 1,
                    aigw_config::Scope::Route(r) if Some(r.as_str()) == route_name => 2,
                    aigw_config::Scope::ModelApi(m) if Some(m.as_str()) == model_api => 2,
                    _ => return None,
                };
                Some((level, spec, inst.clone()))
            })
            .collect();
        let chain = Rc::new(plugin::compose(applicable));
        self.chains
            .borrow_mut()
            .insert((route, domain), chain.clone());
        chain
    }
}
