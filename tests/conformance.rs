//! Conformance suite: every case under `tests/conformance/` is run by `ansible-playbook`
//! and by `spark-openstack play` against the same real sshd hosts, twice each (the second
//! run checks idempotency), and the outcomes must agree: exit code, per-host PLAY RECAP
//! counts, and the files each run leaves in every host's root and in the controller
//! scratch directory. Deliberate differences are declared in the case's `case.yml`, each
//! with a reason (see tests/conformance/README.md).
//!
//! `ANSIBLE_PLAYBOOK_BIN` names the ansible-playbook to compare with. Without it the test
//! skips with a message, except under CI (`CI` set), where a missing Ansible is a failure:
//! CI must never pass by not comparing. `CONFORMANCE_FILTER=substring` runs only the
//! matching cases; `CONFORMANCE_JOBS=N` (default 2) runs N cases at once, each on its own
//! hosts.

mod support;

#[path = "conformance/runner/mod.rs"]
mod runner;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use runner::{Case, Outcome, Tool};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

#[test]
fn conformance_with_ansible_playbook() {
    let Some(ansible) = std::env::var_os("ANSIBLE_PLAYBOOK_BIN").map(PathBuf::from) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but ANSIBLE_PLAYBOOK_BIN is not: the conformance suite must run in CI \
             (install ansible-core in a venv and point ANSIBLE_PLAYBOOK_BIN at its ansible-playbook)"
        );
        eprintln!(
            "skipping the conformance suite: set ANSIBLE_PLAYBOOK_BIN to an ansible-playbook \
             (ansible-core >= 2.17) to compare with"
        );
        return;
    };
    let filter = std::env::var("CONFORMANCE_FILTER").unwrap_or_default();
    let cases = Case::load_all(&cases_dir(), &filter)
        .unwrap_or_else(|e| panic!("cannot load the conformance cases: {e}"));
    assert!(!cases.is_empty(), "no conformance case matches '{filter}'");

    // Cases run on `workers` testbeds of their own at once (each with its own hosts,
    // controller scratch directory and Ansible dirs), taking the next case when one ends.
    // Two by default: ansible-playbook keeps a core busy, and CI has two.
    let workers = std::env::var("CONFORMANCE_JOBS")
        .ok()
        .and_then(|j| j.parse::<usize>().ok())
        .unwrap_or(2)
        .clamp(1, cases.len());
    runner::reset_logs();
    let tools = [Tool::Ansible, Tool::Spark];
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let hosts = support::start(runner::HOSTS);
                let env = runner::Env::new(&hosts, ansible.clone());
                while let Some(case) = cases.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let outcome: Outcome = runner::compare(&env, case, &tools);
                    done.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((case.name.clone(), outcome));
                }
            });
        }
    });
    let mut rows = done.into_inner().unwrap_or_else(|e| e.into_inner());
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let report = runner::table(&rows);
    println!("{report}");
    let failed: Vec<&str> = rows
        .iter()
        .filter(|(_, o)| !o.problems.is_empty())
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "{} conformance case(s) differ from ansible-playbook: {}\n{report}",
        failed.len(),
        failed.join(", ")
    );
}
