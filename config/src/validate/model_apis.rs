//! `model_apis[]`: names, base paths, providers and their URLs, and policies.

use std::collections::{HashMap, HashSet};

use super::{check_names, check_nonzero, known, Ctx};
use crate::model::{Consumer, Domain};
use crate::model_api::*;

/// Checks every model API.
pub(super) fn check(cx: &mut Ctx, apis: &[ModelApi], domains: &[Domain], consumers: &[Consumer]) {
    check_names(
        cx,
        "model_apis",
        "model API",
        apis.iter().map(|a| a.name.as_str()),
    );
    let domain_names: HashSet<&str> = domains.iter().map(|d| d.name.as_str()).collect();
    let consumer_names: HashSet<&str> = consumers.iter().map(|c| c.name.as_str()).collect();
    let mut paths: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, api) in apis.iter().enumerate() {
        let p = format!("model_apis[{i}]");
        if let Err(why) = check_base_path(&api.base_path) {
            cx.err(
                format!("{p}.base_path"),
                format!("base_path `{}` {why}", api.base_path),
            );
        }
        for (j, d) in api.domains.iter().enumerate() {
            if !domain_names.contains(d.as_str()) {
                cx.err(
                    format!("{p}.domains[{j}]"),
                    format!("unknown domain `{d}` ({})", known("domains", &domain_names)),
                );
            }
        }
        let hosts: Vec<&str> = if api.domains.is_empty() {
            vec![""]
        } else {
            api.domains.iter().map(String::as_str).collect()
        };
        for host in hosts {
            if let Some(&k) = paths.get(&(host, api.base_path.as_str())) {
                let at = cx.at(&format!("model_apis[{k}]"));
                cx.err(
                    format!("{p}.base_path"),
                    format!(
                        "model_apis[{k}]{at} already serves `{}` on the same hosts",
                        api.base_path
                    ),
                );
            } else {
                paths.insert((host, api.base_path.as_str()), i);
            }
        }
        check_providers(cx, &p, &api.providers);
        check_policies(cx, &p, api, &consumer_names);
    }
}

fn check_base_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("must start with `/`".into());
    }
    if path.len() > 1 && path.ends_with('/') {
        return Err("must not end with `/`".into());
    }
    if path.contains(|c: char| c.is_whitespace() || c.is_control() || c == '?' || c == '#') {
        return Err("may not contain whitespace, control characters, `?` or `#`".into());
    }
    Ok(())
}

fn check_providers(cx: &mut Ctx, p: &str, providers: &[Provider]) {
    if providers.is_empty() {
        cx.err(
            format!("{p}.providers"),
            "a model API needs at least one provider",
        );
    }
    check_names(
        cx,
        &format!("{p}.providers"),
        "provider",
        providers.iter().map(|pr| pr.name.as_str()),
    );
    for (j, pr) in providers.iter().enumerate() {
        let pp = format!("{p}.providers[{j}]");
        match (pr.kind, &pr.base_url) {
            (ProviderKind::Mock, Some(_)) => cx.err(
                format!("{pp}.base_url"),
                "a `mock` provider answers in-process and takes no base_url",
            ),
            (ProviderKind::Azure, None) => cx.err(
                format!("{pp}.base_url"),
                "an `azure` provider needs base_url, e.g. https://RESOURCE.openai.azure.com",
            ),
            _ => {}
        }
        let url = pr.effective_base_url();
        let base = url.and_then(|url| match BaseUrl::parse(url) {
            Err(why) => {
                cx.err(format!("{pp}.base_url"), format!("base_url `{url}` {why}"));
                None
            }
            Ok(u) => Some(u),
        });
        if let Some(tls) = &pr.tls {
            let tp = format!("{pp}.tls");
            match (pr.kind, &base) {
                (ProviderKind::Mock, _) => {
                    cx.err(tp, "a `mock` provider answers in-process and takes no tls")
                }
                (_, Some(b)) if b.tls => super::check_tls(cx, &tp, tls),
                (_, Some(_)) => cx.err(
                    tp,
                    format!(
                        "tls applies to https:// base URLs, and base_url `{}` is http://",
                        url.unwrap_or_default()
                    ),
                ),
                (_, None) => {}
            }
        }
        match (pr.kind, &pr.api_version) {
            (ProviderKind::Azure, None) => cx.err(
                format!("{pp}.api_version"),
                "an `azure` provider needs api_version, e.g. `2024-10-21`",
            ),
            (ProviderKind::Azure, Some(v)) if v.is_empty() || !v.bytes().all(is_query_safe) => cx
                .err(
                    format!("{pp}.api_version"),
                    format!("api_version `{v}` may only contain letters, digits, `-`, `.` and `_`"),
                ),
            (ProviderKind::Azure, Some(_)) | (_, None) => {}
            (_, Some(_)) => cx.err(
                format!("{pp}.api_version"),
                "api_version applies to `azure` providers only",
            ),
        }
        for (k, key) in pr.api_keys.iter().enumerate() {
            if key.0.is_empty()
                || key
                    .0
                    .contains(|c: char| c.is_whitespace() || c.is_control())
            {
                cx.err(
                    format!("{pp}.api_keys[{k}]"),
                    "API key is empty or contains whitespace or control characters",
                );
            }
        }
        let mut seen = HashSet::new();
        for (client, upstream) in &pr.models.0 {
            let mp = format!("{pp}.models");
            if client.is_empty() || upstream.is_empty() {
                cx.err(mp, "model names may not be empty");
            } else if client.len() > 256 || client.contains(|c: char| c.is_control()) {
                cx.err(
                    mp,
                    format!("model name `{client}` is too long or has control characters"),
                );
            } else if !seen.insert(client.as_str()) {
                cx.err(mp, format!("model `{client}` is listed twice"));
            }
        }
        if pr.weight == 0 {
            cx.err(format!("{pp}.weight"), "weight must be at least 1");
        }
        check_nonzero(cx, format!("{pp}.connect_timeout"), pr.connect_timeout);
    }
}

