//! Runs the real binary on fixture playbooks against several `local` hosts (each writing
//! into its own files under a temp dir) and checks recaps, exit codes, files written and
//! error messages. Expected recaps were checked against ansible-playbook 2.19.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/playbooks")
        .join(name)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn play(book: &str, hosts: &str, dir: &Path, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .args(["play", "-i", hosts, "-c", "local", "-e"])
        .arg(format!("dir={}", dir.display()))
        .args(extra)
        .arg(fixture(book))
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A recap line; `n` is ok, changed, unreachable, failed, skipped, rescued, ignored.
fn recap(host: &str, n: [u32; 7]) -> String {
    format!(
        "{host:<26} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={:<4}",
        n[0], n[1], n[2], n[3], n[4], n[5], n[6]
    )
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn loops_register_blocks_handlers_and_until() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("engine.yml", "a,b,", dir.path(), &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&recap("a", [8, 6, 0, 0, 1, 0, 0])),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&recap("b", [8, 6, 0, 0, 0, 1, 0])),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("skipping: [a] => (item=two) \n"));
    assert!(
        r.stdout
            .contains("FAILED - RETRYING: [a]: retry until the third attempt (5 retries left).")
    );
    assert_eq!(read(dir.path().join("a/items")), "one\nthree\n");
    assert_eq!(read(dir.path().join("b/rescued")), "fail on b only\n");
    assert!(dir.path().join("a/not-rescued").exists());
    assert!(!dir.path().join("b/not-rescued").exists());
    for h in ["a", "b"] {
        assert!(dir.path().join(h).join("always").exists());
        assert!(dir.path().join(h).join("handler").exists());
        assert_eq!(read(dir.path().join(h).join("tries")).lines().count(), 3);
    }
}

#[test]
fn handlers_run_once_in_definition_order() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("handlers.yml", "a,b,", dir.path(), &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        read(dir.path().join("a")),
        "first\nsecond\nlistener\ntask\nfirst\n"
    );
    assert!(r.stdout.contains("RUNNING HANDLER [listener] ****"));
}

#[test]
fn roles_dependencies_params_and_looped_includes() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("roles.yml", "a,b,c,", dir.path(), &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        read(dir.path().join("c")),
        "base\nweb 8080 play\nincluded xx\nincluded yy\nrestart\n"
    );
    assert!(r.stdout.contains("TASK [web : configure] ****"));
    assert!(r.stdout.contains("RUNNING HANDLER [web : restart] ****"));
    assert!(r.stdout.contains("include_me.yml for a, b, c => (item=xx)"));
    assert!(
        r.stdout.contains(&recap("a", [7, 5, 0, 0, 0, 0, 0])),
        "{}",
        r.stdout
    );
}

#[test]
fn serial_run_once_delegation_and_failed_host_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("serial.yml", "a,b,c,", dir.path(), &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(read(dir.path().join("batches")), "a,b\nc\n");
    assert_eq!(r.stdout.matches("PLAY [all] ***").count(), 2);
    let mut delegated: Vec<String> = read(dir.path().join("delegated"))
        .lines()
        .map(str::to_string)
        .collect();
    delegated.sort();
    assert_eq!(delegated, ["a", "b", "c"]);
    assert!(r.stdout.contains("changed: [a -> localhost]"));
    assert!(dir.path().join("a-after").exists());
    assert!(
        !dir.path().join("c-after").exists(),
        "a failed host leaves the play"
    );
    assert!(
        r.stdout.contains(&recap("c", [2, 2, 0, 1, 0, 0, 0])),
        "{}",
        r.stdout
    );
}

