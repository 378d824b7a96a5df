//! `async` with `poll: 0`, and `async_status`: a task started in the background and asked
//! about later.
//!
//! `command` and `shell` run in the background on the host, as Ansible's async wrapper
//! runs them: detached from the connection (so they outlive the run, as fire-and-forget
//! jobs do in Ansible), killed after `async` seconds, their exit status and output kept
//! under `~/.ansible_async/<jid>/`, where `async_status` reads them. Any other module runs
//! to its end before the task returns, and its result is kept on the controller for
//! `async_status`: the playbook sees the same job id, the same `started`/`finished` keys
//! and the same final result, only sooner.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Local, NaiveDateTime, TimeZone};
use serde_json::{Map, Value, json};

use super::{Run, SKIP_MARKER, guard, output_result, skipped_result};
use crate::connection::{ExecOutput, sh_quote};
use crate::modules::args::Args;
use crate::modules::remote::{read_many, run, run_with};
use crate::modules::{ArgSpec, Module, ModuleCtx, ModuleError, ModuleResult};

/// A background run the executor asks a module for (`async: N` with `poll: 0`).
#[derive(Clone, Debug)]
pub struct AsyncJob {
    pub jid: String,
    /// The job is killed after this many seconds.
    pub seconds: u64,
}

impl AsyncJob {
    /// A new job id in Ansible's shape (`j` + 12 digits + `.` + a process id).
    pub fn new(seconds: u64) -> Self {
        let n: u64 = rand::random::<u64>() % 1_000_000_000_000;
        AsyncJob {
            jid: format!("j{n:012}.{}", std::process::id()),
            seconds,
        }
    }

    /// What a task that started the job registers.
    pub fn started(&self, results_file: &str) -> ModuleResult {
        ModuleResult::changed()
            .with("started", true)
            .with("finished", false)
            .with("ansible_job_id", self.jid.as_str())
            .with("results_file", results_file)
    }
}

/// Results of the jobs that finished on the controller side, by job id.
#[derive(Default)]
pub struct AsyncJobs {
    done: Mutex<HashMap<String, Value>>,
}

impl AsyncJobs {
    pub fn finish(&self, jid: &str, result: Value) {
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(jid.to_string(), result);
    }

    fn get(&self, jid: &str) -> Option<Value> {
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(jid)
            .cloned()
    }

    fn remove(&self, jid: &str) {
        self.done
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(jid);
    }
}

/// The job's directory on the host, as a shell word (`$HOME` expanded there).
fn job_dir(jid: &str) -> String {
    format!("\"$HOME/.ansible_async\"/{}", sh_quote(jid))
}

const STAMP: &str = "date '+%Y-%m-%d %H:%M:%S.%N'";

