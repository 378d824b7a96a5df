//! Modules that manage the system: packages (`apt`, `apt_repository`, `dnf`, `package`, `pip`), accounts (`user`, `group`,
//! `authorized_key`), services (`service`/`systemd`, `supervisorctl`), kernel and limits settings (`sysctl`,
//! `pam_limits`), file systems (`mount`) and `setup`.

pub mod accounts;
pub mod apt;
pub mod apt_repository;
pub mod authorized_key;
pub mod dnf;
pub mod group;
pub mod mount;
pub mod package;
pub mod pam_limits;
pub mod pip;
pub mod service;
pub mod setup;
pub mod supervisorctl;
pub mod sysctl;
pub mod user;

#[cfg(test)]
mod tests;
