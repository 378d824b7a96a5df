//! Ansible's default stdout callback (`plugins/callback/default.py`), reproduced.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use serde_json::Value;

use crate::executor::events::{EventSink, HostResult, HostStats, Stats, Status};
use crate::template::pyjson::dumps;

const GREEN: &str = "0;32";
const YELLOW: &str = "0;33";
const CYAN: &str = "0;36";
const RED: &str = "0;31";
const BRIGHT_RED: &str = "1;31";
const BRIGHT_PURPLE: &str = "1;35";
const PURPLE: &str = "0;35";

/// The default console output.
pub struct Console {
    verbosity: u8,
    color: bool,
    columns: usize,
    lock: Mutex<()>,
    /// The last task banner printed (name, handler), so a result of another task (free
    /// strategy) re-prints its banner first, as Ansible's `_last_task_banner` does.
    last_banner: Mutex<Option<(String, bool)>>,
    /// The live "waiting for hosts" line on stderr (TTY only).
    progress: Mutex<Option<indicatif::ProgressBar>>,
    /// Where the lines go: `None` is stdout (with warnings on stderr and the live line);
    /// a writer gets everything, warnings included, so a log file is the whole run.
    sink: Option<Mutex<Box<dyn Write + Send>>>,
}

impl Console {
    /// Colours and width follow stdout: colours only on a TTY without `NO_COLOR`, width
    /// 80 when not a TTY (Ansible's `max(79, cols - 1)` stars).
    pub fn new(verbosity: u8) -> Self {
        let tty = std::io::stdout().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let width = if tty {
            terminal_width().unwrap_or(80)
        } else {
            80
        };
        Console {
            verbosity,
            color,
            columns: width.saturating_sub(1).max(79),
            lock: Mutex::new(()),
            last_banner: Mutex::new(None),
            progress: Mutex::new(None),
            sink: None,
        }
    }

    /// The same output written to `out` instead of stdout (a log file, a buffer), as it
    /// looks when stdout is not a terminal: no colours, 80 columns, no live line. Warnings
    /// go to `out` too, so the writer holds the whole run. Applications that show their own
    /// progress keep the full log this way without the engine knowing about files.
    pub fn to_writer(verbosity: u8, out: Box<dyn Write + Send>) -> Self {
        Console {
            verbosity,
            color: false,
            columns: 79,
            lock: Mutex::new(()),
            last_banner: Mutex::new(None),
            progress: Mutex::new(None),
            sink: Some(Mutex::new(out)),
        }
    }

    /// Writes one line to the writer given to [`Console::to_writer`]; false for stdout.
    fn write_sink(&self, text: &str) -> bool {
        let Some(sink) = &self.sink else {
            return false;
        };
        if let Ok(mut out) = sink.lock() {
            let _ = writeln!(out, "{text}");
            let _ = out.flush();
        }
        true
    }

    fn paint(&self, text: &str, color: Option<&str>) -> String {
        match (self.color, color) {
            (true, Some(c)) => format!("\x1b[{c}m{text}\x1b[0m"),
            _ => text.to_string(),
        }
    }

    fn line(&self, text: &str, color: Option<&str>) {
        let _g = self.lock.lock();
        if self.write_sink(&self.paint(text, color)) {
            return;
        }
        let write = || {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", self.paint(text, color));
        };
        match self
            .progress
            .lock()
            .ok()
            .as_deref()
            .and_then(|p| p.as_ref().cloned())
        {
            Some(pb) => pb.suspend(write),
            None => write(),
        }
    }

    fn banner(&self, msg: &str) {
        let msg = msg.trim();
        let stars = self.columns.saturating_sub(msg.chars().count()).max(3);
        self.line(&format!("\n{msg} {}", "*".repeat(stars)), None);
    }

    /// The result as the callback shows it: internal keys dropped, `debug` reduced to
    /// what it was asked to print.
    fn clean(&self, r: &HostResult) -> Value {
        let mut v = r.result.clone();
        if let Some(m) = v.as_object_mut() {
            // Ansible's callbacks get `TaskResult.clean_copy()`, without these keys.
            m.retain(|k, _| !k.starts_with("_ansible") && k != "failed" && k != "skipped");
            if self.verbosity < 3 {
                m.remove("invocation");
                m.remove("diff");
            }
            if r.action == "debug" {
                if m.contains_key("msg") {
                    m.retain(|k, _| {
                        matches!(
                            k.as_str(),
                            "msg" | "exception" | "warnings" | "deprecations"
                        )
                    });
                } else {
                    for k in ["changed", "failed", "skipped", "invocation", "skip_reason"] {
                        m.remove(k);
                    }
                }
            }
            if r.item.is_some() {
                m.remove("ansible_loop_var");
            }
        }
        v
    }

