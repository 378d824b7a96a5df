//! spark-openstack: Spark + HDFS clusters on OpenStack, driven by an Ansible-compatible
//! playbook engine.
//!
//! The layers, bottom to top (each replaceable, none reaching upwards):
//! - [`yaml`]: YAML with a location on every node, so errors name `file:line:col`.
//! - [`template`]: Jinja (minijinja) configured like Ansible's.
//! - [`inventory`]: hosts, groups and their variables, from files or from Nova.
//! - [`playbook`]: plays, blocks, tasks and roles parsed from YAML.
//! - [`connection`]: how a host is reached (SSH via russh, or local).
//! - [`modules`] and [`facts`]: what a task does on a host.
//! - [`executor`]: runs plays over hosts in parallel (linear and free strategies).
//! - [`output`]: Ansible-style console output, JSON events, progress.
//! - [`cloud`]: the OpenStack API client (Keystone, Nova, Neutron, Glance, Cinder).
//! - [`devcloud`]: an OpenStack-compatible server for tests and first use.
//! - [`cluster`]: the cluster commands (launch, destroy, ...) on top of the engine and cloud.
//! - [`testbed`]: real sshd "machines" on this host, for tests, benchmarks and devcloud.
//! - [`cli`]: command-line parsing and dispatch.

pub mod cli;
pub mod cloud;
pub mod cluster;
pub mod connection;
pub mod devcloud;
pub mod executor;
pub mod facts;
pub mod inventory;
pub mod modules;
pub mod output;
pub mod playbook;
pub mod template;
pub mod testbed;
pub mod yaml;
