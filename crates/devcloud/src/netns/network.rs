//! The two bridges and the reject route, in the host's (controller's) network namespace.
//!
//! Order matters: the `unreachable` route for the whole supernet goes in FIRST, so if anything
//! fails half way no packet for the range can follow the host's default route to a real
//! network. The tenant bridge gets no host address (the controller cannot reach fixed IPs, as
//! on a real cloud); the external bridge holds the controller's address, whose connected route
//! is the only way into the range. Forwarding is off on both bridges, so the host routes
//! nothing between the bridges or out of itself.
//!
//! The tenant network has a router, as a cloud's private network does (Neutron's router with
//! an external gateway and SNAT): a namespace of its own, `<prefix>router`, with the subnet's
//! gateway address on the tenant bridge and the last floating address on the external one,
//! forwarding between the two only and masquerading what leaves on the external side.
//! Machines take it as their default route, so one without a floating IP reaches what the
//! controller serves on the external network (the object store, as a cloud's SNAT lets
//! slaves reach its public S3 endpoint), while the controller still cannot reach fixed IPs.
//! The router has no route beyond the floating range, so nothing leaves the host.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::cmd::{run, run_tolerant};
use super::config::NetnsConfig;
use super::error::{NetnsError, Result};

/// Route types that `ip route` prints before the destination.
const ROUTE_TYPES: [&str; 8] = [
    "unreachable",
    "blackhole",
    "prohibit",
    "throw",
    "local",
    "broadcast",
    "unicast",
    "multicast",
];

/// Creates (or confirms) the reject route, both bridges and the controller address.
pub fn ensure(cfg: &NetnsConfig) -> Result<()> {
    check_conflicts(cfg)?;
    let supernet = cfg.supernet.to_string();
    run("ip", &["route", "replace", "unreachable", &supernet])?;
    for bridge in [cfg.tenant_bridge(), cfg.ext_bridge()] {
        if !link_exists(&bridge)? {
            run("ip", &["link", "add", "name", &bridge, "type", "bridge"])?;
        }
        disable_ipv6(&bridge);
        no_forwarding(&bridge)?;
        run("ip", &["link", "set", &bridge, "up"])?;
    }
    let controller = format!("{}/{}", cfg.controller_ip, cfg.floating.prefix_len());
    run(
        "ip",
        &["addr", "replace", &controller, "dev", &cfg.ext_bridge()],
    )?;
    ensure_router(cfg)
}

/// Creates the tenant network's router if it is missing (see the module's documentation).
fn ensure_router(cfg: &NetnsConfig) -> Result<()> {
    let ns = cfg.router_netns();
    let exists = run("ip", &["netns", "list"])?
        .lines()
        .any(|l| l.split_whitespace().next() == Some(ns.as_str()));
    if exists {
        return Ok(());
    }
    let made = (|| {
        run("ip", &["netns", "add", &ns])?;
        run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        for (host_end, inside, bridge, ip, prefix) in [
            (
                cfg.router_veth("tenant"),
                "eth0",
                cfg.tenant_bridge(),
                cfg.tenant_gateway(),
                cfg.tenant.prefix_len(),
            ),
            (
                cfg.router_veth("ext"),
                "eth1",
                cfg.ext_bridge(),
                cfg.router_external_ip(),
                cfg.floating.prefix_len(),
            ),
        ] {
            super::machine::add_veth(&ns, &host_end, inside, ip, prefix, &bridge)?;
        }
        super::machine::sysctl_in(
            &ns,
            &["net.ipv4.ip_forward=1", "net.ipv6.conf.all.disable_ipv6=1"],
        )?;
        // Forward tenant → external only (and the replies); masquerade as the router's
        // external address, as Neutron's SNAT does.
        let rules = cfg.state_dir.join("router.nft");
        std::fs::write(
            &rules,
            "table ip router {\n\
             \tchain forward {\n\
             \t\ttype filter hook forward priority 0; policy drop;\n\
             \t\tct state established,related accept\n\
             \t\tiifname \"eth0\" oifname \"eth1\" accept\n\
             \t}\n\
             \tchain postrouting {\n\
             \t\ttype nat hook postrouting priority 100;\n\
             \t\toifname \"eth1\" masquerade\n\
             \t}\n\
             }\n",
        )
        .map_err(|e| NetnsError::io(&rules, e))?;
        let file = rules.display().to_string();
        run("ip", &["netns", "exec", &ns, "nft", "-f", &file]).map(|_| ())
    })();
    if made.is_err() {
        let mut ignored = Vec::new();
        remove_router(cfg, &mut ignored);
    }
    made
}

/// Deletes the router's namespace (its veths go with it) and its ruleset file.
fn remove_router(cfg: &NetnsConfig, problems: &mut Vec<String>) {
    let _ = std::fs::remove_file(cfg.state_dir.join("router.nft"));
    let ns = cfg.router_netns();
    if let Err(e) = run_tolerant("ip", &["netns", "del", &ns], &["No such file"]) {
        problems.push(e.to_string());
    }
    for veth in [cfg.router_veth("tenant"), cfg.router_veth("ext")] {
        if let Err(e) = run_tolerant("ip", &["link", "del", &veth], &["Cannot find device"]) {
            problems.push(e.to_string());
        }
    }
}

