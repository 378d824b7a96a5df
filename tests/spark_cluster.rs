//! The product end to end, as a user runs it: a Spark cluster launched on devcloud whose
//! servers are real machines booted from a stock Debian 12 image (network namespaces with
//! their own root filesystem and sshd; no Java or Python until the roles install them), the
//! master reached on its floating IP and the slaves only through it.
//!
//! launch 1+2 (no `--authorized-address`: the default, locked-down cluster) with Spark from
//! the pyspark sdist and a real Hadoop 3.5 (built from Maven Central by `.ci/hadoop/build`),
//! both HDFS instances started → the HDFS configuration as the role left them, each
//! NameNode formatted once, `dfsadmin -report` listing both slaves as live DataNodes → the
//! cluster's secrets (RPC secret, Spark Connect token) owner-only on the nodes and in no
//! output → describe / inventory / run-command / login → the master's /json lists 2 ALIVE
//! workers with the cores and memory the role computed → from the controller, the master's
//! floating address answers SSH and nothing else (UIs, RPC, Spark Connect, NameNode) → the
//! REST submission server is off → a PySpark pi job through `submit` lands within 0.01 of
//! pi, while an application without the RPC secret is refused by the master → a PySpark job
//! writes a dataset to the default filesystem (the ephemeral HDFS) and reads it back whole
//! → a file put in the persistent HDFS → a changed
//! spark-env.sh pushed with copy-dir reaches every node, and restart-spark.yml applies it →
//! through `tunnel`, headless Chromium opens the master UI and follows a worker link
//! (reverse proxy), and a PySpark Connect client (`pyspark[connect]` in a venv, the user's
//! laptop) runs a query with the token from `connect-url`, and is refused without it or
//! with a wrong one; the NameNode UI loads through the tunnel → add-slaves 1 (3 live
//! DataNodes) → a file with one replica, put on the new slave, is read back intact after
//! remove-slaves 1 decommissioned that slave's Spark worker and DataNodes → stop / start:
//! the job runs again, the persistent file is intact and neither NameNode was formatted
//! again → destroy --yes leaves no server, group, floating IP or machine.
//!
//! Needs root, OpenSSH, iproute2, rsync, curl, Java 17, chromium, the pyspark and py4j
//! source distributions (`SPARK_OPENSTACK_PYSPARK_SDIST`, `SPARK_OPENSTACK_PY4J_SDIST`), a
//! Hadoop binary archive (`SPARK_OPENSTACK_HADOOP_DIST`) and a Python with
//! `pyspark[connect]` (`SPARK_OPENSTACK_CONNECT_PYTHON`), which `.ci/run` prepares once. Skipped with the reason otherwise, but failed when `CI` is set.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use openstack_client::{Cloud, LoadOptions, config};
use serde_json::Value;

struct Inputs {
    sdist: PathBuf,
    py4j: PathBuf,
    /// A Hadoop binary archive (`.ci/hadoop/build`'s, from Maven Central).
    hadoop: PathBuf,
    chromium: PathBuf,
    /// Python of a venv with `pyspark[connect]`: the user's laptop, for Spark Connect.
    connect_python: PathBuf,
    /// The S3A connector's jars (hadoop-aws, the AWS SDK bundle), for `s3a_jars_source`.
    s3a_jars: PathBuf,
    /// The real `openstack` CLI, the witness of what lands in the object store.
    openstack: PathBuf,
}

fn inputs() -> Result<Inputs, String> {
    if let Some(why) = support::machine_test_blocker(
        &[
            "/usr/sbin/sshd",
            "/usr/bin/ssh",
            "/usr/bin/rsync",
            "/usr/bin/curl",
            "/usr/bin/mmdebstrap",
            "/usr/sbin/apt-cacher-ng",
        ],
        "apt-get install openssh-server rsync curl mmdebstrap apt-cacher-ng",
    ) {
        return Err(why);
    }
    if Command::new("java").arg("-version").output().is_err() {
        return Err("java missing".into());
    }
    let file = |var: &str| -> Result<PathBuf, String> {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_file())
            .ok_or_else(|| format!("{var} does not name a file (.ci/run sets it)"))
    };
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or("chromium missing (apt-get install chromium)")?;
    Ok(Inputs {
        sdist: file("SPARK_OPENSTACK_PYSPARK_SDIST")?,
        py4j: file("SPARK_OPENSTACK_PY4J_SDIST")?,
        hadoop: file("SPARK_OPENSTACK_HADOOP_DIST")?,
        chromium,
        connect_python: file("SPARK_OPENSTACK_CONNECT_PYTHON")?,
        s3a_jars: std::env::var_os("SPARK_OPENSTACK_S3A_JARS")
            .map(PathBuf::from)
            .filter(|p| p.join(".complete").is_file())
            .ok_or("SPARK_OPENSTACK_S3A_JARS does not name a complete S3A jar directory (.ci/run sets it)")?,
        openstack: file("OPENSTACK_BIN")?,
    })
}

/// The test's cloud: a netns devcloud of its own (see `support::TestCloud`).
type World = support::TestCloud;

