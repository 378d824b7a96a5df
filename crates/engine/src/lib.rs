//! An Ansible-compatible playbook engine: what `ansible-playbook` does, as a library.
//!
//! The layers, bottom to top (each replaceable, none reaching upwards):
//! - [`yaml`] (the `spanned-yaml` crate): YAML with a location on every node, so errors
//!   name `file:line:col`.
//! - [`template`]: Jinja (minijinja) configured like Ansible's.
//! - [`inventory`]: hosts, groups and their variables, from files, scripts or a source the
//!   application supplies.
//! - [`playbook`]: plays, blocks, tasks and roles parsed from YAML.
//! - [`connection`]: how a host is reached (SSH via russh, or local).
//! - [`modules`] and [`facts`]: what a task does on a host.
//! - [`executor`]: runs plays over hosts in parallel (linear and free strategies).
//! - [`output`]: Ansible-style console output, JSON events, progress.
//!
//! The engine knows nothing of any cloud or of Spark. Like ansible-core, which ships no
//! cloud modules, it lets an application add its own: build a
//! [`modules::registry::Registry`] from [`Registry::builtin`](modules::registry::Registry::builtin),
//! register the application's modules on it, and hand it to the executor.

pub use spanned_yaml as yaml;

pub mod connection;
pub mod executor;
pub mod facts;
pub mod inventory;
pub mod modules;
pub mod output;
pub mod playbook;
pub mod template;