/// Starts `run` in the background on the host; the task's result says it started.
pub async fn start(
    ctx: &ModuleCtx<'_>,
    job: &AsyncJob,
    run: &Run,
) -> Result<ModuleResult, ModuleError> {
    let d = job_dir(&job.jid);
    let line = format!("{}{}", guard(run), run.line);
    let cd = run
        .chdir
        .as_deref()
        .map(|c| format!("cd {} || exit 1; ", sh_quote(c)))
        .unwrap_or_default();
    let input = if run.stdin.is_some() {
        "\"$d/stdin\""
    } else {
        "/dev/null"
    };
    let save_stdin = if run.stdin.is_some() {
        "cat > \"$d/stdin\"; "
    } else {
        ""
    };
    // The job writes rc last, through a rename, so a reader never sees a partial result.
    let body = format!(
        "{cd}{STAMP} > \"$d/start\"; timeout -s KILL {secs} sh -c {line} > \"$d/stdout\" 2> \"$d/stderr\" < {input}; \
         rc=$?; {STAMP} > \"$d/end\"; [ $rc -eq 137 ] && touch \"$d/timeout\"; \
         echo $rc > \"$d/rc.new\" && mv \"$d/rc.new\" \"$d/rc\"",
        secs = job.seconds.max(1),
        line = sh_quote(&line),
    );
    let script = format!(
        "d={d}; rm -rf \"$d\"; mkdir -p \"$d\" || exit 1; {save_stdin}\
         printf '%s' {shown} > \"$d/cmd\"; \
         d=\"$d\" nohup setsid sh -c {body} > /dev/null 2>&1 < /dev/null & echo \"$d\"",
        shown = sh_quote(&run.shown.to_string()),
        body = sh_quote(&format!("d=\"$d\"; {body}")),
    );
    let out = run_with(ctx, script, run.stdin.clone(), None).await?;
    if out.rc != 0 {
        return Ok(ModuleResult::failed(format!(
            "could not start the async job: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(job.started(out.stdout_str().trim()))
}

/// Reads a job's files: `None` when there is no such job on the host (a job always has
/// its `cmd` file, written when it starts).
async fn read_job(ctx: &ModuleCtx<'_>, jid: &str) -> Result<Option<JobFiles>, ModuleError> {
    let files = read_many(ctx, &format!("{}/*", job_dir(jid))).await?;
    Ok(JobFiles::from_files(files))
}

#[derive(Default)]
struct JobFiles {
    dir: String,
    files: HashMap<String, Vec<u8>>,
}

impl JobFiles {
    fn from_files(list: Vec<(String, Vec<u8>)>) -> Option<JobFiles> {
        let dir = list
            .first()
            .map(|(p, _)| p.rsplit_once('/').map_or("", |(d, _)| d).to_string())?;
        let files = list
            .into_iter()
            .map(|(p, data)| (p.rsplit('/').next().unwrap_or("").to_string(), data))
            .collect();
        Some(JobFiles { dir, files })
    }

    fn text(&self, name: &str) -> Option<String> {
        self.files
            .get(name)
            .map(|b| String::from_utf8_lossy(b).trim_end().to_string())
    }
}

fn stamp(s: Option<String>) -> DateTime<Local> {
    s.and_then(|s| NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f").ok())
        .and_then(|n| Local.from_local_datetime(&n).single())
        .unwrap_or_else(Local::now)
}

/// What `async_status` says besides the job's own result: empty output, as Ansible's
/// action plugin starts every answer with.
fn no_output(r: ModuleResult) -> ModuleResult {
    r.with("stdout", "")
        .with("stderr", "")
        .with("stdout_lines", Vec::<String>::new())
        .with("stderr_lines", Vec::<String>::new())
}

/// `async_status: jid=...`: the job's result when it finished, else `finished: 0`.
pub struct AsyncStatus;

const KNOWN: &[&str] = &["jid", "mode"];

#[async_trait]
impl Module for AsyncStatus {
    fn name(&self) -> &'static str {
        "async_status"
    }

    fn spec(&self) -> Option<ArgSpec> {
        Some(ArgSpec {
            known: KNOWN,
            required: &[&["jid"]],
            choices: &[("mode", &["status", "cleanup"])],
            src_dir: None,
        })
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new("async_status", args, KNOWN)?;
        let jid = a.str("jid")?;
        let cleanup = a.choice("mode", &["status", "cleanup"], "status")? == "cleanup";
        if cleanup {
            ctx.jobs.remove(&jid);
            let d = job_dir(&jid);
            let out = run(ctx, format!("d={d}; rm -rf \"$d\"; echo \"$d\"")).await?;
            return Ok(no_output(ModuleResult::ok())
                .with("ansible_job_id", jid.as_str())
                .with("erased", out.stdout_str().trim())
                .with("started", false)
                .with("finished", false));
        }
        if let Some(Value::Object(done)) = ctx.jobs.get(&jid) {
            let mut r = ModuleResult::ok();
            for (k, v) in done {
                match k.as_str() {
                    "changed" => r.changed = v.as_bool().unwrap_or(false),
                    "failed" => r.failed = v.as_bool().unwrap_or(false),
                    "skipped" => r.skipped = v.as_bool().unwrap_or(false),
                    "msg" => r.msg = v.as_str().map(str::to_string),
                    _ => {
                        r.data.insert(k.clone(), v.clone());
                    }
                }
            }
            return Ok(r);
        }
        let Some(job) = read_job(ctx, &jid).await? else {
            let dir = run(ctx, format!("echo {}", job_dir(&jid))).await?;
            return Ok(no_output(ModuleResult::failed("could not find job"))
                .with("ansible_job_id", jid.as_str())
                .with("results_file", dir.stdout_str().trim())
                .with("started", true)
                .with("finished", true));
        };
        let Some(rc) = job.text("rc") else {
            return Ok(no_output(ModuleResult::ok())
                .with("ansible_job_id", jid.as_str())
                .with("started", true)
                .with("finished", false)
                .with("results_file", job.dir.as_str()));
        };
        let shown: Value = job
            .text("cmd")
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or(Value::Null);
        let run = Run {
            line: String::new(),
            shown,
            chdir: None,
            creates: None,
            removes: None,
            stdin: None,
            strip_output: true,
        };
        let out = ExecOutput {
            rc: rc.parse().unwrap_or(-1),
            stdout: job.files.get("stdout").cloned().unwrap_or_default(),
            stderr: job.files.get("stderr").cloned().unwrap_or_default(),
        };
        let mut r = if job.files.contains_key("timeout") {
            ModuleResult::failed("Timeout exceeded").with("child_pid", 0)
        } else if out.rc == 0 && out.stdout_str() == SKIP_MARKER {
            skipped_result(&run, false)
        } else {
            output_result(&run, out, stamp(job.text("start")), stamp(job.text("end")))
        };
        r.data.insert("ansible_job_id".into(), json!(jid));
        r.data.insert("started".into(), json!(true));
        r.data.insert("finished".into(), json!(true));
        r.data.insert("results_file".into(), json!(job.dir));
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::remote::parse_many;

    #[test]
    fn job_files_read_back_exactly_whatever_they_hold() {
        let out = b"2 /root/.ansible_async/j1/rc\n0\n8 /root/.ansible_async/j1/stdout\na\nb 2 \n\n0 /root/.ansible_async/j1/stderr\n";
        let j = JobFiles::from_files(parse_many(out)).unwrap();
        assert_eq!(j.dir, "/root/.ansible_async/j1");
        assert_eq!(j.text("rc").as_deref(), Some("0"));
        assert_eq!(j.files["stdout"], b"a\nb 2 \n\n");
        assert_eq!(j.files["stderr"], b"");
        assert!(j.text("end").is_none());
        assert!(JobFiles::from_files(vec![]).is_none());
    }

    #[test]
    fn job_ids_look_like_ansibles() {
        let j = AsyncJob::new(10);
        let (head, pid) = j.jid.split_once('.').unwrap();
        assert_eq!(head.len(), 13);
        assert!(head.starts_with('j') && pid.parse::<u32>().is_ok());
    }
}