fn up() -> World {
    // Its own prefix and range of addresses (see `TestCloud::netns`).
    // With devcloud's object storage: a real Swift with s3api, behind its Keystone.
    // Its machines boot from devcloud's Debian 12 image, a stock cloud image without Java
    // or Python: the roles install what they need, as on a user's first launch.
    let w = World::netns_images_with("e", (50, 10), "object_storage: {enabled: true}\n");
    let clouds = w.path("clouds.yaml").display().to_string();
    // The key pair the user would make in Horizon.
    let env = std::collections::BTreeMap::from([
        ("OS_CLIENT_CONFIG_FILE".to_string(), clouds.clone()),
        ("OS_CLOUD".to_string(), "devcloud".to_string()),
    ]);
    let cloud_cfg = config::load(&LoadOptions::default(), &env).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let public = std::fs::read_to_string(w.key.with_extension("pub")).unwrap();
    rt.block_on(async {
        let cloud = Cloud::connect(&cloud_cfg).await.unwrap();
        cloud.create_keypair("e2e", &public).await.unwrap();
    });
    w
}

/// The master's /json, asked on the master (the security groups keep its UI port closed to
/// the controller; the browser's view goes through `tunnel` below).
fn master_json(w: &World) -> Value {
    let out = on(
        w,
        &["--master-only"],
        "curl -fsS --max-time 10 http://demo-master:8080/json/",
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("/json: {e}: {out}"))
}

fn alive_workers(w: &World) -> BTreeSet<String> {
    master_json(w)["workers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["state"] == "ALIVE")
        .map(|w| w["host"].as_str().unwrap().to_string())
        .collect()
}

/// What the spark role computes for a node with this machine's memory (spark-ec2's rule).
fn expected_worker_memory_mb() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    let m = kb / 1024;
    match m {
        m if m > 102_400 => m - 15_360,
        m if m > 61_440 => m - 10_240,
        m if m > 40_960 => m - 6_144,
        m if m > 20_480 => m - 3_072,
        m if m > 10_240 => m - 2_048,
        m => (m.saturating_sub(1_300)).max(512),
    }
}

/// Runs the pi job through `submit` and returns its estimate.
fn pi(w: &World) -> f64 {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spark/pi.py");
    let out = w.cluster(&["submit", "demo", app.to_str().unwrap(), "8"]);
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("Pi is roughly "))
        .unwrap_or_else(|| panic!("no result in the job's output:\n{out}"));
    line.trim().parse().unwrap()
}

/// Whether a TCP connection from the controller to `addr:port` is let in: `false` when
/// the security groups' firewall drops it (no answer at all, not even a refusal).
fn reachable_from_controller(addr: &str, port: u16) -> bool {
    let sock: std::net::SocketAddr = format!("{addr}:{port}").parse().unwrap();
    match std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(3)) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => true,
        Err(_) => false,
    }
}