#[test]
fn tags_select_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("tags.yml", "a,", dir.path(), &["--tags", "b,blk"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut made: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, ["always", "b", "block"]);
    let dir2 = tempfile::tempdir().unwrap();
    let r = play(
        "tags.yml",
        "a,",
        dir2.path(),
        &["--tags", "debug", "--skip-tags", "always"],
    );
    assert_eq!(r.code, 0);
    let made: Vec<_> = std::fs::read_dir(dir2.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(made, ["never"]);
}

#[test]
fn check_mode_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("check_mode.yml", "a,b,", dir.path(), &["--check"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("PLAY [all] [CHECK MODE] ***"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "{}",
        r.stdout
    );
}

#[test]
fn undefined_variable_fails_the_host_with_ansible_wording() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("errors_undefined.yml", "a,", dir.path(), &[]);
    assert_eq!(r.code, 2);
    let f = fixture("errors_undefined.yml");
    assert!(
        r.stdout.contains(&format!(
            "The task includes an option with an undefined variable. The error was: 'not_defined_anywhere' is undefined. 'not_defined_anywhere' is undefined\\n\\nThe error appears to be in '{}': line 4, column 7",
            f.display()
        )),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("never reached"));
    assert!(r.stdout.contains(&recap("a", [0, 0, 0, 1, 0, 0, 0])));
}

#[test]
fn unknown_module_suggests_a_name_and_exits_4() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("errors_module.yml", "a,", dir.path(), &[]);
    assert_eq!(r.code, 4);
    let f = fixture("errors_module.yml");
    assert!(
        r.stderr.contains(&format!(
            "{}:4:7: couldn't resolve module/action 'shel'",
            f.display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Did you mean 'shell'?"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing runs: {}", r.stdout);
}

#[test]
fn arguments_that_cannot_work_are_refused_before_any_host_is_contacted() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("errors_args.yml", "a,", dir.path(), &[]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let f = fixture("errors_args.yml");
    for want in [
        format!(
            "{}:11:15: copy: unsupported argument 'dset' (did you mean 'dest'?)",
            f.display()
        ),
        format!(
            "{}:8:7: copy: missing required arguments: dest",
            f.display()
        ),
        format!(
            "{}:13:13: file: value of state must be one of: file, directory, touch, link, hard, absent, got: directroy (did you mean 'directory'?)",
            f.display()
        ),
        format!(
            "{}:16:14: template: could not find or access 'missing.conf.j2'",
            f.display()
        ),
    ] {
        assert!(r.stderr.contains(&want), "{want}\n---\n{}", r.stderr);
    }
    assert!(r.stdout.is_empty(), "nothing runs: {}", r.stdout);
    assert!(
        !dir.path().join("touched").exists(),
        "the first task did not run"
    );
}

#[test]
fn bad_attribute_and_malformed_yaml_name_the_location() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("errors_attr.yml", "a,", dir.path(), &[]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr
            .contains("errors_attr.yml:6:13: 'wehn' is not a valid attribute for a Task"),
        "{}",
        r.stderr
    );
    let r = play("errors_yaml.yml", "a,", dir.path(), &[]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("errors_yaml.yml:4:"), "{}", r.stderr);
    let r = play("errors_yaml.yml", "a,", dir.path(), &["--syntax-check"]);
    assert_eq!(r.code, 4);
}

#[test]
fn json_output_is_one_event_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("handlers.yml", "a,", dir.path(), &["--json"]);
    assert_eq!(r.code, 0);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(events[0]["event"], "play_start");
    let last = events.last().unwrap();
    assert_eq!(last["event"], "recap");
    // Every event is timed from the start of the run, in order.
    let times: Vec<f64> = events.iter().map(|e| e["t"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert_eq!(last["hosts"]["a"]["changed"], 8);
}

#[test]
fn any_errors_fatal_stops_the_play_and_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("fatal.yml", "a,b,c,", dir.path(), &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&recap("a", [0, 0, 0, 0, 1, 0, 0])),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&recap("b", [0, 0, 0, 1, 0, 0, 0])),
        "{}",
        r.stdout
    );
}

#[test]
fn max_fail_percentage_must_be_exceeded() {
    // 1 of 2 hosts = 50% > 49: the play stops.
    let dir = tempfile::tempdir().unwrap();
    let r = play("maxfail.yml", "a,b,", dir.path(), &[]);
    assert_eq!(r.code, 2);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "{}",
        r.stdout
    );
    // 1 of 3 hosts = 33%: the others go on.
    let dir = tempfile::tempdir().unwrap();
    let r = play("maxfail.yml", "a,b,c,", dir.path(), &[]);
    assert_eq!(r.code, 2);
    assert!(dir.path().join("b-after").exists() && dir.path().join("c-after").exists());
}

#[test]
fn free_strategy_no_log_and_secret_names() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("free_nolog.yml", "a,b,c,", dir.path(), &["-vvv"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        !r.stdout.contains("hunter2"),
        "a secret leaked: {}",
        r.stdout
    );
    assert!(r.stdout.contains("********"), "{}", r.stdout);
    assert!(r.stdout.contains("the output has been hidden due to the fact that 'no_log: true' was specified for this result"));
    for h in ["a", "b", "c"] {
        assert!(dir.path().join(h).exists());
    }
}

