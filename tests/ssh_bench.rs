//! Speed of our SSH connection against OpenSSH, on real sshd hosts. Ignored by default
//! (timings are not assertions); run with
//! `cargo test --test ssh_bench -- --ignored --nocapture` and set `SO_BENCH_HOSTS` /
//! `SO_BENCH_COMMANDS` to change the defaults (32 hosts, 20 commands).
//!
//! The OpenSSH baseline is one `ssh` session per host running every command in one shell
//! (the fastest way a shell script could do it, with no per-command status or stream
//! separation); ours runs each command as its own request with its own status, stdout
//! and stderr.

mod support;

use std::time::Instant;

use playbook_engine::connection::{ExecRequest, ssh};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn command(i: usize) -> String {
    format!(
        "echo step {i}; test -r /etc/hostname && cat /etc/hostname >/dev/null; echo err {i} >&2"
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: run explicitly"]
async fn hosts_by_commands_vs_openssh() {
    let n_hosts = env_or("SO_BENCH_HOSTS", 32);
    let n_cmds = env_or("SO_BENCH_COMMANDS", 20);
    let h = support::start(n_hosts);

    // OpenSSH: one session per host, all commands in one shell.
    let script: Vec<String> = (0..n_cmds).map(command).collect();
    let script = script.join("; ");
    let t = Instant::now();
    let runs = (0..n_hosts).map(|i| {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.arg("-F")
            .arg(&h.tb.ssh_config)
            .arg(&h.tb.hosts[i].name)
            .arg(&script);
        async move { cmd.output().await }
    });
    for out in futures::future::join_all(runs).await {
        let out = out.expect("ssh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let openssh = t.elapsed();

    // Ours: connect, then each command as its own request.
    let t = Instant::now();
    let runs = (0..n_hosts).map(|i| {
        let spec = h.spec(i);
        async move {
            let c = ssh::connect(&spec, None).await.expect("connect");
            for k in 0..n_cmds {
                let out = c.exec(ExecRequest::new(command(k))).await.expect("exec");
                assert_eq!(out.stdout_str(), format!("step {k}\n"));
            }
            c
        }
    });
    let conns = futures::future::join_all(runs).await;
    let ours = t.elapsed();

    // Warm: the same commands again on the open connections.
    let t = Instant::now();
    let runs = conns.iter().map(|c| async move {
        for k in 0..n_cmds {
            c.exec(ExecRequest::new(command(k))).await.expect("exec");
        }
    });
    futures::future::join_all(runs).await;
    let warm = t.elapsed();
    for c in &conns {
        c.close().await;
    }

    println!(
        "{n_hosts} hosts x {n_cmds} commands: openssh one session {:.3}s, ours (connect + \
         separate commands) {:.3}s = {:.2}x, ours warm {:.3}s ({:.2} ms/command/host)",
        openssh.as_secs_f64(),
        ours.as_secs_f64(),
        ours.as_secs_f64() / openssh.as_secs_f64(),
        warm.as_secs_f64(),
        warm.as_secs_f64() * 1000.0 / n_cmds as f64
    );
}