/// A PySpark Connect client on the controller (the user's laptop): `sum(range(1000))`
/// through `url`. Its stdout and stderr, and whether it succeeded.
fn connect_client(inputs: &Inputs, url: &str) -> (bool, String) {
    let script = "import sys\n\
        from pyspark.sql import SparkSession\n\
        s = SparkSession.builder.remote(sys.argv[1]).getOrCreate()\n\
        print('sum', s.range(1000).selectExpr('sum(id) AS s').collect()[0].s)\n";
    let out = Command::new("timeout")
        .arg("180")
        .arg(&inputs.connect_python)
        .args(["-c", script, url])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Headless Chromium's DOM of `url` after the page loaded.
fn browse(inputs: &Inputs, w: &World, url: &str) -> String {
    browse_with(inputs, w, url, &[])
}

/// Headless Chromium's DOM of `url` once its scripts had up to 10 s (virtual time) to fetch
/// and render their data, as the NameNode UI's pages do from /jmx.
fn browse_scripted(inputs: &Inputs, w: &World, url: &str) -> String {
    browse_with(inputs, w, url, &["--virtual-time-budget=10000"])
}

fn browse_with(inputs: &Inputs, w: &World, url: &str, extra: &[&str]) -> String {
    let out = Command::new(&inputs.chromium)
        .args(extra)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--timeout=20000",
        ])
        .arg(format!("--user-data-dir={}", w.path("chromium").display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium {url}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value a job printed as `NAME value` (hdfs_roundtrip.py's report).
fn job_field(out: &str, name: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no `{name}` in the job's output:\n{out}"))
        .trim()
        .to_string()
}

/// `run-command` output of one host, without the `host | ok | rc=0 >>` line.
fn on(w: &World, host_flag: &[&str], cmd: &str) -> String {
    let mut args = vec!["run-command", "demo"];
    args.extend_from_slice(host_flag);
    args.push(cmd);
    let out = w.cluster(&args);
    out.lines().skip(1).map(|l| format!("{l}\n")).collect()
}

/// The `<property>` name → value pairs of a Hadoop configuration file.
fn properties(xml: &str) -> std::collections::BTreeMap<String, String> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
    let text = |p: roxmltree::Node, tag: &str| {
        p.children()
            .find(|c| c.has_tag_name(tag))
            .and_then(|c| c.text())
            .unwrap_or_default()
            .to_string()
    };
    doc.root_element()
        .children()
        .filter(|n| n.has_tag_name("property"))
        .map(|p| (text(p, "name"), text(p, "value")))
        .collect()
}

/// The HDFS instances: name, NameNode RPC port, name directory on the master.
const HDFS: [(&str, u16, &str); 2] = [
    ("ephemeral-hdfs", 9000, "/mnt/ephemeral-hdfs/name"),
    (
        "persistent-hdfs",
        9010,
        "/home/debian/persistent-hdfs-data/name",
    ),
];

/// The identity of each instance's formatted filesystem (`current/VERSION` of its name
/// directory without the date comment): a second format would make a new namespaceID,
/// blockpoolID and cTime.
fn name_versions(w: &World) -> Vec<String> {
    HDFS.iter()
        .map(|(_, _, name_dir)| {
            let v = on(
                w,
                &["--master-only"],
                &format!("grep -v '^#' {name_dir}/current/VERSION | sort"),
            );
            assert!(v.contains("namespaceID="), "{v}");
            v
        })
        .collect()
}

/// `hdfs dfsadmin -report` of an instance, run on the master.
fn hdfs_report(w: &World, inst: &str) -> String {
    on(
        w,
        &["--master-only"],
        &format!("{inst}/bin/hdfs dfsadmin -report 2>/dev/null"),
    )
}

/// The host names of an instance's live DataNodes, as its NameNode reports them.
fn live_datanodes(w: &World, inst: &str) -> BTreeSet<String> {
    let report = on(
        w,
        &["--master-only"],
        &format!("{inst}/bin/hdfs dfsadmin -report -live 2>/dev/null"),
    );
    report
        .lines()
        .filter_map(|l| l.strip_prefix("Hostname: "))
        .map(|h| h.trim().to_string())
        .collect()
}

fn host_set(hosts: &[&str]) -> BTreeSet<String> {
    hosts.iter().map(|h| h.to_string()).collect()
}

/// What the hdfs role left: every property of both instances' configuration, each NameNode
/// formatted with its cluster id, both instances running (the test starts the persistent
/// one) with both slaves' DataNodes live, and Spark's default filesystem on the ephemeral
/// HDFS with the cluster's replication.
fn check_hdfs(w: &World) {
    let m = |pairs: &[(&str, &str)]| -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // name, NameNode rpc/http/secondary http, DataNode data/http/ipc, name and data dirs
    for (inst, nn, dn, name_dir, data_dir) in [
        (
            "ephemeral-hdfs",
            ["9000", "9870", "9868"],
            ["9866", "9864", "9867"],
            "/mnt/ephemeral-hdfs/name",
            "/mnt/ephemeral-hdfs/data",
        ),
        (
            "persistent-hdfs",
            ["9010", "9880", "9968"],
            ["9966", "9964", "9967"],
            "/home/debian/persistent-hdfs-data/name",
            "/home/debian/persistent-hdfs-data/data",
        ),
    ] {
        let [rpc, http, secondary] = nn;
        let core = properties(&on(
            w,
            &["--master-only"],
            &format!("cat {inst}/etc/hadoop/core-site.xml"),
        ));
        assert_eq!(
            core,
            m(&[
                ("fs.defaultFS", &format!("hdfs://demo-master:{rpc}")),
                ("hadoop.tmp.dir", &format!("{data_dir}/tmp")),
            ]),
            "{inst} core-site.xml"
        );
        let site = properties(&on(
            w,
            &["--master-only"],
            &format!("cat {inst}/etc/hadoop/hdfs-site.xml"),
        ));
        assert_eq!(
            site,
            m(&[
                ("dfs.namenode.name.dir", &format!("file://{name_dir}")),
                ("dfs.datanode.data.dir", &format!("file://{data_dir}")),
                ("dfs.replication", "2"),
                ("dfs.namenode.rpc-address", &format!("demo-master:{rpc}")),
                ("dfs.namenode.http-address", &format!("0.0.0.0:{http}")),
                (
                    "dfs.namenode.secondary.http-address",
                    &format!("demo-master:{secondary}")
                ),
                ("dfs.datanode.address", &format!("0.0.0.0:{}", dn[0])),
                ("dfs.datanode.http.address", &format!("0.0.0.0:{}", dn[1])),
                ("dfs.datanode.ipc.address", &format!("0.0.0.0:{}", dn[2])),
                (
                    "dfs.namenode.datanode.registration.ip-hostname-check",
                    "false"
                ),
                ("dfs.permissions.enabled", "false"),
                (
                    "dfs.hosts.exclude",
                    &format!("/home/debian/{inst}/etc/hadoop/dfs.exclude"),
                ),
                ("dfs.namenode.decommission.interval", "10s"),
                ("dfs.namenode.safemode.extension", "5000"),
            ]),
            "{inst} hdfs-site.xml"
        );
    }
    for ((inst, _, _), version) in HDFS.iter().zip(name_versions(w)) {
        assert!(
            version.contains(&format!("clusterID=demo-{inst}\n")),
            "{inst}: {version}"
        );
        let daemons = on(
            w,
            &["--master-only"],
            &format!(
                "{inst}/bin/hdfs --daemon status namenode && {inst}/bin/hdfs --daemon status secondarynamenode"
            ),
        );
        assert_eq!(
            daemons.matches("is running as process").count(),
            2,
            "{daemons}"
        );
        assert_eq!(
            live_datanodes(w, inst),
            host_set(&["demo-slave-1", "demo-slave-2"]),
            "{inst}: {}",
            hdfs_report(w, inst)
        );
    }
    let conf = on(w, &["--master-only"], "cat spark/conf/spark-defaults.conf");
    assert!(
        conf.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["spark.hadoop.fs.defaultFS", "hdfs://demo-master:9000"]),
        "{conf}"
    );
    assert!(
        conf.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["spark.hadoop.dfs.replication", "2"]),
        "{conf}"
    );
}

