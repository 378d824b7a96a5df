//! The product layer: Spark clusters on OpenStack, built from the engine and the cloud client.
//!
//! A cluster is found, not remembered: [`model`] says which servers, floating IPs and
//! volumes belong to a cluster name, from Nova/Neutron/Cinder listings alone. The cloud
//! work of each command is a function over [`api::ClusterApi`] ([`launch::converge`],
//! [`destroy::destroy`], [`power::set_power`]) that the controller-side module
//! `spark_openstack.cluster` (in `crate::modules`) calls from the bundled playbooks
//! (run by `crate::commands`); node work is ordinary playbook tasks over the inventory
//! that [`inventory`] builds from Nova. Nothing here runs playbooks or knows the CLI.

pub mod api;
pub mod describe;
pub mod destroy;
pub mod error;
pub mod floating;
pub mod inventory;
pub mod launch;
pub mod model;
pub mod openstack;
pub mod power;
pub mod recorded;
pub mod report;
pub mod resolve;
pub mod secgroups;
pub mod spec;
pub mod volumes;
pub mod watch;

#[cfg(test)]
pub mod memory_cloud;
#[cfg(test)]
mod tests;
