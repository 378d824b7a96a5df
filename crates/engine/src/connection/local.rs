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

    async fn put(
        &self,
        data: &[u8],
        dest: &str,
        mode: Option<u32>,
        become_: Option<&Become>,
    ) -> Result<(), ConnError> {
        let tmp = format!("{dest}.so-tmp-{}", std::process::id());
        let mut cmd = format!("umask 077 && cat > {q} ", q = sh_quote(&tmp));
        if let Some(m) = mode {
            cmd.push_str(&format!("&& chmod {m:o} {} ", sh_quote(&tmp)));
        }
        cmd.push_str(&format!("&& mv -f {} {}", sh_quote(&tmp), sh_quote(dest)));
        let req = ExecRequest {
            cmd,
            stdin: Some(data.to_vec()),
            become_: become_.cloned(),
            ..Default::default()
        };
        let out = self.exec(req).await?;
        if out.rc != 0 {
            return Err(ConnError::Io(format!(
                "cannot write {dest}: {}",
                out.stderr_str().trim()
            )));
        }
        Ok(())
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
    async fn put_and_get_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.txt");
        let c = LocalConnection::new("localhost");
        c.put(b"hello\n", dest.to_str().unwrap(), Some(0o640), None)
            .await
            .unwrap();
        assert_eq!(
            c.get(dest.to_str().unwrap(), None).await.unwrap(),
            b"hello\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
}
