//! Modules that manage the system: `service`/`systemd`, `authorized_key` and `setup`.
