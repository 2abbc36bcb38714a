//! Quotas and capacity of each edition and instance type, from the reference product's tables.
//!
//! The numbers are the "Quota description" and "Capacity specifications" tables of the AI
//! Gateway's gateway-types page, transcribed exactly. A dedicated instance's quotas depend on its
//! size (small, or medium and large alike); a serverless instance has one set. `instance.quotas`
//! moves a limit anywhere from 0 up to the maximum column.
//!
//! Validation counts each resource and calls [`Quotas::check_count`]; a resource added later
//! (model APIs, MCP servers and their tools, agent APIs) is enforced with one more such call.

use std::fmt;

use crate::model::{Edition, Instance, InstanceType};
use crate::Issue;

/// The size class of an instance type, which selects its quota column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Size {
    /// `aigw.small.*`
    Small,
    /// `aigw.medium.*`
    Medium,
    /// `aigw.large.*`
    Large,
}

impl Size {
    /// `small`, `medium` or `large`.
    pub fn as_str(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }
}

impl InstanceType {
    /// Every instance type, smallest first.
    pub const ALL: [InstanceType; 10] = [
        InstanceType::SmallX1,
        InstanceType::SmallX2,
        InstanceType::SmallX4,
        InstanceType::MediumX1,
        InstanceType::MediumX2,
        InstanceType::MediumX3,
        InstanceType::LargeX1,
        InstanceType::LargeX2,
        InstanceType::LargeX3,
        InstanceType::LargeX4,
    ];

    /// The name used in the config file, e.g. `aigw.small.x1`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceType::SmallX1 => "aigw.small.x1",
            InstanceType::SmallX2 => "aigw.small.x2",
            InstanceType::SmallX4 => "aigw.small.x4",
            InstanceType::MediumX1 => "aigw.medium.x1",
            InstanceType::MediumX2 => "aigw.medium.x2",
            InstanceType::MediumX3 => "aigw.medium.x3",
            InstanceType::LargeX1 => "aigw.large.x1",
            InstanceType::LargeX2 => "aigw.large.x2",
            InstanceType::LargeX3 => "aigw.large.x3",
            InstanceType::LargeX4 => "aigw.large.x4",
        }
    }

    /// The type named `name` (`aigw.small.x1` ...), if any.
    pub fn from_name(name: &str) -> Option<InstanceType> {
        InstanceType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// Its size class.
    pub fn size(self) -> Size {
        match self {
            InstanceType::SmallX1 | InstanceType::SmallX2 | InstanceType::SmallX4 => Size::Small,
            InstanceType::MediumX1 | InstanceType::MediumX2 | InstanceType::MediumX3 => {
                Size::Medium
            }
            _ => Size::Large,
        }
    }

    /// The queries per second this type is specified to sustain (capacity table).
    pub fn qps_target(self) -> u64 {
        match self {
            InstanceType::SmallX1 => 1_500,
            InstanceType::SmallX2 => 3_000,
            InstanceType::SmallX4 => 6_000,
            InstanceType::MediumX1 => 12_000,
            InstanceType::MediumX2 => 24_000,
            InstanceType::MediumX3 => 36_000,
            InstanceType::LargeX1 => 48_000,
            InstanceType::LargeX2 => 96_000,
            InstanceType::LargeX3 => 144_000,
            InstanceType::LargeX4 => 192_000,
        }
    }

    /// The concurrent client connections this type is specified to hold (capacity table).
    pub fn connection_target(self) -> u64 {
        match self {
            InstanceType::SmallX1 => 20_000,
            InstanceType::SmallX2 => 40_000,
            InstanceType::SmallX4 => 80_000,
            InstanceType::MediumX1 => 160_000,
            InstanceType::MediumX2 => 320_000,
            InstanceType::MediumX3 => 480_000,
            InstanceType::LargeX1 => 640_000,
            InstanceType::LargeX2 => 1_280_000,
            InstanceType::LargeX3 => 1_920_000,
            InstanceType::LargeX4 => 2_560_000,
        }
    }
}

impl fmt::Display for InstanceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Edition {
    /// `dedicated` or `serverless`, as in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Edition::Dedicated => "dedicated",
            Edition::Serverless => "serverless",
        }
    }
}

/// One quota dimension. [`Quota::as_str`] is its key under `instance.quotas`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quota {
    /// Model APIs per instance.
    ModelApis,
    /// Routes per instance.
    Routes,
    /// MCP servers per instance.
    McpServers,
    /// Tools of one MCP server.
    ToolsPerMcpServer,
    /// Agent APIs per instance.
    AgentApis,
    /// Consumers.
    Consumers,
    /// Associated domain names.
    Domains,
    /// Associated services.
    Services,
    /// Distinct plugins installed on the instance.
    Plugins,
    /// Uploaded custom plugins (not settable in `instance.quotas`: custom plugins do not exist
    /// yet).
    CustomPluginsUploaded,
}

