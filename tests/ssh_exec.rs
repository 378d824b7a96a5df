//! Running commands over SSH against real sshd hosts: streams, status, sizes, stdin,
//! concurrency, background processes, timeouts, file transfer and sudo.

mod support;

use std::sync::Arc;
use std::time::Duration;

use playbook_engine::connection::{Become, Connection, ExecRequest, ssh};

async fn connect(h: &support::Hosts, i: usize) -> Arc<dyn Connection> {
    ssh::connect(&h.spec(i), None)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

/// Writes `data` to `dest` as modules do (`modules::remote::write_file`): a command that
/// reads it from stdin, which takes the staged side-channel path when it is large.
async fn write(
    c: &Arc<dyn Connection>,
    data: &[u8],
    dest: &str,
    mode: u32,
    become_: Option<&Become>,
) -> playbook_engine::connection::ExecOutput {
    let mut req = ExecRequest::new(format!("cat > {dest} && chmod {mode:o} {dest}"));
    req.stdin = Some(data.to_vec());
    req.become_ = become_.cloned();
    c.exec(req)
        .await
        .unwrap_or_else(|e| panic!("write {dest}: {e}"))
}

async fn run(c: &Arc<dyn Connection>, cmd: &str) -> playbook_engine::connection::ExecOutput {
    c.exec(ExecRequest::new(cmd))
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn separates_streams_and_status() {
    let h = support::start(1);
    let c = connect(&h, 0).await;
    let out = run(&c, "echo out; echo err >&2; echo more; exit 3").await;
    assert_eq!(out.rc, 3);
    assert_eq!(out.stdout_str(), "out\nmore\n");
    assert_eq!(out.stderr_str(), "err\n");
    let out = run(&c, "printf 'no newline'; printf 'e' >&2").await;
    assert_eq!(
        (out.rc, out.stdout_str(), out.stderr_str()),
        (0, "no newline".into(), "e".into())
    );
    let out = run(&c, "false").await;
    assert_eq!(out.rc, 1);
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    // exit, cd and variables stay inside the command; a syntax error is just a failure.
    assert_eq!(run(&c, "cd /tmp; X=1; exit 7").await.rc, 7);
    assert_eq!(
        run(&c, "pwd; echo \"[$X]\"").await.stdout_str(),
        "/root\n[]\n"
    );
    let bad = run(&c, "echo 'unterminated").await;
    assert_ne!(bad.rc, 0);
    assert_eq!(
        run(&c, "echo still here").await.stdout_str(),
        "still here\n"
    );
    // env and chdir from the request
    let mut req = ExecRequest::new("echo \"$GREETING\" $(pwd)");
    req.env = vec![("GREETING".into(), "hello 'world'".into())];
    req.chdir = Some("/tmp".into());
    assert_eq!(
        c.exec(req).await.unwrap().stdout_str(),
        "hello 'world' /tmp\n"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn large_and_binary_output() {
    let h = support::start(1);
    let c = connect(&h, 0).await;
    let out = run(
        &c,
        "head -c 10000000 /dev/zero | tr '\\0' x; head -c 1000000 /dev/zero | tr '\\0' y >&2",
    )
    .await;
    assert_eq!(out.rc, 0);
    assert_eq!(out.stdout.len(), 10_000_000);
    assert!(out.stdout.iter().all(|&b| b == b'x'));
    assert_eq!(out.stderr.len(), 1_000_000);
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    assert_eq!(
        write(&c, &all_bytes, "/root/bytes.bin", 0o644, None)
            .await
            .rc,
        0
    );
    let out = run(&c, "cat /root/bytes.bin; cat /root/bytes.bin >&2").await;
    assert_eq!(out.stdout, all_bytes);
    assert_eq!(out.stderr, all_bytes);
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_small_large_and_binary() {
    let h = support::start(1);
    let c = connect(&h, 0).await;
    let mut req = ExecRequest::new("cat; echo; wc -c </dev/null");
    req.stdin = Some(b"line1\nno newline at end".to_vec());
    let out = c.exec(req).await.unwrap();
    assert_eq!(out.stdout_str(), "line1\nno newline at end\n0\n");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut req = ExecRequest::new("cat");
    req.stdin = Some(big.clone());
    let out = c.exec(req).await.unwrap();
    assert_eq!(out.rc, 0);
    assert!(out.stdout == big, "3 MB of binary stdin came back changed");
    // A command that reads stdin without being given any sees end-of-file, not our scripts.
    assert_eq!(run(&c, "cat; echo done").await.stdout_str(), "done\n");
    // Dropping a connection without closing it must not hang (the test would never end).
    drop(c);
}

#[tokio::test(flavor = "multi_thread")]
async fn fifty_concurrent_commands_share_a_few_channels() {
    let h = support::start(1);
    let c = connect(&h, 0).await;
    let runs = (0..50).map(|i| {
        let c = c.clone();
        async move {
            c.exec(ExecRequest::new(format!("sleep 0.1; echo {i}")))
                .await
        }
    });
    let results = futures::future::join_all(runs).await;
    for (i, r) in results.into_iter().enumerate() {
        let out = r.unwrap_or_else(|e| panic!("command {i}: {e}"));
        assert_eq!(out.stdout_str(), format!("{i}\n"));
    }
    c.close().await;
    let log = std::fs::read_to_string(&h.tb.hosts[0].log).unwrap();
    assert!(
        !log.contains("no more sessions"),
        "sshd refused a session:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn background_processes_do_not_block() {
    let h = support::start(1);
    let c = connect(&h, 0).await;
    let guard = Duration::from_secs(30);
    let out = tokio::time::timeout(guard, run(&c, "nohup sleep 100 & echo started"))
        .await
        .expect("`nohup sleep 100 &` hung the connection");
    assert_eq!(out.stdout_str(), "started\n");
    let out = tokio::time::timeout(guard, run(&c, "(sleep 0.3; echo late) & echo now"))
        .await
        .expect("a background subshell hung the connection");
    assert_eq!(out.stdout_str(), "now\n");
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Output the background job wrote afterwards is not taken for the next command's.
    assert_eq!(run(&c, "echo next").await.stdout_str(), "next\n");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts_kill_the_command_and_dead_shells_are_replaced() {
    let h = support::start(1);
    let c = connect(&h, 0).await;
    // A duration unique to this run, so leftovers of other runs do not count.
    let marker = format!("sleep 31.{}", std::process::id());
    let mut req = ExecRequest::new(format!("{marker}; echo never"));
    req.timeout = Some(Duration::from_millis(500));
    let err = c.exec(req).await.unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
    assert_eq!(run(&c, "echo alive").await.stdout_str(), "alive\n");
    let left = run(&c, &format!("pgrep -f '{marker}' || echo none")).await;
    assert_eq!(
        left.stdout_str(),
        "none\n",
        "the timed-out command still runs"
    );
    // A command that kills the shell it runs in fails; the next gets a fresh shell.
    assert!(c.exec(ExecRequest::new("kill -9 $$")).await.is_err());
    assert_eq!(run(&c, "echo again").await.stdout_str(), "again\n");
    // When the whole SSH session dies (sshd's session process killed, as in a reboot), the
    // running command fails and the next one reconnects.
    let killed = c
        .exec(ExecRequest::new("kill -9 $(ps -o ppid= -p $$)"))
        .await;
    assert!(killed.is_err(), "{killed:?}");
    assert_eq!(
        run(&c, "echo reconnected").await.stdout_str(),
        "reconnected\n"
    );
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn write_and_get_round_trip_with_mode() {
    let h = support::start(1);
    let c = connect(&h, 0).await;
    assert_eq!(
        write(&c, b"small\n", "/root/small.txt", 0o640, None)
            .await
            .rc,
        0
    );
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    assert_eq!(write(&c, &big, "/root/big.bin", 0o600, None).await.rc, 0);
    // The files landed in this host's own root, with the requested modes.
    use std::os::unix::fs::PermissionsExt;
    let local = h.root(0).join("small.txt");
    assert_eq!(std::fs::read(&local).unwrap(), b"small\n");
    assert_eq!(
        std::fs::metadata(&local).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let local_big = h.root(0).join("big.bin");
    assert_eq!(
        std::fs::metadata(&local_big).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(c.get("/root/big.bin", None).await.unwrap() == big);
    assert_eq!(c.get("/root/small.txt", None).await.unwrap(), b"small\n");
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(h.root(0))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let err = c.get("/root/missing", None).await.unwrap_err();
    assert!(err.to_string().contains("/root/missing"), "{err}");
    let out = write(&c, b"x", "/nonexistent-dir/f", 0o644, None).await;
    assert_ne!(out.rc, 0);
    assert!(out.stderr_str().contains("/nonexistent-dir/f"), "{out:?}");
    c.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn become_runs_commands_and_writes_files_as_another_user() {
    if !std::path::Path::new("/usr/bin/sudo").exists() {
        eprintln!("skipping: sudo is not installed");
        return;
    }
    let h = support::start(1);
    let c = connect(&h, 0).await;
    let nobody = Become {
        user: "nobody".into(),
        method: "sudo".into(),
        password: None,
    };
    let mut req = ExecRequest::new("id -un");
    req.become_ = Some(nobody.clone());
    let out = c.exec(req).await.unwrap();
    assert_eq!(out.stdout_str(), "nobody\n", "stderr: {}", out.stderr_str());
    let dest = format!("/tmp/so-become-{}", std::process::id());
    assert_eq!(write(&c, b"hi", &dest, 0o644, Some(&nobody)).await.rc, 0);
    let owner = run(&c, &format!("stat -c %U {dest}; rm -f {dest}")).await;
    assert_eq!(owner.stdout_str(), "nobody\n");
    c.close().await;
}