/// Removes the bridges (their address and connected route go with them) and then the reject
/// route, last, so the range stays fenced off until nothing in it is left. Each failure is
/// reported; the others still run.
pub fn teardown(cfg: &NetnsConfig, problems: &mut Vec<String>) {
    remove_router(cfg, problems);
    for bridge in [cfg.tenant_bridge(), cfg.ext_bridge()] {
        if let Err(e) = run_tolerant("ip", &["link", "del", &bridge], &["Cannot find device"]) {
            problems.push(e.to_string());
        }
    }
    let supernet = cfg.supernet.to_string();
    if let Err(e) = run_tolerant(
        "ip",
        &["route", "del", "unreachable", &supernet],
        &["No such process"],
    ) {
        problems.push(e.to_string());
    }
}

/// True when a network interface with this name exists in the host namespace.
pub fn link_exists(name: &str) -> Result<bool> {
    Ok(run("ip", &["-o", "link", "show"])?
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .any(|n| n.split('@').next() == Some(name)))
}

/// Even if a machine added a default route via the controller, the host must not forward what
/// arrives on our bridges (to its real network, or between tenant and external). IPv4 decides
/// forwarding per input interface, so this holds even when the host forwards for others (note:
/// writing the global `net.ipv4.ip_forward` later resets it; `ensure` sets it again).
fn no_forwarding(link: &str) -> Result<()> {
    let path = format!("/proc/sys/net/ipv4/conf/{link}/forwarding");
    std::fs::write(&path, "0").map_err(|e| NetnsError::io(path, e))
}

/// IPv6 link-local addresses would let machines talk across bridges outside the modelled
/// IPv4 networks; turn IPv6 off on our bridges (best effort: IPv6 may be absent altogether).
pub fn disable_ipv6(link: &str) {
    let path = format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6");
    let _ = std::fs::write(path, "1");
}

/// Refuses to fence off a range the host already uses: a route or address inside the supernet
/// that is not ours means the range is someone's real network.
fn check_conflicts(cfg: &NetnsConfig) -> Result<()> {
    let ours = [cfg.tenant_bridge(), cfg.ext_bridge()];
    let routes = run("ip", &["-4", "-o", "route", "show", "table", "main"])?;
    for line in routes.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let on_our_bridge = tokens
            .windows(2)
            .any(|w| w[0] == "dev" && ours.iter().any(|b| b == w[1]));
        let is_our_fence = tokens.first() == Some(&"unreachable");
        match route_dest(&tokens) {
            Some(dest) if cfg.supernet.contains(&dest) && !on_our_bridge && !is_our_fence => {
                return Err(conflict(cfg, &format!("route `{line}`")));
            }
            _ => {}
        }
    }
    let addrs = run("ip", &["-4", "-o", "addr", "show"])?;
    for line in addrs.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(dev) = tokens.get(1) else { continue };
        let addr = tokens
            .windows(2)
            .find(|w| w[0] == "inet")
            .and_then(|w| w[1].parse::<Ipv4Net>().ok());
        let foreign =
            |a: &Ipv4Net| cfg.supernet.contains(&a.addr()) && !ours.iter().any(|b| b == dev);
        if let Some(addr) = addr.filter(foreign) {
            return Err(conflict(cfg, &format!("address {addr} on {dev}")));
        }
    }
    Ok(())
}

fn conflict(cfg: &NetnsConfig, what: &str) -> NetnsError {
    NetnsError::Invalid(format!(
        "the host already uses {what} inside the devcloud range {}; choose another range \
         (or run `devcloud down` if it is left from an earlier run with other names)",
        cfg.supernet
    ))
}

/// The destination network of one `ip -o route` line (`default` yields none: it is less
/// specific than our range and so never conflicts).
fn route_dest(tokens: &[&str]) -> Option<Ipv4Net> {
    let first = *tokens.first()?;
    let dest = if ROUTE_TYPES.contains(&first) {
        *tokens.get(1)?
    } else {
        first
    };
    if dest == "default" {
        return None;
    }
    dest.parse::<Ipv4Net>()
        .ok()
        .or_else(|| dest.parse::<Ipv4Addr>().ok().map(Ipv4Net::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_destinations_are_parsed_after_the_route_type() {
        let d = |l: &str| route_dest(&l.split_whitespace().collect::<Vec<_>>());
        assert_eq!(d("default via 192.0.2.1 dev eth0"), None);
        assert_eq!(
            d("unreachable 10.213.0.0/16"),
            Some("10.213.0.0/16".parse().unwrap())
        );
        assert_eq!(
            d("10.1.2.3 dev eth0 scope link"),
            Some("10.1.2.3/32".parse().unwrap())
        );
    }
}
