//! Modules that move data over the network or wait for it: `get_url`, `git`,
//! `unarchive`, `wait_for`, `wait_for_connection` and `synchronize`.

pub mod get_url;
pub mod git;
pub mod synchronize;
pub mod unarchive;
pub mod wait_for;
pub mod wait_for_connection;

#[cfg(test)]
mod sshd_tests;
#[cfg(test)]
mod tests;
