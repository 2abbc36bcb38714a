//! The command line: `aigw check -c FILE` (exit 0, or 1 with every error listed, with file
//! lines and key paths), `${ENV}` substitution, `aigw --version`, and `aigw run` refusing an
//! invalid file. (The driver is irrelevant to `check`, but the tests run under both anyway,
//! like every other test.)

use crate::harness::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn check(file: &str, driver: &str) -> (i32, String, String) {
    run_cli(&["check", "-c", file], &[("AIGW_IO_DRIVER", driver)])
}

fn check_valid_file(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "ok.yaml", &simple(&["127.0.0.1:9001"]));
    let (code, out, err) = check(&f, driver);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("ok"), "{out}");
}

fn check_lists_every_error(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "bad.yaml",
        "services:
  - name: s
    endpoints: []
routes:
  - name: r
    service: nope
  - name: r2
    domains: [missing-domain]
    service: s
plugins:
  - name: rate-limit
    config: { requests: 10, burts: 20 }
  - name: key-auth
    scope: { route: no-such-route }
",
    );
    let (code, out, err) = check(&f, driver);
    assert_eq!(code, 1, "stdout: {out}\nstderr: {err}");
    for want in [
        format!("{f}:3: services[0].endpoints"),
        format!("{f}:6: routes[0].service: unknown service `nope`"),
        format!("{f}:8: routes[1].domains[0]"),
        format!("{f}:12: plugins[0].config.burts: unknown field `burts`"),
        format!("{f}:14: plugins[1].scope"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(
        err.contains("missing-domain") && err.contains("no-such-route"),
        "{err}"
    );
}

fn check_unknown_key(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "typo.yaml",
        "listeners:
  - name: main
    address: 127.0.0.1:0
services:
  - name: s
    endpoints: [\"127.0.0.1:9001\"]
routes:
  - name: r
    match:
      path_prefx: /v1
    service: s
",
    );
    let (code, _, err) = check(&f, driver);
    assert_eq!(code, 1, "{err}");
    let want = format!("{f}:10: routes[0].match.path_prefx: unknown field `path_prefx`");
    assert!(err.contains(&want), "missing {want:?} in:\n{err}");
}

fn check_quota_exceeded(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("instance:\n  type: aigw.small.x1\nservices:\n  - name: s\n    endpoints: [\"127.0.0.1:9001\"]\nroutes:\n");
    for i in 0..201 {
        yaml.push_str(&format!(
            "  - name: r{i}\n    match: {{ path_exact: /r{i} }}\n    service: s\n"
        ));
    }
    let f = write(&dir, "quota.yaml", &yaml);
    let (code, _, err) = check(&f, driver);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("quota exceeded: routes: 201 configured, limit 200"),
        "{err}"
    );
    assert!(err.contains("aigw.small.x1"), "{err}");
    // 200 fit.
    let cut = yaml.rfind("  - name: r200").unwrap();
    let f = write(&dir, "fits.yaml", &yaml[..cut]);
    assert_eq!(check(&f, driver).0, 0);
}

fn check_missing_env_var(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "env.yaml",
        "consumers:\n  - name: team-a\n    api_keys: [\"${AIGW_E2E_UNSET_VARIABLE}\"]\n",
    );
    let (code, _, err) = check(&f, driver);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("AIGW_E2E_UNSET_VARIABLE"),
        "the variable is named: {err}"
    );
    assert!(
        err.contains(&format!("{f}:3: consumers[0].api_keys[0]")),
        "{err}"
    );
}

fn env_substitution_serves(driver: &str) {
    let up = Upstream::named("up");
    let yaml = format!(
        "{}services:\n  - name: s\n    endpoints: [\"${{AIGW_E2E_UPSTREAM}}\"]\nroutes:\n  - name: r\n    service: s\nconsumers:\n  - name: team-a\n    api_keys: [\"${{AIGW_E2E_KEY}}\"]\nplugins:\n  - name: key-auth\n",
        head("")
    );
    let gw = Gateway::start_with_env(
        &yaml,
        driver,
        &[
            ("AIGW_E2E_UPSTREAM", &up.endpoint()),
            ("AIGW_E2E_KEY", "from-the-environment"),
        ],
    );
    assert_eq!(
        get(gw.addr, "/", &[("x-api-key", "from-the-environment")]).status,
        200
    );
    assert_eq!(
        get(gw.addr, "/", &[("x-api-key", "${AIGW_E2E_KEY}")]).status,
        401
    );
}

fn version(driver: &str) {
    let (code, out, _) = run_cli(&["--version"], &[("AIGW_IO_DRIVER", driver)]);
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("aigw {}", env!("CARGO_PKG_VERSION")));
}

fn run_refuses_invalid_file(driver: &str) {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        &dir,
        "bad.yaml",
        "admin:\n  address: 127.0.0.1:0\nroutes:\n  - name: r\n    service: nope\n",
    );
    let (code, _, err) = run_cli(&["run", "-c", &f], &[("AIGW_IO_DRIVER", driver)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown service `nope`"), "{err}");
}

both_drivers!(
    check_valid_file,
    check_lists_every_error,
    check_unknown_key,
    check_quota_exceeded,
    check_missing_env_var,
    env_substitution_serves,
    version,
    run_refuses_invalid_file,
);
