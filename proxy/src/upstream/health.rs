//! Active health checks: each worker probes the backends of services that configure
//! `health_check`, with HTTP/1.1 GETs (over TLS for a service with `tls`), and takes them out
//! of (or back into) its rotation after the configured number of consecutive failures
//! (successes).
//!
//! Probing per worker keeps health state worker-local like everything else; the cost is one
//! probe per backend per worker per interval, which is documented in docs/architecture.md.

use std::rc::{Rc, Weak};
use std::time::Duration;

use aigw_config::HealthCheck;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};

use super::tls::TlsClient;
use super::{pool, BackendRt, ServiceRt};

/// Starts the probe loop of a service on the current worker; it ends when the service is
/// dropped (replaced by a reload that changed it, or removed).
pub fn spawn(service: &Rc<ServiceRt>) {
    let Some(hc) = service.spec.config.health_check.clone() else {
        return;
    };
    let weak: Weak<ServiceRt> = Rc::downgrade(service);
    monoio::spawn(async move {
        loop {
            monoio::time::sleep(hc.interval.get()).await;
            let Some(service) = weak.upgrade() else {
                return;
            };
            for b in &service.backends {
                let b = b.clone();
                let hc = hc.clone();
                let tls = service.spec.tls.clone();
                monoio::spawn(async move {
                    let ok = probe(&b, &hc, tls.as_deref()).await;
                    apply(&b, &hc, ok);
                });
            }
        }
    });
}

/// Moves a backend in or out of rotation after enough results in a row.
pub fn apply(b: &BackendRt, hc: &HealthCheck, ok: bool) {
    let healthy = b.probe_healthy.get();
    if ok == healthy {
        b.probe_streak.set(0);
        return;
    }
    let streak = b.probe_streak.get() + 1;
    let needed = if ok {
        hc.healthy_threshold
    } else {
        hc.unhealthy_threshold
    };
    if streak >= needed.max(1) {
        b.probe_healthy.set(ok);
        b.probe_streak.set(0);
        let state = if ok { "healthy" } else { "unhealthy" };
        crate::log::warn(format_args!(
            "upstream {} is {state} (active health check)",
            b.addr
        ));
    } else {
        b.probe_streak.set(streak);
    }
}

/// One probe: connect (with TLS if the service has it), GET the path, read the status line.
/// Anything else is a failure.
async fn probe(b: &Rc<BackendRt>, hc: &HealthCheck, tls: Option<&TlsClient>) -> bool {
    let timeout = hc.timeout.get();
    let run = async {
        let mut conn = pool::connect(b, timeout, tls).await.ok()?;
        let host = hc.host.clone().unwrap_or_else(|| b.endpoint.clone());
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: aigw-health-check\r\nConnection: close\r\n\r\n",
            hc.path
        );
        let (res, _) = conn.io.write_all(req.into_bytes()).await;
        res.ok()?;
        let mut buf = Vec::with_capacity(1024);
        loop {
            let len = buf.len();
            let (res, slice) = conn
                .io
                .read(monoio::buf::IoBufMut::slice_mut(buf, len..1024))
                .await;
            buf = slice.into_inner();
            if res.ok()? == 0 {
                return None;
            }
            if let Ok(Some((head, _))) = crate::http::head::parse_response(&buf, 1024) {
                return Some(head.status);
            }
            if buf.len() >= 1024 {
                return None;
            }
        }
    };
    let status = monoio::time::timeout(timeout + Duration::from_millis(1), run)
        .await
        .ok()
        .flatten();
    match status {
        Some(s) if hc.expected_status.is_empty() => (200..400).contains(&s),
        Some(s) => hc.expected_status.contains(&s),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Backend;

    #[test]
    fn thresholds_take_out_and_bring_back() {
        let hc: HealthCheck =
            serde_yaml_ng::from_str("healthy_threshold: 2\nunhealthy_threshold: 3").unwrap();
        let b = BackendRt::new(&Backend {
            addr: "127.0.0.1:1".parse().unwrap(),
            weight: 1,
            endpoint: String::new(),
        });
        apply(&b, &hc, false);
        apply(&b, &hc, false);
        assert!(b.probe_healthy.get());
        apply(&b, &hc, true); // a success resets the streak
        apply(&b, &hc, false);
        apply(&b, &hc, false);
        assert!(b.probe_healthy.get());
        apply(&b, &hc, false);
        assert!(!b.probe_healthy.get());
        apply(&b, &hc, true);
        assert!(!b.probe_healthy.get());
        apply(&b, &hc, true);
        assert!(b.probe_healthy.get());
    }
}
