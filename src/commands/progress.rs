//! What the cluster commands show while their playbooks run: one line per phase (cloud
//! resources, SSH reachable n/N, software configured n/N with the step being run), the
//! failing task of each failed host, and the full Ansible-style log in a file.
//!
//! The engine's full log (about 300 lines for a 1+2 launch) buries what a user of a
//! launcher wants to know: how far it is and, when it fails, where and why. So the run's
//! events go to two sinks ([`output`]): the engine's [`Console`] writing to a log file, and
//! [`Progress`], which turns events into phases through the pure [`Tracker`] and draws
//! them: indicatif lines on a terminal, one plain line per phase start and end otherwise
//! (CI logs, pipes). `-v` keeps today's full console on stdout as well.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::ProgressBar;
use serde_json::Value;

use crate::cluster::report::{self, Phases};
use playbook_engine::executor::events::{EventSink, HostResult, Stats, Status};
use playbook_engine::output::{Console, Tee};

/// The phases of a cluster command, in the order they happen. A command may have only
/// some (destroy: only the cloud).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// The plays on the controller (the cluster module: groups, servers, addresses).
    Cloud,
    /// Until every node has answered.
    Ssh,
    /// Everything after that on the nodes (keys, roles).
    Software,
}

impl Phase {
    /// The phase's name in the summary's time table.
    pub fn label(self) -> &'static str {
        match self {
            Phase::Cloud => "cloud resources",
            Phase::Ssh => "SSH",
            Phase::Software => "software",
        }
    }
}

/// A phase boundary, with the line to show for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Started(Phase, String),
    /// The phase's counts at its end (the display adds its time).
    Ended(Phase, String),
}

/// Turns a run's events into phases and counts; no I/O, no clock, so it is tested by
/// feeding it events.
///
/// The phases come from the playbooks' shape, not from play or task names (users may edit
/// their copies): a play on `localhost` only is the cloud phase; a play on nodes is the SSH
/// phase until every node known has answered (an ok or changed result of its own), then
/// the software phase. Phases only move forward. The nodes are the hosts of the node plays
/// and, as soon as the cluster module reports it, the cluster's servers, so the master
/// answering first does not end the SSH phase while slaves are still booting.
#[derive(Default)]
pub struct Tracker {
    phase: Option<Phase>,
    nodes: BTreeSet<String>,
    reachable: BTreeSet<String>,
    /// The task running now and the hosts that have finished it.
    step: Option<String>,
    step_done: BTreeSet<String>,
    /// The last failure of each host that was not ignored.
    failures: BTreeMap<String, HostResult>,
    stats: Option<Stats>,
    /// What the cloud phase did, from the cluster module's result.
    cloud: Option<String>,
}

impl Tracker {
    pub fn phase(&self) -> Option<Phase> {
        self.phase
    }

    pub fn play_hosts(&mut self, hosts: &[String]) -> Vec<Change> {
        if hosts.iter().all(|h| h == "localhost") {
            return self.enter(Phase::Cloud);
        }
        self.nodes.extend(hosts.iter().cloned());
        if self.all_reachable() {
            self.enter(Phase::Software)
        } else {
            self.enter(Phase::Ssh)
        }
    }

    pub fn task_start(&mut self, name: &str) {
        self.step = Some(name.to_string());
        self.step_done.clear();
    }

    pub fn host_result(&mut self, r: &HostResult) -> Vec<Change> {
        if matches!(r.status, Status::Failed | Status::Unreachable) && !r.ignored {
            // A loop's overall result says less than the failed item already recorded.
            let keep_item =
                r.loop_summary && self.failures.get(&r.host).is_some_and(|f| f.task == r.task);
            if !keep_item {
                self.failures.insert(r.host.clone(), r.clone());
            }
        }
        if r.item.is_none() {
            self.step_done.insert(r.host.clone());
        }
        if let Some(c) = r.result.get("cluster").filter(|c| c.is_object()) {
            self.learn_cluster(c, &r.result);
        }
        let own = r.delegate.as_ref().is_none_or(|d| d == &r.host);
        if own
            && r.host != "localhost"
            && matches!(r.status, Status::Ok | Status::Changed)
            && self.reachable.insert(r.host.clone())
            && self.phase == Some(Phase::Ssh)
            && self.all_reachable()
        {
            return self.enter(Phase::Software);
        }
        Vec::new()
    }

