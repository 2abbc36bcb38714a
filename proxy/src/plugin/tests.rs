//! Plugin tests: each plugin is built from its config struct and run on parsed request heads;
//! the assertions are what a client or an upstream would see (status, error code, headers,
//! the head that goes upstream).

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use aigw_config::plugins::{self as config, PluginConfig, RateLimitKey};
use aigw_config::{BasicCredential, Consumer, DurationStr, PluginSpec, Scope, Secret};

use super::*;
use crate::http::head::{parse_request, HeadLimits};

const LIMITS: HeadLimits = HeadLimits {
    max_header_bytes: 64 * 1024,
    max_uri_bytes: 8192,
};

/// A request head from a request line and header lines (`Host: h` is added).
fn req(line: &str, headers: &[&str]) -> RequestHead {
    let mut raw = format!("{line} HTTP/1.1\r\nHost: h\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str("\r\n");
    let (parsed, _) = parse_request(raw.as_bytes(), LIMITS)
        .expect("valid head")
        .expect("complete head");
    parsed.head
}

fn ctx_from(ip: &str) -> RequestCtx {
    RequestCtx::new("req-1".into(), ip.parse().expect("ip"), "http")
}

fn ctx() -> RequestCtx {
    ctx_from("10.0.0.1")
}

fn respond(d: Decision) -> LocalResponse {
    match d {
        Decision::Respond(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn assert_continue(d: Decision) {
    assert!(
        matches!(d, Decision::Continue),
        "expected Continue, got {d:?}"
    );
}

/// The `error.code` of a JSON error response, checking the rest of its shape on the way.
fn code(r: &LocalResponse) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json body");
    assert_eq!(v["error"]["request_id"], "req-1");
    assert_eq!(
        r.head.headers.get_str("content-type"),
        Some("application/json")
    );
    v["error"]["code"].as_str().expect("code").to_owned()
}

fn hdr<'a>(h: &'a crate::http::Headers, name: &str) -> Option<&'a str> {
    h.get_str(name)
}

fn consumer(name: &str, keys: &[&str], basic: Option<(&str, &str)>) -> Consumer {
    Consumer {
        name: name.into(),
        api_keys: keys.iter().map(|k| Secret((*k).into())).collect(),
        basic_auth: basic.map(|(u, p)| BasicCredential {
            username: u.into(),
            password: Secret(p.into()),
        }),
    }
}

fn table() -> Rc<ConsumerTable> {
    Rc::new(ConsumerTable::new(&[
        consumer(
            "alice",
            &["alice-key", "alice+key/2"],
            Some(("alice", "s3cret:with:colons")),
        ),
        consumer("bob", &["bob-key"], None),
        consumer("carol", &[], Some(("carol", "pw"))),
        consumer("anonymous", &["anon-key"], None),
    ]))
}

mod consumers {
    use super::*;
    use crate::plugin::consumers::ct_eq;

    #[test]
    fn constant_time_eq_is_plain_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn finds_consumers_by_key_and_basic_credential() {
        let t = table();
        assert_eq!(t.consumer_for_key(b"alice+key/2").as_deref(), Some("alice"));
        assert_eq!(t.consumer_for_key(b"bob-key").as_deref(), Some("bob"));
        assert_eq!(t.consumer_for_key(b"bob-ke").as_deref(), None);
        assert_eq!(t.consumer_for_key(b"").as_deref(), None);
        assert_eq!(t.verify_basic("carol", b"pw").as_deref(), Some("carol"));
        assert_eq!(t.verify_basic("carol", b"PW").as_deref(), None);
        assert_eq!(t.verify_basic("bob", b"").as_deref(), None);
        let names: Vec<&str> = t.names().iter().map(|n| &**n).collect();
        assert_eq!(names, ["alice", "bob", "carol", "anonymous"]);
        assert!(t.contains("carol") && !t.contains("dave"));
    }

    #[test]
    fn debug_output_hides_secrets() {
        let shown = format!("{:?}", table());
        assert!(
            shown.contains("alice") && !shown.contains("alice-key") && !shown.contains("s3cret")
        );
    }
}

mod key_auth {
    use super::*;
    use crate::plugin::key_auth::{remove_query_param, KeyAuth};

    fn plugin(consumers: &[&str]) -> KeyAuth {
        let c = config::KeyAuth {
            consumers: consumers.iter().map(|s| (*s).into()).collect(),
            header: Some("x-gw-key".into()),
            query: Some("api_key".into()),
        };
        KeyAuth::new(&c, table())
    }

    /// Runs the plugin; on success returns the consumer and the head as it goes upstream.
    fn pass(p: &KeyAuth, mut r: RequestHead) -> (String, RequestHead) {
        let mut c = ctx();
        assert_continue(p.request_headers(&mut c, &mut r));
        (c.consumer.expect("consumer set").to_string(), r)
    }

    #[test]
    fn bearer_key_is_accepted_and_stripped() {
        let r = req(
            "GET /v1/chat",
            &["authorization: bEaReR  alice-key ", "x-keep: 1"],
        );
        let (who, up) = pass(&plugin(&[]), r);
        assert_eq!(who, "alice");
        assert!(!up.headers.contains("authorization"));
        assert_eq!(hdr(&up.headers, "x-keep"), Some("1"));
    }

    #[test]
    fn x_api_key_custom_header_and_query_are_accepted_and_stripped() {
        let (who, up) = pass(&plugin(&[]), req("GET /x", &["X-Api-Key: bob-key"]));
        assert_eq!(
            (who.as_str(), up.headers.contains("x-api-key")),
            ("bob", false)
        );
        let (who, up) = pass(&plugin(&[]), req("GET /x", &["X-GW-Key: bob-key"]));
        assert_eq!(
            (who.as_str(), up.headers.contains("x-gw-key")),
            ("bob", false)
        );
        let (who, up) = pass(&plugin(&[]), req("GET /x?api_key=alice-key&a=1", &[]));
        assert_eq!((who.as_str(), &up.uri[..]), ("alice", &b"/x?a=1"[..]));
    }

    #[test]
    fn query_key_is_percent_decoded_and_removed_keeping_other_params() {
        let (who, up) = pass(
            &plugin(&[]),
            req("GET /x?a=1&api_key=alice%2Bkey%2f2&b=2", &[]),
        );
        assert_eq!(who, "alice");
        assert_eq!(&up.uri[..], b"/x?a=1&b=2");
        // An unencoded `+` is the key's own `+`.
        let (who, up) = pass(&plugin(&[]), req("GET /x?api_key=alice+key/2", &[]));
        assert_eq!((who.as_str(), &up.uri[..]), ("alice", &b"/x"[..]));
    }

    #[test]
    fn bearer_wins_over_other_places_and_only_its_carrier_is_removed() {
        let r = req(
            "GET /x?api_key=alice-key",
            &["Authorization: Bearer bob-key", "x-api-key: alice-key"],
        );
        let (who, up) = pass(&plugin(&[]), r);
        assert_eq!(who, "bob");
        assert!(!up.headers.contains("authorization"));
        assert!(up.headers.contains("x-api-key"));
        assert_eq!(&up.uri[..], b"/x?api_key=alice-key");
    }

    #[test]
    fn missing_key_is_401_with_a_bearer_challenge() {
        for r in [
            req("GET /x", &[]),
            req("GET /x", &["Authorization: Basic YWxpY2U6cw=="]),
            req(
                "GET /x?api_key=",
                &["Authorization: Bearer ", "x-api-key:  "],
            ),
        ] {
            let resp = respond(plugin(&[]).request_headers(&mut ctx(), &mut r.clone()));
            assert_eq!(resp.head.status, 401);
            assert_eq!(code(&resp), "missing_api_key");
            assert_eq!(hdr(&resp.head.headers, "www-authenticate"), Some("Bearer"));
        }
    }

    #[test]
    fn unknown_key_is_401_and_not_echoed() {
        let mut r = req("GET /x", &["x-api-key: guess-123"]);
        let resp = respond(plugin(&[]).request_headers(&mut ctx(), &mut r));
        assert_eq!(
            (resp.head.status, code(&resp).as_str()),
            (401, "invalid_api_key")
        );
        assert_eq!(
            hdr(&resp.head.headers, "www-authenticate"),
            Some("Bearer error=\"invalid_token\"")
        );
        assert!(!String::from_utf8_lossy(&resp.body).contains("guess-123"));
    }

    #[test]
    fn consumer_outside_the_allow_list_is_403() {
        let p = plugin(&["alice"]);
        let mut r = req("GET /x", &["x-api-key: bob-key"]);
        let resp = respond(p.request_headers(&mut ctx(), &mut r));
        assert_eq!(
            (resp.head.status, code(&resp).as_str()),
            (403, "consumer_not_allowed")
        );
        assert_eq!(
            pass(&p, req("GET /x", &["x-api-key: alice-key"])).0,
            "alice"
        );
    }

    #[test]
    fn query_rewrite_edge_cases() {
        let rm = |uri: &'static str| {
            remove_query_param(&bytes::Bytes::from_static(uri.as_bytes()), b"api_key")
        };
        assert_eq!(rm("/x?api_key=k"), "/x");
        assert_eq!(rm("/x?a=1&&api_key=k&"), "/x?a=1");
        assert_eq!(rm("/x?api_key&api_key=2&b"), "/x?b");
        assert_eq!(rm("/x?api_key2=k&xapi_key=k"), "/x?api_key2=k&xapi_key=k");
        assert_eq!(rm("/x"), "/x");
        assert_eq!(rm("/x?"), "/x");
    }
}