#[test]
fn unreachable_hosts_exit_4_and_ignore_unreachable_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        // Port 1 on loopback refuses connections: unreachable without waiting.
        .args([
            "play",
            "-i",
            "a.invalid,b.invalid,",
            "-e",
            "ansible_host=127.0.0.1 ansible_port=1",
            "-e",
        ])
        .arg(format!("dir={}", dir.path().display()))
        .arg(fixture("unreachable.yml"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(
        stdout.contains("fatal: [a.invalid]: UNREACHABLE! =>"),
        "{stdout}"
    );
    assert!(stdout.contains("...ignoring"));
    assert!(dir.path().join("a.invalid-delegated").exists());
    assert!(!dir.path().join("a.invalid-never").exists());
    assert!(
        stdout.contains(&recap("a.invalid", [2, 1, 1, 0, 0, 0, 1])),
        "{stdout}"
    );
}

#[test]
fn check_and_diff_show_the_change_without_making_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "line one\nold\n").unwrap();
    let r = play("diff.yml", "a,", dir.path(), &["--check", "--diff"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("-old\n+line two\n"), "{}", r.stdout);
    assert!(r.stdout.contains("changed: [a]"));
    assert_eq!(read(dir.path().join("a.txt")), "line one\nold\n");
}

#[test]
fn ctrl_c_stops_cleanly_with_a_recap_and_exit_99() {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .args(["play", "-i", "a,b,", "-c", "local"])
        .arg(fixture("slow.yml"))
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    // Wait until the slow task has started, then interrupt.
    while !seen.contains("TASK [wait]") {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    out.read_to_string(&mut seen).unwrap();
    assert_eq!(status.code(), Some(99), "{seen}");
    assert!(seen.contains("PLAY RECAP"), "{seen}");
    assert!(seen.contains(&recap("a", [1, 1, 0, 0, 0, 0, 0])), "{seen}");
    assert!(!seen.contains("TASK [never]"));
}

#[test]
fn variable_precedence_magic_vars_environment_and_include_role() {
    let dir = tempfile::tempdir().unwrap();
    let r = play(
        "variables.yml",
        "a,b,",
        dir.path(),
        &["-e", r#"{"cli_wins": "extra"}"#],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        read(dir.path().join("a")),
        "vars_files file-value extra fact-b a,b 2 env-a True task file-value\nbase\nextra 9090\n"
    );
    assert_eq!(
        read(dir.path().join("b")),
        "vars_files file-value extra fact-b a,b 2 env-b True task file-value\n"
    );
    assert!(r.stdout.contains("included: web for a\n"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&recap("a", [7, 3, 0, 0, 1, 0, 0])),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&recap("b", [4, 1, 0, 0, 2, 0, 0])),
        "{}",
        r.stdout
    );
}

#[test]
fn start_at_task_skips_earlier_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("tags.yml", "a,", dir.path(), &["--start-at-task", "always"]);
    assert_eq!(r.code, 0);
    let mut made: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    assert_eq!(made, ["always", "block"]);
}

#[test]
fn failed_hosts_leave_later_plays_and_a_fully_failed_batch_ends_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("twoplays.yml", "a,b,", dir.path(), &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(dir.path().join("a").exists());
    assert!(!dir.path().join("b").exists(), "{}", r.stdout);
    assert!(!dir.path().join("third").exists(), "{}", r.stdout);
    assert!(!r.stdout.contains("third play"), "{}", r.stdout);
    assert!(
        r.stdout.contains(&recap("a", [1, 1, 0, 1, 1, 0, 0])),
        "{}",
        r.stdout
    );
}

#[test]
fn failed_hosts_skip_handlers_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("force_handlers.yml", "a,b,", dir.path(), &[]);
    assert_eq!(r.code, 2);
    assert!(
        dir.path().join("a").exists() && !dir.path().join("b").exists(),
        "{}",
        r.stdout
    );
    let dir = tempfile::tempdir().unwrap();
    let r = play(
        "force_handlers.yml",
        "a,b,",
        dir.path(),
        &["--force-handlers"],
    );
    assert_eq!(r.code, 2);
    assert!(
        dir.path().join("a").exists() && dir.path().join("b").exists(),
        "{}",
        r.stdout
    );
}

#[test]
fn yaml_inventory_groups_group_vars_and_patterns() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .args(["play", "-i"])
        .arg(fixture("inv/hosts.yml"))
        .arg("-e")
        .arg(format!("dir={}", dir.path().display()))
        .arg(fixture("groups.yml"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read(dir.path().join("web1")), "web-level none web db1\n");
    assert_eq!(read(dir.path().join("web2")), "web-level 8081 web db1\n");
    assert_eq!(read(dir.path().join("db1")), "all-level\n");
}

#[test]
fn task_names_are_templated_with_extra_vars_over_play_vars() {
    let dir = tempfile::tempdir().unwrap();
    let r = play("task_names.yml", "a,b,", dir.path(), &[]);
    assert!(
        r.stdout.contains("TASK [hello play in 2 host(s)]"),
        "{}",
        r.stdout
    );
    let r = play("task_names.yml", "a,b,", dir.path(), &["-e", "who=extra"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("TASK [hello extra in 2 host(s)]"),
        "{}",
        r.stdout
    );
}