impl Quota {
    /// Every quota, in the order of the reference table.
    pub const ALL: [Quota; 10] = [
        Quota::ModelApis,
        Quota::Routes,
        Quota::McpServers,
        Quota::ToolsPerMcpServer,
        Quota::AgentApis,
        Quota::Consumers,
        Quota::Domains,
        Quota::Services,
        Quota::Plugins,
        Quota::CustomPluginsUploaded,
    ];

    /// The quota named `name` (`routes`, `tools_per_mcp_server`, ...), if any.
    pub fn from_name(name: &str) -> Option<Quota> {
        Quota::ALL.into_iter().find(|q| q.as_str() == name)
    }

    /// The snake_case name used in `instance.quotas` and in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Quota::ModelApis => "model_apis",
            Quota::Routes => "routes",
            Quota::McpServers => "mcp_servers",
            Quota::ToolsPerMcpServer => "tools_per_mcp_server",
            Quota::AgentApis => "agent_apis",
            Quota::Consumers => "consumers",
            Quota::Domains => "domains",
            Quota::Services => "services",
            Quota::Plugins => "plugins",
            Quota::CustomPluginsUploaded => "custom_plugins_uploaded",
        }
    }
}

/// One column of the quota table. `None` is the table's "N/A": the quota does not apply (and
/// nothing is counted against it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Model APIs per instance.
    pub model_apis: usize,
    /// Routes per instance.
    pub routes: usize,
    /// MCP servers per instance.
    pub mcp_servers: usize,
    /// Tools of one MCP server.
    pub tools_per_mcp_server: usize,
    /// Agent APIs per instance.
    pub agent_apis: usize,
    /// Consumers.
    pub consumers: usize,
    /// Domains.
    pub domains: usize,
    /// Services.
    pub services: usize,
    /// Distinct plugins installed; `None` on serverless (N/A).
    pub plugins: Option<usize>,
    /// Uploaded custom plugins; `None` on serverless (N/A).
    pub custom_plugins_uploaded: Option<usize>,
}

impl QuotaLimits {
    /// The limit of `quota`; `None` when it does not apply.
    pub fn get(&self, quota: Quota) -> Option<usize> {
        match quota {
            Quota::ModelApis => Some(self.model_apis),
            Quota::Routes => Some(self.routes),
            Quota::McpServers => Some(self.mcp_servers),
            Quota::ToolsPerMcpServer => Some(self.tools_per_mcp_server),
            Quota::AgentApis => Some(self.agent_apis),
            Quota::Consumers => Some(self.consumers),
            Quota::Domains => Some(self.domains),
            Quota::Services => Some(self.services),
            Quota::Plugins => self.plugins,
            Quota::CustomPluginsUploaded => self.custom_plugins_uploaded,
        }
    }

    /// Sets the limit of `quota` (ignored for a quota that does not apply).
    fn set(&mut self, quota: Quota, value: usize) {
        let slot = match quota {
            Quota::ModelApis => &mut self.model_apis,
            Quota::Routes => &mut self.routes,
            Quota::McpServers => &mut self.mcp_servers,
            Quota::ToolsPerMcpServer => &mut self.tools_per_mcp_server,
            Quota::AgentApis => &mut self.agent_apis,
            Quota::Consumers => &mut self.consumers,
            Quota::Domains => &mut self.domains,
            Quota::Services => &mut self.services,
            Quota::Plugins => match &mut self.plugins {
                Some(v) => v,
                None => return,
            },
            Quota::CustomPluginsUploaded => match &mut self.custom_plugins_uploaded {
                Some(v) => v,
                None => return,
            },
        };
        *slot = value;
    }
}

