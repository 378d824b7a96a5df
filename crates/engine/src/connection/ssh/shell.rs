//! Persistent remote shells: one `exec /bin/sh` channel runs many commands, so a command
//! costs one round trip instead of a channel open, an exec request and a close.
//!
//! Each command is written to the shell's stdin as a small framed script:
//!
//! ```sh
//! printf '%s %d\n' 'TOKEN:N:S' $$; printf '%s\n' 'TOKEN:N:S' >&2
//! ( eval 'COMMAND' ) </dev/null          # or: base64 -d <<'TOKEN:N:I' | ( eval ... )
//! printf '\n%s %d\n' 'TOKEN:N:E' "$?"; printf '\n%s\n' 'TOKEN:N:E' >&2
//! ```
//!
//! `TOKEN` is 128 random bits per shell, `N` counts commands. The output of command `N` is
//! what lies between its start and end markers on each stream, so stray output (from a
//! login script or a process an earlier command left in the background) is dropped
//! instead of being attributed to the wrong command. The command text travels as one
//! single-quoted word for `eval`, so even a syntax error cannot desynchronise the shell,
//! and it runs in a subshell, so `exit`, `cd` or `set -e` do not leak into the next
//! command. Its stdin never is the shell's own stdin, so commands that read stdin cannot
//! swallow the following scripts.
//!
//! A reader task drains every channel continuously: russh stalls the whole connection when
//! one channel's buffer is full, and a background process may write while a shell is idle.

use base64::Engine;
use russh::ChannelMsg;
use russh::client::Msg;
use tokio::sync::mpsc;

use crate::connection::sh_quote;

/// One event from a shell's channel.
enum Event {
    Out(Vec<u8>),
    Err(Vec<u8>),
    Closed,
}

/// What the shell reported for one command.
pub struct Finished {
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why a command did not finish.
pub enum ShellError {
    /// The shell went away before the command started: safe to retry on a new shell.
    NotStarted(String),
    /// The shell went away while the command ran: its outcome is unknown.
    Died(String),
}

pub struct Shell {
    writer: russh::ChannelWriteHalf<Msg>,
    events: mpsc::UnboundedReceiver<Event>,
    reader: tokio::task::JoinHandle<()>,
    token: String,
    seq: u64,
    /// The shell's process id, learnt from the first start marker (used to kill on timeout).
    pub pid: Option<u32>,
}

impl Drop for Shell {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Shell {
    /// Wraps an open session channel on which `exec /bin/sh` was requested.
    pub fn new(channel: russh::Channel<Msg>) -> Shell {
        let (mut read, writer) = channel.split();
        let (tx, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(msg) = read.wait().await {
                let ev = match msg {
                    ChannelMsg::Data { data } => Event::Out(data.to_vec()),
                    ChannelMsg::ExtendedData { data, ext: 1 } => Event::Err(data.to_vec()),
                    ChannelMsg::Close => break,
                    _ => continue,
                };
                // The receiver is gone when the shell was dropped: keep draining regardless.
                let _ = tx.send(ev);
            }
            let _ = tx.send(Event::Closed);
        });
        Shell {
            writer,
            events,
            reader,
            token: random_token(),
            seq: 0,
            pid: None,
        }
    }

    /// Runs one wrapped command. `stdin` is fed through a here-document, so it must be small;
    /// `stdin_file` names a remote file to read instead.
    pub async fn run(
        &mut self,
        cmd: &str,
        stdin: Option<&[u8]>,
        stdin_file: Option<&str>,
    ) -> Result<Finished, ShellError> {
        self.seq += 1;
        let tag = format!("{}:{}", self.token, self.seq);
        let script = frame(&tag, cmd, stdin, stdin_file);
        if let Err(e) = self.writer.data_bytes(script.into_bytes()).await {
            return Err(ShellError::NotStarted(format!(
                "cannot write to the remote shell: {e}"
            )));
        }
        let mut out = StreamParser::new(format!("{tag}:S "), format!("\n{tag}:E "), true);
        let mut err = StreamParser::new(format!("{tag}:S\n"), format!("\n{tag}:E\n"), false);
        loop {
            if out.done() && err.done() {
                break;
            }
            match self.events.recv().await {
                Some(Event::Out(d)) => {
                    out.push(&d);
                    // Known as soon as the command starts, so a timeout can kill it.
                    if let Some(pid) = out.start_value {
                        self.pid = Some(pid as u32);
                    }
                }
                Some(Event::Err(d)) => err.push(&d),
                Some(Event::Closed) | None => {
                    let msg = "the remote shell exited unexpectedly".to_string();
                    return Err(if out.started() {
                        ShellError::Died(msg)
                    } else {
                        ShellError::NotStarted(msg)
                    });
                }
            }
        }
        Ok(Finished {
            rc: out.end_value.unwrap_or(-1),
            stdout: out.content,
            stderr: err.content,
        })
    }

    /// Drops a shell whose state is unknown (timed out) without waiting for it.
    pub async fn abandon(self) {
        let _ = self.writer.close().await;
    }