/// The cluster's secrets as the spark role left them: made on the master, owner-only there
/// and in every node's spark-defaults.conf, the same RPC secret on every node, and in
/// none of the given command outputs. Returns (RPC secret, Spark Connect token).
fn check_secrets(w: &World, outputs: &[&str]) -> (String, String) {
    let modes = on(
        w,
        &["--master-only"],
        "stat -c '%a %n' spark-openstack/secrets spark-openstack/secrets/*",
    );
    assert_eq!(
        modes.lines().collect::<Vec<_>>(),
        [
            "700 spark-openstack/secrets",
            "600 spark-openstack/secrets/auth-secret",
            "600 spark-openstack/secrets/connect-token",
        ],
        "{modes}"
    );
    let secret = on(
        w,
        &["--master-only"],
        "cat spark-openstack/secrets/auth-secret",
    );
    let token = on(
        w,
        &["--master-only"],
        "cat spark-openstack/secrets/connect-token",
    );
    let (secret, token) = (secret.trim().to_string(), token.trim().to_string());
    assert_eq!(secret.len(), 64, "{secret}");
    assert_eq!(token.len(), 64, "{token}");
    assert_ne!(secret, token);
    let conf = w.cluster(&[
        "run-command",
        "demo",
        "stat -c %a spark/conf/spark-defaults.conf && grep -E '^spark\\.(authenticate|network\\.crypto)' spark/conf/spark-defaults.conf",
    ]);
    assert_eq!(conf.matches("\n600\n").count(), 3, "{conf}");
    assert_eq!(
        conf.matches(&format!("spark.authenticate.secret        {secret}"))
            .count(),
        3,
        "{conf}"
    );
    assert_eq!(
        conf.matches("spark.network.crypto.enabled     true")
            .count(),
        3,
        "{conf}"
    );
    for out in outputs {
        assert!(!out.contains(&secret), "the RPC secret is in:\n{out}");
        assert!(!out.contains(&token), "the Connect token is in:\n{out}");
    }
    (secret, token)
}

