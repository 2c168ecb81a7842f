//! A private IPv4 /24 that nothing on this machine uses yet, for emulated hosts.

use anyhow::{bail, Context, Result};
use ipnet::Ipv4Net;
use serde::Deserialize;

use super::ip;

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    addr_info: Vec<AddrInfo>,
}

#[derive(Deserialize)]
struct AddrInfo {
    family: String,
    local: String,
    prefixlen: u8,
}

#[derive(Deserialize)]
struct Route {
    dst: String,
}

/// The first of 10.231.0.0/24 .. 10.231.255.0/24 that overlaps no address and no route of this
/// machine's network namespace (so the emulated hosts can shadow nothing real).
pub fn free_subnet() -> Result<Ipv4Net> {
    let taken = taken()?;
    for third in 0..=255u8 {
        let candidate = Ipv4Net::new([10, 231, third, 0].into(), 24)?;
        if !taken.iter().any(|t| overlaps(t, &candidate)) {
            return Ok(candidate);
        }
    }
    bail!("every /24 of 10.231.0.0/16 overlaps an address or a route of this machine")
}

/// The IPv4 networks of this namespace's addresses and routes (`ip -json`).
fn taken() -> Result<Vec<Ipv4Net>> {
    let links: Vec<Link> = serde_json::from_str(&ip(&["-json", "-4", "addr", "show"])?).context("ip -json addr")?;
    let routes: Vec<Route> =
        serde_json::from_str(&ip(&["-json", "-4", "route", "show", "table", "all"])?).context("ip -json route")?;
    let mut nets = vec![];
    for a in links.iter().flat_map(|l| &l.addr_info).filter(|a| a.family == "inet") {
        nets.push(Ipv4Net::new(a.local.parse()?, a.prefixlen)?.trunc());
    }
    for r in routes {
        // "default" overlaps everything only by being a fallback: it shadows nothing we add.
        if let Some(net) = parse_dst(&r.dst) {
            nets.push(net);
        }
    }
    Ok(nets)
}

fn parse_dst(dst: &str) -> Option<Ipv4Net> {
    if dst == "default" {
        return None;
    }
    dst.parse::<Ipv4Net>().ok().or_else(|| dst.parse().ok().map(|a| Ipv4Net::new(a, 32).expect("/32 is valid")))
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_overlap_when_one_holds_the_other() {
        let net = |s: &str| s.parse::<Ipv4Net>().unwrap();
        assert!(overlaps(&net("10.0.0.0/8"), &net("10.231.4.0/24")));
        assert!(overlaps(&net("10.231.4.7/32"), &net("10.231.4.0/24")));
        assert!(!overlaps(&net("10.231.5.0/24"), &net("10.231.4.0/24")));
        assert_eq!(parse_dst("default"), None);
        assert_eq!(parse_dst("192.0.2.1"), Some(net("192.0.2.1/32")));
    }
}
