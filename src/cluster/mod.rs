//! The product layer: Spark clusters on OpenStack, built from the engine and the cloud client.
//!
//! A cluster is found, not remembered: [`model`] says which servers, floating IPs and
//! volumes belong to a cluster name, from Nova/Neutron/Cinder listings alone. The cloud
//! work of each command is a function over [`api::ClusterApi`] ([`launch::converge`],
//! [`destroy::destroy`], [`power::set_power`]) that the controller-side module
//! `spark_openstack.cluster` (in `crate::modules`) calls from the bundled
//! playbooks ([`bundle`]); node work is ordinary playbook tasks over the inventory that
//! [`inventory`] builds from Nova. The CLI shortcuts (`src/cli/cluster.rs`) only turn
//! options ([`config`]) into playbook variables.

pub mod api;
pub mod bundle;
pub mod commands;
pub mod config;
pub mod describe;
pub mod destroy;
pub mod engine;
pub mod floating;
pub mod inventory;
pub mod launch;
pub mod model;
pub mod power;
pub mod recorded;
pub mod report;
pub mod resolve;
pub mod secgroups;
pub mod spec;
pub mod ssh;
pub mod tunnel;
pub mod volumes;

#[cfg(test)]
pub mod memory_cloud;
#[cfg(test)]
mod tests;
