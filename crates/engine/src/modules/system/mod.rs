//! Modules that manage the system: `apt`, `service`/`systemd`, `authorized_key` and `setup`.

pub mod apt;
pub mod authorized_key;
pub mod service;
pub mod setup;

#[cfg(test)]
mod tests;
