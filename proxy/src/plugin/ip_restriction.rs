//! `ip-restriction`: allow and deny lists of CIDRs on the client address.
//!
//! The address checked is the TCP peer (`RequestCtx::client_ip`). `X-Forwarded-For` is not
//! trusted: any client can write it, so honouring it would let anyone walk past a deny list.
//! An IPv4 client reaching a dual-stack socket shows up as `::ffff:a.b.c.d`; it is checked as
//! the IPv4 address it is, and `::ffff:a.b.c.d/n` rules are turned into IPv4 rules, so rules
//! work whichever way the listener or the operator wrote the address.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net};

use super::{Decision, Plugin, RequestCtx};

/// An `ip-restriction` instance.
#[derive(Debug)]
pub struct IpRestriction {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl IpRestriction {
    /// Parses the lists. An entry that is neither an address nor a CIDR is an error naming it.
    pub fn new(config: &aigw_config::plugins::IpRestriction) -> Result<IpRestriction, String> {
        Ok(IpRestriction {
            allow: parse_list(&config.allow)?,
            deny: parse_list(&config.deny)?,
        })
    }

    /// Whether requests from `ip` may go on: not denied, and allowed if an allow list exists.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}

impl Plugin for IpRestriction {
    fn name(&self) -> &'static str {
        "ip-restriction"
    }

    fn request_headers(
        &self,
        ctx: &mut RequestCtx,
        _req: &mut crate::http::RequestHead,
    ) -> Decision {
        if self.permits(ctx.client_ip) {
            return Decision::Continue;
        }
        Decision::Respond(ctx.error(
            403,
            "ip_forbidden",
            "requests from this address are not allowed",
        ))
    }
}

/// Parses and merges a list; overlapping entries collapse, so a check scans fewer networks.
fn parse_list(entries: &[String]) -> Result<Vec<IpNet>, String> {
    let nets = entries
        .iter()
        .map(|e| parse_entry(e))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(IpNet::aggregate(&nets))
}

/// A CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (one host).
fn parse_entry(entry: &str) -> Result<IpNet, String> {
    let e = entry.trim();
    let net = if e.contains('/') {
        // trunc: `10.1.2.3/8` means the network 10.0.0.0/8, as every firewall reads it.
        e.parse::<IpNet>().ok().map(|n| n.trunc())
    } else {
        e.parse::<IpAddr>().ok().map(IpNet::from)
    };
    net.map(mapped_to_v4)
        .ok_or_else(|| format!("ip-restriction: `{entry}` is not an IP address or CIDR"))
}

/// `::ffff:a.b.c.d/n` (n >= 96) as the IPv4 network it denotes; other networks unchanged.
fn mapped_to_v4(net: IpNet) -> IpNet {
    let IpNet::V6(v6) = net else { return net };
    match (
        v6.network().to_ipv4_mapped(),
        v6.prefix_len().checked_sub(96),
    ) {
        (Some(v4), Some(len)) => Ipv4Net::new(v4, len).map(IpNet::V4).unwrap_or(net),
        _ => net,
    }
}

/// An IPv4-mapped IPv6 address as plain IPv4; anything else unchanged.
pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
