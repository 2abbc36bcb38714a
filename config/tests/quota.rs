//! Quotas enforced on whole config files, per edition and instance type, with overrides.

mod common;

use common::*;

/// `instance:` on lines 1-N as given, then one service and `routes` routes to it.
fn with_routes(instance: &str, routes: usize) -> String {
    let mut y =
        format!("instance:\n{instance}services:\n  - name: s\n    endpoints: [\"a:1\"]\nroutes:\n");
    for i in 0..routes {
        y.push_str(&format!("  - {{ name: r{i}, service: s }}\n"));
    }
    y
}

#[test]
fn routes_over_the_default_of_a_small_dedicated_instance() {
    ok(&with_routes("  type: aigw.small.x1\n", 200));
    assert_one(
        &with_routes("  type: aigw.small.x1\n", 201),
        6,
        "routes",
        "quota exceeded: routes: 201 configured, limit 200 for dedicated aigw.small.x1 \
         (raise instance.quotas.routes up to 1000)",
    );
    // Medium and large share the bigger column.
    ok(&with_routes("  type: aigw.medium.x2\n", 500));
    assert_one(
        &with_routes("  type: aigw.large.x4\n", 501),
        6,
        "routes",
        "quota exceeded: routes: 501 configured, limit 500 for dedicated aigw.large.x4 \
         (raise instance.quotas.routes up to 2000)",
    );
}

#[test]
fn overrides_raise_lower_and_stop_at_the_maximum() {
    ok(&with_routes("  quotas:\n    routes: 300\n", 300));
    assert_one(
        &with_routes("  quotas:\n    routes: 2\n", 3),
        7,
        "routes",
        "quota exceeded: routes: 3 configured, limit 2 for dedicated aigw.small.x1 \
         (raise instance.quotas.routes up to 1000)",
    );
    assert_one(
        &with_routes("  quotas:\n    routes: 1001\n", 1),
        3,
        "instance.quotas.routes",
        "routes quota override 1001 is above the maximum of 1000 for dedicated aigw.small.x1",
    );
    ok(&with_routes(
        "  type: aigw.medium.x1\n  quotas: { routes: 2000 }\n",
        1,
    ));
}

#[test]
fn serverless_uses_its_own_columns() {
    assert_one(
        &with_routes("  edition: serverless\n", 101),
        6,
        "routes",
        "quota exceeded: routes: 101 configured, limit 100 for serverless \
         (raise instance.quotas.routes up to 200)",
    );
    let mut consumers =
        String::from("instance: { edition: serverless, quotas: { consumers: 50 } }\nconsumers:\n");
    for i in 0..51 {
        consumers.push_str(&format!("  - {{ name: c{i} }}\n"));
    }
    assert_one(
        &consumers,
        2,
        "consumers",
        "quota exceeded: consumers: 51 configured, limit 50 for serverless (the maximum for this edition)",
    );
    assert_one(
        "instance:\n  edition: serverless\n  quotas:\n    plugins: 5\n",
        4,
        "instance.quotas.plugins",
        "the plugins quota does not apply to the serverless edition",
    );
}

#[test]
fn services_domains_and_consumers_are_counted() {
    let mut y = String::from(
        "instance: { quotas: { services: 1, domains: 1, consumers: 1 } }\nservices:\n",
    );
    y.push_str("  - { name: a, endpoints: [\"a:1\"] }\n  - { name: b, endpoints: [\"b:1\"] }\n");
    y.push_str("domains:\n  - { name: a, hosts: [a.com] }\n  - { name: b, hosts: [b.com] }\n");
    y.push_str("consumers:\n  - { name: a }\n  - { name: b }\n");
    let got: Vec<_> = issues(&y)
        .into_iter()
        .map(|(l, p, m)| (l.unwrap(), p, m))
        .collect();
    let quota = |q: &str, max: usize| {
        format!(
            "quota exceeded: {q}: 2 configured, limit 1 for dedicated aigw.small.x1 \
             (raise instance.quotas.{q} up to {max})"
        )
    };
    assert_eq!(
        got,
        [
            (2, "services".to_string(), quota("services", 1000)),
            (5, "domains".to_string(), quota("domains", 100)),
            (8, "consumers".to_string(), quota("consumers", 100)),
        ]
    );
}

#[test]
fn plugins_count_distinct_names() {
    // One route to scope plugins on, so that the same plugin can appear twice.
    let base = "services: [{ name: s, endpoints: [\"a:1\"] }]\nroutes: [{ name: r, service: s }]\nplugins:\n";
    let entries = [
        "  - { name: cors }\n  - { name: cors, scope: { route: r } }\n",
        "  - { name: ip-restriction }\n",
        "  - { name: request-headers }\n",
        "  - { name: response-headers }\n",
        "  - { name: key-auth }\n",
    ];
    let five = format!("{base}{}", entries.concat());
    ok(&five); // six entries, five distinct plugins: the small default
    let six = format!("{five}  - {{ name: basic-auth }}\n");
    assert_one(
        &six,
        3,
        "plugins",
        "quota exceeded: plugins: 6 configured, limit 5 for dedicated aigw.small.x1 \
         (raise instance.quotas.plugins up to 10)",
    );
    ok(&format!("instance: {{ type: aigw.medium.x1 }}\n{six}"));
    ok(&format!("instance: {{ quotas: {{ plugins: 6 }} }}\n{six}"));
}