    /// The end of the run: the phase running now ends.
    pub fn recap(&mut self, stats: &Stats) -> Vec<Change> {
        self.stats = Some(stats.clone());
        match self.phase {
            Some(p) => vec![Change::Ended(p, self.counts(p))],
            None => Vec::new(),
        }
    }

    /// The live line of the phase running now.
    pub fn status(&self) -> String {
        match self.phase {
            None | Some(Phase::Cloud) => "cloud resources".into(),
            Some(Phase::Ssh) => self.counts(Phase::Ssh),
            Some(Phase::Software) => {
                // A host is configured when the last play ends for it, so the live line
                // counts the hosts done with the step being run instead.
                let mut s = format!("configuring software on {} host(s)", self.nodes.len());
                if let Some(step) = &self.step {
                    let done = self.step_done.intersection(&self.nodes).count();
                    s.push_str(&format!(": {step} ({done}/{})", self.nodes.len()));
                }
                s
            }
        }
    }

    /// The last failure of every host that failed in the end (a failure a `rescue` handled
    /// is not one), by host name.
    pub fn failures(&self) -> Vec<&HostResult> {
        self.failures
            .values()
            .filter(|f| match &self.stats {
                Some(stats) => stats
                    .get(&f.host)
                    .is_some_and(|s| s.failed > 0 || s.unreachable > 0),
                None => true,
            })
            .collect()
    }

    fn all_reachable(&self) -> bool {
        !self.nodes.is_empty() && self.nodes.is_subset(&self.reachable)
    }

    fn enter(&mut self, next: Phase) -> Vec<Change> {
        let mut changes = Vec::new();
        match self.phase {
            Some(now) if now >= next => return changes,
            Some(now) => changes.push(Change::Ended(now, self.counts(now))),
            None => {}
        }
        self.phase = Some(next);
        let n = self.nodes.len();
        changes.push(Change::Started(
            next,
            match next {
                Phase::Cloud => "cloud resources".into(),
                Phase::Ssh => format!("waiting for SSH on {n} host(s)"),
                Phase::Software => format!("configuring software on {n} host(s)"),
            },
        ));
        changes
    }

    /// The counts a phase ends with.
    fn counts(&self, p: Phase) -> String {
        let n = self.nodes.len();
        match p {
            Phase::Cloud => match &self.cloud {
                Some(c) => format!("cloud resources: {c}"),
                None if self.failures.contains_key("localhost") => "cloud resources: failed".into(),
                None => "cloud resources: done".into(),
            },
            Phase::Ssh => format!(
                "SSH reachable {}/{n}",
                self.reachable.intersection(&self.nodes).count()
            ),
            Phase::Software => {
                let failed: BTreeSet<&str> =
                    self.failures().iter().map(|f| f.host.as_str()).collect();
                let ok = self
                    .nodes
                    .iter()
                    .filter(|h| !failed.contains(h.as_str()))
                    .count();
                format!("software configured {ok}/{n} host(s)")
            }
        }
    }

    /// The cluster module's result: the servers (they are the nodes to wait for) and what
    /// it created or removed.
    fn learn_cluster(&mut self, cluster: &Value, result: &Value) {
        let servers: Vec<&Value> = cluster["master"]
            .as_object()
            .map(|_| &cluster["master"])
            .into_iter()
            .chain(cluster["slaves"].as_array().into_iter().flatten())
            .collect();
        let names = servers.iter().filter_map(|s| s["name"].as_str());
        self.nodes.extend(names.map(String::from));
        let mut parts = Vec::new();
        if !servers.is_empty() {
            let active = servers.iter().filter(|s| s["status"] == "ACTIVE").count();
            parts.push(format!("{active}/{} server(s) ACTIVE", servers.len()));
        }
        for key in ["created", "replaced", "removed"] {
            let n = result[key].as_array().map_or(0, Vec::len);
            if n > 0 {
                parts.push(format!("{n} {key}"));
            }
        }
        if parts.is_empty() {
            parts.push("nothing left".into());
        }
        self.cloud = Some(parts.join(", "));
    }
}

/// Draws the [`Tracker`]'s phases: indicatif lines (among [`report::bars`]) on a
/// terminal, plain lines on stdout otherwise; with `-v` nothing (the console shows the
/// full log), but the phases are still timed for the summary.
pub struct Progress {
    quiet: bool,
    tty: bool,
    inner: Mutex<Inner>,
}

