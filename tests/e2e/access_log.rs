//! The access log: one JSON line per request in the configured file.

use std::time::Instant;

use crate::harness::*;

fn json_lines_per_request(driver: &str) {
    let up = Upstream::start(|_| Reply::ok("ok"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let yaml = format!(
        "{}services:\n  - name: backend\n    endpoints: [\"{}\"]\nroutes:\n  - name: api\n    match: {{ path_prefix: /api }}\n    service: backend\naccess_log:\n  path: \"{}\"\n",
        head(""),
        up.endpoint(),
        path.display()
    );
    let gw = Gateway::start(&yaml, driver);
    assert_eq!(
        get(gw.addr, "/api/one", &[("X-Request-Id", "req-one")]).status,
        200
    );
    assert_eq!(
        request(
            gw.addr,
            "POST",
            "/api/two",
            &[("X-Request-Id", "req-two")],
            b"x"
        )
        .status,
        200
    );
    assert_eq!(
        get(gw.addr, "/missing", &[("X-Request-Id", "req-three")]).status,
        404
    );
    let generated = get(gw.addr, "/api/four", &[]);
    let id4 = generated.header("x-request-id").unwrap().to_string();

    let deadline = Instant::now() + WAIT;
    let lines: Vec<serde_json::Value> = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
            })
            .collect();
        if lines.len() >= 4 || Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(lines.len(), 4, "{lines:?}");
    let want = [
        ("req-one", "api", 200, "GET"),
        ("req-two", "api", 200, "POST"),
        ("req-three", "unmatched", 404, "GET"),
        (id4.as_str(), "api", 200, "GET"),
    ];
    for (line, (id, route, status, method)) in lines.iter().zip(want) {
        assert_eq!(line["request_id"], id, "{line}");
        assert_eq!(line["route"], route, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["method"], method, "{line}");
        assert!(
            line["time"].is_number() && line["duration_ms"].is_number(),
            "{line}"
        );
    }
}

fn lines_carry_consumer_bytes_and_upstream(driver: &str) {
    // Issue item 12: "time, request id, route, consumer, status, durations, bytes, upstream".
    let up = Upstream::start(|_| Reply::ok("0123456789"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.log");
    let yaml = format!(
        "{}services:\n  - name: backend\n    endpoints: [\"{}\"]\nroutes:\n  - name: api\n    service: backend\nconsumers:\n  - name: alice\n    api_keys: [\"alice-key\"]\nplugins:\n  - name: key-auth\naccess_log:\n  path: \"{}\"\n",
        head(""),
        up.endpoint(),
        path.display()
    );
    let gw = Gateway::start(&yaml, driver);
    let r = request(
        gw.addr,
        "POST",
        "/api",
        &[("x-api-key", "alice-key")],
        b"twelve bytes",
    );
    assert_eq!(r.status, 200);
    let deadline = Instant::now() + WAIT;
    let line: serde_json::Value = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(l) = text.lines().next() {
            break serde_json::from_str(l).unwrap();
        }
        assert!(Instant::now() < deadline, "no access log line");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(line["consumer"], "alice", "{line}");
    let obj = line.as_object().unwrap();
    assert!(
        obj.iter()
            .any(|(k, v)| k.contains("bytes") && v.is_number()),
        "no byte counts in the access log line: {line}"
    );
    assert!(
        obj.iter()
            .any(|(k, v)| k.contains("upstream") && v.to_string().contains(&up.endpoint())),
        "no upstream in the access log line: {line}"
    );
}

both_drivers!(
    json_lines_per_request,
    lines_carry_consumer_bytes_and_upstream
);