#[test]
fn a_spark_cluster_launched_on_devcloud_runs_jobs_and_goes_away() {
    let inputs = match inputs() {
        Ok(i) => i,
        Err(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "the Spark end-to-end test cannot run in CI: {why}"
            );
            eprintln!("SKIPPED Spark end-to-end test: {why}");
            return;
        }
    };
    let w = up();
    // The role variables every command that configures nodes gets. The kernel tuning is on
    // (the kernel-wide keys are skipped inside image machines); the HDFS daemons' heaps are small so
    // that three machines' JVMs (two NameNodes and secondaries, four DataNodes, Spark) fit
    // beside each other on one host. The persistent HDFS runs too, to be checked.
    let role_vars = [
        format!("spark_source={}", inputs.sdist.display()),
        format!("spark_py4j_source={}", inputs.py4j.display()),
        format!("hadoop_source={}", inputs.hadoop.display()),
        format!("s3a_jars_source={}", inputs.s3a_jars.display()),
        "hdfs_heapsize_max=256m".to_string(),
        "hdfs_persistent_start=true".to_string(),
    ];
    let with_vars = |args: &[&str]| -> String {
        let mut a: Vec<&str> = args.to_vec();
        for v in &role_vars {
            a.extend(["-e", v.as_str()]);
        }
        w.cluster(&a)
    };
    let launch = || {
        with_vars(&[
            "launch",
            "demo",
            "-s",
            "2",
            "-a",
            "debian-12",
            "-k",
            "e2e",
            "--instance-type",
            "m1.large",
            "--object-storage",
        ])
    };
    let started = Instant::now();
    let first = launch();
    assert!(
        first.contains("Cluster demo: running (3 node(s))"),
        "{first}"
    );
    // launch returns once every slave's DataNode is live in both instances (the role waits).
    eprintln!(
        "FIGURE launch to a running HDFS (1 master + 2 slaves, both instances, every DataNode live): {:.0} s",
        started.elapsed().as_secs_f64()
    );
    check_hdfs(&w);
    let versions = name_versions(&w);
    // A second launch converges without touching anything, HDFS formats included.
    let out = launch();
    // The recap is in the full log, whose path launch prints.
    let log_of = |out: &str| -> String {
        let path = out
            .lines()
            .find_map(|l| l.strip_prefix("log: "))
            .unwrap_or_else(|| panic!("launch names no log:\n{out}"));
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let (first_log, log) = (log_of(&first), log_of(&out));
    for host in ["demo-master", "demo-slave-1", "demo-slave-2"] {
        let recap = log
            .lines()
            .find(|l| l.starts_with(host) && l.contains("changed="))
            .unwrap_or_else(|| panic!("no recap line for {host}:\n{log}"));
        // The tasks that changed something, with their TASK line, to say what did not converge.
        let changed: Vec<String> = log
            .lines()
            .scan(String::new(), |task, l| {
                if l.starts_with("TASK [") {
                    *task = l.to_string();
                }
                Some((task.clone(), l))
            })
            .filter(|(_, l)| l.starts_with(&format!("changed: [{host}]")))
            .map(|(t, l)| format!("{t}\n{l}"))
            .collect();
        assert!(
            recap.contains("changed=0 "),
            "{recap}\n{}",
            changed.join("\n")
        );
    }
    assert_eq!(
        name_versions(&w),
        versions,
        "a NameNode was formatted again"
    );
    let secrets = check_secrets(&w, &[&first, &out, &first_log, &log]);

    // The cluster as the cloud and the inventory see it.
    let d: Value = serde_json::from_str(&w.cluster(&["describe", "demo", "--json"])).unwrap();
    assert_eq!(d["state"], "running", "{d}");
    assert_eq!(d["slaves"].as_array().unwrap().len(), 2, "{d}");
    let addr = d["master_address"].as_str().unwrap().to_string();
    let inv: Value = serde_json::from_str(&w.ok(&["inventory", "demo", "--list"])).unwrap();
    assert_eq!(
        inv["master"]["hosts"],
        serde_json::json!(["demo-master"]),
        "{inv}"
    );
    assert_eq!(
        inv["slaves"]["hosts"],
        serde_json::json!(["demo-slave-1", "demo-slave-2"]),
        "{inv}"
    );

    // Three machines answer with three names; login reaches the master.
    let out = w.cluster(&["run-command", "demo", "hostname"]);
    let names: BTreeSet<&str> = out
        .lines()
        .filter(|l| l.starts_with("demo-") && !l.contains(" | "))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["demo-master", "demo-slave-1", "demo-slave-2"]),
        "{out}"
    );
    assert_eq!(
        w.cluster(&["login", "demo", "--", "hostname"]).trim(),
        "demo-master"
    );
    // The master reaches every slave with the cluster key (copy-dir's way).
    let out = w.cluster(&[
        "run-command",
        "demo",
        "--master-only",
        "ssh demo-slave-1 hostname && ssh demo-slave-2 hostname",
    ]);
    assert!(out.contains("demo-slave-1\ndemo-slave-2"), "{out}");

    // Spark: both workers ALIVE with the cores and memory the role computed.
    let json = master_json(&w);
    assert_eq!(json["aliveworkers"], 2, "{json}");
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    for worker in json["workers"].as_array().unwrap() {
        assert_eq!(worker["cores"], cores, "{worker}");
        assert_eq!(worker["memory"], expected_worker_memory_mb(), "{worker}");
    }
    assert_eq!(
        alive_workers(&w),
        BTreeSet::from(["demo-slave-1".to_string(), "demo-slave-2".to_string()])
    );

    // Locked down: from the controller (the world, since no --authorized-address was given),
    // the floating address lets SSH in and nothing else: not the UIs, not the master's RPC
    // port, not Spark Connect.
    assert!(reachable_from_controller(&addr, 22));
    for port in [8080, 7077, 15002, 9000, 9870, 9010, 9880] {
        assert!(
            !reachable_from_controller(&addr, port),
            "port {port} of the master's floating address answers the controller"
        );
    }

    // Locked down: the master's REST submission server (unauthenticated jobs, on by default
    // since Spark 4.1) does not listen, not even for the master itself.
    let rest = on(
        &w,
        &["--master-only"],
        "curl -s -m 5 -o /dev/null http://demo-master:6066/; echo rc=$?",
    );
    assert!(
        rest.contains("rc=7"),
        "port 6066 must refuse connections: {rest}"
    );

    // A PySpark job through submit, while an application without the cluster's secret
    // (Spark's configuration minus spark-defaults.conf, as on a machine that never got it)
    // tries to register with the master and is refused.
    let estimate = std::thread::scope(|scope| {
        let stranger = scope.spawn(|| {
            on(
                &w,
                &["--master-only"],
                "d=$(mktemp -d); cp spark/conf/spark-env.sh spark/conf/spark-node-env.sh \"$d\"/; \
                 printf 'from pyspark import SparkContext\\nsc = SparkContext()\\nprint(\"Pi is\", sc.parallelize(range(9)).count())\\n' > \"$d/app.py\"; \
                 SPARK_CONF_DIR=$d timeout 300 spark/bin/spark-submit --master spark://demo-master:7077 \
                 \"$d/app.py\" 2>&1 | grep -E '^Pi is 9$|All masters are unresponsive'; rm -rf \"$d\"",
            )
        });
        let estimate = pi(&w);
        let refused = stranger.join().unwrap();
        assert!(
            refused.contains("All masters are unresponsive") && !refused.contains("Pi is 9"),
            "an application without the secret must not register: {refused}"
        );
        estimate
    });
    assert!((estimate - std::f64::consts::PI).abs() < 0.01, "{estimate}");
    assert!(
        !w.cluster(&["describe", "demo", "--json"])
            .contains(&secrets.0),
        "describe shows the RPC secret"
    );

    // A PySpark job writes a dataset to the default filesystem, the ephemeral HDFS, and
    // reads every row back; the NameNode has it, with the cluster's replication.
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spark/hdfs_roundtrip.py");
    let out = w.cluster(&[
        "submit",
        "demo",
        app.to_str().unwrap(),
        "/e2e/roundtrip",
        "2000000",
    ]);
    let field = |name: &str| job_field(&out, name);
    assert_eq!(field("defaultFS"), "hdfs://demo-master:9000", "{out}");
    assert_eq!(
        field("written to"),
        "hdfs://demo-master:9000/e2e/roundtrip",
        "{out}"
    );
    assert_eq!(field("rows"), "2000000", "{out}");
    assert_eq!(field("checksum"), "ok", "{out}");
    let bytes: f64 = field("bytes").parse().unwrap();
    let (write_s, read_s): (f64, f64) = (
        field("write_s").parse().unwrap(),
        field("read_s").parse().unwrap(),
    );
    assert!(bytes > 50e6, "{out}");
    eprintln!(
        "FIGURE PySpark on the ephemeral HDFS: {:.0} MB of Parquet (2M rows, replication 2) written in {write_s:.1} s ({:.1} MB/s), read back in {read_s:.1} s ({:.1} MB/s)",
        bytes / 1e6,
        bytes / 1e6 / write_s,
        bytes / 1e6 / read_s
    );
    let fsck = on(
        &w,
        &["--master-only"],
        "ephemeral-hdfs/bin/hdfs fsck /e2e/roundtrip 2>/dev/null",
    );
    assert!(
        fsck.contains("is HEALTHY") && fsck.contains("Average block replication:\t2.0"),
        "{fsck}"
    );

    // The same job on the object store: Parquet to s3a://e2e/roundtrip through devcloud's
    // Swift (its S3 API, the user's EC2 credentials), read back whole; the real openstack
    // CLI sees the objects in the container.
    let os = |args: &[&str]| -> String {
        let out = Command::new(&inputs.openstack)
            .args(args)
            .env("OS_CLIENT_CONFIG_FILE", w.path("clouds.yaml"))
            .env("OS_CLOUD", "devcloud")
            .output()
            .unwrap();
        assert!(out.status.success(), "openstack {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    os(&["container", "create", "e2e"]);
    let out = w.cluster(&[
        "submit",
        "demo",
        app.to_str().unwrap(),
        "s3a://e2e/roundtrip",
        "500000",
    ]);
    let field = |name: &str| job_field(&out, name);
    assert_eq!(field("written to"), "s3a://e2e/roundtrip", "{out}");
    assert_eq!(field("rows"), "500000", "{out}");
    assert_eq!(field("checksum"), "ok", "{out}");
    let bytes: f64 = field("bytes").parse().unwrap();
    let (write_s, read_s): (f64, f64) = (
        field("write_s").parse().unwrap(),
        field("read_s").parse().unwrap(),
    );
    eprintln!(
        "FIGURE PySpark on S3A (devcloud's Swift): {:.0} MB of Parquet (500k rows) written in {write_s:.1} s ({:.1} MB/s), read back in {read_s:.1} s ({:.1} MB/s)",
        bytes / 1e6,
        bytes / 1e6 / write_s,
        bytes / 1e6 / read_s
    );
    let objects = os(&["object", "list", "e2e", "-f", "value", "-c", "Name"]);
    assert!(
        objects.lines().any(|l| l == "roundtrip/_SUCCESS")
            && objects.lines().filter(|l| l.ends_with(".parquet")).count() >= 1,
        "{objects}"
    );
    // The EC2 credential the launch made: one, and its secret nowhere but the nodes'
    // owner-only spark-defaults.conf.
    let creds: Value =
        serde_json::from_str(&os(&["ec2", "credentials", "list", "-f", "json"])).unwrap();
    let creds = creds.as_array().unwrap();
    assert_eq!(creds.len(), 1, "{creds:?}");
    let ec2_secret = creds[0]["Secret"].as_str().unwrap().to_string();
    let conf = w.cluster(&[
        "run-command",
        "demo",
        "grep -q '^spark.hadoop.fs.s3a.secret.key' spark/conf/spark-defaults.conf",
    ]);
    assert_eq!(conf.matches("| ok |").count(), 3, "{conf}");
    let describe = w.cluster(&["describe", "demo", "--json"]);
    for shown in [&first, &out, &describe, &first_log] {
        assert!(
            !shown.contains(&ec2_secret),
            "the EC2 secret is in:\n{shown}"
        );
    }

    // A file in the persistent HDFS, to be found intact after stop / start.
    let put = on(
        &w,
        &["--master-only"],
        "head -c 20000000 /dev/urandom > /tmp/keep.bin && \
         persistent-hdfs/bin/hdfs dfs -mkdir -p /keep && \
         persistent-hdfs/bin/hdfs dfs -put -f /tmp/keep.bin /keep/keep.bin && \
         md5sum < /tmp/keep.bin && rm /tmp/keep.bin",
    );
    let keep_md5 = put.split_whitespace().next().unwrap().to_string();
    assert_eq!(keep_md5.len(), 32, "{put}");

    // A changed spark-env.sh pushed from the controller reaches every node, and
    // restart-spark.yml (run from a directory without playbooks/) applies it.
    let conf = w.path("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let current = w.cluster(&[
        "run-command",
        "demo",
        "--master-only",
        "cat spark/conf/spark-env.sh",
    ]);
    let body: String = current.lines().skip(1).map(|l| format!("{l}\n")).collect();
    assert!(body.contains("SPARK_MASTER_HOST"), "{current}");
    std::fs::write(
        conf.join("spark-env.sh"),
        format!("{body}export SPARK_E2E_MARKER=pushed\n"),
    )
    .unwrap();
    w.cluster(&[
        "copy-dir",
        "demo",
        conf.to_str().unwrap(),
        "--to",
        "spark/conf",
    ]);
    let out = w.cluster(&[
        "run-command",
        "demo",
        "grep -c SPARK_E2E_MARKER spark/conf/spark-env.sh",
    ]);
    assert_eq!(out.matches("| ok |").count(), 3, "{out}");
    let key = w.key.display().to_string();
    w.ok(&[
        "play",
        "playbooks/restart-spark.yml",
        "-e",
        "cluster=demo",
        "--private-key",
        &key,
    ]);
    let out = w.cluster(&[
        "run-command",
        "demo",
        "tr '\\0' '\\n' < /proc/$(cat /tmp/spark-*.deploy.[mw]*.pid)/environ | grep SPARK_E2E_MARKER",
    ]);
    assert_eq!(out.matches("SPARK_E2E_MARKER=pushed").count(), 3, "{out}");
    assert_eq!(alive_workers(&w).len(), 2);

    // The master UI from a browser through `tunnel`: the worker links go through the master's
    // reverse proxy and stay relative, so they work on the tunnel's local port too.
    let tunnel = w.tunnel("demo");
    let base = tunnel.services["spark_master"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no spark_master in {}", tunnel.services))
        .trim_end_matches('/')
        .to_string();
    assert!(base.starts_with("http://localhost:"), "{base}");
    let page = browse(&inputs, &w, &format!("{base}/"));
    assert!(
        page.contains("Spark Master at spark://demo-master:7077"),
        "{page}"
    );
    assert!(!page.contains("REST URL"), "the REST server is off: {page}");
    let link = page
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|h| h.contains("/proxy/worker-"))
        .unwrap_or_else(|| panic!("no worker link in the master UI:\n{page}"))
        .to_string();
    assert!(link.starts_with("/proxy/worker-"), "{link}");
    let worker_page = browse(&inputs, &w, &format!("{base}{link}"));
    assert!(
        worker_page.contains("Spark Worker at demo-slave-"),
        "{worker_page}"
    );

    // Both NameNode UIs through the same tunnel: the overview, rendered by its scripts
    // from the NameNode's /jmx, names the NameNode and counts the live DataNodes.
    for (service, rpc) in [("hdfs_namenode", 9000), ("hdfs_persistent_namenode", 9010)] {
        let url = tunnel.services[service]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("no {service} in {}", tunnel.services))
            .trim_end_matches('/')
            .to_string();
        assert!(url.starts_with("http://localhost:"), "{url}");
        let page = browse_scripted(&inputs, &w, &format!("{url}/dfshealth.html"));
        assert!(
            page.contains(&format!("'demo-master:{rpc}'"))
                && page.contains("dfshealth-namenode-active\">active</span>)"),
            "{service}: {page}"
        );
        assert!(
            page.contains("Live Nodes") && page.contains(">2 (Decommissioned: 0"),
            "{service}: {page}"
        );
    }

    // Spark Connect from the laptop through the same tunnel: its line names the token's
    // file (owner-only, the master's token), never the token itself.
    let connect = &tunnel.services["spark_connect"];
    let url = connect["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{connect}"));
    assert!(
        url.starts_with("sc://localhost:") && !url.contains("token"),
        "{url}"
    );
    let token_file = PathBuf::from(connect["token_file"].as_str().unwrap());
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim(),
        secrets.1
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{}", token_file.display());
    let port: u16 = connect["local_port"].as_u64().unwrap() as u16;
    let with_token = w.cluster(&["connect-url", "demo", "--port", &port.to_string()]);
    assert_eq!(
        with_token.trim(),
        format!("sc://localhost:{port}/;token={}", secrets.1)
    );
    let (ok, out) = connect_client(&inputs, with_token.trim());
    assert!(
        ok && out.contains("sum 499500"),
        "Spark Connect query: {out}"
    );
    for url in [
        format!("sc://localhost:{port}/"),
        format!("sc://localhost:{port}/;token=0123456789abcdef"),
    ] {
        let (ok, out) = connect_client(&inputs, &url);
        assert!(
            !ok && !out.contains("sum 499500"),
            "Spark Connect must refuse {url}: {out}"
        );
    }
    // The history server through the same tunnel lists the finished applications from
    // their event logs in the persistent HDFS (it rescans every 10 s).
    let history = tunnel.services["spark_history"]["local_port"]
        .as_u64()
        .unwrap_or_else(|| panic!("no spark_history in {}", tunnel.services))
        as u16;
    let deadline = Instant::now() + Duration::from_secs(90);
    let apps = loop {
        let (status, body) = support::http_get(history, "/api/v1/applications?status=completed");
        let json = body.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        let names: BTreeSet<String> = serde_json::from_str::<Value>(json)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|a| a["name"].as_str().map(String::from))
            .collect();
        if names.contains("PythonPi") && names.contains("HdfsRoundtrip") {
            break names;
        }
        assert!(
            Instant::now() < deadline,
            "history server: {status}\n{body}"
        );
        std::thread::sleep(Duration::from_secs(5));
    };
    eprintln!("history server lists {apps:?}");
    let events = on(
        &w,
        &["--master-only"],
        "persistent-hdfs/bin/hdfs dfs -ls /spark-events 2>/dev/null | grep -c app-",
    );
    assert!(
        events
            .lines()
            .last()
            .unwrap_or("0")
            .trim()
            .parse::<u32>()
            .unwrap_or(0)
            >= 2,
        "{events}"
    );
    drop(tunnel);

    // Grow and shrink. add-slaves and start get no -e: the role variables of the launch are
    // recorded with the cluster (a new slave would otherwise fetch Spark from Apache).
    w.cluster(&["add-slaves", "demo", "1"]);
    assert_eq!(alive_workers(&w).len(), 3);
    let three = host_set(&["demo-slave-1", "demo-slave-2", "demo-slave-3"]);
    for (inst, _, _) in HDFS {
        assert_eq!(live_datanodes(&w, inst), three, "{}", hdfs_report(&w, inst));
    }
    // A file whose only replica is on the slave about to go: a client on a DataNode's
    // machine writes the first replica there.
    let solo = on(
        &w,
        &["--master-only"],
        "ssh demo-slave-3 'head -c 30000000 /dev/urandom > /tmp/solo.bin && \
           ephemeral-hdfs/bin/hdfs dfs -D dfs.replication=1 -put -f /tmp/solo.bin /solo.bin && \
           md5sum < /tmp/solo.bin && rm /tmp/solo.bin'",
    );
    let solo_md5 = solo.split_whitespace().next().unwrap().to_string();
    assert_eq!(solo_md5.len(), 32, "{solo}");
    let slave3_ip = on(&w, &["--master-only"], "getent hosts demo-slave-3")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let locations = || {
        on(
            &w,
            &["--master-only"],
            "ephemeral-hdfs/bin/hdfs fsck /solo.bin -files -blocks -locations 2>/dev/null",
        )
    };
    let before = locations();
    let holders: BTreeSet<&str> = before
        .split("DatanodeInfoWithStorage[")
        .skip(1)
        .filter_map(|s| s.split(':').next())
        .collect();
    assert_eq!(
        holders,
        BTreeSet::from([slave3_ip.as_str()]),
        "the file's blocks must be on demo-slave-3 only: {before}"
    );
    let removing = Instant::now();
    let out = w.cluster(&["remove-slaves", "demo", "1", "--yes"]);
    eprintln!(
        "FIGURE remove-slaves 1 with its DataNodes decommissioned (30 MB to move): {:.0} s",
        removing.elapsed().as_secs_f64()
    );
    let d: Value = serde_json::from_str(&w.cluster(&["describe", "demo", "--json"])).unwrap();
    assert_eq!(d["slaves"].as_array().unwrap().len(), 2, "{d}\n{out}");
    // Its Spark worker was decommissioned before the server went (Spark's graceful
    // decommissioning, which the master logs), not merely lost.
    let master_log = on(
        &w,
        &["--master-only"],
        "grep -ih decommission spark/logs/*deploy.master.Master*.out || true",
    );
    assert!(
        master_log.lines().any(|l| l.contains("demo-slave-3")),
        "the master logged no decommissioning of demo-slave-3's worker:\n{master_log}\n{out}"
    );
    let back = on(
        &w,
        &["--master-only"],
        "ephemeral-hdfs/bin/hdfs dfs -cat /solo.bin | md5sum",
    );
    assert_eq!(
        back.split_whitespace().next(),
        Some(solo_md5.as_str()),
        "the file put on the removed slave came back different: {back}\n{}",
        locations()
    );
    // The NameNode still lists the removed node's (decommissioned, dead) replica; the
    // live one is on a slave that stays.
    let after = locations();
    let holders: BTreeSet<&str> = after
        .split("DatanodeInfoWithStorage[")
        .skip(1)
        .filter_map(|s| s.split(':').next())
        .filter(|ip| *ip != slave3_ip)
        .collect();
    assert!(
        after.contains("is HEALTHY") && after.contains("Live_repl=1") && holders.len() == 1,
        "{after}"
    );
    // Two DataNodes in service. The deleted slave's counts as live (Decommissioned) until
    // the NameNode misses its heartbeats for 10.5 minutes.
    for (inst, _, _) in HDFS {
        let report = hdfs_report(&w, inst);
        let mut in_service = BTreeSet::new();
        let mut host = "";
        for l in report.lines() {
            if let Some(h) = l.strip_prefix("Hostname: ") {
                host = h.trim();
            } else if let Some(st) = l.strip_prefix("Decommission Status : ") {
                match (host, st.trim()) {
                    ("demo-slave-3", st) => assert_eq!(st, "Decommissioned", "{report}"),
                    (h, "Normal") => {
                        in_service.insert(h.to_string());
                    }
                    (h, st) => panic!("{inst}: {h} is {st}:\n{report}"),
                }
            }
        }
        assert_eq!(
            in_service,
            host_set(&["demo-slave-1", "demo-slave-2"]),
            "{report}"
        );
    }

    // Stop and start: the same cluster comes back and runs the job again.
    w.cluster(&["stop", "demo", "--yes"]);
    let d: Value = serde_json::from_str(&w.cluster(&["describe", "demo", "--json"])).unwrap();
    assert_eq!(d["state"], "stopped", "{d}");
    w.cluster(&["start", "demo"]);
    let d: Value = serde_json::from_str(&w.cluster(&["describe", "demo", "--json"])).unwrap();
    assert_eq!(d["state"], "running", "{d}");
    assert_eq!(
        alive_workers(&w),
        BTreeSet::from(["demo-slave-1".to_string(), "demo-slave-2".to_string()])
    );
    let estimate = pi(&w);
    assert!((estimate - std::f64::consts::PI).abs() < 0.01, "{estimate}");

    // Persistent and ephemeral HDFS kept their name directories: never formatted again;
    // the persistent HDFS's file is intact, and both slaves' DataNodes are back.
    assert_eq!(
        name_versions(&w),
        versions,
        "a NameNode was formatted again"
    );
    let kept = on(
        &w,
        &["--master-only"],
        "persistent-hdfs/bin/hdfs dfs -cat /keep/keep.bin | md5sum",
    );
    assert_eq!(
        kept.split_whitespace().next(),
        Some(keep_md5.as_str()),
        "{kept}"
    );
    for (inst, _, _) in HDFS {
        assert_eq!(
            live_datanodes(&w, inst),
            host_set(&["demo-slave-1", "demo-slave-2"]),
            "{}",
            hdfs_report(&w, inst)
        );
    }

    // Destroy: nothing of the cluster is left, in the cloud or on the host.
    assert!(!w.namespaces().is_empty());
    w.cluster(&["destroy", "demo", "--yes"]);
    let d: Value = serde_json::from_str(&w.ok(&["describe", "--json"])).unwrap();
    assert_eq!(d["clusters"], serde_json::json!([]), "clusters left: {d}");
    let servers = w.run(&["inventory", "demo", "--list"]);
    let inv: Value = serde_json::from_slice(&servers.stdout).unwrap();
    assert_eq!(inv["_meta"]["hostvars"], serde_json::json!({}), "{inv}");
    let mut gone = false;
    for _ in 0..100 {
        if w.namespaces().is_empty() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(gone, "machines left after destroy: {:?}", w.namespaces());
}