struct Inner {
    tracker: Tracker,
    phases: Phases,
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            tty: std::io::stderr().is_terminal(),
            inner: Mutex::new(Inner {
                tracker: Tracker::default(),
                phases: Phases::start(),
                bar: None,
            }),
        }
    }

    /// Elapsed time per phase, in order.
    pub fn phases(&self) -> Vec<(String, Duration)> {
        self.inner
            .lock()
            .map(|i| i.phases.done.clone())
            .unwrap_or_default()
    }

    /// The failing task, host and output of every host that failed, as the console showed
    /// them in the log.
    pub fn failure_report(&self) -> Vec<String> {
        let Ok(inner) = self.inner.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for f in inner.tracker.failures() {
            let buf = SharedBuf::default();
            Console::to_writer(0, Box::new(buf.clone())).host_result(f);
            out.push(format!("failed: TASK [{}] on {}", f.task, f.host));
            out.extend(buf.text().lines().map(|l| format!("  {l}")));
        }
        out
    }

    /// Applies a tracker's changes, then refreshes the live line.
    fn apply(&self, f: impl FnOnce(&mut Tracker) -> Vec<Change>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let changes = f(&mut inner.tracker);
        for change in changes {
            match change {
                Change::Ended(phase, counts) => {
                    inner.phases.mark(phase.label());
                    let secs = inner.phases.done.last().map_or(0.0, |d| d.1.as_secs_f64());
                    let line = format!("{counts} ({secs:.1} s)");
                    match inner.bar.take() {
                        Some(bar) => report::finish(&bar, format!("✓ {line}")),
                        None if !self.quiet && !self.tty => plain(&line),
                        None => {}
                    }
                }
                Change::Started(_, what) if self.quiet => drop(what),
                Change::Started(_, what) if self.tty => {
                    inner.bar = Some(report::spinner(&what));
                }
                Change::Started(_, what) => plain(&format!("{what} ...")),
            }
        }
        if let Some(bar) = &inner.bar {
            bar.set_message(inner.tracker.status());
        }
    }
}

