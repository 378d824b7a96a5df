//! Console output: Ansible's default callback, JSON lines, or nothing, and [`Tee`] to
//! send one run's events to several of them.
//!
//! Each presentation implements [`EventSink`], so `play`, the cluster commands and tests
//! pick one without the executor knowing. The default output matches
//! `ansible-playbook` line for line (banners, host lines, recap), because users compare
//! the two and scripts grep it.

mod console;

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use crate::executor::events::{EventSink, HostResult, Stats};

pub use console::Console;

/// One JSON object per line on stdout: `play_start`, `task_start`, `host_result`,
/// `notice`, `warning`, `recap`. Each carries `t`, the seconds since the run started
/// (millisecond resolution), so a script can time tasks and phases from the outside, as
/// Ansible's `profile_tasks` callback does (`bench/scale.sh` times a launch's phases so).
pub struct JsonLines {
    lock: Mutex<()>,
    started: Instant,
}

impl Default for JsonLines {
    fn default() -> Self {
        JsonLines {
            lock: Mutex::new(()),
            started: Instant::now(),
        }
    }
}

impl JsonLines {
    fn emit(&self, mut v: serde_json::Value) {
        // Timed under the lock, so the lines' times never go backwards.
        let _g = self.lock.lock();
        if let Some(m) = v.as_object_mut() {
            let ms = self.started.elapsed().as_millis() as f64;
            m.insert("t".into(), serde_json::json!(ms / 1000.0));
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
    }
}

impl EventSink for JsonLines {
    fn play_start(&self, name: &str, check_mode: bool) {
        self.emit(
            serde_json::json!({"event": "play_start", "name": name, "check_mode": check_mode}),
        );
    }
    fn task_start(&self, name: &str, handler: bool) {
        self.emit(serde_json::json!({"event": "task_start", "name": name, "handler": handler}));
    }
    fn host_result(&self, r: &HostResult) {
        let mut v = serde_json::to_value(r).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.insert("event".into(), "host_result".into());
        }
        self.emit(v);
    }
    fn notice(&self, msg: &str) {
        self.emit(serde_json::json!({"event": "notice", "msg": msg}));
    }
    fn warning(&self, msg: &str) {
        self.emit(serde_json::json!({"event": "warning", "msg": msg}));
    }
    fn recap(&self, stats: &Stats) {
        self.emit(serde_json::json!({"event": "recap", "hosts": stats}));
    }
}

/// Every event to each sink in turn: an application shows its own progress and keeps the
/// full console log in a file ([`Console::to_writer`]) from one run.
pub struct Tee(pub Vec<std::sync::Arc<dyn EventSink>>);

impl EventSink for Tee {
    fn play_start(&self, name: &str, check_mode: bool) {
        self.0.iter().for_each(|s| s.play_start(name, check_mode));
    }
    fn play_hosts(&self, hosts: &[String]) {
        self.0.iter().for_each(|s| s.play_hosts(hosts));
    }
    fn task_start(&self, name: &str, handler: bool) {
        self.0.iter().for_each(|s| s.task_start(name, handler));
    }
    fn host_result(&self, r: &HostResult) {
        self.0.iter().for_each(|s| s.host_result(r));
    }
    fn notice(&self, msg: &str) {
        self.0.iter().for_each(|s| s.notice(msg));
    }
    fn warning(&self, msg: &str) {
        self.0.iter().for_each(|s| s.warning(msg));
    }
    fn recap(&self, stats: &Stats) {
        self.0.iter().for_each(|s| s.recap(stats));
    }
    fn waiting(&self, pending: &[String]) {
        self.0.iter().for_each(|s| s.waiting(pending));
    }
}

/// Prints nothing but warnings (to stderr); for embedded runs that report on their own.
pub struct Quiet;

impl EventSink for Quiet {
    fn play_start(&self, _: &str, _: bool) {}
    fn task_start(&self, _: &str, _: bool) {}
    fn host_result(&self, _: &HostResult) {}
    fn notice(&self, _: &str) {}
    fn warning(&self, msg: &str) {
        eprintln!("[WARNING]: {msg}");
    }
    fn recap(&self, _: &Stats) {}
}
