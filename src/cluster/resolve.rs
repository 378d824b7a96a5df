//! Turning what the user typed (names or ids of images, flavors, networks) into ids, with
//! errors that list what does exist, and picking defaults from Neutron instead of asking
//! the user to edit a `networks.py`.

use super::api::{Flavor, Image, Network};
use super::error::ClusterError;

/// Something with an id and a name.
pub trait Named {
    fn id(&self) -> &str;
    fn name(&self) -> &str;
}

macro_rules! named {
    ($($t:ty),*) => {$(
        impl Named for $t {
            fn id(&self) -> &str { &self.id }
            fn name(&self) -> &str { &self.name }
        }
    )*};
}
named!(Flavor, Image, Network);

/// Finds `wanted` by id, else by a unique name. `option` names the command-line option in
/// the error, which lists the available names.
pub fn by_name_or_id<'a, T: Named>(
    items: &'a [T],
    wanted: &str,
    what: &str,
    option: &str,
) -> Result<&'a T, ClusterError> {
    if let Some(found) = items.iter().find(|i| i.id() == wanted) {
        return Ok(found);
    }
    let matches: Vec<&T> = items.iter().filter(|i| i.name() == wanted).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => {
            let mut names: Vec<&str> = items.iter().map(Named::name).collect();
            names.sort();
            names.dedup();
            let shown = if names.len() > 15 {
                format!("{}, ... ({} in all)", names[..15].join(", "), names.len())
            } else {
                names.join(", ")
            };
            Err(ClusterError::Invalid(format!(
                "{option} '{wanted}': no {what} has this name or id (available: {})",
                if shown.is_empty() {
                    "none".into()
                } else {
                    shown
                }
            )))
        }
        many => Err(ClusterError::Invalid(format!(
            "{option} '{wanted}': {} {what}s have this name ({}); give the id instead",
            many.len(),
            many.iter().map(|i| i.id()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// The network servers are attached to: `--network`, else the only internal network, else
/// none (Nova then picks the project's default, and errors clearly itself if ambiguous).
pub fn cluster_network<'a>(
    networks: &'a [Network],
    wanted: Option<&str>,
) -> Result<Option<&'a Network>, ClusterError> {
    if let Some(w) = wanted {
        return by_name_or_id(networks, w, "network", "--network").map(Some);
    }
    let internal: Vec<&Network> = networks.iter().filter(|n| !n.external).collect();
    match internal.as_slice() {
        [one] => Ok(Some(one)),
        [] => Ok(None),
        many => Err(ClusterError::Invalid(format!(
            "several networks could hold the cluster ({}); choose one with --network",
            many.iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The floating IP pool: `--floating-ip-pool`, else the only external network.
pub fn floating_pool<'a>(
    networks: &'a [Network],
    wanted: Option<&str>,
) -> Result<&'a Network, ClusterError> {
    if let Some(w) = wanted {
        let n = by_name_or_id(networks, w, "network", "--floating-ip-pool")?;
        if !n.external {
            return Err(ClusterError::Invalid(format!(
                "--floating-ip-pool '{w}': network {} is not external (router:external is false)",
                n.name
            )));
        }
        return Ok(n);
    }
    let external: Vec<&Network> = networks.iter().filter(|n| n.external).collect();
    match external.as_slice() {
        [one] => Ok(one),
        [] => Err(ClusterError::Invalid(
            "this cloud has no external network to allocate floating IPs from; use \
             --openstack-network-communication-method static"
                .into(),
        )),
        many => Err(ClusterError::Invalid(format!(
            "several external networks exist ({}); choose one with --floating-ip-pool",
            many.iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, name: &str, external: bool) -> Network {
        Network {
            id: id.into(),
            name: name.into(),
            external,
        }
    }

    #[test]
    fn finds_by_id_then_unique_name() {
        let nets = vec![
            net("1", "a", false),
            net("2", "b", false),
            net("3", "b", true),
        ];
        assert_eq!(
            by_name_or_id(&nets, "2", "network", "--network")
                .unwrap()
                .id,
            "2"
        );
        assert_eq!(
            by_name_or_id(&nets, "a", "network", "--network")
                .unwrap()
                .id,
            "1"
        );
        let e = by_name_or_id(&nets, "b", "network", "--network")
            .unwrap_err()
            .to_string();
        assert!(e.contains("give the id"), "{e}");
        let e = by_name_or_id(&nets, "c", "network", "--network")
            .unwrap_err()
            .to_string();
        assert!(e.contains("available: a, b"), "{e}");
    }

    #[test]
    fn defaults_come_from_neutron() {
        let nets = vec![net("1", "private", false), net("2", "public", true)];
        assert_eq!(cluster_network(&nets, None).unwrap().unwrap().id, "1");
        assert_eq!(floating_pool(&nets, None).unwrap().id, "2");
        assert!(floating_pool(&nets, Some("private")).is_err());
        let two_ext = vec![net("2", "public", true), net("3", "public2", true)];
        assert!(
            floating_pool(&two_ext, None)
                .unwrap_err()
                .to_string()
                .contains("--floating-ip-pool")
        );
    }
}
