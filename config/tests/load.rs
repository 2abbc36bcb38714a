//! Loading: env substitution, YAML parsing errors, defaults, files, display, redaction.

mod common;

use aigw_config::*;
use common::*;

const EXAMPLE: &str = "\
instance:
  workers: 1
admin:
  address: 127.0.0.1:19901
listeners:
  - name: main
    address: 127.0.0.1:18080
services:
  - name: backend
    endpoints: [\"127.0.0.1:9001\"]
routes:
  - name: all
    match: { path_prefix: \"/\" }
    service: backend
";

#[test]
fn the_example_loads_verbatim() {
    let c = load_str(EXAMPLE, "example.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.instance.workers, Workers::Count(1));
    assert_eq!(c.instance.edition, Edition::Dedicated);
    assert_eq!(c.instance.instance_type, InstanceType::SmallX1);
    assert_eq!(c.admin.address, "127.0.0.1:19901");
    assert_eq!(c.listeners[0].name, "main");
    assert_eq!(c.listeners[0].address, "127.0.0.1:18080");
    assert_eq!(c.listeners[0].timeouts, ListenerTimeouts::default());
    assert_eq!(
        c.services[0].endpoints,
        [Endpoint {
            address: "127.0.0.1:9001".into(),
            weight: 1
        }]
    );
    assert_eq!(c.services[0].retries, 2);
    assert_eq!(c.routes[0].matcher.path_prefix.as_deref(), Some("/"));
    assert_eq!(c.routes[0].service, "backend");
}

#[test]
fn an_empty_file_is_all_defaults() {
    for text in ["", "\n", "# nothing here\n", "---\n"] {
        assert_eq!(ok(text), Config::default(), "{text:?}");
    }
    let c = Config::default();
    assert_eq!(c.admin.address, "127.0.0.1:9901");
    assert_eq!(c.instance.workers, Workers::Auto);
    assert_eq!(
        c.instance.shutdown_grace.get(),
        std::time::Duration::from_secs(30)
    );
}

#[test]
fn the_default_config_validates() {
    let c = load_str(DEFAULT_CONFIG, DEFAULT_SOURCE_NAME).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.instance.workers, Workers::Auto);
    assert_eq!(c.admin.address, "127.0.0.1:9901");
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(
        (
            c.listeners[0].name.as_str(),
            c.listeners[0].address.as_str()
        ),
        ("main", "127.0.0.1:8080")
    );
    assert!(c.routes.is_empty() && c.services.is_empty() && c.plugins.is_empty());
}

#[test]
fn env_variables_are_substituted_with_defaults_and_escapes() {
    let c = ok("\
admin:
  address: 127.0.0.1:${ADMIN_PORT}
listeners:
  - name: ${LISTENER_NAME:-main}
    address: ${BIND:-127.0.0.1}:8080
access_log:
  path: \"$${NOT_A_VAR}-${EMPTY:-stderr}\"
consumers:
  - name: team-a
    api_keys: [\"${TEAM_A_KEY}\"]
");
    assert_eq!(c.admin.address, "127.0.0.1:19901");
    assert_eq!(c.listeners[0].name, "main");
    assert_eq!(c.listeners[0].address, "127.0.0.1:8080");
    assert_eq!(c.access_log.unwrap().path, "${NOT_A_VAR}-stderr");
    assert_eq!(c.consumers[0].api_keys[0].0, "sk-team-a-0001");
}

#[test]
fn every_missing_variable_is_reported_with_line_and_path() {
    let got = issues(
        "\
admin:
  address: ${ADMIN_ADDR}
listeners:
  - name: main
    address: 127.0.0.1:${PORT}
consumers:
  - name: a
    api_keys: [\"${KEY_A}\", \"${KEY_B}\"]
",
    );
    let hint = |v: &str| {
        format!(
            "environment variable `{v}` is not set (write `${{{v}:-default}}` to give a default)"
        )
    };
    assert_eq!(
        got,
        [
            (Some(2), "admin.address".to_string(), hint("ADMIN_ADDR")),
            (Some(5), "listeners[0].address".to_string(), hint("PORT")),
            (
                Some(8),
                "consumers[0].api_keys[0]".to_string(),
                hint("KEY_A")
            ),
            (
                Some(8),
                "consumers[0].api_keys[1]".to_string(),
                hint("KEY_B")
            ),
        ]
    );
}

#[test]
fn variables_in_comments_are_ignored() {
    let c = ok("\
# Set ${OPENAI_API_KEY} before starting.
admin:
  address: 127.0.0.1:9901 # or ${SOMETHING_ELSE}
");
    assert_eq!(c.admin.address, "127.0.0.1:9901");
}

#[test]
fn a_value_with_a_line_break_is_refused() {
    assert_one(
        "access_log:\n  path: ${TWO_LINES}\n",
        2,
        "access_log.path",
        "the value of `TWO_LINES` contains a line break, which would shift the lines of the file",
    );
    let (line, path, message) = one("a:\n  b: ${9X}\n");
    assert_eq!((line, path.as_str()), (2, "a.b"));
    assert!(
        message.starts_with("`${9X}` is not a variable reference"),
        "{message}"
    );
}

#[test]
fn unknown_keys_show_line_and_path() {
    assert_one(
        "\
listeners:
  - name: main
    address: 127.0.0.1:8080
routes:
  - name: r
    service: s
    match:
      path_prefx: /v1
",
        8,
        "routes[0].match.path_prefx",
        "unknown field `path_prefx`, expected one of `path_prefix`, `path_exact`, `path_regex`, \
         `methods`, `headers`",
    );
    assert_one(
        "admin:\n  address: 127.0.0.1:1\nlistener: []\n",
        3,
        "listener",
        "unknown field `listener`, expected one of `instance`, `admin`, `listeners`, `domains`, \
         `services`, `routes`, `model_apis`, `consumers`, `plugins`, `access_log`, `compression`",
    );
}

#[test]
fn wrong_types_and_missing_fields_show_line_and_path() {
    assert_one(
        "instance:\n  workers: lots\n",
        2,
        "instance.workers",
        "workers must be `auto` or 1..=1024, not `lots`",
    );
    assert_one(
        "instance:\n  type: aigw.huge.x9\n",
        2,
        "instance.type",
        "unknown variant `aigw.huge.x9`, expected one of `aigw.small.x1`, `aigw.small.x2`, \
         `aigw.small.x4`, `aigw.medium.x1`, `aigw.medium.x2`, `aigw.medium.x3`, `aigw.large.x1`, \
         `aigw.large.x2`, `aigw.large.x3`, `aigw.large.x4`",
    );
    assert_one(
        "listeners:\n  - name: a\n    address: 127.0.0.1:1\n    timeouts: { idle: 5 minutes }\n",
        4,
        "listeners[0].timeouts.idle",
        "unknown duration unit `minutes` in `5 minutes` (use ms, s, m, h or d)",
    );
    assert_one(
        "routes:\n  - name: r\n",
        2,
        "routes[0]",
        "missing field `service`",
    );
}

#[test]
fn yaml_syntax_errors_show_the_line() {
    let (line, _, message) = one("admin:\n  address: 127.0.0.1:1\nroutes: [\n  {name: a\n");
    assert_eq!(line, 5);
    assert_eq!(
        message,
        "did not find expected ',' or '}', while parsing a flow mapping starting on line 4"
    );
    assert_one(
        "admin:\n  address: 127.0.0.1:1\n  bad\n",
        4,
        "admin",
        "could not find expected ':', while scanning a simple key starting on line 3",
    );
}

#[test]
fn a_key_written_twice_is_an_error() {
    assert_one(
        "instance:\n  workers: 1\n  workers: 2\n",
        3,
        "instance.workers",
        "key written twice in the same mapping (first on line 2)",
    );
    // Also inside free-form maps, which serde would silently merge.
    assert_one(
        "plugins:\n  - name: request-headers\n    config:\n      set: { a: '1', a: '2' }\n",
        4,
        "plugins[0].config.set.a",
        "key written twice in the same mapping (first on line 4)",
    );
}

#[test]
fn scope_forms_deserialize() {
    let c = ok("\
services: [{ name: s, endpoints: [\"127.0.0.1:1\"] }]
domains: [{ name: d, hosts: [a.example.com] }]
routes: [{ name: r, service: s }]
plugins:
  - name: cors
  - name: key-auth
    scope: global
  - name: cors
    scope: { route: r }
  - name: cors
    scope:
      domain: d
");
    let scopes: Vec<_> = c.plugins.iter().map(|p| p.scope.clone()).collect();
    assert_eq!(scopes.len(), 4);
    assert_eq!(scopes[2], Scope::Route("r".into()));
    assert_eq!(scopes[3], Scope::Domain("d".into()));
    assert_eq!(scopes[1], Scope::Global);
}

#[test]
fn bad_scopes_are_explained() {
    let at = |scope: &str| one(&format!("plugins:\n  - name: cors\n    scope: {scope}\n"));
    let want = |m: &str| (3, "plugins[0].scope".to_string(), m.to_string());
    assert_eq!(
        at("route"),
        want("scope `route` needs a name: write `{ route: NAME }`")
    );
    assert_eq!(
        at("everywhere"),
        want("unknown scope `everywhere`; expected `global`, `{ route: NAME }`, `{ domain: NAME }` or `{ model_api: NAME }`")
    );
    assert_eq!(
        at("{ host: x }"),
        want("unknown scope `host`; expected `global`, `{ route: NAME }`, `{ domain: NAME }` or `{ model_api: NAME }`")
    );
    assert_eq!(
        at("{ route: a, domain: b }"),
        want("a scope names one route, domain or model API; add another plugins entry for each")
    );
}

#[test]
fn load_file_reads_and_reports_unreadable_files() {
    let dir = std::env::temp_dir().join(format!("aigw-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("aigw.yaml");
    std::fs::write(&file, EXAMPLE).unwrap();
    let c = load_file(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.routes[0].name, "all");

    std::fs::write(&file, "routes:\n  - name: r\n    service: s\n    bad: 1\n").unwrap();
    let e = load_file(&file).unwrap_err();
    assert_eq!(e.source_name, file.display().to_string());
    assert_eq!(e.issues[0].line, Some(4));

    let missing = dir.join("missing.yaml");
    let e = load_file(&missing).unwrap_err();
    assert_eq!(e.issues.len(), 1);
    assert_eq!(e.issues[0].path, "");
    assert!(
        e.issues[0]
            .message
            .starts_with("cannot read the config file: "),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read", missing.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn errors_display_as_file_line_path_message() {
    let e = load(
        "\
services:
  - name: s
    endpoints: []
routes:
  - name: r
    service: nope
",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "aigw.yaml:3: services[0].endpoints: a service needs at least one endpoint\n\
         aigw.yaml:6: routes[0].service: unknown service `nope` (defined services: s)"
    );
    let e = ConfigError {
        source_name: "x.yaml".into(),
        issues: vec![Issue {
            line: None,
            path: "routes".into(),
            message: "m".into(),
        }],
    };
    assert_eq!(e.to_string(), "x.yaml: routes: m");
}

#[test]
fn all_issues_are_collected_in_file_order() {
    let got = issues(
        "\
listeners:
  - name: a
    address: nowhere
  - name: a
    address: 127.0.0.1:8080
routes:
  - name: r
    service: missing
    match: { path_prefix: v1 }
",
    );
    let lines: Vec<_> = got
        .iter()
        .map(|(l, p, _)| (l.unwrap(), p.as_str()))
        .collect();
    assert_eq!(
        lines,
        [
            (3, "listeners[0].address"),
            (4, "listeners[1].name"),
            (8, "routes[0].service"),
            (9, "routes[0].match.path_prefix"),
        ]
    );
}

#[test]
fn validate_config_checks_configs_built_in_code() {
    let mut c = ok(EXAMPLE);
    c.routes[0].service = "gone".into();
    let e = validate_config(c, "admin-api").unwrap_err();
    assert_eq!(
        e.issues,
        [Issue {
            line: None,
            path: "routes[0].service".into(),
            message: "unknown service `gone` (defined services: backend)".into(),
        }]
    );
}

#[test]
fn redacted_json_hides_secrets_and_shows_typed_plugin_config() {
    let c = ok("\
consumers:
  - name: team-a
    api_keys: [\"${TEAM_A_KEY}\"]
    basic_auth: { username: alice, password: hunter2hunter2 }
plugins:
  - name: ip-restriction
    config: { allow: [10.0.0.1, 10.1.2.3/8] }
  - name: rate-limit
    config: { requests: 10 }
");
    let json = c.redacted_json();
    let text = json.to_string();
    assert!(
        !text.contains("sk-team-a-0001") && !text.contains("hunter2"),
        "{text}"
    );
    assert_eq!(json["consumers"][0]["api_keys"][0], "<redacted>");
    assert_eq!(json["consumers"][0]["basic_auth"]["password"], "<redacted>");
    assert_eq!(json["consumers"][0]["basic_auth"]["username"], "alice");
    assert_eq!(json["plugins"][0]["name"], "ip-restriction");
    assert_eq!(
        json["plugins"][0]["config"]["allow"],
        serde_json::json!(["10.0.0.1/32", "10.0.0.0/8"])
    );
    assert_eq!(
        json["plugins"][1]["config"],
        serde_json::json!({ "requests": 10, "per": "1s", "burst": null, "key": "ip", "header": null })
    );
    assert_eq!(json["plugins"][1]["scope"], "global");
    // Serialized plugin settings read back as the same typed settings.
    let yaml = serde_yaml_ng::to_string(&c).unwrap();
    let again =
        load_str_with_env(&yaml, "again", &|_| None).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let typed = |c: &Config| {
        c.plugins
            .iter()
            .map(|p| p.config.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(typed(&again), typed(&c));
}

/// The fenced blocks of docs/config.md, in order: (language, body, text since the previous block).
fn doc_blocks() -> Vec<(String, String, String)> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md"))
        .expect("docs/config.md is readable");
    let mut blocks = Vec::new();
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("```") {
        let before = rest[..start].to_string();
        let after = &rest[start + 3..];
        let (lang, body) = after.split_once('\n').expect("a fence line");
        let end = body.find("```").expect("closed block");
        blocks.push((lang.to_string(), body[..end].to_string(), before));
        rest = &body[end + 3..];
    }
    blocks
}

#[test]
fn the_examples_in_docs_config_md_load_or_fail_as_shown() {
    let blocks = doc_blocks();
    let env = |name: &str| match name {
        "TEAM_A_KEY" => Some("sk-a".to_string()),
        "OPS_PASSWORD" => Some("pw".to_string()),
        _ => None,
    };
    let yaml: Vec<&String> = blocks
        .iter()
        .filter(|b| b.0 == "yaml")
        .map(|b| &b.1)
        .collect();
    assert!(yaml.len() >= 5, "found {} yaml blocks", yaml.len());
    // The smallest file is the required example; the default is DEFAULT_CONFIG.
    assert_eq!(yaml[0].as_str(), EXAMPLE);
    assert!(
        DEFAULT_CONFIG.ends_with(yaml[1].as_str()),
        "docs show DEFAULT_CONFIG:\n{}",
        yaml[1]
    );
    for (i, (lang, body, _)) in blocks.iter().enumerate() {
        if lang != "yaml" {
            continue;
        }
        let result = load_str_with_env(body, "aigw.yaml", &env);
        match blocks.get(i + 1) {
            Some((next_lang, shown, between))
                if next_lang.is_empty() && between.contains("aigw says:") =>
            {
                let e = result.expect_err("the docs show this file failing");
                assert_eq!(e.to_string(), shown.trim_end());
            }
            _ => {
                if let Err(e) = result {
                    panic!("{e}\n{body}");
                }
            }
        }
    }
    let full = load_str_with_env(yaml.last().unwrap(), "docs full example", &env)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(full.plugins.len(), 6);
    assert_eq!(full.routes[0].matcher.methods, ["POST"]);
}

#[test]
fn validate_config_accepts_typed_plugin_settings_built_in_code() {
    use aigw_config::plugins::{PluginConfig, RateLimit};
    let mut c = ok(EXAMPLE);
    let mut limit: RateLimit =
        serde_json::from_value(serde_json::json!({ "requests": 5 })).unwrap();
    c.plugins.push(PluginSpec {
        name: "rate-limit".into(),
        scope: Scope::Route("all".into()),
        config: Some(PluginConfig::RateLimit(limit.clone())),
        config_raw: None,
    });
    let checked = validate_config(c.clone(), "code").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        checked.plugins[0].config,
        Some(PluginConfig::RateLimit(limit.clone()))
    );
    // Validating a validated config changes nothing.
    assert_eq!(validate_config(checked.clone(), "again").unwrap(), checked);

    limit.requests = 0;
    c.plugins[0].config = Some(PluginConfig::RateLimit(limit));
    let e = validate_config(c, "code").unwrap_err();
    assert_eq!(
        e.to_string(),
        "code: plugins[0].config.requests: requests must be at least 1"
    );
}

/// Texts that would make the YAML deserializer take quadratic time or unbounded memory are
/// refused before it sees them, with the line and path where the limit was crossed.
#[test]
fn alias_bombs_and_deep_nesting_are_refused() {
    // A 25 KB file whose aliases would build 25 million strings (2.5 GB, 20 s before).
    let bomb = format!(
        "plugins:\n  - name: cors\n    config:\n      allow_origins: &a [{}]\n      x: [{}]\n",
        vec!["x"; 5000].join(","),
        vec!["*a"; 5000].join(",")
    );
    let (line, path, message) = one(&bomb);
    assert_eq!((line, path.as_str()), (5, "plugins[0].config.x[200]"));
    assert!(
        message.starts_with("aliases (`*name`) expand this file by more than 1000000 nodes"),
        "{message}"
    );
    let deep = format!("routes: {}{}\n", "[".repeat(50_000), "]".repeat(50_000));
    let (line, _, message) = one(&deep);
    assert_eq!(line, 1);
    assert!(message.contains("nested more than 128 deep"), "{message}");
}

/// Every missing variable of a file with very many is reported, each with its path.
#[test]
fn many_missing_variables_are_each_located() {
    let text = format!("consumers: [{}]\n", vec!["\"${NOPE}\""; 20_000].join(", "));
    let all = issues(&text);
    assert_eq!(all.len(), 20_000);
    assert_eq!(all[19_999].1, "consumers[19999]");
}
