//! Running the system tools (`ip`, `ssh-keygen`, `setsid`, ...) with errors that show the
//! command line and its stderr, because a half-configured network is only debuggable that way.

use std::process::{Command, Output, Stdio};

use super::error::{NetnsError, Result};

/// Runs `program args...`, returning its stdout; a non-zero exit becomes [`NetnsError::Command`].
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = output(program, args)?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    Err(failure(program, args, &out))
}

/// Like [`run`], but a failure whose stderr contains one of `benign` (e.g. "Cannot find device"
/// when deleting something already gone) counts as success. Used to make clean-up idempotent.
pub fn run_tolerant(program: &str, args: &[&str], benign: &[&str]) -> Result<()> {
    let out = output(program, args)?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if benign.iter().any(|b| stderr.contains(b)) {
        return Ok(());
    }
    Err(failure(program, args, &out))
}

fn output(program: &str, args: &[&str]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| NetnsError::Command {
            command: render(program, args),
            status: "could not start".into(),
            stderr: e.to_string(),
        })
}

fn failure(program: &str, args: &[&str], out: &Output) -> NetnsError {
    NetnsError::Command {
        command: render(program, args),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// The command line as a user would type it (arguments quoted when needed).
pub fn render(program: &str, args: &[&str]) -> String {
    std::iter::once(program)
        .chain(args.iter().copied())
        .map(|s| shell_words::quote(s).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