    fn dump(&self, r: &HostResult) -> String {
        let indent = (r.verbose_always || self.verbosity > 2).then_some(4);
        dumps(&self.clean(r), indent)
    }

    fn host_label(r: &HostResult) -> String {
        match &r.delegate {
            Some(d) if d != &r.host => match &r.delegate_address {
                Some(a) => format!("{} -> {d}({a})", r.host),
                None => format!("{} -> {d}", r.host),
            },
            _ => r.host.clone(),
        }
    }
}

fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills a plain `winsize` struct for a valid fd; errors are checked.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
            Some(ws.ws_col as usize)
        } else {
            None
        }
    }
}

impl EventSink for Console {
    fn play_start(&self, name: &str, check_mode: bool) {
        let mut msg = if name.trim().is_empty() {
            "PLAY".to_string()
        } else {
            format!("PLAY [{name}]")
        };
        if check_mode {
            msg.push_str(" [CHECK MODE]");
        }
        self.banner(&msg);
    }

    fn task_start(&self, name: &str, handler: bool) {
        if let Ok(mut last) = self.last_banner.lock() {
            *last = Some((name.to_string(), handler));
        }
        let kind = if handler { "RUNNING HANDLER" } else { "TASK" };
        self.banner(&format!("{kind} [{name}]"));
    }

    fn host_result(&self, r: &HostResult) {
        let stale = self
            .last_banner
            .lock()
            .ok()
            .and_then(|l| l.clone())
            .filter(|(name, _)| name != &r.task);
        if let Some((_, handler)) = stale {
            self.task_start(&r.task, handler);
        }
        if r.loop_summary {
            if r.status == Status::Skipped {
                self.line(&format!("skipping: [{}]", r.host), Some(CYAN));
            }
            if r.ignored {
                self.line("...ignoring", Some(CYAN));
            }
            return;
        }
        if let Some(d) = r.result.get("diff") {
            self.print_diff(d);
        }
        let label = Self::host_label(r);
        let show = r.verbose_always || self.verbosity > 0;
        let (text, color) = match (r.status, &r.item) {
            (Status::Failed, None) => (
                format!("fatal: [{label}]: FAILED! => {}", self.dump(r)),
                RED,
            ),
            (Status::Failed, Some(item)) => (
                format!("failed: [{label}] (item={item}) => {}", self.dump(r)),
                RED,
            ),
            (Status::Unreachable, item) => {
                let item = item
                    .as_ref()
                    .map(|i| format!(" (item={i})"))
                    .unwrap_or_default();
                (
                    format!("fatal: [{label}]: UNREACHABLE!{item} => {}", self.dump(r)),
                    BRIGHT_RED,
                )
            }
            (status, item) => {
                let (word, color) = match status {
                    Status::Changed => ("changed", YELLOW),
                    Status::Skipped => ("skipping", CYAN),
                    _ => ("ok", GREEN),
                };
                let mut t = format!("{word}: [{label}]");
                if let Some(i) = item {
                    t.push_str(&format!(" => (item={i})"));
                    if status == Status::Skipped {
                        // Ansible's item-skipped line ends with a space.
                        t.push(' ');
                    }
                }
                if show && !(status == Status::Skipped && self.verbosity == 0) {
                    t.push_str(&format!(" => {}", self.dump(r)));
                }
                (t, color)
            }
        };
        self.line(&text, Some(color));
        if r.ignored {
            self.line("...ignoring", Some(CYAN));
        }
    }

    fn notice(&self, msg: &str) {
        if msg == "NO MORE HOSTS LEFT" {
            self.banner(msg);
        } else {
            self.line(msg, Some(CYAN));
        }
    }

    fn warning(&self, msg: &str) {
        let _g = self.lock.lock();
        let text = format!("[WARNING]: {msg}");
        if self.write_sink(&text) {
            return;
        }
        let text = if std::io::stderr().is_terminal() && self.color {
            format!("\x1b[{PURPLE}m{text}\x1b[0m")
        } else {
            text
        };
        eprintln!("{text}");
    }

    fn waiting(&self, pending: &[String]) {
        if self.sink.is_some() || !std::io::stderr().is_terminal() {
            return;
        }
        let Ok(mut slot) = self.progress.lock() else {
            return;
        };
        if pending.is_empty() {
            if let Some(pb) = slot.take() {
                pb.finish_and_clear();
            }
            return;
        }
        let pb = slot.get_or_insert_with(|| {
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            pb.enable_steady_tick(std::time::Duration::from_millis(120));
            pb
        });
        let mut names = pending
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if pending.len() > 5 {
            names.push_str(&format!(" and {} more", pending.len() - 5));
        }
        pb.set_message(format!("waiting for {} host(s): {names}", pending.len()));
    }

    fn recap(&self, stats: &Stats) {
        self.banner("PLAY RECAP");
        for (host, s) in stats {
            self.line(&self.recap_line(host, s), None);
        }
        self.line("", None);
    }
}

