//! Modules that move data over the network or wait for it: `get_url`, `unarchive`,
//! `wait_for`, `wait_for_connection` and `synchronize`.