/// The "Default quota" column for `edition` and the size of `instance_type`. Serverless has a
/// single column whatever the type.
pub fn default_limits(edition: Edition, instance_type: InstanceType) -> QuotaLimits {
    match (edition, instance_type.size()) {
        (Edition::Serverless, _) => QuotaLimits {
            model_apis: 50,
            routes: 100,
            mcp_servers: 50,
            tools_per_mcp_server: 50,
            agent_apis: 50,
            consumers: 20,
            domains: 20,
            services: 50,
            plugins: None,
            custom_plugins_uploaded: None,
        },
        (Edition::Dedicated, Size::Small) => QuotaLimits {
            model_apis: 100,
            routes: 200,
            mcp_servers: 100,
            tools_per_mcp_server: 100,
            agent_apis: 100,
            consumers: 50,
            domains: 50,
            services: 200,
            plugins: Some(5),
            custom_plugins_uploaded: Some(20),
        },
        (Edition::Dedicated, Size::Medium | Size::Large) => QuotaLimits {
            model_apis: 100,
            routes: 500,
            mcp_servers: 200,
            tools_per_mcp_server: 100,
            agent_apis: 100,
            consumers: 200,
            domains: 200,
            services: 500,
            plugins: Some(10),
            custom_plugins_uploaded: Some(20),
        },
    }
}

/// The "Maximum quota" column for `edition` and the size of `instance_type`: the highest value
/// `instance.quotas` may set.
pub fn max_limits(edition: Edition, instance_type: InstanceType) -> QuotaLimits {
    match (edition, instance_type.size()) {
        (Edition::Serverless, _) => QuotaLimits {
            model_apis: 100,
            routes: 200,
            mcp_servers: 100,
            tools_per_mcp_server: 100,
            agent_apis: 100,
            consumers: 50,
            domains: 50,
            services: 100,
            plugins: None,
            custom_plugins_uploaded: None,
        },
        (Edition::Dedicated, Size::Small) => QuotaLimits {
            model_apis: 500,
            routes: 1000,
            mcp_servers: 500,
            tools_per_mcp_server: 1000,
            agent_apis: 500,
            consumers: 100,
            domains: 100,
            services: 1000,
            plugins: Some(10),
            custom_plugins_uploaded: Some(50),
        },
        (Edition::Dedicated, Size::Medium | Size::Large) => QuotaLimits {
            model_apis: 500,
            routes: 2000,
            mcp_servers: 1000,
            tools_per_mcp_server: 1000,
            agent_apis: 500,
            consumers: 500,
            domains: 500,
            services: 2000,
            plugins: Some(20),
            custom_plugins_uploaded: Some(50),
        },
    }
}

/// The limits in force for one instance: the default column with `instance.quotas` applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// The instance's edition.
    pub edition: Edition,
    /// The instance's type (irrelevant to the numbers on serverless).
    pub instance_type: InstanceType,
    /// What is enforced.
    pub limits: QuotaLimits,
    /// How far `instance.quotas` may raise each limit.
    pub max: QuotaLimits,
}

impl Quotas {
    /// Applies `instance.quotas` to the defaults of the instance's edition and type. An override
    /// above the maximum, or one for a quota that does not apply to the edition, is returned as
    /// an issue (path `instance.quotas.NAME`, no line) and the limit is left at the maximum, or
    /// not applied, so that counting can go on.
    pub fn resolve(instance: &Instance) -> (Quotas, Vec<Issue>) {
        let (edition, ty) = (instance.edition, instance.instance_type);
        let mut quotas = Quotas {
            edition,
            instance_type: ty,
            limits: default_limits(edition, ty),
            max: max_limits(edition, ty),
        };
        let mut issues = Vec::new();
        let o = &instance.quotas;
        let overrides = [
            (Quota::ModelApis, o.model_apis),
            (Quota::Routes, o.routes),
            (Quota::McpServers, o.mcp_servers),
            (Quota::ToolsPerMcpServer, o.tools_per_mcp_server),
            (Quota::AgentApis, o.agent_apis),
            (Quota::Consumers, o.consumers),
            (Quota::Domains, o.domains),
            (Quota::Services, o.services),
            (Quota::Plugins, o.plugins),
        ];
        for (quota, value) in overrides {
            let Some(value) = value else { continue };
            let name = quota.as_str();
            let path = format!("instance.quotas.{name}");
            match quotas.max.get(quota) {
                None => issues.push(Issue {
                    line: None,
                    path,
                    message: format!(
                        "the {name} quota does not apply to the {} edition",
                        edition.as_str()
                    ),
                }),
                Some(max) if value > max => {
                    issues.push(Issue {
                        line: None,
                        path,
                        message: format!(
                            "{name} quota override {value} is above the maximum of {max} for {}",
                            quotas.describe()
                        ),
                    });
                    quotas.limits.set(quota, max);
                }
                Some(_) => quotas.limits.set(quota, value),
            }
        }
        (quotas, issues)
    }

    /// `dedicated aigw.small.x1`, or `serverless` (which has no instance types).
    pub fn describe(&self) -> String {
        match self.edition {
            Edition::Serverless => "serverless".to_string(),
            Edition::Dedicated => format!("dedicated {}", self.instance_type),
        }
    }

