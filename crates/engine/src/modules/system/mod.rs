//! Modules that manage the system: `service`/`systemd`, `authorized_key` and `setup`.

pub mod authorized_key;
pub mod service;
pub mod setup;

#[cfg(test)]
mod tests;
