//! The cloud a fresh state dir starts with: one domain, projects `demo` and `admin`, user
//! `demo` with a random password, a few images and flavors, a private network and an
//! external one for floating IPs. The ranges are the netns layout's
//! ([`NetnsConfig`], default 10.213.0.0/20 inside and 10.213.255.0/24 outside, whose .1 is
//! the controller), whichever backend serves the cloud: with records nothing is ever sent to
//! them, with netns they are the machines' real addresses.

use std::net::Ipv4Addr;

use indexmap::IndexMap;
use rand::Rng;

use super::glance::new_image;
use super::netns::NetnsConfig;
use super::neutron::{ensure_default_sg, new_network, new_subnet};
use super::state::{Flavor, Project, State, Store, User, new_hex_id, s as field};
use super::swift::ServiceUser;

pub const DEMO_USER: &str = "demo";
pub const DEMO_PROJECT: &str = "demo";
pub const SWIFT_USER: &str = "swift";
pub const SERVICE_PROJECT: &str = "service";

fn flavor(id: &str, name: &str, vcpus: u32, ram_gb: u64, disk: u64, ephemeral: u64) -> Flavor {
    Flavor {
        id: id.into(),
        name: name.into(),
        vcpus,
        ram: ram_gb * 1024,
        disk,
        ephemeral,
        swap: 0,
        extra_specs: IndexMap::new(),
    }
}

fn new_password() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

/// The service user Swift's proxy validates tokens with (`swift` in project `service`, as
/// DevStack and the install guides make it), added the first time object storage runs on
/// a state dir.
pub fn ensure_swift_user(store: &Store) -> ServiceUser {
    store
        .mutate(|st| {
            let project_id = match st.projects.iter().find(|p| p.name == SERVICE_PROJECT) {
                Some(p) => p.id.clone(),
                None => {
                    let p = Project {
                        id: new_hex_id(),
                        name: SERVICE_PROJECT.into(),
                    };
                    st.projects.push(p.clone());
                    p.id
                }
            };
            let user = match st.users.iter().find(|u| u.name == SWIFT_USER) {
                Some(u) => u.clone(),
                None => {
                    let u = User {
                        id: new_hex_id(),
                        name: SWIFT_USER.into(),
                        password: new_password(),
                        project_id,
                    };
                    st.users.push(u.clone());
                    u
                }
            };
            Ok::<_, std::convert::Infallible>(ServiceUser {
                name: user.name,
                password: user.password,
                project: SERVICE_PROJECT.into(),
            })
        })
        .unwrap_or_else(|e| match e {})
}

pub fn seed(layout: &NetnsConfig) -> State {
    let mut st = State::default();
    let demo = Project {
        id: new_hex_id(),
        name: DEMO_PROJECT.into(),
    };
    let admin = Project {
        id: new_hex_id(),
        name: "admin".into(),
    };
    st.users.push(User {
        id: new_hex_id(),
        name: DEMO_USER.into(),
        password: new_password(),
        project_id: demo.id.clone(),
    });
    st.flavors = vec![
        flavor("1", "m1.tiny", 1, 1, 10, 0),
        flavor("2", "m1.small", 1, 2, 20, 0),
        flavor("3", "m1.medium", 2, 4, 40, 0),
        flavor("4", "m1.large", 4, 8, 40, 40),
        flavor("5", "m1.xlarge", 8, 16, 80, 80),
        flavor("10", "spark.large", 4, 16, 40, 100),
        flavor("11", "spark.xlarge", 8, 32, 40, 200),
    ];
    st.images = vec![
        new_image(
            "ubuntu-22.04",
            &admin.id,
            660_000_000,
            &[
                ("os_distro", "ubuntu"),
                ("os_version", "22.04"),
                ("os_admin_user", "ubuntu"),
            ],
        ),
        new_image(
            "debian-12",
            &admin.id,
            420_000_000,
            &[
                ("os_distro", "debian"),
                ("os_version", "12"),
                ("os_admin_user", "debian"),
            ],
        ),
        new_image(
            "rocky-9",
            &admin.id,
            990_000_000,
            &[
                ("os_distro", "rocky"),
                ("os_version", "9"),
                ("os_admin_user", "rocky"),
            ],
        ),
    ];
    let mut private = new_network(&demo.id, "private", false, false);
    let mut public = new_network(&admin.id, "public", true, false);
    for (net, name, cidr, owner) in [
        (&mut private, "private-subnet", layout.tenant, &demo.id),
        (&mut public, "public-subnet", layout.floating, &admin.id),
    ] {
        // The gateway is the first host address: on `public` that is the controller's
        // address, so no floating IP is ever handed out on it.
        let mut sub = new_subnet(owner, field(net, "id"), name, &cidr);
        if name == "public-subnet" {
            // The tenant router's external address (the last one) is not a floating IP
            // either, as a router's gateway port takes its address from the pool.
            let router = layout.router_external_ip();
            if let Some(pool) = sub
                .get_mut("allocation_pools")
                .and_then(|p| p.get_mut(0))
                .filter(|p| p["end"] == serde_json::json!(router.to_string()))
            {
                pool["end"] = serde_json::json!(Ipv4Addr::from(u32::from(router) - 1).to_string());
            }
        }
        net.insert("subnets".into(), serde_json::json!([field(&sub, "id")]));
        st.subnets.push(sub);
    }
    st.networks.push(private);
    st.networks.push(public);
    ensure_default_sg(&mut st, &demo.id);
    st.projects.push(demo);
    st.projects.push(admin);
    st
}
