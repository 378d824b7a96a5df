//! The cluster commands: each runs a bundled playbook over the cluster's Nova inventory, or
//! (`ssh`, `login`, `tunnel`) reaches its machines directly.
//!
//! This layer sits above the cloud-side logic of [`crate::cluster`] and the engine modules
//! of [`crate::modules`]: it chooses the playbook, the variables ([`config`]: options, the
//! config file, what launch recorded) and the inventory, and runs the engine
//! ([`playbook`]) with the product's module registry.

pub mod bundle;
pub mod config;
pub mod connect;
pub mod ctx;
pub mod options;
pub mod playbook;
pub mod progress;
pub mod ssh;
pub mod tunnel;

use playbook_engine::executor::Outcome;

/// Why a command failed. The CLI maps each to an exit code, in one place
/// (`impl From<Failure> for cli::Exit`), so this layer never chooses numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A bad config, a cloud API error, anything else.
    Error,
    /// One or more hosts failed a task.
    HostsFailed,
    /// One or more hosts could not be reached.
    Unreachable,
    /// A playbook or inventory could not be parsed.
    ParseError,
    /// Invalid or incomplete options.
    BadOptions,
    /// Interrupted by Ctrl-C.
    Interrupted,
}

impl Failure {
    /// How a playbook run failed, or `None` when it did not: the one table from the
    /// engine's outcomes to failures, for the cluster commands and `play` alike.
    pub fn of(outcome: &Outcome) -> Option<Failure> {
        match outcome {
            Outcome::Ok => None,
            Outcome::HostsFailed => Some(Failure::HostsFailed),
            Outcome::Unreachable => Some(Failure::Unreachable),
            Outcome::ParseError(_) => Some(Failure::ParseError),
            Outcome::Error(_) => Some(Failure::Error),
            Outcome::Interrupted => Some(Failure::Interrupted),
        }
    }
}