    /// Checks `count` resources against `quota`. Returns the issue to report (at `path`, no line)
    /// when the count is over the limit, `None` when it fits or the quota does not apply. The
    /// message names the count, the limit, the edition and type, and how far the limit can go:
    /// `quota exceeded: routes: 201 configured, limit 200 for dedicated aigw.small.x1 (raise
    /// instance.quotas.routes up to 1000)`.
    pub fn check_count(&self, quota: Quota, count: usize, path: &str) -> Option<Issue> {
        let limit = self.limits.get(quota)?;
        if count <= limit {
            return None;
        }
        let name = quota.as_str();
        let max = self.max.get(quota).unwrap_or(limit);
        let hint = if limit < max {
            format!("raise instance.quotas.{name} up to {max}")
        } else {
            let bigger = (self.edition == Edition::Dedicated
                && self.instance_type.size() == Size::Small)
                .then(|| max_limits(Edition::Dedicated, InstanceType::MediumX1).get(quota))
                .flatten()
                .filter(|&m| m > max);
            match bigger {
                Some(m) => format!("the maximum for this type; aigw.medium.* allows up to {m}"),
                None => "the maximum for this edition".to_string(),
            }
        };
        Some(Issue {
            line: None,
            path: path.to_string(),
            message: format!(
                "quota exceeded: {name}: {count} configured, limit {limit} for {} ({hint})",
                self.describe()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QuotaOverrides;

    fn quotas(edition: Edition, ty: InstanceType, o: QuotaOverrides) -> (Quotas, Vec<Issue>) {
        Quotas::resolve(&Instance {
            edition,
            instance_type: ty,
            quotas: o,
            ..Instance::default()
        })
    }

    /// The eight counted quotas of a limits row, in table order.
    fn counts(l: &QuotaLimits) -> [usize; 8] {
        [
            l.model_apis,
            l.routes,
            l.mcp_servers,
            l.tools_per_mcp_server,
            l.agent_apis,
            l.consumers,
            l.domains,
            l.services,
        ]
    }

    #[test]
    fn table_values() {
        let s = default_limits(Edition::Serverless, InstanceType::LargeX4);
        assert_eq!(counts(&s), [50, 100, 50, 50, 50, 20, 20, 50]);
        assert_eq!((s.plugins, s.custom_plugins_uploaded), (None, None));
        let m = max_limits(Edition::Serverless, InstanceType::SmallX1);
        assert_eq!(counts(&m), [100, 200, 100, 100, 100, 50, 50, 100]);

        let d = default_limits(Edition::Dedicated, InstanceType::SmallX4);
        assert_eq!(counts(&d), [100, 200, 100, 100, 100, 50, 50, 200]);
        assert_eq!((d.plugins, d.custom_plugins_uploaded), (Some(5), Some(20)));
        let d = max_limits(Edition::Dedicated, InstanceType::SmallX2);
        assert_eq!(counts(&d), [500, 1000, 500, 1000, 500, 100, 100, 1000]);
        assert_eq!((d.plugins, d.custom_plugins_uploaded), (Some(10), Some(50)));

        for ty in [
            InstanceType::MediumX1,
            InstanceType::LargeX1,
            InstanceType::LargeX4,
        ] {
            let d = default_limits(Edition::Dedicated, ty);
            assert_eq!(counts(&d), [100, 500, 200, 100, 100, 200, 200, 500]);
            assert_eq!((d.plugins, d.custom_plugins_uploaded), (Some(10), Some(20)));
            let d = max_limits(Edition::Dedicated, ty);
            assert_eq!(counts(&d), [500, 2000, 1000, 1000, 500, 500, 500, 2000]);
            assert_eq!((d.plugins, d.custom_plugins_uploaded), (Some(20), Some(50)));
        }
    }

    #[test]
    fn capacity_table() {
        let got: Vec<_> = InstanceType::ALL
            .iter()
            .map(|t| {
                (
                    t.as_str(),
                    t.qps_target(),
                    t.connection_target(),
                    t.size().as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("aigw.small.x1", 1500, 20000, "small"),
                ("aigw.small.x2", 3000, 40000, "small"),
                ("aigw.small.x4", 6000, 80000, "small"),
                ("aigw.medium.x1", 12000, 160000, "medium"),
                ("aigw.medium.x2", 24000, 320000, "medium"),
                ("aigw.medium.x3", 36000, 480000, "medium"),
                ("aigw.large.x1", 48000, 640000, "large"),
                ("aigw.large.x2", 96000, 1280000, "large"),
                ("aigw.large.x3", 144000, 1920000, "large"),
                ("aigw.large.x4", 192000, 2560000, "large"),
            ]
        );
        for q in Quota::ALL {
            assert_eq!(Quota::from_name(q.as_str()), Some(q));
        }
        for t in InstanceType::ALL {
            // The serde name and as_str agree.
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            assert_eq!(InstanceType::from_name(t.as_str()), Some(t));
        }
    }

    #[test]
    fn counts_against_defaults() {
        let (q, issues) = quotas(
            Edition::Dedicated,
            InstanceType::SmallX1,
            QuotaOverrides::default(),
        );
        assert!(issues.is_empty());
        assert_eq!(q.check_count(Quota::Routes, 200, "routes"), None);
        let issue = q.check_count(Quota::Routes, 201, "routes").unwrap();
        assert_eq!(issue.path, "routes");
        assert_eq!(
            issue.message,
            "quota exceeded: routes: 201 configured, limit 200 for dedicated aigw.small.x1 \
             (raise instance.quotas.routes up to 1000)"
        );
        for (quota, at_limit) in [
            (Quota::ModelApis, 100),
            (Quota::McpServers, 100),
            (Quota::ToolsPerMcpServer, 100),
            (Quota::AgentApis, 100),
        ] {
            assert_eq!(q.check_count(quota, at_limit, "x"), None, "{quota:?}");
            assert!(
                q.check_count(quota, at_limit + 1, "x").is_some(),
                "{quota:?}"
            );
        }
        let issue = q
            .check_count(Quota::McpServers, 101, "mcp_servers")
            .unwrap();
        assert_eq!(
            issue.message,
            "quota exceeded: mcp_servers: 101 configured, limit 100 for dedicated aigw.small.x1 \
             (raise instance.quotas.mcp_servers up to 500)"
        );
    }

    #[test]
    fn serverless_has_no_plugin_quota() {
        let (q, _) = quotas(
            Edition::Serverless,
            InstanceType::SmallX1,
            QuotaOverrides::default(),
        );
        assert_eq!(q.check_count(Quota::Plugins, 1000, "plugins"), None);
        let issue = q
            .check_count(Quota::ToolsPerMcpServer, 51, "mcp_servers[0].tools")
            .unwrap();
        assert_eq!(
            issue.message,
            "quota exceeded: tools_per_mcp_server: 51 configured, limit 50 for serverless \
             (raise instance.quotas.tools_per_mcp_server up to 100)"
        );
        let o = QuotaOverrides {
            plugins: Some(3),
            ..Default::default()
        };
        let (_, issues) = quotas(Edition::Serverless, InstanceType::SmallX1, o);
        assert_eq!(issues[0].path, "instance.quotas.plugins");
        assert_eq!(
            issues[0].message,
            "the plugins quota does not apply to the serverless edition"
        );
    }

    #[test]
    fn overrides_raise_lower_and_stop_at_max() {
        let o = QuotaOverrides {
            routes: Some(1000),
            consumers: Some(3),
            agent_apis: Some(501),
            ..Default::default()
        };
        let (q, issues) = quotas(Edition::Dedicated, InstanceType::SmallX2, o);
        assert_eq!(q.limits.routes, 1000);
        assert_eq!(q.limits.consumers, 3);
        assert_eq!(q.limits.agent_apis, 500);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path, "instance.quotas.agent_apis");
        assert_eq!(
            issues[0].message,
            "agent_apis quota override 501 is above the maximum of 500 for dedicated aigw.small.x2"
        );
        assert_eq!(
            q.check_count(Quota::Routes, 1001, "routes")
                .unwrap()
                .message,
            "quota exceeded: routes: 1001 configured, limit 1000 for dedicated aigw.small.x2 \
             (the maximum for this type; aigw.medium.* allows up to 2000)"
        );
        assert_eq!(
            q.check_count(Quota::Consumers, 4, "consumers")
                .unwrap()
                .message,
            "quota exceeded: consumers: 4 configured, limit 3 for dedicated aigw.small.x2 \
             (raise instance.quotas.consumers up to 100)"
        );
        let o = QuotaOverrides {
            model_apis: Some(500),
            ..Default::default()
        };
        let (q, _) = quotas(Edition::Dedicated, InstanceType::LargeX2, o);
        assert_eq!(
            q.check_count(Quota::ModelApis, 501, "model_apis")
                .unwrap()
                .message,
            "quota exceeded: model_apis: 501 configured, limit 500 for dedicated aigw.large.x2 \
             (the maximum for this edition)"
        );
    }
}
