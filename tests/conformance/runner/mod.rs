//! The machinery of the conformance suite: the environment both tools run in, running one
//! case with one tool, and comparing the outcomes.

pub mod case;
pub mod recap;
pub mod snapshot;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub use case::Case;
use recap::Counts;
use snapshot::Snapshot;

use crate::support::Hosts;

/// Hosts per run: enough for serial, run_once and per-host differences, few enough that
/// ansible-playbook (a Python process per host and task) stays quick on 2 cores.
pub const HOSTS: usize = 2;
/// File differences listed per run; the logs under target/tmp/conformance have the rest.
const MAX_FILE_PROBLEMS: usize = 6;
/// The same parallelism for both tools.
const FORKS: &str = "5";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Tool {
    Ansible,
    Spark,
}

impl Tool {
    fn label(self) -> &'static str {
        match self {
            Tool::Ansible => "ansible",
            Tool::Spark => "spark",
        }
    }
}

/// Paths shared by every case: the hosts' roots, the inventory, the controller scratch
/// directory (for `delegate_to: localhost` and `fetch`), and Ansible's private dirs.
pub struct Env {
    dir: PathBuf,
    roots: Vec<(String, PathBuf)>,
    inventory: PathBuf,
    controller: PathBuf,
    ansible: PathBuf,
    logs: PathBuf,
}

/// Where every run's output goes, one directory per case (shared by the workers).
fn logs_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("conformance")
}

/// Empties the logs of an earlier suite run; once, before the workers start.
pub fn reset_logs() {
    let _ = std::fs::remove_dir_all(logs_dir());
}

impl Env {
    pub fn new(hosts: &Hosts, ansible: PathBuf) -> Env {
        let dir = hosts.tb.dir.clone();
        let roots = hosts
            .tb
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.root.clone()))
            .collect();
        // The testbed's inventory puts every host in `testhosts`; precedence cases also
        // need a group holding only the first host.
        let mut inv = std::fs::read_to_string(hosts.inventory()).expect("testbed inventory");
        inv.push_str("    first:\n      hosts:\n        host1: {}\n");
        let inventory = dir.join("conformance-inventory.yml");
        std::fs::write(&inventory, inv).expect("write the conformance inventory");
        let logs = logs_dir();
        Env {
            controller: dir.join("controller"),
            inventory,
            roots,
            dir,
            ansible,
            logs,
        }
    }

    /// Whether ansible-playbook can load collection `name` (`ansible.posix`): from the
    /// `ansible` package next to it, or from the usual collection paths.
    fn has_collection(&self, name: &str) -> bool {
        let rel: PathBuf = std::iter::once("ansible_collections")
            .chain(name.split('.'))
            .collect();
        let mut roots: Vec<PathBuf> = std::env::var("ANSIBLE_COLLECTIONS_PATH")
            .unwrap_or_default()
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        if let Some(home) = std::env::var_os("HOME") {
            roots.push(PathBuf::from(home).join(".ansible/collections"));
        }
        // A venv's bin/ansible-playbook sits next to lib/pythonX.Y/site-packages.
        if let Some(venv) = self.ansible.parent().and_then(Path::parent)
            && let Ok(libs) = std::fs::read_dir(venv.join("lib"))
        {
            roots.extend(libs.flatten().map(|l| l.path().join("site-packages")));
        }
        roots.iter().any(|r| r.join(&rel).is_dir())
    }

    fn clean(&self) {
        for (_, root) in &self.roots {
            snapshot::clear(root);
        }
        let _ = std::fs::remove_dir_all(&self.controller);
        std::fs::create_dir_all(&self.controller).expect("controller scratch directory");
    }

    fn snapshot(&self, case: &Case) -> Snapshot {
        let mut snap = Snapshot::new();
        for (name, root) in &self.roots {
            snapshot::add(&mut snap, name, root, &case.ignore);
        }
        snapshot::add(&mut snap, "controller", &self.controller, &case.ignore);
        snap
    }

    fn command(&self, tool: Tool, case: &Case, args: &[String]) -> Command {
        let mut c = match tool {
            Tool::Ansible => {
                let mut c = Command::new(&self.ansible);
                let d = &self.dir;
                c.env("ANSIBLE_HOST_KEY_CHECKING", "True")
                    .env("ANSIBLE_PIPELINING", "1")
                    .env("ANSIBLE_FORKS", FORKS)
                    .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
                    .env("ANSIBLE_HOME", d.join("ansible-home"))
                    .env("ANSIBLE_LOCAL_TEMP", d.join("ansible-local"))
                    .env("ANSIBLE_REMOTE_TMP", d.join("ansible-remote"))
                    .env("ANSIBLE_SSH_CONTROL_PATH_DIR", d.join("ansible-cp"))
                    .env("ANSIBLE_NOCOLOR", "1")
                    .env("ANSIBLE_FORCE_COLOR", "0")
                    .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
                    .env("ANSIBLE_DEPRECATION_WARNINGS", "0")
                    .env("ANSIBLE_LOCALHOST_WARNING", "0")
                    .env("ANSIBLE_CONFIG", d.join("no-ansible.cfg"));
                c
            }
            Tool::Spark => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_spark-openstack"));
                c.arg("play").env("NO_COLOR", "1");
                c
            }
        };
        c.arg("-i")
            .arg(&self.inventory)
            .args(["-f", FORKS, "-e"])
            .arg(format!("ctl={}", self.controller.display()))
            .args(args)
            .arg("playbook.yml")
            .current_dir(&case.dir);
        c
    }
}