    /// Ends the shell politely: EOF makes `sh` exit, sshd then closes the channel and russh
    /// answers that close. Only a shell that does not go away gets an explicit close (russh
    /// ignores the server's reply to a close we sent first, so waiting for it is futile).
    pub async fn close(mut self) {
        let _ = self.writer.eof().await;
        let drain =
            async { while !matches!(self.events.recv().await, Some(Event::Closed) | None) {} };
        if tokio::time::timeout(std::time::Duration::from_secs(2), drain)
            .await
            .is_err()
        {
            let _ = self.writer.close().await;
        }
    }
}

fn random_token() -> String {
    let bits: u128 = rand::random();
    format!("SO{bits:032x}")
}

/// Builds the framed script for one command (see the module docs).
fn frame(tag: &str, cmd: &str, stdin: Option<&[u8]>, stdin_file: Option<&str>) -> String {
    let quoted = sh_quote(cmd);
    let mut s = format!("printf '%s %d\\n' '{tag}:S' $$; printf '%s\\n' '{tag}:S' >&2\n");
    match (stdin, stdin_file) {
        (_, Some(file)) => s.push_str(&format!("( eval {quoted} ) <{}\n", sh_quote(file))),
        (Some(data), None) => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(data);
            s.push_str(&format!("base64 -d <<'{tag}:I' | ( eval {quoted} )\n"));
            for chunk in b64.as_bytes().chunks(76) {
                s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                s.push('\n');
            }
            s.push_str(&format!("{tag}:I\n"));
        }
        (None, None) => s.push_str(&format!("( eval {quoted} ) </dev/null\n")),
    }
    s.push_str(&format!(
        "printf '\\n%s %d\\n' '{tag}:E' \"$?\"; printf '\\n%s\\n' '{tag}:E' >&2\n"
    ));
    s
}

/// Finds one command's output in a stream: everything between the start and end markers.
/// On stdout both markers carry a number (`$$` and `$?`) up to the end of their line.
struct StreamParser {
    start: String,
    end: String,
    numbered: bool,
    buf: Vec<u8>,
    /// Where the search for the end marker resumes (avoids rescanning huge outputs).
    scan_from: usize,
    begun: bool,
    content: Vec<u8>,
    start_value: Option<i64>,
    end_value: Option<i32>,
    finished: bool,
}

impl StreamParser {
    fn new(start: String, end: String, numbered: bool) -> Self {
        StreamParser {
            start,
            end,
            numbered,
            buf: Vec::new(),
            scan_from: 0,
            begun: false,
            content: Vec::new(),
            start_value: None,
            end_value: None,
            finished: false,
        }
    }

    fn started(&self) -> bool {
        self.begun
    }

    fn done(&self) -> bool {
        self.finished
    }

    fn push(&mut self, data: &[u8]) {
        if self.finished {
            return;
        }
        self.buf.extend_from_slice(data);
        if !self.begun {
            let Some(pos) = find(&self.buf, self.start.as_bytes(), 0) else {
                // Keep only a tail that might hold the beginning of the marker.
                let keep = self.start.len();
                if self.buf.len() > keep {
                    self.buf.drain(..self.buf.len() - keep);
                }
                return;
            };
            let after = pos + self.start.len();
            let body_at = if self.numbered {
                match take_number(&self.buf[after..]) {
                    Some((v, used)) => {
                        self.start_value = Some(v);
                        after + used
                    }
                    None => return, // the number's line is not complete yet
                }
            } else {
                after
            };
            self.buf.drain(..body_at);
            self.begun = true;
            self.scan_from = 0;
        }
        let Some(pos) = find(&self.buf, self.end.as_bytes(), self.scan_from) else {
            self.scan_from = self.buf.len().saturating_sub(self.end.len());
            return;
        };
        if self.numbered {
            match take_number(&self.buf[pos + self.end.len()..]) {
                Some((v, _)) => self.end_value = Some(v as i32),
                None => return,
            }
        }
        self.buf.truncate(pos);
        self.content = std::mem::take(&mut self.buf);
        self.finished = true;
    }
}

/// Parses `digits\n` at the start of `b`; `None` until the newline has arrived.
fn take_number(b: &[u8]) -> Option<(i64, usize)> {
    let nl = b.iter().position(|&c| c == b'\n')?;
    let v = std::str::from_utf8(&b[..nl]).ok()?.trim().parse().ok()?;
    Some((v, nl + 1))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() || needle.is_empty() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The script that kills a timed-out command: it stops and kills the shell's process tree,
/// children first found while their parents are stopped so none can escape by forking.
pub fn kill_tree_script(pid: u32) -> String {
    format!(
        "k() {{ kill -STOP \"$1\" 2>/dev/null; for c in $(pgrep -P \"$1\"); do k \"$c\"; done; \
         kill -KILL \"$1\" 2>/dev/null; }}; k {pid}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]], numbered: bool) -> StreamParser {
        let (s, e) = if numbered {
            ("T:1:S ".to_string(), "\nT:1:E ".to_string())
        } else {
            ("T:1:S\n".to_string(), "\nT:1:E\n".to_string())
        };
        let mut p = StreamParser::new(s, e, numbered);
        for c in chunks {
            p.push(c);
        }
        p
    }

    #[test]
    fn finds_output_between_markers_across_chunk_boundaries() {
        let p = parse(
            &[b"noise T:1", b":S 42\nhel", b"lo\n\nT:1:", b"E 3", b"\n"],
            true,
        );
        assert!(p.done());
        assert_eq!(p.content, b"hello\n");
        assert_eq!(p.start_value, Some(42));
        assert_eq!(p.end_value, Some(3));
    }

    #[test]
    fn keeps_output_without_trailing_newline_and_binary_bytes() {
        let p = parse(&[b"T:1:S\n\x00\xff\x01\nT:1:E\n"], false);
        assert!(p.done());
        assert_eq!(p.content, b"\x00\xff\x01");
        let p = parse(&[b"T:1:S\n\nT:1:E\n"], false);
        assert_eq!(p.content, b"");
    }

    #[test]
    fn framing_quotes_the_command_as_one_word() {
        let f = frame("T:1", "echo 'x", None, None);
        assert!(f.contains("( eval 'echo '\\''x' ) </dev/null\n"));
        let f = frame("T:1", "cat", Some(b"a"), None);
        assert!(f.contains("base64 -d <<'T:1:I' | ( eval cat )\nYQ==\nT:1:I\n"));
    }
}