fn is_query_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

fn check_policies(cx: &mut Ctx, p: &str, api: &ModelApi, consumers: &HashSet<&str>) {
    let pol = &api.policies;
    let pp = format!("{p}.policies");
    check_nonzero(cx, format!("{pp}.timeout"), pol.timeout);
    check_nonzero(cx, format!("{pp}.idle_timeout"), pol.idle_timeout);
    if pol.max_body_bytes == 0 {
        cx.err(format!("{pp}.max_body_bytes"), "must be at least 1");
    }
    if pol.retries.max_backoff.get() < pol.retries.backoff.get() {
        cx.err(
            format!("{pp}.retries.max_backoff"),
            "must not be shorter than backoff",
        );
    }
    let mut windows = HashSet::new();
    for (k, l) in pol.token_limits.iter().enumerate() {
        if l.tokens == 0 {
            cx.err(
                format!("{pp}.token_limits[{k}].tokens"),
                "must be at least 1",
            );
        }
        if !windows.insert(l.per) {
            cx.err(
                format!("{pp}.token_limits[{k}].per"),
                "one budget per window: this window is already limited",
            );
        }
    }
    if let Some(c) = &pol.cache {
        check_nonzero(cx, format!("{pp}.cache.ttl"), c.ttl);
        if c.max_entries == 0 || c.max_bytes == 0 {
            cx.err(
                format!("{pp}.cache"),
                "max_entries and max_bytes must be at least 1",
            );
        }
    }
    let roles = ["system", "developer", "user", "assistant"];
    let prompt_msgs = pol
        .prompt
        .prepend
        .iter()
        .map(|m| ("prepend".to_string(), m))
        .chain(pol.prompt.append.iter().map(|m| ("append".to_string(), m)))
        .chain(pol.prompt.templates.iter().flat_map(|(name, t)| {
            t.messages
                .iter()
                .map(move |m| (format!("templates.{name}.messages"), m))
        }));
    for (where_, m) in prompt_msgs {
        if !roles.contains(&m.role.as_str()) {
            cx.err(
                format!("{pp}.prompt.{where_}"),
                format!("role `{}` is not one of {}", m.role, roles.join(", ")),
            );
        }
    }
    for (name, t) in &pol.prompt.templates {
        if t.messages.is_empty() {
            cx.err(
                format!("{pp}.prompt.templates.{name}"),
                "a template needs messages",
            );
        }
    }
    if let Some(g) = &pol.guard {
        let gp = format!("{pp}.guard");
        if g.keywords.is_empty() && g.patterns.is_empty() {
            cx.err(gp.clone(), "a guard needs keywords or patterns");
        }
        if g.keywords.iter().any(|k| k.trim().is_empty()) {
            cx.err(format!("{gp}.keywords"), "keywords may not be empty");
        }
        for (k, pat) in g.patterns.iter().enumerate() {
            cx.regex(format!("{gp}.patterns[{k}]"), pat);
        }
        let longest = g
            .keywords
            .iter()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(0);
        if g.hold_back < longest {
            cx.err(
                format!("{gp}.hold_back"),
                format!(
                    "hold_back {} is shorter than the longest keyword ({longest} characters): a \
                     keyword split across streamed events would slip through",
                    g.hold_back
                ),
            );
        }
        if !g.input && !g.output {
            cx.err(
                gp,
                "a guard with input and output both false checks nothing",
            );
        }
    }
    let explicit = api.providers.iter().all(|pr| !pr.models.0.is_empty());
    let served: HashSet<&str> = api
        .providers
        .iter()
        .flat_map(|pr| pr.models.0.iter().map(|(c, _)| c.as_str()))
        .collect();
    for (consumer, models) in &pol.consumer_models {
        let cp = format!("{pp}.consumer_models.{consumer}");
        if !consumers.contains(consumer.as_str()) {
            cx.err(
                cp.clone(),
                format!(
                    "unknown consumer `{consumer}` ({})",
                    known("consumers", consumers)
                ),
            );
        }
        for m in models {
            if explicit && !served.contains(m.as_str()) {
                cx.err(
                    cp.clone(),
                    format!("model `{m}` is not served by any provider of this model API"),
                );
            }
        }
    }
}