/// What one run of one tool produced.
pub struct Run {
    pub code: i32,
    pub recap: BTreeMap<String, Counts>,
    pub files: Snapshot,
    pub took: Duration,
}

fn run(env: &Env, tool: Tool, case: &Case, n: usize, args: &[String]) -> Run {
    let started = Instant::now();
    let out = env
        .command(tool, case, args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.label()));
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = env.logs.join(&case.name);
    let _ = std::fs::create_dir_all(&log);
    let _ = std::fs::write(
        log.join(format!("{}-run{}.log", tool.label(), n + 1)),
        format!(
            "args: {args:?}\nexit: {:?}\n--- stdout\n{stdout}\n--- stderr\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ),
    );
    Run {
        code: out.status.code().unwrap_or(-1),
        recap: recap::parse(&stdout),
        files: env.snapshot(case),
        took,
    }
}

/// The result of one case: what differed (empty = conformant) and a summary for the table.
pub struct Outcome {
    /// Why the case did not run (a collection Ansible lacks), outside CI only.
    pub skipped: Option<String>,
    pub problems: Vec<String>,
    pub summary: String,
    pub times: Vec<Duration>,
}

/// Runs `case` with every tool (cleaning the hosts first) and compares each run of the
/// others with the first tool's.
pub fn compare(env: &Env, case: &Case, tools: &[Tool]) -> Outcome {
    let missing_collection = case
        .file
        .needs_collection
        .as_ref()
        .filter(|c| !env.has_collection(c))
        .map(|c| {
            format!("ansible-playbook lacks the {c} collection (pip install 'ansible==12.*')")
        });
    let missing_file = case
        .file
        .needs_env
        .as_ref()
        .filter(|v| !std::env::var_os(v).is_some_and(|f| Path::new(&f).is_file()))
        .map(|v| format!("{v} does not name a file (.ci/run downloads it)"));
    if let Some(why) = missing_collection.or(missing_file) {
        let in_ci = std::env::var_os("CI").is_some();
        return Outcome {
            problems: if in_ci { vec![why.clone()] } else { Vec::new() },
            skipped: (!in_ci).then_some(why),
            summary: String::new(),
            times: Vec::new(),
        };
    }
    let runs = case.runs();
    let mut results: Vec<Vec<Run>> = Vec::new();
    for &tool in tools {
        env.clean();
        let r = runs
            .iter()
            .enumerate()
            .map(|(n, args)| run(env, tool, case, n, args))
            .collect();
        results.push(r);
    }
    let mut problems = Vec::new();
    let base = &results[0];
    for (t, other) in tools.iter().zip(&results).skip(1) {
        for (n, (a, b)) in base.iter().zip(other).enumerate() {
            let which = format!("run {} ({})", n + 1, t.label());
            if a.code != b.code {
                problems.push(format!("{which}: exit {} vs {}", a.code, b.code));
            }
            if !case.ignores_recap() && a.recap != b.recap {
                problems.push(format!("{which}: recap {}", recap_diff(&a.recap, &b.recap)));
            }
            let files = snapshot::diff(&a.files, &b.files);
            for d in files.iter().take(MAX_FILE_PROBLEMS) {
                problems.push(format!("{which}: {d}"));
            }
            if files.len() > MAX_FILE_PROBLEMS {
                let more = files.len() - MAX_FILE_PROBLEMS;
                problems.push(format!("{which}: ... and {more} more file differences"));
            }
        }
    }
    let summary = base
        .iter()
        .map(|r| {
            r.recap
                .get("host1")
                .map(recap::show)
                .unwrap_or_else(|| format!("exit {}", r.code))
        })
        .collect::<Vec<_>>()
        .join(" | ");
    let times = results
        .iter()
        .map(|rs| rs.iter().map(|r| r.took).sum())
        .collect();
    Outcome {
        problems,
        skipped: None,
        summary,
        times,
    }
}

fn recap_diff(a: &BTreeMap<String, Counts>, b: &BTreeMap<String, Counts>) -> String {
    let hosts: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    hosts
        .into_iter()
        .filter(|h| a.get(*h) != b.get(*h))
        .map(|h| {
            let s = |m: &BTreeMap<String, Counts>| m.get(h).map(recap::show).unwrap_or("-".into());
            format!("[{h}: ansible {} / spark {}]", s(a), s(b))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The per-case table printed at the end, with every problem under its case.
pub fn table(rows: &[(String, Outcome)]) -> String {
    let mut t = comfy_table::Table::new();
    t.set_header([
        "case",
        "result",
        "host1 recap (ansible, per run)",
        "ansible s",
        "spark s",
    ]);
    let mut details = String::new();
    for (name, o) in rows {
        let secs = |i: usize| {
            o.times
                .get(i)
                .map(|d| format!("{:.1}", d.as_secs_f64()))
                .unwrap_or_default()
        };
        let result = match (&o.skipped, o.problems.is_empty()) {
            (Some(_), _) => "skipped",
            (None, true) => "same",
            (None, false) => "DIFFERS",
        };
        if let Some(why) = &o.skipped {
            details.push_str(&format!("{name}: skipped: {why}\n"));
        }
        t.add_row([name.as_str(), result, &o.summary, &secs(0), &secs(1)]);
        for p in &o.problems {
            details.push_str(&format!("{name}: {p}\n"));
        }
    }
    format!("{t}\n{details}")
}
