//! spark-openstack: Spark + HDFS clusters on OpenStack, driven by an Ansible-compatible
//! playbook engine.
//!
//! This crate is the product; it sits on crates that each have one job and never reach
//! upwards (the compiler keeps it so: none of them depends on this one):
//! - `spanned-yaml`: YAML with a location on every node.
//! - `playbook-engine`: the Ansible-compatible engine (inventory, playbooks, executor,
//!   connections, modules). Knows nothing of OpenStack or Spark.
//! - `openstack-client`: the OpenStack API client. Knows nothing of Spark or the engine.
//! - `devcloud`: an OpenStack-compatible server for tests and first use.
//! - `sshd-testbed`: real sshd "machines" on this host, for tests and benchmarks.
//!
//! Here:
//! - [`cluster`]: a cluster as the cloud sees it: the model read from Nova, Neutron and
//!   Cinder, the state machines of launch, destroy, stop/start, and the Nova inventory.
//! - [`modules`]: the engine modules that call those state machines
//!   (`spark_openstack.cluster`, `openstack.cloud.server_info`), registered on top of the
//!   engine's builtins.
//! - [`commands`]: the cluster commands, which run the bundled playbooks and roles.
//! - [`cli`]: command-line parsing, and the one mapping of outcomes to exit codes.
//!
//! Each of those uses only the ones listed before it.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod modules;