mod basic_auth {
    use super::*;
    use crate::plugin::basic_auth::BasicAuth;
    use base64::Engine;

    fn plugin(consumers: &[&str], realm: &str) -> BasicAuth {
        let c = config::BasicAuth {
            consumers: consumers.iter().map(|s| (*s).into()).collect(),
            realm: realm.into(),
        };
        BasicAuth::new(&c, table())
    }

    fn basic(user_pass: &str) -> String {
        format!(
            "Authorization: Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn good_credentials_pass_and_are_stripped() {
        let mut r = req("GET /x", &[&basic("alice:s3cret:with:colons"), "x-keep: 1"]);
        let mut c = ctx();
        assert_continue(plugin(&[], "aigw").request_headers(&mut c, &mut r));
        assert_eq!(c.consumer.as_deref(), Some("alice"));
        assert!(!r.headers.contains("authorization"));
        assert!(r.headers.contains("x-keep"));
        // Lower-case scheme, no padding.
        let mut r = req("GET /x", &["authorization: basic Y2Fyb2w6cHc"]);
        let mut c = ctx();
        assert_continue(plugin(&[], "aigw").request_headers(&mut c, &mut r));
        assert_eq!(c.consumer.as_deref(), Some("carol"));
    }

    #[test]
    fn missing_or_bad_credentials_get_a_basic_challenge() {
        let cases = [
            (req("GET /x", &[]), "missing_credentials"),
            (
                req("GET /x", &["Authorization: Bearer alice-key"]),
                "missing_credentials",
            ),
            (
                req("GET /x", &[&basic("alice:wrong")]),
                "invalid_credentials",
            ),
            (req("GET /x", &[&basic("dave:pw")]), "invalid_credentials"),
            (req("GET /x", &[&basic("carol")]), "invalid_credentials"),
            (
                req("GET /x", &["Authorization: Basic !!!"]),
                "invalid_credentials",
            ),
        ];
        for (mut r, want) in cases {
            let resp = respond(plugin(&[], "api \"v1\"").request_headers(&mut ctx(), &mut r));
            assert_eq!((resp.head.status, code(&resp).as_str()), (401, want));
            let challenge = hdr(&resp.head.headers, "www-authenticate");
            assert_eq!(challenge, Some(r#"Basic realm="api \"v1\"""#));
        }
    }

    #[test]
    fn consumer_outside_the_allow_list_is_403() {
        let mut r = req("GET /x", &[&basic("carol:pw")]);
        let resp = respond(plugin(&["alice"], "aigw").request_headers(&mut ctx(), &mut r));
        assert_eq!(
            (resp.head.status, code(&resp).as_str()),
            (403, "consumer_not_allowed")
        );
    }
}

mod ip_restriction {
    use super::*;
    use crate::plugin::ip_restriction::IpRestriction;

    fn plugin(allow: &[&str], deny: &[&str]) -> IpRestriction {
        let list = |l: &[&str]| l.iter().map(|s| (*s).into()).collect();
        IpRestriction::new(&config::IpRestriction {
            allow: list(allow),
            deny: list(deny),
        })
        .expect("valid lists")
    }

    fn status(p: &IpRestriction, ip: &str) -> u16 {
        let mut r = req("GET /x", &["X-Forwarded-For: 10.0.0.1"]);
        match p.request_headers(&mut ctx_from(ip), &mut r) {
            Decision::Continue => 200,
            Decision::Respond(resp) => {
                assert_eq!(code(&resp), "ip_forbidden");
                resp.head.status
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn allow_list_refuses_everyone_else_and_ignores_forwarded_for() {
        let p = plugin(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"], &[]);
        assert_eq!(status(&p, "10.200.3.4"), 200);
        assert_eq!(status(&p, "192.0.2.7"), 200);
        assert_eq!(status(&p, "2001:db8:1::5"), 200);
        assert_eq!(status(&p, "192.0.2.8"), 403);
        assert_eq!(status(&p, "2001:db9::1"), 403);
        assert_eq!(
            status(&p, "172.16.0.1"),
            403,
            "X-Forwarded-For must not be trusted"
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = plugin(&["10.0.0.0/8"], &["10.1.0.0/16", "2001:db8::1"]);
        assert_eq!(status(&p, "10.2.0.1"), 200);
        assert_eq!(status(&p, "10.1.9.9"), 403);
        let open = plugin(&[], &["2001:db8::1"]);
        assert_eq!(status(&open, "2001:db8::1"), 403);
        assert_eq!(status(&open, "2001:db8::2"), 200);
        assert_eq!(status(&plugin(&[], &[]), "8.8.8.8"), 200);
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_rules_both_ways() {
        let p = plugin(&["10.0.0.0/8"], &["::ffff:10.9.0.0/112"]);
        assert_eq!(status(&p, "::ffff:10.1.2.3"), 200);
        assert_eq!(status(&p, "::ffff:11.1.2.3"), 403);
        assert_eq!(status(&p, "10.9.3.3"), 403);
        assert_eq!(status(&p, "::ffff:10.9.3.3"), 403);
    }

    #[test]
    fn a_bad_entry_is_an_error_naming_it() {
        let c = config::IpRestriction {
            allow: vec!["10.0.0.0/33".into()],
            deny: vec![],
        };
        let err = IpRestriction::new(&c).expect_err("invalid");
        assert!(err.contains("10.0.0.0/33"), "{err}");
        let c = config::IpRestriction {
            allow: vec![],
            deny: vec!["example.com".into()],
        };
        assert!(IpRestriction::new(&c).is_err());
    }
}

mod cors {
    use super::*;
    use crate::plugin::cors::Cors;

    fn plugin(origins: &[&str], headers: &[&str], credentials: bool) -> Cors {
        Cors::new(&config::Cors {
            allow_origins: origins.iter().map(|s| (*s).into()).collect(),
            allow_headers: headers.iter().map(|s| (*s).into()).collect(),
            expose_headers: vec!["x-request-id".into(), "x-usage".into()],
            allow_credentials: credentials,
            max_age: Some(DurationStr(Duration::from_secs(600))),
            ..config::Cors::default()
        })
    }

    fn preflight(origin: &str) -> RequestHead {
        let o = format!("Origin: {origin}");
        req(
            "OPTIONS /v1/chat",
            &[
                &o,
                "Access-Control-Request-Method: POST",
                "Access-Control-Request-Headers: content-type, x-api-key",
            ],
        )
    }

    #[test]
    fn preflight_from_an_allowed_origin_is_answered_here() {
        let p = plugin(&["https://app.example"], &[], true);
        let resp = respond(p.request_headers(&mut ctx(), &mut preflight("https://app.example")));
        let h = &resp.head.headers;
        assert_eq!(resp.head.status, 204);
        assert!(resp.body.is_empty());
        assert_eq!(
            hdr(h, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(
            hdr(h, "access-control-allow-methods"),
            Some("GET, POST, PUT, PATCH, DELETE, OPTIONS")
        );
        assert_eq!(
            hdr(h, "access-control-allow-headers"),
            Some("content-type, x-api-key")
        );
        assert_eq!(hdr(h, "access-control-max-age"), Some("600"));
        assert_eq!(hdr(h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(
            hdr(h, "vary"),
            Some("Origin, Access-Control-Request-Headers")
        );
    }

    #[test]
    fn wildcard_is_sent_only_without_credentials() {
        let resp = respond(
            plugin(&["*"], &["content-type"], false)
                .request_headers(&mut ctx(), &mut preflight("https://a.example")),
        );
        assert_eq!(
            hdr(&resp.head.headers, "access-control-allow-origin"),
            Some("*")
        );
        assert_eq!(
            hdr(&resp.head.headers, "access-control-allow-headers"),
            Some("content-type")
        );
        assert_eq!(hdr(&resp.head.headers, "vary"), Some("Origin"));
        assert!(!resp
            .head
            .headers
            .contains("access-control-allow-credentials"));
        let resp = respond(
            plugin(&["*"], &[], true)
                .request_headers(&mut ctx(), &mut preflight("https://a.example")),
        );
        assert_eq!(
            hdr(&resp.head.headers, "access-control-allow-origin"),
            Some("https://a.example")
        );
    }

    #[test]
    fn preflight_from_another_origin_is_403() {
        let p = plugin(&["https://app.example"], &[], false);
        let resp = respond(p.request_headers(&mut ctx(), &mut preflight("https://evil.example")));
        assert_eq!(
            (resp.head.status, code(&resp).as_str()),
            (403, "cors_origin_forbidden")
        );
    }

    #[test]
    fn allowed_origin_gets_headers_on_the_real_response() {
        let p = plugin(&["https://app.example"], &[], true);
        let mut r = req("POST /v1/chat", &["Origin: https://APP.example"]);
        assert_continue(p.request_headers(&mut ctx(), &mut r));
        let mut resp = ResponseHead::new(200);
        resp.headers.append("Vary", "Accept-Encoding");
        resp.headers.append("Access-Control-Allow-Origin", "*");
        assert_continue(p.response_headers(&mut ctx(), &r, &mut resp));
        let h = &resp.headers;
        assert_eq!(
            h.get_all("access-control-allow-origin").collect::<Vec<_>>(),
            ["https://APP.example"]
        );
        assert_eq!(
            hdr(h, "access-control-expose-headers"),
            Some("x-request-id, x-usage")
        );
        assert_eq!(hdr(h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(
            h.get_all("vary").collect::<Vec<_>>(),
            ["Accept-Encoding", "Origin"]
        );
    }

    #[test]
    fn other_origins_lose_upstream_grants_and_vary_on_origin() {
        let p = plugin(&["https://app.example"], &[], false);
        let mut r = req("GET /x", &["Origin: https://evil.example"]);
        assert_continue(p.request_headers(&mut ctx(), &mut r));
        let mut resp = ResponseHead::new(200);
        resp.headers.append("Access-Control-Allow-Origin", "*");
        resp.headers
            .append("Access-Control-Allow-Credentials", "true");
        assert_continue(p.response_headers(&mut ctx(), &r, &mut resp));
        assert_eq!(hdr(&resp.headers, "access-control-allow-origin"), None);
        assert_eq!(hdr(&resp.headers, "access-control-allow-credentials"), None);
        assert_eq!(resp.headers.get_all("vary").collect::<Vec<_>>(), ["Origin"]);
    }

    #[test]
    fn requests_without_origin_are_untouched() {
        let p = plugin(&["https://app.example"], &[], false);
        for mut r in [
            req("GET /x", &[]),
            req("OPTIONS /x", &["Access-Control-Request-Method: POST"]),
        ] {
            assert_continue(p.request_headers(&mut ctx(), &mut r));
            let mut resp = ResponseHead::new(200);
            assert_continue(p.response_headers(&mut ctx(), &r, &mut resp));
            assert!(resp.headers.is_empty(), "{:?}", resp.headers);
        }
    }
}

mod headers {
    use super::*;
    use crate::plugin::headers::{RequestHeaders, ResponseHeaders};

    fn ops() -> config::HeaderOps {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        config::HeaderOps {
            remove: vec!["x-drop".into(), "X-Both".into()],
            set: map(&[("x-set", "new")]),
            add: map(&[("x-both", "added"), ("x-multi", "3")]),
        }
    }

    fn values(h: &crate::http::Headers, name: &str) -> Vec<String> {
        h.get_all(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    #[test]
    fn request_edits_remove_then_set_then_add() {
        let mut r = req(
            "GET /x",
            &[
                "x-drop: 1",
                "x-both: old",
                "x-set: a",
                "X-Set: b",
                "x-multi: 1",
                "x-multi: 2",
            ],
        );
        assert_continue(RequestHeaders::new(&ops()).request_headers(&mut ctx(), &mut r));
        assert!(!r.headers.contains("x-drop"));
        assert_eq!(values(&r.headers, "x-both"), ["added"]);
        assert_eq!(values(&r.headers, "x-set"), ["new"]);
        assert_eq!(values(&r.headers, "x-multi"), ["1", "2", "3"]);
    }

    #[test]
    fn response_edits_apply_to_the_response_only() {
        let mut r = req("GET /x", &["x-drop: keep-on-request"]);
        let p = ResponseHeaders::new(&ops());
        assert_continue(p.request_headers(&mut ctx(), &mut r));
        assert!(r.headers.contains("x-drop"));
        let mut resp = ResponseHead::new(200);
        resp.headers.append("X-Drop", "1");
        assert_continue(p.response_headers(&mut ctx(), &r, &mut resp));
        assert!(!resp.headers.contains("x-drop"));
        assert_eq!(values(&resp.headers, "x-set"), ["new"]);
        assert_eq!(values(&resp.headers, "x-both"), ["added"]);
    }
}

mod rate_limit {
    use super::*;
    use crate::plugin::rate_limit::{RateLimit, MAX_KEYS};

    fn plugin(
        requests: u64,
        per: Duration,
        burst: Option<u64>,
        key: RateLimitKey,
        workers: usize,
    ) -> RateLimit {
        let c = config::RateLimit {
            requests,
            per: DurationStr(per),
            burst,
            key,
            header: Some("x-tenant".into()),
        };
        RateLimit::new(&c, workers)
    }

    /// Status of one request at `at` after `t0`; clears and returns the queued headers.
    fn hit(
        p: &RateLimit,
        c: &mut RequestCtx,
        r: &mut RequestHead,
        t0: std::time::Instant,
        at: Duration,
    ) -> u16 {
        c.now = t0 + at;
        c.response_headers.clear();
        match p.request_headers(c, r) {
            Decision::Continue => 200,
            Decision::Respond(resp) => resp.head.status,
            other => panic!("unexpected {other:?}"),
        }
    }

    fn queued(c: &RequestCtx, name: &str) -> Option<String> {
        c.response_headers
            .iter()
            .find(|h| h.is(name))
            .map(|h| String::from_utf8_lossy(&h.value).into_owned())
    }

    #[test]
    fn five_per_second_admits_a_burst_of_five_then_one_every_200ms() {
        let p = plugin(5, Duration::from_secs(1), None, RateLimitKey::Ip, 1);
        let (mut c, mut r) = (ctx(), req("GET /x", &[]));
        let t0 = c.now;
        for left in (0..5).rev() {
            assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::ZERO), 200);
            assert_eq!(queued(&c, "ratelimit-remaining"), Some(left.to_string()));
            assert_eq!(queued(&c, "ratelimit-limit").as_deref(), Some("5"));
        }
        assert_eq!(queued(&c, "ratelimit-reset").as_deref(), Some("1"));
        c.now = t0;
        let resp = respond(p.request_headers(&mut c, &mut r));
        assert_eq!(
            (resp.head.status, code(&resp).as_str()),
            (429, "rate_limited")
        );
        let h = &resp.head.headers;
        assert_eq!(hdr(h, "retry-after"), Some("1"));
        assert_eq!(
            (
                hdr(h, "ratelimit-limit"),
                hdr(h, "ratelimit-remaining"),
                hdr(h, "ratelimit-reset")
            ),
            (Some("5"), Some("0"), Some("1"))
        );
        // No drift: for 2,000 periods, exactly one request per 200 ms, never one early.
        for k in 1..=2000u64 {
            let due = Duration::from_millis(200 * k);
            assert_eq!(
                hit(&p, &mut c, &mut r, t0, due - Duration::from_nanos(1)),
                429,
                "early at period {k}"
            );
            assert_eq!(hit(&p, &mut c, &mut r, t0, due), 200, "period {k}");
            assert_eq!(
                hit(&p, &mut c, &mut r, t0, due),
                429,
                "second at period {k}"
            );
        }
    }

    #[test]
    fn rates_that_do_not_divide_a_nanosecond_are_exact() {
        // 3 per second: tokens every 333.33.. ms. Polled every ms for 10 s: 3 + 30 admitted.
        let p = plugin(3, Duration::from_secs(1), None, RateLimitKey::Ip, 1);
        let (mut c, mut r) = (ctx(), req("GET /x", &[]));
        let t0 = c.now;
        let admitted = (0..=10_000u64)
            .filter(|ms| hit(&p, &mut c, &mut r, t0, Duration::from_millis(*ms)) == 200)
            .count();
        assert_eq!(admitted, 33);
    }

    #[test]
    fn limits_are_split_among_workers() {
        // 10 per second on 4 workers: each holds 2 and refills one per 400 ms.
        let p = plugin(10, Duration::from_secs(1), None, RateLimitKey::Ip, 4);
        let (mut c, mut r) = (ctx(), req("GET /x", &[]));
        let t0 = c.now;
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::ZERO), 200);
        assert_eq!(queued(&c, "ratelimit-limit").as_deref(), Some("2"));
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::ZERO), 200);
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::ZERO), 429);
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::from_millis(399)), 429);
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::from_millis(400)), 200);
        // A burst smaller than the worker count still lets one through per worker.
        let p = plugin(2, Duration::from_secs(1), Some(2), RateLimitKey::Ip, 8);
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::ZERO), 200);
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::ZERO), 429);
    }

    #[test]
    fn burst_sets_the_bucket_size_and_retry_after_rounds_up() {
        let p = plugin(1, Duration::from_secs(60), Some(3), RateLimitKey::Ip, 1);
        let (mut c, mut r) = (ctx(), req("GET /x", &[]));
        let t0 = c.now;
        for _ in 0..3 {
            assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::ZERO), 200);
        }
        c.now = t0 + Duration::from_millis(30_500);
        let resp = respond(p.request_headers(&mut c, &mut r));
        assert_eq!(hdr(&resp.head.headers, "retry-after"), Some("30"));
        assert_eq!(hdr(&resp.head.headers, "ratelimit-reset"), Some("150"));
    }

    #[test]
    fn consumer_keys_separate_consumers_and_pool_anonymous_callers() {
        let p = plugin(1, Duration::from_secs(60), None, RateLimitKey::Consumer, 1);
        let mut r = req("GET /x", &[]);
        let t0 = ctx().now;
        let mut as_who = |who: Option<&str>| {
            let mut c = ctx();
            c.consumer = who.map(Rc::from);
            hit(&p, &mut c, &mut r, t0, Duration::ZERO)
        };
        assert_eq!(as_who(Some("alice")), 200);
        assert_eq!(as_who(Some("bob")), 200);
        assert_eq!(as_who(None), 200);
        assert_eq!(
            as_who(Some("anonymous")),
            200,
            "a consumer named `anonymous` has its own bucket"
        );
        assert_eq!(as_who(None), 429);
        assert_eq!(as_who(Some("alice")), 429);
    }

    #[test]
    fn ip_keys_treat_mapped_addresses_as_ipv4() {
        let p = plugin(1, Duration::from_secs(60), None, RateLimitKey::Ip, 1);
        let mut r = req("GET /x", &[]);
        let t0 = ctx().now;
        assert_eq!(
            hit(&p, &mut ctx_from("192.0.2.1"), &mut r, t0, Duration::ZERO),
            200
        );
        assert_eq!(
            hit(
                &p,
                &mut ctx_from("::ffff:192.0.2.1"),
                &mut r,
                t0,
                Duration::ZERO
            ),
            429
        );
        assert_eq!(
            hit(&p, &mut ctx_from("192.0.2.2"), &mut r, t0, Duration::ZERO),
            200
        );
        assert_eq!(
            hit(&p, &mut ctx_from("2001:db8::1"), &mut r, t0, Duration::ZERO),
            200
        );
    }

    #[test]
    fn header_keys_share_one_bucket_when_the_header_is_missing() {
        let p = plugin(1, Duration::from_secs(60), None, RateLimitKey::Header, 1);
        let t0 = ctx().now;
        let long_a = format!("X-Tenant: {}a", "x".repeat(100));
        let long_b = format!("X-Tenant: {}b", "x".repeat(100));
        let status = |headers: &[&str]| {
            hit(
                &p,
                &mut ctx(),
                &mut req("GET /x", headers),
                t0,
                Duration::ZERO,
            )
        };
        assert_eq!(status(&["X-Tenant: a"]), 200);
        assert_eq!(status(&["x-tenant:  a "]), 429);
        assert_eq!(
            status(&["X-Tenant: -"]),
            200,
            "a literal `-` is not the missing-header bucket"
        );
        assert_eq!(status(&[]), 200);
        assert_eq!(status(&["X-Other: 1"]), 429);
        assert_eq!(status(&[&long_a]), 200);
        assert_eq!(
            status(&[&long_b]),
            200,
            "long values are keyed by a hash of the whole value"
        );
        assert_eq!(status(&[&long_a]), 429);
    }

    #[test]
    fn key_table_is_bounded_and_full_buckets_are_dropped_first() {
        let p = plugin(1, Duration::from_secs(3600), None, RateLimitKey::Ip, 1);
        let mut r = req("GET /x", &[]);
        let mut c = ctx();
        let t0 = c.now;
        for i in 0..MAX_KEYS as u128 {
            c.client_ip = IpAddr::V6((0x2001_0db8_u128 << 96 | i).into());
            assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::ZERO), 200);
        }
        assert_eq!(p.tracked_keys(), MAX_KEYS);
        // Table full, nothing refilled: new keys share one overflow bucket.
        c.client_ip = "198.51.100.1".parse().expect("ip");
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::from_secs(1)), 200);
        c.client_ip = "198.51.100.2".parse().expect("ip");
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::from_secs(1)), 429);
        assert_eq!(p.tracked_keys(), MAX_KEYS);
        // Once buckets have refilled they are dropped and new keys are tracked again.
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::from_secs(3601)), 200);
        assert_eq!(p.tracked_keys(), 1);
        assert_eq!(hit(&p, &mut c, &mut r, t0, Duration::from_secs(3601)), 429);
    }
}

