//! The cluster commands end to end against devcloud with the records backend: the real
//! binary, a real OpenStack-compatible API over HTTP, no SSH (`--cloud-only`, since
//! records-only servers have no sshd). What is checked is what is in the cloud afterwards.
//! One test (the launch output) runs on a netns devcloud, whose servers are machines.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

mod support;

/// The shared devcloud fixture, records backend (servers without machines).
use support::TestCloud as Cloud;

fn names(v: &Value, key: &str) -> Vec<String> {
    let mut n: Vec<String> = v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

const LAUNCH: &[&str] = &[
    "launch",
    "demo",
    "-s",
    "2",
    "-a",
    "ubuntu-22.04",
    "-t",
    "m1.large",
    "-m",
    "m1.medium",
    "--authorized-address",
    "198.51.100.0/24",
    "--cloud-only",
];

fn servers_of(state: &Value, cluster: &str) -> Vec<Value> {
    state["servers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|s| s["metadata"]["spark_openstack_cluster"] == cluster)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn launch_describe_relaunch_destroy() {
    let cloud = Cloud::records("boot_time: {min_ms: 200, max_ms: 200}\nlatency_ms: 5\n");
    cloud.ok(LAUNCH);

    let st = cloud.state();
    let servers = servers_of(&st, "demo");
    assert_eq!(servers.len(), 3, "{servers:#?}");
    for s in &servers {
        let role = s["metadata"]["role"].as_str().unwrap_or_default();
        assert!(role == "master" || role == "slave", "{s}");
    }
    let groups = names(&st, "security_groups");
    assert!(
        groups.contains(&"demo-master".to_string()) && groups.contains(&"demo-slaves".to_string()),
        "{groups:?}"
    );

    // Rules: SSH is the only thing open to the world; the UIs only to the authorized range.
    let rules = st["security_group_rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for r in &rules {
        if r["remote_ip_prefix"] == "0.0.0.0/0" {
            assert_eq!(r["port_range_min"], 22, "{r}");
        }
    }
    assert!(
        rules
            .iter()
            .any(|r| r["remote_ip_prefix"] == "198.51.100.0/24" && r["port_range_min"] == 8080)
    );

    let d = cloud.json(&["describe", "demo", "--json"]);
    assert_eq!(d["state"], "running", "{d:#}");
    assert_eq!(d["slaves"].as_array().map(Vec::len), Some(2));
    let master_ip = d["master_address"]
        .as_str()
        .expect("master has a floating IP")
        .to_string();
    assert!(master_ip.starts_with("10.213.255."), "{master_ip}");
    // The UI ports are open to the authorized range, so describe shows their URLs; HDFS
    // runs by default, Ganglia does not.
    assert_eq!(
        d["web_ui"]["spark_master"]["url"],
        format!("http://{master_ip}:8080/")
    );
    assert_eq!(d["web_ui"]["hdfs_namenode"]["port"], 9870);
    assert!(d["web_ui"].get("ganglia").is_none(), "{d:#}");
    assert_eq!(d["tunnel"], "spark-openstack tunnel demo");
    assert_eq!(cloud.ok(&["get-master", "demo"]).trim(), master_ip);

    let inv = cloud.json(&["cluster-inventory", "demo", "--list"]);
    assert_eq!(inv["master"]["hosts"], serde_json::json!(["demo-master"]));
    assert_eq!(
        inv["slaves"]["hosts"],
        serde_json::json!(["demo-slave-1", "demo-slave-2"])
    );
    let slave = &inv["_meta"]["hostvars"]["demo-slave-1"];
    assert_eq!(slave["spark_openstack_jump_host"], "demo-master");
    assert_eq!(slave["flavor"]["ephemeral_gb"], 40);

    let all = cloud.json(&["describe", "--json"]);
    assert_eq!(all["clusters"].as_array().map(Vec::len), Some(1));

    // Rerunning converges without creating anything new.
    cloud.ok(LAUNCH);
    let again = cloud.state();
    assert_eq!(servers_of(&again, "demo").len(), 3);
    assert_eq!(
        again["floatingips"].as_array().map(Vec::len),
        st["floatingips"].as_array().map(Vec::len)
    );
    assert_eq!(
        again["security_group_rules"].as_array().map(Vec::len),
        Some(rules.len())
    );

    // Destroy without a terminal and without --yes refuses and says what would be lost.
    let (code, _, err) = cloud.outcome(&["destroy", "demo"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("demo-slave-2") && err.contains("--yes"),
        "{err}"
    );

    cloud.ok(&["destroy", "demo", "--yes"]);
    let end = cloud.state();
    assert!(servers_of(&end, "demo").is_empty());
    let groups = names(&end, "security_groups");
    assert!(!groups.iter().any(|g| g.starts_with("demo-")), "{groups:?}");
    assert_eq!(
        end["floatingips"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{:#}",
        end["floatingips"]
    );
}

#[test]
fn faults_and_boot_errors_still_converge() {
    let cloud = Cloud::records(
        "boot_time: {min_ms: 100, max_ms: 300}\nboot_error_rate: 0.3\n\
         faults:\n  compute: {error_5xx: 0.1}\n  network: {error_5xx: 0.1}\n",
    );
    let mut converged = false;
    for _ in 0..6 {
        let (code, _, _) = cloud.outcome(LAUNCH);
        if code == 0 {
            converged = true;
            break;
        }
    }
    assert!(converged, "launch never converged");
    let st = cloud.state();
    // A server that landed in ERROR was deleted and booted again; as on Nova, the deleted
    // one may still be listed for a moment, with task_state `deleting`.
    let servers: Vec<Value> = servers_of(&st, "demo")
        .into_iter()
        .filter(|s| s["task_state"] != "deleting")
        .collect();
    assert_eq!(servers.len(), 3, "{servers:#?}");
    assert!(
        servers.iter().all(|s| s["vm_state"] == "active"),
        "{servers:#?}"
    );
    cloud.ok(&["destroy", "demo", "--yes"]);
    assert!(servers_of(&cloud.state(), "demo").is_empty());
}

#[test]
fn bad_options_are_named() {
    let cloud = Cloud::records("");
    let (code, out, err) = cloud.outcome(&[
        "launch",
        "demo",
        "-a",
        "no-such-image",
        "-t",
        "m1.large",
        "--cloud-only",
    ]);
    // Checked against the cloud before any playbook runs: a bad option, not a failed task.
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        err.contains("--image 'no-such-image'") && err.contains("ubuntu-22.04"),
        "{err}"
    );
    assert!(!out.contains("PLAY"), "no playbook ran: {out}");
    let (code, out, err) = cloud.outcome(&[
        "launch",
        "demo",
        "-a",
        "ubuntu-22.04",
        "-t",
        "m1.large",
        "--zone",
        "nova,az9",
        "--cloud-only",
    ]);
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        err.contains("--zone 'az9'") && err.contains("available: nova"),
        "{err}"
    );
    // Set in the config file: the error points at the file's line.
    std::fs::write(
        cloud.path("spark-openstack.yaml"),
        "defaults:\n  instance-type: m1.hugest\n",
    )
    .unwrap();
    let (code, out, err) = cloud.outcome(&["launch", "demo", "-a", "ubuntu-22.04", "--cloud-only"]);
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        err.contains("spark-openstack.yaml:2:") && err.contains("--instance-type 'm1.hugest'"),
        "{err}"
    );
    assert!(servers_of(&cloud.state(), "demo").is_empty());
    std::fs::remove_file(cloud.path("spark-openstack.yaml")).unwrap();
    // A key pair name Nova holds with another key: the nodes would refuse the identity file
    // after a 600 s wait for SSH, so launch says so at once.
    let key = cloud.key.display().to_string();
    let other = cloud.path("other_ed25519");
    let keygen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let shape = [
        "-a",
        "ubuntu-22.04",
        "-t",
        "m1.large",
        "-k",
        "mine",
        "--cloud-only",
    ];
    let first: Vec<&str> = ["launch", "first", "-i", &key]
        .iter()
        .chain(&shape)
        .copied()
        .collect();
    cloud.ok(&first);
    let other = other.display().to_string();
    let second: Vec<&str> = ["launch", "demo", "-i", &other]
        .iter()
        .chain(&shape)
        .copied()
        .collect();
    let (code, out, err) = cloud.outcome(&second);
    assert_eq!(code, 5, "{out}{err}");
    assert!(
        err.contains("--key-pair 'mine': Nova holds another public key"),
        "{err}"
    );
    assert!(servers_of(&cloud.state(), "demo").is_empty());
    std::fs::write(
        cloud.path("spark-openstack.yaml"),
        "defaults:\n  slavse: 2\n",
    )
    .unwrap();
    let (code, _, err) = cloud.outcome(&["describe", "demo"]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("spark-openstack.yaml:2:") && err.contains("did you mean 'slaves'"),
        "{err}"
    );
}

#[test]
fn grow_shrink_stop_start_keep_the_cluster_consistent() {
    let cloud = Cloud::records("boot_time: {min_ms: 100, max_ms: 100}\naction_time_ms: 100\n");
    cloud.ok(&[
        "launch",
        "grow",
        "-s",
        "1",
        "-a",
        "debian-12",
        "-t",
        "m1.small",
        "--openstack-network-communication-method",
        "static",
        "--slave-volume-size",
        "1",
        "--cloud-only",
        "-e",
        "hdfs_enabled=false",
        "-e",
        "spark_source=/srv/archives/pyspark-4.3.0.tar.gz",
    ]);
    // The role variables of the launch are recorded on the master and come back as the
    // inventory's `all` variables, so later commands configure the nodes the same way; the
    // login user is the image's os_admin_user (debian-12 says `debian`).
    let recorded = |cloud: &Cloud| {
        // As ansible-inventory shows it: group variables merged into each host's.
        let inv = cloud.json(&["inventory", "grow", "--list"]);
        let vars = inv["_meta"]["hostvars"]["grow-slave-1"].clone();
        let user = inv["_meta"]["hostvars"]["grow-master"]["ansible_user"].clone();
        (vars, user)
    };
    let (vars, user) = recorded(&cloud);
    assert_eq!(vars["hdfs_enabled"], "false", "{vars:#}");
    assert_eq!(vars["spark_source"], "/srv/archives/pyspark-4.3.0.tar.gz");
    assert!(
        vars.get("slaves").is_none(),
        "launch options are not role vars: {vars:#}"
    );
    assert_eq!(user, "debian");
    let d = cloud.json(&["describe", "grow", "--json"]);
    assert!(d["web_ui"].get("hdfs_namenode").is_none(), "{d:#}");
    assert!(
        d["web_ui"]["spark_master"].get("url").is_none(),
        "no UI port is open: {d:#}"
    );
    cloud.ok(&["add-slaves", "grow", "2", "--cloud-only"]);
    let d = cloud.json(&["describe", "grow", "--json"]);
    let slaves: Vec<&str> = d["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(slaves, ["grow-slave-1", "grow-slave-2", "grow-slave-3"]);
    // static mode: no floating IP anywhere, the master is reached on its fixed address.
    assert!(
        d["master_address"]
            .as_str()
            .unwrap_or_default()
            .starts_with("10.213.0."),
        "{d:#}"
    );
    assert_eq!(
        cloud.state()["floatingips"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0),
        0
    );
    assert_eq!(d["volumes"].as_array().map(Vec::len), Some(3), "{d:#}");

    let (code, _, err) = cloud.outcome(&["remove-slaves", "grow", "1"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("grow-slave-3") && err.contains("grow-slave-3-data"),
        "{err}"
    );
    cloud.ok(&["remove-slaves", "grow", "1", "--yes", "--cloud-only"]);
    let d = cloud.json(&["describe", "grow", "--json"]);
    assert_eq!(d["slaves"].as_array().map(Vec::len), Some(2));
    assert_eq!(d["volumes"].as_array().map(Vec::len), Some(2));

    cloud.ok(&["stop", "grow", "--yes"]);
    assert_eq!(
        cloud.json(&["describe", "grow", "--json"])["state"],
        "stopped"
    );
    // A later -e is merged into the record; what launch recorded stays.
    cloud.ok(&[
        "start",
        "grow",
        "--cloud-only",
        "-e",
        "spark_worker_cores=1",
    ]);
    assert_eq!(
        cloud.json(&["describe", "grow", "--json"])["state"],
        "running"
    );
    let (vars, _) = recorded(&cloud);
    assert_eq!(vars["spark_worker_cores"], "1", "{vars:#}");
    assert_eq!(vars["spark_source"], "/srv/archives/pyspark-4.3.0.tar.gz");
    assert_eq!(vars["hdfs_enabled"], "false");

    cloud.ok(&["destroy", "grow", "--yes"]);
    let st = cloud.state();
    assert!(servers_of(&st, "grow").is_empty());
    assert_eq!(
        st["volumes"].as_array().map(Vec::len).unwrap_or(0),
        0,
        "{:#}",
        st["volumes"]
    );
}

#[test]
fn init_writes_the_bundled_playbooks() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(support::BIN)
        .args(["init", &dir.path().display().to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["launch.yml", "destroy.yml", "configure.yml", "copy-dir.yml"] {
        assert!(dir.path().join("playbooks").join(f).is_file(), "{f}");
    }
    let again = Command::new(support::BIN)
        .args(["init", &dir.path().display().to_string()])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
}

#[test]
fn the_launch_playbook_runs_under_play_with_extra_vars() {
    let cloud = Cloud::records("boot_time: {min_ms: 100, max_ms: 100}\n");
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/launch.yml");
    // `-i localhost,` is play's `--cloud-only`: with `-e cluster=NAME` alone the inventory
    // is the cluster read from Nova, and the node plays would try to reach these
    // records-only servers over SSH (tests/spark_cluster.rs runs that part on machines).
    cloud.ok(&[
        "play",
        &book.display().to_string(),
        "-i",
        "localhost,",
        "-e",
        "cluster=viaplay",
        "-e",
        "slaves=2",
        "-e",
        "image=rocky-9",
        "-e",
        "instance_type=m1.small",
    ]);
    assert_eq!(servers_of(&cloud.state(), "viaplay").len(), 3);
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/destroy.yml");
    cloud.ok(&["play", &book.display().to_string(), "-e", "cluster=viaplay"]);
    assert!(servers_of(&cloud.state(), "viaplay").is_empty());
}

#[test]
fn ctrl_c_during_launch_then_resume_converges() {
    // Boots take long enough for the interrupt to land while servers are building.
    let cloud = Cloud::records("boot_time: {min_ms: 3000, max_ms: 3000}\nlatency_ms: 5\n");
    let child = cloud
        .cmd(LAUNCH)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start launch");
    // Interrupt once the first servers exist, as a user would mid-launch.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while servers_of(&cloud.state(), "demo").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "launch created no server"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let out = child.wait_with_output().expect("launch exits");
    assert_eq!(
        out.status.code(),
        Some(99),
        "an interrupted launch exits 99 like ansible-playbook: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("to continue where it stopped: spark-openstack launch demo --resume"),
        "{err}"
    );
    let building = servers_of(&cloud.state(), "demo");
    assert!(
        building.iter().any(|s| s["vm_state"] != "active"),
        "the interrupt came too late to test anything: {building:#?}"
    );

    // --resume converges to exactly the cluster asked for: no duplicate, all ACTIVE.
    let mut resume = LAUNCH.to_vec();
    resume.push("--resume");
    cloud.ok(&resume);
    let servers = servers_of(&cloud.state(), "demo");
    let mut names: Vec<&str> = servers
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["demo-master", "demo-slave-1", "demo-slave-2"],
        "{servers:#?}"
    );
    assert!(
        servers.iter().all(|s| s["vm_state"] == "active"),
        "{servers:#?}"
    );
    let d = cloud.json(&["describe", "demo", "--json"]);
    assert!(d["master_address"].is_string(), "{d:#}");
    cloud.ok(&["destroy", "demo", "--yes"]);
}

/// The log file a cluster command names on its `log: PATH` line, and its text.
fn named_log(out: &str) -> (std::path::PathBuf, String) {
    let path = out
        .lines()
        .find_map(|l| l.strip_prefix("log: "))
        .unwrap_or_else(|| panic!("no log: line in\n{out}"));
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (path.into(), text)
}

/// What a user reads of a launch on machines (a netns devcloud: sshd, roles, Spark): a
/// short report without escape codes when the output is not a terminal, the full
/// Ansible-style log in a private file it names, the full log on stdout too with `-v`,
/// and for a task that fails on a node, the task, the host, its message and how to resume.
#[test]
fn launch_reports_phases_and_keeps_the_full_log_in_a_file() {
    use std::os::unix::fs::PermissionsExt;
    if let Some(why) = support::machine_test_blocker(
        &[
            "/usr/sbin/sshd",
            "/usr/bin/ssh-keygen",
            "/usr/sbin/ip",
            "/usr/bin/rsync",
        ],
        "apt-get install openssh-server iproute2 rsync",
    ) {
        assert!(
            std::env::var_os("CI").is_none(),
            "the launch output test cannot run in CI: {why}"
        );
        eprintln!("SKIPPED launch output test: {why}");
        return;
    }
    let file = |var: &str| std::env::var(var).ok().filter(|p| Path::new(p).is_file());
    let (Some(sdist), Some(py4j)) = (
        file("SPARK_OPENSTACK_PYSPARK_SDIST"),
        file("SPARK_OPENSTACK_PY4J_SDIST"),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the launch output test needs SPARK_OPENSTACK_PYSPARK_SDIST and _PY4J_SDIST"
        );
        eprintln!("SKIPPED launch output test: no pyspark/py4j sdist (.ci/run sets them)");
        return;
    };
    // Its own prefix and range of addresses (see `TestCloud::netns`).
    let cloud = Cloud::netns("p", (20, 20));
    let launch = |extra: &[&str]| {
        let mut args = vec![
            "launch",
            "out",
            "-s",
            "2",
            "-a",
            "debian-12",
            "-k",
            "progress",
            "-t",
            "m1.large",
            "-e",
            "hdfs_enabled=false",
            "-e",
            "common_tune_system=false",
        ];
        args.extend(extra);
        let o = cloud.cluster_cmd(&args).output().expect("run launch");
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (
            o.status.code().unwrap_or(-1),
            text(&o.stdout),
            text(&o.stderr),
        )
    };
    let short = |out: &str, err: &str| {
        assert!(out.lines().count() < 30, "too long:\n{out}");
        assert!(
            !out.contains('\x1b') && !err.contains('\x1b'),
            "escape codes:\n{out}{err}"
        );
        assert!(
            !out.lines()
                .any(|l| l.starts_with("TASK [") || l.starts_with("PLAY ")),
            "the full log is in the file:\n{out}"
        );
    };

    // A Spark archive that does not exist fails on the master, after the nodes answered.
    let (code, out, err) = launch(&["-e", "spark_source=/nonexistent/spark.tgz"]);
    assert_eq!(code, 2, "a failed task exits 2:\n{out}\n{err}");
    short(&out, &err);
    let failed = out
        .lines()
        .skip_while(|l| !l.starts_with("failed: TASK ["))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        failed.contains(" on out-master\n")
            && failed.contains("fatal: [out-master]: FAILED!")
            && failed.contains("/nonexistent/spark.tgz"),
        "the failing task, host and message:\n{out}"
    );
    assert!(out.contains("SSH reachable 3/3"), "{out}");
    assert!(
        err.contains("to continue where it stopped: spark-openstack launch out --resume"),
        "{err}"
    );
    let (log, text) = named_log(&out);
    assert!(
        err.contains(&format!("full log: {}", log.display())),
        "{err}"
    );
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the log may hold command output");
    assert!(
        text.contains("TASK [common : ") && text.contains("fatal: [out-master]: FAILED!"),
        "{text}"
    );
    assert!(text.contains("PLAY RECAP"), "{text}");

    // Resumed with the real archive: one line per phase, then the summary.
    let spark = [
        "--resume".to_string(),
        "-e".into(),
        format!("spark_source={sdist}"),
        "-e".into(),
        format!("spark_py4j_source={py4j}"),
    ];
    let spark: Vec<&str> = spark.iter().map(String::as_str).collect();
    let (code, out, err) = launch(&spark);
    assert_eq!(code, 0, "{out}\n{err}");
    short(&out, &err);
    for line in [
        "cloud resources: 3/3 server(s) ACTIVE",
        "SSH reachable 3/3 (",
        "software configured 3/3 host(s) (",
        "Cluster out: running (3 node(s))",
    ] {
        assert!(out.contains(line), "no '{line}' in\n{out}");
    }
    let (_, text) = named_log(&out);
    for host in ["out-master", "out-slave-1", "out-slave-2"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(host) && l.contains("failed=0")),
            "no recap line for {host}:\n{text}"
        );
    }

    // -v: the full log on stdout as well as in the file.
    let mut verbose = spark.clone();
    verbose.push("-v");
    let (code, out, err) = launch(&verbose);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("TASK [spark : ") && out.contains("PLAY RECAP"),
        "{out}"
    );
    let (_, text) = named_log(&out);
    assert!(
        text.contains("TASK [spark : ") && text.contains("PLAY RECAP"),
        "{text}"
    );

    let out = cloud.cluster(&["destroy", "out", "--yes"]);
    assert!(out.lines().count() < 10, "{out}");
    assert!(out.contains("cloud resources: "), "{out}");
    assert!(cloud.namespaces().is_empty(), "{:?}", cloud.namespaces());
}
