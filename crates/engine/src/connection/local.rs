//! `ansible_connection: local`: commands run on the controller with `/bin/sh`.

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::{Become, ConnError, Connection, ExecOutput, ExecRequest, sh_quote, wrap_command};

pub struct LocalConnection {
    name: String,
}

impl LocalConnection {
    pub fn new(name: impl Into<String>) -> Self {
        LocalConnection { name: name.into() }
    }
}

#[async_trait]
impl Connection for LocalConnection {
    fn name(&self) -> &str {
        &self.name
    }

    async fn exec(&self, req: ExecRequest) -> Result<ExecOutput, ConnError> {
        let script = wrap_command(&req);
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ConnError::Io(format!("cannot start /bin/sh: {e}")))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let mut input = Vec::new();
        if let Some(b) = req.become_.as_ref().and_then(|b| b.password.as_ref()) {
            input.extend_from_slice(b.as_bytes());
            input.push(b'\n');
        }
        if let Some(data) = &req.stdin {
            input.extend_from_slice(data);
        }
        let writer = tokio::spawn(async move {
            // A command that does not read its stdin closes the pipe early; that is not an error.
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        });
        let wait = child.wait_with_output();
        let out = match req.timeout {
            Some(t) => tokio::time::timeout(t, wait)
                .await
                .map_err(|_| ConnError::Io(format!("command timed out after {}s", t.as_secs())))?,
            None => wait.await,
        }
        .map_err(|e| ConnError::Io(format!("waiting for /bin/sh: {e}")))?;
        let _ = writer.await;
        Ok(ExecOutput {
            rc: exit_code(&out.status),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    async fn get(&self, src: &str, become_: Option<&Become>) -> Result<Vec<u8>, ConnError> {
        let req = ExecRequest {
            cmd: format!("cat {}", sh_quote(src)),
            become_: become_.cloned(),
            ..Default::default()
        };
        let out = self.exec(req).await?;
        if out.rc != 0 {
            return Err(ConnError::Io(format!(
                "cannot read {src}: {}",
                out.stderr_str().trim()
            )));
        }
        Ok(out.stdout)
    }

    async fn close(&self) {}
}

/// Shell convention: a signal-killed process reports 128 + signal.
fn exit_code(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_commands_and_separates_streams() {
        let c = LocalConnection::new("localhost");
        let out = c
            .exec(ExecRequest::new("echo out; echo err >&2; exit 3"))
            .await
            .unwrap();
        assert_eq!(out.rc, 3);
        assert_eq!(out.stdout_str(), "out\n");
        assert_eq!(out.stderr_str(), "err\n");
    }

    #[tokio::test]
    async fn get_reads_a_file_and_names_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("f.txt");
        std::fs::write(&src, b"hello\n").unwrap();
        let c = LocalConnection::new("localhost");
        assert_eq!(
            c.get(src.to_str().unwrap(), None).await.unwrap(),
            b"hello\n"
        );
        let missing = dir.path().join("missing").display().to_string();
        let err = c.get(&missing, None).await.unwrap_err();
        assert!(err.to_string().contains(&missing), "{err}");
    }
}