impl Console {
    /// `--diff`: a unified diff of the before/after text, as Ansible's `_get_diff`.
    fn print_diff(&self, d: &Value) {
        if let Some(prepared) = d.get("prepared").and_then(Value::as_str) {
            for line in prepared.lines() {
                self.line(line, None);
            }
            return;
        }
        let text = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (before, after) = (text("before"), text("after"));
        if before == after {
            return;
        }
        let diff = similar::TextDiff::from_lines(&before, &after);
        let body = diff
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("before: {}", text("before_header")),
                &format!("after: {}", text("after_header")),
            )
            .to_string();
        for line in body.lines() {
            let color = if line.starts_with('+') && !line.starts_with("+++") {
                Some(GREEN)
            } else if line.starts_with('-') && !line.starts_with("---") {
                Some(RED)
            } else if line.starts_with("@@") {
                Some(CYAN)
            } else {
                None
            };
            self.line(line, color);
        }
        self.line("", None);
    }

    fn recap_line(&self, host: &str, s: &HostStats) -> String {
        let field = |name: &str, n: u32, color: &str| {
            let text = format!("{name}={n:<4}");
            if n > 0 {
                self.paint(&text, Some(color))
            } else {
                text
            }
        };
        let host_color = if s.failed > 0 || s.unreachable > 0 {
            RED
        } else if s.changed > 0 {
            YELLOW
        } else {
            GREEN
        };
        let host = if self.color {
            format!("{:<37}", self.paint(host, Some(host_color)))
        } else {
            format!("{host:<26}")
        };
        format!(
            "{host} : {} {} {} {} {} {} {}",
            field("ok", s.ok, GREEN),
            field("changed", s.changed, YELLOW),
            field("unreachable", s.unreachable, BRIGHT_RED),
            field("failed", s.failed, RED),
            field("skipped", s.skipped, CYAN),
            field("rescued", s.rescued, GREEN),
            field("ignored", s.ignored, BRIGHT_PURPLE),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recap_line_matches_ansible() {
        let c = Console {
            verbosity: 0,
            color: false,
            columns: 79,
            lock: Mutex::new(()),
            last_banner: Mutex::new(None),
            progress: Mutex::new(None),
            sink: None,
        };
        let s = HostStats {
            ok: 2,
            changed: 1,
            ..Default::default()
        };
        assert_eq!(
            c.recap_line("web1", &s),
            "web1                       : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0   "
        );
    }

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn to_writer_is_the_plain_console_warnings_included() {
        let buf = Buf::default();
        let c = Console::to_writer(0, Box::new(buf.clone()));
        c.play_start("Set up", false);
        c.task_start("Install", false);
        c.host_result(&HostResult {
            host: "web1".into(),
            delegate: None,
            delegate_address: None,
            task: "Install".into(),
            action: "command".into(),
            status: Status::Failed,
            result: serde_json::json!({"msg": "boom", "rc": 1}),
            ignored: false,
            item: None,
            verbose_always: false,
            loop_summary: false,
        });
        c.warning("careful");
        c.waiting(&["web1".into()]);
        c.recap(&Stats::from([("web1".to_string(), HostStats::default())]));
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], format!("PLAY [Set up] {}", "*".repeat(66)));
        assert_eq!(lines[3], format!("TASK [Install] {}", "*".repeat(65)));
        assert_eq!(
            lines[4],
            r#"fatal: [web1]: FAILED! => {"msg": "boom", "rc": 1}"#
        );
        assert_eq!(lines[5], "[WARNING]: careful");
        assert!(lines[7].starts_with("PLAY RECAP *"), "{text}");
        assert!(!text.contains('\x1b'), "{text}");
        assert!(
            c.progress.lock().unwrap().is_none(),
            "no live line in a file"
        );
    }

    #[test]
    fn delegated_results_name_the_delegate_and_its_address() {
        let r = |delegate: Option<&str>, address: Option<&str>| HostResult {
            host: "master".into(),
            delegate: delegate.map(str::to_string),
            delegate_address: address.map(str::to_string),
            task: "t".into(),
            action: "command".into(),
            status: Status::Ok,
            result: serde_json::json!({}),
            ignored: false,
            item: None,
            verbose_always: false,
            loop_summary: false,
        };
        assert_eq!(Console::host_label(&r(None, None)), "master");
        assert_eq!(
            Console::host_label(&r(Some("slave1"), None)),
            "master -> slave1"
        );
        assert_eq!(
            Console::host_label(&r(Some("slave1"), Some("10.0.0.5"))),
            "master -> slave1(10.0.0.5)"
        );
        // Delegated to itself (a loop over hosts that includes it): no arrow.
        assert_eq!(
            Console::host_label(&r(Some("master"), Some("10.0.0.4"))),
            "master"
        );
    }
}