mod chain {
    use super::*;

    /// A test plugin: records that it ran (as an `x-ran` request header) and decides `then`.
    struct Probe {
        name: &'static str,
        tag: &'static str,
        then: fn() -> Decision,
    }

    impl Plugin for Probe {
        fn name(&self) -> &'static str {
            self.name
        }

        fn request_headers(&self, _ctx: &mut RequestCtx, req: &mut RequestHead) -> Decision {
            req.headers
                .append("x-ran", format!("{}@{}", self.name, self.tag));
            (self.then)()
        }
    }

    fn probe(name: &'static str, tag: &'static str, then: fn() -> Decision) -> Rc<dyn Plugin> {
        Rc::new(Probe { name, tag, then })
    }

    fn spec(name: &str) -> PluginSpec {
        PluginSpec {
            name: name.into(),
            scope: Scope::Global,
            config: None,
            config_raw: None,
        }
    }

    fn ran(chain: &Chain) -> (RequestOutcome, Vec<String>) {
        let mut r = req("GET /x", &[]);
        let out = chain.request_headers(&mut ctx(), &mut r);
        (
            out,
            r.headers
                .get_all("x-ran")
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect(),
        )
    }

    #[test]
    fn compose_orders_by_priority_and_the_most_specific_scope_wins() {
        let (rl, cors, ip, rh) = (
            spec("rate-limit"),
            spec("cors"),
            spec("ip-restriction"),
            spec("request-headers"),
        );
        let go = || Decision::Continue;
        let chain = compose(vec![
            (0, &rh, probe("request-headers", "global", go)),
            (0, &rl, probe("rate-limit", "global", go)),
            (2, &rl, probe("rate-limit", "route", go)),
            (1, &rl, probe("rate-limit", "domain", go)),
            (1, &cors, probe("cors", "domain", go)),
            (0, &cors, probe("cors", "global", go)),
            (0, &ip, probe("ip-restriction", "global", go)),
        ]);
        assert_eq!(
            chain.names(),
            ["ip-restriction", "cors", "rate-limit", "request-headers"]
        );
        let (_, ran) = ran(&chain);
        assert_eq!(
            ran,
            [
                "ip-restriction@global",
                "cors@domain",
                "rate-limit@route",
                "request-headers@global"
            ]
        );
    }

    #[test]
    fn need_body_requests_merge_to_the_largest_limit() {
        let small = || Decision::NeedBody { limit: 10 };
        let big = || Decision::NeedBody { limit: 100 };
        let go = || Decision::Continue;
        let chain = Chain::new(vec![
            probe("a", "1", small),
            probe("b", "1", go),
            probe("c", "1", big),
            probe("d", "1", small),
        ]);
        assert!(matches!(
            ran(&chain).0,
            RequestOutcome::Continue {
                need_body: Some(100)
            }
        ));
        let chain = Chain::new(vec![probe("a", "1", go)]);
        assert!(matches!(
            ran(&chain).0,
            RequestOutcome::Continue { need_body: None }
        ));
    }

    #[test]
    fn a_response_stops_the_chain_even_after_a_body_request() {
        let big = || Decision::NeedBody { limit: 100 };
        let stop = || Decision::Respond(LocalResponse::empty(418));
        let go = || Decision::Continue;
        let chain = Chain::new(vec![
            probe("a", "1", big),
            probe("b", "1", stop),
            probe("c", "1", go),
        ]);
        let (out, ran) = ran(&chain);
        assert!(matches!(out, RequestOutcome::Respond(ref r) if r.head.status == 418));
        assert_eq!(ran, ["a@1", "b@1"]);
    }

    #[test]
    fn build_refuses_specs_without_a_valid_config() {
        let t = table();
        assert!(build(&spec("cors"), &t, 1).is_err());
        let mut bad = spec("ip-restriction");
        bad.config = Some(PluginConfig::IpRestriction(config::IpRestriction {
            allow: vec!["nope".into()],
            deny: vec![],
        }));
        assert!(build(&bad, &t, 1).err().is_some_and(|e| e.contains("nope")));
    }

    /// The reason cors runs before auth: a browser's preflight carries no credentials.
    #[test]
    fn a_preflight_is_answered_before_auth_and_a_real_request_is_not() {
        let t = table();
        let with = |name: &str, c: PluginConfig| {
            let mut s = spec(name);
            s.config = Some(c);
            s
        };
        let specs = [
            with(
                "key-auth",
                PluginConfig::KeyAuth(config::KeyAuth::default()),
            ),
            with("cors", PluginConfig::Cors(config::Cors::default())),
        ];
        let built: Vec<_> = specs
            .iter()
            .map(|s| (0u8, s, build(s, &t, 1).expect("build")))
            .collect();
        let chain = compose(built);
        let mut pre = req(
            "OPTIONS /x",
            &[
                "Origin: https://a.example",
                "Access-Control-Request-Method: POST",
            ],
        );
        match chain.request_headers(&mut ctx(), &mut pre) {
            RequestOutcome::Respond(r) => assert_eq!(r.head.status, 204),
            other => panic!("unexpected {other:?}"),
        }
        let mut real = req("POST /x", &["Origin: https://a.example"]);
        match chain.request_headers(&mut ctx(), &mut real) {
            RequestOutcome::Respond(r) => {
                assert_eq!((r.head.status, code(&r).as_str()), (401, "missing_api_key"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