fn plain(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

impl EventSink for Progress {
    fn play_start(&self, _: &str, _: bool) {}
    fn play_hosts(&self, hosts: &[String]) {
        self.apply(|t| t.play_hosts(hosts));
    }
    fn task_start(&self, name: &str, _: bool) {
        self.apply(|t| {
            t.task_start(name);
            Vec::new()
        });
    }
    fn host_result(&self, r: &HostResult) {
        self.apply(|t| t.host_result(r));
    }
    fn notice(&self, _: &str) {}
    fn warning(&self, msg: &str) {
        // A node play with no hosts is expected here (`--cloud-only`, a cluster without
        // slaves); the log keeps the warning.
        if !self.quiet && !msg.starts_with("Could not match supplied host pattern") {
            report::bars().suspend(|| eprintln!("[WARNING]: {msg}"));
        }
    }
    fn recap(&self, stats: &Stats) {
        self.apply(|t| t.recap(stats));
    }
}

/// A writer whose bytes can be read back (the failure lines, formatted by the console).
#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn text(&self) -> String {
        self.0
            .lock()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A cluster command's output: the sink the engine gets, the progress it feeds and the log
/// file it writes.
pub struct Output {
    pub sink: Arc<dyn EventSink>,
    pub progress: Arc<Progress>,
    /// The full log; `None` when it could not be created (then the console shows it all).
    pub log: Option<PathBuf>,
}

/// The sinks for `command` on `cluster`: the full console log to a new file under the
/// state directory, the progress lines, and with `verbose` (or without a log file) the
/// console on stdout as well.
pub fn output(cluster: &str, command: &str, verbose: u8) -> Output {
    let log = crate::cluster::inventory::state_dir()
        .map(|d| d.join("logs"))
        .ok_or_else(|| "no home directory".to_string())
        .and_then(|dir| open_log(&dir, cluster, command));
    let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
    let path = match log {
        Ok((path, file)) => {
            sinks.push(Arc::new(Console::to_writer(verbose, Box::new(file))));
            Some(path)
        }
        Err(e) => {
            eprintln!("[WARNING]: no log file ({e}); the full log follows");
            None
        }
    };
    let full_console = verbose > 0 || path.is_none();
    if full_console {
        sinks.push(Arc::new(Console::new(verbose)));
    }
    let progress = Arc::new(Progress::new(full_console));
    sinks.push(progress.clone());
    Output {
        sink: Arc::new(Tee(sinks)),
        progress,
        log: path,
    }
}

/// Creates `<cluster>-<command>-<local time>.log` in `dir`, readable by its owner only
/// (it holds command output); a second run in the same second gets a suffix.
pub fn open_log(
    dir: &Path,
    cluster: &str,
    command: &str,
) -> Result<(PathBuf, std::fs::File), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    for n in 0..100 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let path = dir.join(format!("{cluster}-{command}-{stamp}{suffix}.log"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Err(format!("{}: too many logs this second", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use playbook_engine::executor::events::HostStats;
    use serde_json::json;

    fn result(host: &str, task: &str, status: Status, result: Value) -> HostResult {
        HostResult {
            host: host.into(),
            delegate: None,
            delegate_address: None,
            task: task.into(),
            action: "command".into(),
            status,
            result,
            ignored: false,
            item: None,
            verbose_always: false,
            loop_summary: false,
        }
    }

    fn hosts(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    const NODES: [&str; 3] = ["demo-master", "demo-slave-1", "demo-slave-2"];

    /// A launch of 1+2 as launch.yml and configure.yml emit it.
    fn launched(t: &mut Tracker) -> Vec<Change> {
        let mut changes = t.play_hosts(&hosts(&["localhost"]));
        t.task_start("Converge security groups, servers, floating IP and volumes");
        let cluster = json!({
            "cluster": {
                "master": {"name": "demo-master", "status": "ACTIVE"},
                "slaves": [{"name": "demo-slave-1", "status": "ACTIVE"},
                           {"name": "demo-slave-2", "status": "ACTIVE"}],
            },
            "created": ["demo-master", "demo-slave-1", "demo-slave-2"],
        });
        changes.extend(t.host_result(&result("localhost", "Converge", Status::Changed, cluster)));
        // Prepare the master: only the master answers yet.
        changes.extend(t.play_hosts(&hosts(&["demo-master"])));
        t.task_start("Wait until the master answers SSH");
        changes.extend(t.host_result(&result("demo-master", "Wait", Status::Ok, json!({}))));
        assert_eq!(t.phase(), Some(Phase::Ssh), "slaves are not reachable yet");
        assert_eq!(t.status(), "SSH reachable 1/3");
        changes.extend(t.play_hosts(&hosts(&NODES)));
        t.task_start("Wait until the node answers SSH");
        changes.extend(t.host_result(&result("demo-slave-2", "Wait", Status::Ok, json!({}))));
        changes.extend(t.host_result(&result("demo-slave-1", "Wait", Status::Ok, json!({}))));
        changes
    }

    #[test]
    fn a_launch_goes_through_the_three_phases_with_counts() {
        let mut t = Tracker::default();
        let changes = launched(&mut t);
        assert_eq!(
            changes,
            [
                Change::Started(Phase::Cloud, "cloud resources".into()),
                Change::Ended(
                    Phase::Cloud,
                    "cloud resources: 3/3 server(s) ACTIVE, 3 created".into()
                ),
                Change::Started(Phase::Ssh, "waiting for SSH on 3 host(s)".into()),
                Change::Ended(Phase::Ssh, "SSH reachable 3/3".into()),
                Change::Started(Phase::Software, "configuring software on 3 host(s)".into()),
            ]
        );
        // The software play starts on hosts that all answered: no phase change.
        assert!(t.play_hosts(&hosts(&NODES)).is_empty());
        t.task_start("spark : Install Spark");
        t.host_result(&result(
            "demo-slave-1",
            "spark : Install Spark",
            Status::Changed,
            json!({}),
        ));
        assert_eq!(
            t.status(),
            "configuring software on 3 host(s): spark : Install Spark (1/3)"
        );
        let stats: Stats = NODES
            .iter()
            .map(|h| (h.to_string(), HostStats::default()))
            .collect();
        assert_eq!(
            t.recap(&stats),
            [Change::Ended(
                Phase::Software,
                "software configured 3/3 host(s)".into()
            )]
        );
        assert!(t.failures().is_empty());
    }

    #[test]
    fn the_failing_task_of_each_failed_host_is_kept_unless_ignored_or_rescued() {
        let mut t = Tracker::default();
        launched(&mut t);
        let mut ignored = result("demo-master", "probe", Status::Failed, json!({"msg": "no"}));
        ignored.ignored = true;
        t.host_result(&ignored);
        // Rescued on slave-1 (the recap shows no failure), real on slave-2.
        t.host_result(&result(
            "demo-slave-1",
            "try",
            Status::Failed,
            json!({"msg": "x"}),
        ));
        let boom = json!({"msg": "Could not find '/nonexistent'"});
        t.host_result(&result("demo-slave-2", "spark : Get", Status::Failed, boom));
        let mut stats: Stats = NODES
            .iter()
            .map(|h| (h.to_string(), HostStats::default()))
            .collect();
        stats.get_mut("demo-slave-1").unwrap().rescued = 1;
        stats.get_mut("demo-slave-2").unwrap().failed = 1;
        let end = t.recap(&stats);
        assert_eq!(
            end,
            [Change::Ended(
                Phase::Software,
                "software configured 2/3 host(s)".into()
            )]
        );
        let failed: Vec<(&str, &str)> = t
            .failures()
            .iter()
            .map(|f| (f.host.as_str(), f.task.as_str()))
            .collect();
        assert_eq!(failed, [("demo-slave-2", "spark : Get")]);
    }

    #[test]
    fn a_node_that_never_answers_ends_the_run_in_the_ssh_phase() {
        let mut t = Tracker::default();
        t.play_hosts(&hosts(&["localhost"]));
        t.play_hosts(&hosts(&NODES));
        t.host_result(&result("demo-master", "Wait", Status::Ok, json!({})));
        // A result delegated to the controller proves nothing about the node.
        let mut delegated = result("demo-slave-1", "fetch", Status::Ok, json!({}));
        delegated.delegate = Some("localhost".into());
        t.host_result(&delegated);
        t.host_result(&result(
            "demo-slave-1",
            "Wait",
            Status::Failed,
            json!({"msg": "timed out waiting for ssh"}),
        ));
        let mut stats = Stats::new();
        stats.insert(
            "demo-slave-1".into(),
            HostStats {
                failed: 1,
                ..Default::default()
            },
        );
        assert_eq!(
            t.recap(&stats),
            [Change::Ended(Phase::Ssh, "SSH reachable 1/3".into())]
        );
        assert_eq!(t.failures().len(), 1);
    }

    #[test]
    fn destroy_is_one_cloud_phase() {
        let mut t = Tracker::default();
        t.play_hosts(&hosts(&["localhost"]));
        t.host_result(&result(
            "localhost",
            "Delete",
            Status::Changed,
            json!({"cluster": {"master": null, "slaves": []}, "removed": ["a", "b"]}),
        ));
        assert_eq!(
            t.recap(&Stats::new()),
            [Change::Ended(
                Phase::Cloud,
                "cloud resources: 2 removed".into()
            )]
        );
    }

    #[test]
    fn a_cloud_failure_ends_the_cloud_phase_as_failed() {
        let mut t = Tracker::default();
        t.play_hosts(&hosts(&["localhost"]));
        let fault = json!({"msg": "could not bring up 1 server(s): demo-slave-1: ERROR"});
        t.host_result(&result("localhost", "Converge", Status::Failed, fault));
        let stats = Stats::from([(
            "localhost".to_string(),
            HostStats {
                failed: 1,
                ..Default::default()
            },
        )]);
        assert_eq!(
            t.recap(&stats),
            [Change::Ended(
                Phase::Cloud,
                "cloud resources: failed".into()
            )]
        );
        assert_eq!(t.failures().len(), 1);
    }

    #[test]
    fn the_failure_report_shows_the_console_line() {
        let p = Progress::new(true);
        p.play_hosts(&hosts(&NODES));
        p.host_result(&result(
            "demo-master",
            "spark : Get the Spark archive",
            Status::Failed,
            json!({"msg": "Could not find or access '/nonexistent.tgz'"}),
        ));
        p.recap(&Stats::from([(
            "demo-master".to_string(),
            HostStats {
                failed: 1,
                ..Default::default()
            },
        )]));
        assert_eq!(
            p.failure_report(),
            [
                "failed: TASK [spark : Get the Spark archive] on demo-master",
                r#"  fatal: [demo-master]: FAILED! => {"msg": "Could not find or access '/nonexistent.tgz'"}"#,
            ]
        );
        assert_eq!(p.phases().len(), 1, "the SSH phase was timed");
    }

    #[test]
    fn logs_are_private_and_never_overwritten() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let (a, _) = open_log(&logs, "demo", "launch").unwrap();
        let (b, _) = open_log(&logs, "demo", "launch").unwrap();
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("demo-launch-") && name.ends_with(".log"),
            "{name}"
        );
        let mode = std::fs::metadata(&a).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mode = std::fs::metadata(&logs).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
