//! Real sshd hosts on this machine: loopback ports for quick tests, namespaces for end-to-end tests.
