//! The cloud side of every cluster command against a REAL OpenStack (Zed, Debian 12
//! packages, started by `.ci/openstack/up`), with the real `openstack` CLI as the
//! independent witness of what is in the cloud afterwards.
//!
//! Env contract: `SPARK_OPENSTACK_REAL_CLOUD` names the cloud (demo project) in
//! `SPARK_OPENSTACK_REAL_CLOUDS_YAML` (else `OS_CLIENT_CONFIG_FILE`; .ci/run sets the former
//! only, so no other test can pick up the real cloud by accident); `SPARK_OPENSTACK_REAL_ADMIN_CLOUD` (default `NAME-admin`) is
//! its admin; `OPENSTACK_BIN` is the CLI. Without the variable the tests say so and pass,
//! except under `CI=true`, where a suite that silently skips would hide everything.
//!
//! Like tests/cluster_devcloud.rs: the real binary, `--cloud-only` (FakeDriver servers
//! have no sshd), `HOME` and the working directory temporary.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_spark-openstack");

/// The real cloud under test, or `None` (skip) outside CI.
struct Real {
    cloud: String,
    admin: String,
    clouds_yaml: PathBuf,
    os_bin: String,
    dir: tempfile::TempDir,
}

fn real(test: &str) -> Option<Real> {
    let cloud = std::env::var("SPARK_OPENSTACK_REAL_CLOUD").unwrap_or_default();
    if cloud.is_empty() {
        let why = "SPARK_OPENSTACK_REAL_CLOUD is not set (start one with .ci/openstack/up)";
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: {why}; under CI=true the real-OpenStack suite must run, not skip"
        );
        eprintln!("SKIP {test}: {why}");
        return None;
    }
    let clouds_yaml = PathBuf::from(
        std::env::var("SPARK_OPENSTACK_REAL_CLOUDS_YAML")
            .or_else(|_| std::env::var("OS_CLIENT_CONFIG_FILE"))
            .expect(
                "SPARK_OPENSTACK_REAL_CLOUD needs SPARK_OPENSTACK_REAL_CLOUDS_YAML (or \
                 OS_CLIENT_CONFIG_FILE): the clouds.yaml that .ci/openstack/up wrote",
            ),
    );
    assert!(
        clouds_yaml.is_file(),
        "{} is missing",
        clouds_yaml.display()
    );
    let admin = std::env::var("SPARK_OPENSTACK_REAL_ADMIN_CLOUD")
        .unwrap_or_else(|_| format!("{cloud}-admin"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("home")).expect("home");
    Some(Real {
        cloud,
        admin,
        clouds_yaml,
        os_bin: std::env::var("OPENSTACK_BIN").unwrap_or_else(|_| "openstack".into()),
        dir,
    })
}

/// A cluster name no other test (or earlier run) uses.
fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() % 100_000)
        .unwrap_or(0);
    format!("rs{tag}{t}{n}")
}

fn text(out: &Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Real {
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The binary under test, on `cloud` (default: the demo cloud).
    fn tool_env(&self, args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
        let mut c = Command::new(BIN);
        c.args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("OS_CLIENT_CONFIG_FILE", &self.clouds_yaml)
            .env("OS_CLOUD", &self.cloud)
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("XDG_STATE_HOME");
        for (k, v) in envs {
            c.env(k, v);
        }
        text(&c.output().expect("run spark-openstack"))
    }

    fn tool(&self, args: &[&str]) -> (i32, String, String) {
        self.tool_env(args, &[])
    }

    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.tool(args);
        assert_eq!(code, 0, "{args:?} failed:\nstdout:\n{out}\nstderr:\n{err}");
        out
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}):\n{out}"))
    }

    /// The witness: the `openstack` CLI on `cloud`, JSON output.
    fn os_on(&self, cloud: &str, args: &[&str]) -> Value {
        self.os_in(&self.clouds_yaml, cloud, args)
    }

    /// The `openstack` CLI on `cloud` of another clouds.yaml (a project made by a test).
    fn os_in(&self, clouds_yaml: &Path, cloud: &str, args: &[&str]) -> Value {
        let out = Command::new(&self.os_bin)
            .arg("--os-cloud")
            .arg(cloud)
            .args(args)
            .args(["-f", "json"])
            .env("OS_CLIENT_CONFIG_FILE", clouds_yaml)
            .env_remove("OS_CLOUD")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} (OPENSTACK_BIN): {e}", self.os_bin));
        let (code, out, err) = text(&out);
        assert_eq!(code, 0, "openstack {args:?}:\n{out}{err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("openstack {args:?}: {e}\n{out}"))
    }

    fn os(&self, args: &[&str]) -> Value {
        self.os_on(&self.cloud, args)
    }

    /// `openstack ...` without output format (actions); panics on failure.
    fn os_do(&self, cloud: &str, args: &[&str]) {
        let out = Command::new(&self.os_bin)
            .arg("--os-cloud")
            .arg(cloud)
            .args(args)
            .env("OS_CLIENT_CONFIG_FILE", &self.clouds_yaml)
            .env_remove("OS_CLOUD")
            .output()
            .expect("run openstack");
        let (code, out, err) = text(&out);
        assert_eq!(code, 0, "openstack {args:?}:\n{out}{err}");
    }

    /// The cluster's servers as the CLI lists them: (name, id, status), sorted by name.
    fn servers(&self, cluster: &str) -> Vec<(String, String, String)> {
        let v = self.os(&["server", "list", "--name", &format!("^{cluster}-")]);
        let mut s: Vec<_> = arr(&v)
            .iter()
            .map(|x| (st(&x["Name"]), st(&x["ID"]), st(&x["Status"])))
            .collect();
        s.sort();
        s
    }

    /// Names of the project's security groups / volumes starting with `cluster-`.
    fn named(&self, what: &[&str], cluster: &str) -> Vec<String> {
        let v = self.os(what);
        let mut n: Vec<String> = arr(&v)
            .iter()
            .map(|x| st(&x["Name"]))
            .filter(|n| n.starts_with(&format!("{cluster}-")))
            .collect();
        n.sort();
        n
    }

    /// Everything the cluster may have left: servers, security groups, volumes, floating
    /// IPs on its ports (or on `fips`), and ports of its servers (`server_ids`).
    fn leftovers(&self, cluster: &str, server_ids: &BTreeSet<String>, fips: &[String]) -> String {
        let mut left = Vec::new();
        let servers = self.servers(cluster);
        if !servers.is_empty() {
            left.push(format!("servers {servers:?}"));
        }
        let groups = self.named(&["security", "group", "list"], cluster);
        if !groups.is_empty() {
            left.push(format!("security groups {groups:?}"));
        }
        let vols = self.named(&["volume", "list"], cluster);
        if !vols.is_empty() {
            left.push(format!("volumes {vols:?}"));
        }
        let ports = self.os(&["port", "list", "--long"]);
        let ports: Vec<String> = arr(&ports)
            .iter()
            .filter(|p| server_ids.contains(&st(&p["Device ID"])))
            .map(|p| st(&p["ID"]))
            .collect();
        if !ports.is_empty() {
            left.push(format!("ports {ports:?}"));
        }
        let fl = self.os(&["floating", "ip", "list"]);
        let fl: Vec<String> = arr(&fl)
            .iter()
            .map(|f| st(&f["Floating IP Address"]))
            .filter(|a| fips.contains(a))
            .collect();
        if !fl.is_empty() {
            left.push(format!("floating IPs {fl:?}"));
        }
        left.join("; ")
    }

    /// Waits until every server of the cluster has `status` per the CLI.
    fn wait_status(&self, cluster: &str, n: usize, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.servers(cluster);
            if s.len() == n && s.iter().all(|x| x.2 == status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{cluster}: not {n} x {status}: {s:?}"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// The floating IP Neutron associates with `fixed` (the master's fixed address).
    fn floating_of(&self, fixed: &str) -> Option<String> {
        let fl = self.os(&["floating", "ip", "list"]);
        arr(&fl)
            .iter()
            .find(|f| f["Fixed IP Address"] == fixed)
            .map(|f| st(&f["Floating IP Address"]))
    }

    /// A key pair for the tests (imported from a fresh key on first use) and its identity
    /// file: `-k NAME -i FILE`.
    fn key_args(&self) -> Vec<String> {
        // One key and one key pair name per run, shared by every test of it: launch imports
        // the key pair from the .pub next to -i, and refuses a name Nova holds with
        // another key.
        static KEY: OnceLock<PathBuf> = OnceLock::new();
        let key = KEY.get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("spark-openstack-rs-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("key dir");
            let key = dir.join("id_ed25519");
            let _ = std::fs::remove_file(&key);
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(&key)
                .status()
                .expect("ssh-keygen")
                .success();
            assert!(ok, "ssh-keygen failed");
            key
        });
        static NAME: OnceLock<String> = OnceLock::new();
        let name = NAME.get_or_init(|| unique("key"));
        vec![
            "-k".into(),
            name.clone(),
            "-i".into(),
            key.display().to_string(),
        ]
    }
}

fn arr(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn st(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The first fixed (non-floating) address in a `server show` `addresses` value.
fn fixed_address(show: &Value) -> String {
    let a = &show["addresses"];
    for ips in a.as_object().into_iter().flat_map(|o| o.values()) {
        if let Some(first) = ips.as_array().and_then(|l| l.first()) {
            return st(first);
        }
    }
    panic!("no address in {a}")
}

fn launch_args<'a>(
    name: &'a str,
    slaves: &'a str,
    keys: &'a [String],
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut a = vec![
        "launch",
        name,
        "-s",
        slaves,
        "-a",
        "debian-12",
        "-t",
        "m1.small",
        "--cloud-only",
    ];
    a.extend(keys.iter().map(String::as_str));
    a.extend_from_slice(extra);
    a
}

/// Destroys a cluster whatever state it is in (cleanup after a failed assertion too).
struct Cleanup<'a> {
    real: &'a Real,
    cluster: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.real.tool(&["destroy", &self.cluster, "--yes"]);
    }
}

#[test]
fn every_cluster_command_against_real_openstack() {
    let Some(real) = real("every_cluster_command_against_real_openstack") else {
        return;
    };
    let name = unique("life");
    let _cleanup = Cleanup {
        real: &real,
        cluster: name.clone(),
    };
    let keys = real.key_args();
    // Two Nova zones (az1, az2) and volumes: Cinder has only its own zone `nova`.
    real.ok(&launch_args(
        &name,
        "2",
        &keys,
        &["--slave-volume-size", "1", "--zone", "az1,az2"],
    ));
    let zones: BTreeSet<String> =
        arr(&real.os(&["server", "list", "--long", "--name", &format!("^{name}-")]))
            .iter()
            .map(|s| st(&s["Availability Zone"]))
            .collect();
    assert_eq!(
        zones,
        BTreeSet::from(["az1".to_string(), "az2".to_string()]),
        "the servers are spread over both zones"
    );

    // The witness: three ACTIVE servers, two in-use volumes, both security groups.
    let servers = real.servers(&name);
    let names: Vec<&str> = servers.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("{name}-master"),
            format!("{name}-slave-1"),
            format!("{name}-slave-2")
        ],
        "{servers:?}"
    );
    assert!(servers.iter().all(|s| s.2 == "ACTIVE"), "{servers:?}");
    let mut ids: BTreeSet<String> = servers.iter().map(|s| s.1.clone()).collect();
    assert_eq!(
        real.named(&["security", "group", "list"], &name),
        [format!("{name}-master"), format!("{name}-slaves")]
    );
    let vols = real.os(&["volume", "list", "--long"]);
    let ours: Vec<&Value> = vols
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| st(&v["Name"]).starts_with(&format!("{name}-")))
        .collect();
    assert_eq!(ours.len(), 2, "{vols:#}");
    for v in &ours {
        assert_eq!(v["Status"], "in-use", "{v}");
        assert_eq!(v["Size"], 1, "{v}");
    }

    // describe and inventory: the master's address is its floating IP per Neutron.
    let d = real.json(&["describe", &name, "--json"]);
    assert_eq!(d["state"], "running", "{d:#}");
    assert_eq!(d["slaves"].as_array().map(Vec::len), Some(2), "{d:#}");
    let master = real.os(&["server", "show", &format!("{name}-master")]);
    let fixed = fixed_address(&master);
    let fip = real
        .floating_of(&fixed)
        .unwrap_or_else(|| panic!("no floating IP on the master's {fixed}"));
    assert_eq!(d["master_address"], fip.as_str(), "{d:#}");
    let inv = real.json(&["inventory", &name, "--list"]);
    assert_eq!(
        inv["_meta"]["hostvars"][format!("{name}-master")]["ansible_host"],
        fip.as_str(),
        "{inv:#}"
    );

    // stop, then start: SHUTOFF then ACTIVE per the CLI.
    real.ok(&["stop", &name, "--yes"]);
    real.wait_status(&name, 3, "SHUTOFF");
    assert_eq!(
        real.json(&["describe", &name, "--json"])["state"],
        "stopped"
    );
    real.ok(&["start", &name, "--cloud-only"]);
    real.wait_status(&name, 3, "ACTIVE");
    assert_eq!(
        real.json(&["describe", &name, "--json"])["state"],
        "running"
    );

    // add-slaves, remove-slaves.
    // The key pair is the one recorded at launch (add-slaves takes no -k).
    real.ok(&["add-slaves", &name, "1", "--cloud-only"]);
    let grown = real.servers(&name);
    assert_eq!(grown.len(), 4, "{grown:?}");
    assert!(
        grown
            .iter()
            .any(|s| s.0 == format!("{name}-slave-3") && s.2 == "ACTIVE")
    );
    ids.extend(grown.iter().map(|s| s.1.clone()));
    assert_eq!(
        real.named(&["volume", "list"], &name).len(),
        3,
        "add-slaves gives the new slave its volume"
    );
    real.ok(&["remove-slaves", &name, "1", "--yes", "--cloud-only"]);
    let shrunk = real.servers(&name);
    assert_eq!(shrunk.len(), 3, "{shrunk:?}");
    assert!(!shrunk.iter().any(|s| s.0 == format!("{name}-slave-3")));
    assert_eq!(real.named(&["volume", "list"], &name).len(), 2);

    // destroy leaves nothing of the cluster.
    real.ok(&["destroy", &name, "--yes"]);
    let left = real.leftovers(&name, &ids, std::slice::from_ref(&fip));
    assert!(left.is_empty(), "destroy left: {left}");
}

/// Fresh launch -> inventory -> destroy, many times, several at once: the master's
/// `ansible_host` must be the floating IP Neutron lists for it every time (Nova shows it in
/// `addresses` 1-3 s after Neutron associated it, so reading Nova alone is racy).
#[test]
fn inventory_names_the_masters_floating_ip_in_every_fresh_launch() {
    let Some(real) = real("inventory_names_the_masters_floating_ip_in_every_fresh_launch") else {
        return;
    };
    let keys = real.key_args();
    let rounds = 10;
    let parallel = 5;
    let mut problems = Vec::new();
    for wave in 0..rounds / parallel {
        let results: Vec<Result<(), String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..parallel)
                .map(|i| {
                    let real = &real;
                    let keys = &keys;
                    s.spawn(move || one_round(real, keys, wave * parallel + i))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("round panicked".into())))
                .collect()
        });
        problems.extend(results.into_iter().filter_map(Result::err));
    }
    assert!(
        problems.is_empty(),
        "{} of {rounds} rounds went wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

fn one_round(real: &Real, keys: &[String], i: usize) -> Result<(), String> {
    let name = unique(&format!("inv{i}x"));
    let _cleanup = Cleanup {
        real,
        cluster: name.clone(),
    };
    let (code, out, err) = real.tool(&launch_args(&name, "1", keys, &[]));
    if code != 0 {
        return Err(format!("{name}: launch exited {code}: {out}{err}"));
    }
    let (code, out, err) = real.tool(&["inventory", &name, "--list"]);
    if code != 0 {
        return Err(format!("{name}: inventory exited {code}: {err}"));
    }
    let inv: Value = serde_json::from_str(&out).map_err(|e| format!("{name}: {e}"))?;
    let master = real.os(&["server", "show", &format!("{name}-master")]);
    let fixed = fixed_address(&master);
    let fip = real.floating_of(&fixed);
    let host = &inv["_meta"]["hostvars"][format!("{name}-master")]["ansible_host"];
    let ids: BTreeSet<String> = real.servers(&name).into_iter().map(|s| s.1).collect();
    let (code, _, err) = real.tool(&["destroy", &name, "--yes"]);
    if code != 0 {
        return Err(format!("{name}: destroy exited {code}: {err}"));
    }
    let left = real.leftovers(&name, &ids, fip.as_slice());
    if !left.is_empty() {
        return Err(format!("{name}: destroy left {left}"));
    }
    match fip {
        Some(f) if host == f.as_str() => Ok(()),
        Some(f) => Err(format!(
            "{name}: inventory says ansible_host {host}, Neutron's floating IP is {f} (fixed {fixed})"
        )),
        None => Err(format!("{name}: Neutron lists no floating IP for {fixed}")),
    }
}

/// A project of its own with tiny quotas, and a clouds.yaml for its user, made with the
/// admin cloud (idempotent; the password is new each run).
fn quota_cloud(real: &Real, project: &str) -> PathBuf {
    let a = &real.admin;
    real.os_on(a, &["project", "create", "--or-show", project]);
    let password = unique("pw");
    real.os_on(
        a,
        &[
            "user",
            "create",
            "--or-show",
            "--project",
            project,
            "--password",
            &password,
            project,
        ],
    );
    real.os_do(a, &["user", "set", "--password", &password, project]);
    real.os_do(
        a,
        &[
            "role",
            "add",
            "--project",
            project,
            "--user",
            project,
            "member",
        ],
    );
    real.os_do(
        a,
        &[
            "quota",
            "set",
            "--instances",
            "2",
            "--cores",
            "20",
            "--ram",
            "100000",
            project,
        ],
    );
    // A network of its own (no DHCP, a loopback range) so servers can boot there.
    let net = format!("{project}-net");
    let nets = real.os_on(a, &["network", "list", "--name", &net]);
    if arr(&nets).is_empty() {
        real.os_do(a, &["network", "create", "--project", project, &net]);
        let range = if project.ends_with("diff") {
            "127.29.0.0/24"
        } else {
            "127.28.0.0/24"
        };
        real.os_do(
            a,
            &[
                "subnet",
                "create",
                "--project",
                project,
                "--network",
                &net,
                "--subnet-range",
                range,
                "--no-dhcp",
                &format!("{project}-subnet"),
            ],
        );
    }
    let yaml = std::fs::read_to_string(&real.clouds_yaml).expect("clouds.yaml");
    let auth_url = yaml
        .lines()
        .find_map(|l| l.trim().strip_prefix("auth_url:"))
        .map(|u| u.trim().to_string())
        .expect("an auth_url in clouds.yaml");
    let path = real.path(&format!("{project}-clouds.yaml"));
    std::fs::write(
        &path,
        format!(
            "clouds:\n  quota:\n    auth:\n      auth_url: {auth_url}\n      username: {project}\n      \
             password: {password}\n      project_name: {project}\n      user_domain_name: Default\n      \
             project_domain_name: Default\n    region_name: RegionOne\n    interface: public\n"
        ),
    )
    .expect("write quota clouds.yaml");
    path
}

#[test]
fn bad_inputs_are_named_and_leave_nothing_behind() {
    let Some(real) = real("bad_inputs_are_named_and_leave_nothing_behind") else {
        return;
    };
    let keys = real.key_args();
    let mut problems = Vec::new();
    let mut check = |what: &str, name: &str, res: (i32, String, String), words: &[&str]| {
        let (code, out, err) = res;
        let all = format!("{out}{err}");
        if code == 0 {
            problems.push(format!("{what}: exited 0:\n{all}"));
        }
        // A bad image or flavor is a bad option (5), found before any playbook runs.
        if what.starts_with("unknown") && code != 5 {
            problems.push(format!("{what}: exited {code}, not 5:\n{all}"));
        }
        let lower = all.to_lowercase();
        let missing: Vec<&&str> = words
            .iter()
            .filter(|w| !lower.contains(&w.to_lowercase()))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("{what}: message lacks {missing:?}:\n{all}"));
        }
        let left = real.leftovers(name, &BTreeSet::new(), &[]);
        if !left.is_empty() {
            problems.push(format!("{what}: left {left}"));
        }
    };

    let name = unique("badimg");
    let _c1 = Cleanup {
        real: &real,
        cluster: name.clone(),
    };
    let mut a = launch_args(&name, "1", &keys, &[]);
    a[5] = "no-such-image";
    check(
        "unknown image",
        &name,
        real.tool(&a),
        &["--image", "no-such-image"],
    );

    let name = unique("badflv");
    let _c2 = Cleanup {
        real: &real,
        cluster: name.clone(),
    };
    let mut a = launch_args(&name, "1", &keys, &[]);
    a[7] = "no-such-flavor";
    check(
        "unknown flavor",
        &name,
        real.tool(&a),
        &["--instance-type", "no-such-flavor"],
    );

    let name = unique("badpw");
    let _c3 = Cleanup {
        real: &real,
        cluster: name.clone(),
    };
    let a = launch_args(&name, "1", &keys, &[]);
    check(
        "wrong password",
        &name,
        real.tool_env(&a, &[("OS_PASSWORD", "not-the-password")]),
        &["authentication", "realstack", "credentials"],
    );

    // Quota: the project allows 2 instances, the cluster needs 3.
    let qyaml = quota_cloud(&real, "rs-quota-launch");
    let name = unique("quota");
    let qenv = [
        ("OS_CLIENT_CONFIG_FILE", qyaml.to_str().expect("utf-8 path")),
        ("OS_CLOUD", "quota"),
    ];
    let a = launch_args(&name, "2", &keys, &[]);
    let res = real.tool_env(&a, &qenv);
    // The witness looks in the quota project.
    let left_servers = Command::new(&real.os_bin)
        .args(["--os-cloud", "quota", "server", "list", "-f", "json"])
        .env("OS_CLIENT_CONFIG_FILE", &qyaml)
        .output()
        .expect("openstack");
    let left: Value = serde_json::from_slice(&left_servers.stdout).unwrap_or(Value::Null);
    let (code, out, err) = res;
    let all = format!("{out}{err}").to_lowercase();
    if code == 0 {
        problems.push(format!("quota: exited 0:\n{all}"));
    }
    if !(all.contains("quota") && all.contains("instances")) {
        problems.push(format!(
            "quota: message lacks 'quota' and 'instances':\n{all}"
        ));
    }
    if !arr(&left).is_empty() {
        problems.push(format!("quota: left servers {left}"));
    }
    let _ = real.tool_env(&["destroy", &name, "--yes"], &qenv);

    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

// --- differential: the same raw client calls against real OpenStack and devcloud ----------

use openstack_client::{Cloud, CloudConfig, LoadOptions, Service, config};

/// One observation: a step name and what was seen (status code, field names, values that
/// must agree).
type Record = Vec<(String, Value)>;

fn load_cloud(yaml: &Path, name: &str) -> CloudConfig {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = BTreeMap::new();
    env.insert(
        "OS_CLIENT_CONFIG_FILE".to_string(),
        yaml.display().to_string(),
    );
    config::load(
        &LoadOptions {
            cloud: Some(name.to_string()),
            search_dirs: vec![dir.path().to_path_buf()],
        },
        &env,
    )
    .unwrap_or_else(|e| panic!("{name} in {}: {e}", yaml.display()))
}

/// Status and body of a raw call; error statuses are results too.
async fn call(c: &Cloud, svc: Service, m: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(m.as_bytes()).expect("method");
    match c.call(svc, method, path, body).await {
        Ok(r) => (
            r.status.as_u16(),
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        ),
        Err(e) => (e.status().unwrap_or(0), json!(e.to_string())),
    }
}

fn keys_of(v: &Value, want: &[&str]) -> Value {
    // Which of the fields the client reads are present (present = not missing).
    json!(
        want.iter()
            .filter(|k| v.get(**k).is_some())
            .copied()
            .collect::<Vec<_>>()
    )
}

async fn wait_server(c: &Cloud, id: &str, want: &str, seen: &mut Vec<String>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (code, v) = call(c, Service::Compute, "GET", &format!("/servers/{id}"), None).await;
        let s = st(&v["server"]["status"]);
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if code == 200 && s == want {
            return v["server"].clone();
        }
        assert!(Instant::now() < deadline, "{id} never {want}: {seen:?} {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn find_id(c: &Cloud, svc: Service, path: &str, key: &str, name: &str) -> String {
    let (_, v) = call(c, svc, "GET", path, None).await;
    arr(&v[key])
        .iter()
        .find(|x| x["name"] == name)
        .map(|x| st(&x["id"]))
        .unwrap_or_else(|| panic!("{name} not in {path}: {v}"))
}

/// The sequence, on one cloud. `quota` is a client on a project allowed 2 instances.
async fn sequence(c: &Cloud, quota: &Cloud, tag: &str) -> Record {
    let mut r: Record = Vec::new();
    let image = find_id(c, Service::Image, "/images", "images", "debian-12").await;
    let net = find_id(c, Service::Network, "/networks", "networks", "private").await;
    let public = find_id(c, Service::Network, "/networks", "networks", "public").await;

    // Security group and rules.
    let sg_name = format!("diff-{tag}");
    let (code, v) = call(
        c,
        Service::Network,
        "POST",
        "/security-groups",
        Some(json!({"security_group": {"name": sg_name, "description": "diff"}})),
    )
    .await;
    let sg = st(&v["security_group"]["id"]);
    r.push(("sg create".into(), json!(code)));
    let rule = json!({"security_group_rule": {"security_group_id": sg, "direction": "ingress",
        "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
        "remote_ip_prefix": "0.0.0.0/0"}});
    let (code, v) = call(
        c,
        Service::Network,
        "POST",
        "/security-group-rules",
        Some(rule.clone()),
    )
    .await;
    let rv = &v["security_group_rule"];
    r.push((
        "rule create".into(),
        json!([
            code,
            keys_of(
                rv,
                &[
                    "id",
                    "security_group_id",
                    "direction",
                    "ethertype",
                    "protocol",
                    "port_range_min",
                    "port_range_max",
                    "remote_ip_prefix",
                    "remote_group_id"
                ]
            ),
            rv["protocol"],
            rv["port_range_min"],
            rv["remote_ip_prefix"],
            rv["remote_group_id"]
        ]),
    ));
    let (code, _) = call(
        c,
        Service::Network,
        "POST",
        "/security-group-rules",
        Some(rule),
    )
    .await;
    r.push(("duplicate rule".into(), json!(code)));

    // Server: create, status transitions, addresses shape.
    let server_body = |name: &str| {
        json!({"server": {"name": name, "imageRef": image, "flavorRef": "2",
            "networks": [{"uuid": net}], "security_groups": [{"name": sg_name}],
            "metadata": {"spark_openstack_cluster": "diff"}}})
    };
    let (code, v) = call(
        c,
        Service::Compute,
        "POST",
        "/servers",
        Some(server_body(&format!("diff-{tag}"))),
    )
    .await;
    let id = st(&v["server"]["id"]);
    r.push((
        "server create".into(),
        json!([
            code,
            keys_of(&v["server"], &["id", "links", "security_groups"])
        ]),
    ));
    let mut seen = Vec::new();
    let s = wait_server(c, &id, "ACTIVE", &mut seen).await;
    r.push(("server statuses to ACTIVE".into(), json!(seen)));
    let addr_shape = |s: &Value| -> Value {
        let mut out = Vec::new();
        for (net, ips) in s["addresses"].as_object().into_iter().flatten() {
            for ip in arr(ips) {
                out.push(json!([
                    net,
                    ip["version"],
                    ip["OS-EXT-IPS:type"],
                    keys_of(
                        &ip,
                        &[
                            "addr",
                            "version",
                            "OS-EXT-IPS:type",
                            "OS-EXT-IPS-MAC:mac_addr"
                        ]
                    )
                ]));
            }
        }
        json!(out)
    };
    r.push(("addresses".into(), addr_shape(&s)));
    r.push((
        "server fields".into(),
        keys_of(
            &s,
            &[
                "id",
                "name",
                "status",
                "addresses",
                "metadata",
                "key_name",
                "flavor",
                "image",
                "OS-EXT-AZ:availability_zone",
                "security_groups",
                "tags",
                "OS-EXT-STS:vm_state",
                "OS-EXT-STS:task_state",
                "fault",
            ],
        ),
    ));

    // Its port.
    let (code, v) = call(
        c,
        Service::Network,
        "GET",
        &format!("/ports?device_id={id}"),
        None,
    )
    .await;
    let ports = arr(&v["ports"]);
    let port = ports.first().cloned().unwrap_or(Value::Null);
    r.push((
        "port of server".into(),
        json!([
            code,
            ports.len(),
            keys_of(
                &port,
                &[
                    "id",
                    "network_id",
                    "fixed_ips",
                    "device_id",
                    "device_owner",
                    "mac_address",
                    "security_groups",
                    "status"
                ]
            ),
            // "compute:<zone>": the realstack cloud has zones az1/az2, devcloud "nova".
            st(&port["device_owner"]).starts_with("compute:"),
            keys_of(&port["fixed_ips"][0], &["subnet_id", "ip_address"])
        ]),
    ));

    // Floating IP: create, associate, visible in Nova's addresses (and how late).
    let (code, v) = call(
        c,
        Service::Network,
        "POST",
        "/floatingips",
        Some(json!({"floatingip": {"floating_network_id": public}})),
    )
    .await;
    let f = v["floatingip"].clone();
    let fid = st(&f["id"]);
    r.push((
        "floating ip create".into(),
        json!([
            code,
            keys_of(
                &f,
                &[
                    "id",
                    "floating_ip_address",
                    "floating_network_id",
                    "port_id",
                    "fixed_ip_address",
                    "status",
                    "router_id"
                ]
            ),
            f["port_id"],
            f["status"]
        ]),
    ));
    let (code, v) = call(
        c,
        Service::Network,
        "PUT",
        &format!("/floatingips/{fid}"),
        Some(json!({"floatingip": {"port_id": port["id"]}})),
    )
    .await;
    let f = v["floatingip"].clone();
    r.push((
        "floating ip associate".into(),
        json!([
            code,
            f["port_id"] == port["id"],
            f["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
        ]),
    ));
    let t0 = Instant::now();
    let mut lag_ok = false;
    while t0.elapsed() < Duration::from_secs(20) {
        let (_, v) = call(c, Service::Compute, "GET", &format!("/servers/{id}"), None).await;
        if addr_shape(&v["server"]).to_string().contains("floating") {
            lag_ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "{tag}: floating IP in Nova's addresses after {:?}",
        t0.elapsed()
    );
    r.push(("floating ip in addresses within 20 s".into(), json!(lag_ok)));
    let (_, v) = call(c, Service::Compute, "GET", &format!("/servers/{id}"), None).await;
    r.push((
        "addresses with floating ip".into(),
        addr_shape(&v["server"]),
    ));

    // Security group in use: cannot be deleted.
    let (code, _) = call(
        c,
        Service::Network,
        "DELETE",
        &format!("/security-groups/{sg}"),
        None,
    )
    .await;
    r.push(("delete sg in use".into(), json!(code)));

    // Volume: create, attach, fields.
    let (code, v) = call(
        c,
        Service::Volume,
        "POST",
        "/volumes",
        Some(json!({"volume": {"size": 1, "name": format!("diff-{tag}")}})),
    )
    .await;
    let vid = st(&v["volume"]["id"]);
    r.push((
        "volume create".into(),
        json!([
            code,
            keys_of(&v["volume"], &["id", "status", "size", "name"])
        ]),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = call(c, Service::Volume, "GET", &format!("/volumes/{vid}"), None).await;
        if v["volume"]["status"] == "available" {
            break;
        }
        assert!(Instant::now() < deadline, "volume never available: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (code, v) = call(
        c,
        Service::Compute,
        "POST",
        &format!("/servers/{id}/os-volume_attachments"),
        Some(json!({"volumeAttachment": {"volumeId": vid, "delete_on_termination": false}})),
    )
    .await;
    let att = v["volumeAttachment"].clone();
    r.push((
        "volume attach".into(),
        json!([
            code,
            keys_of(
                &att,
                &[
                    "id",
                    "volumeId",
                    "serverId",
                    "device",
                    "tag",
                    "delete_on_termination"
                ]
            ),
            att["delete_on_termination"]
        ]),
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    let vol = loop {
        let (_, v) = call(c, Service::Volume, "GET", &format!("/volumes/{vid}"), None).await;
        if v["volume"]["status"] == "in-use" || Instant::now() > deadline {
            break v["volume"].clone();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let a0 = vol["attachments"][0].clone();
    r.push((
        "volume in-use".into(),
        json!([
            vol["status"],
            keys_of(&a0, &["server_id", "attachment_id", "volume_id", "device"]),
            a0["server_id"] == id.as_str()
        ]),
    ));
    let (code, v) = call(
        c,
        Service::Compute,
        "GET",
        &format!("/servers/{id}/os-volume_attachments"),
        None,
    )
    .await;
    r.push((
        "list attachments".into(),
        json!([code, arr(&v["volumeAttachments"]).len()]),
    ));
    let (code, _) = call(
        c,
        Service::Volume,
        "DELETE",
        &format!("/volumes/{vid}"),
        None,
    )
    .await;
    r.push(("delete volume in use".into(), json!(code)));

    // Stop and start.
    let (code, _) = call(
        c,
        Service::Compute,
        "POST",
        &format!("/servers/{id}/action"),
        Some(json!({"os-stop": null})),
    )
    .await;
    let mut seen = Vec::new();
    wait_server(c, &id, "SHUTOFF", &mut seen).await;
    r.push(("stop".into(), json!([code, seen.last()])));
    let (code, _) = call(
        c,
        Service::Compute,
        "POST",
        &format!("/servers/{id}/action"),
        Some(json!({"os-stop": null})),
    )
    .await;
    r.push(("stop a stopped server".into(), json!(code)));
    let (code, _) = call(
        c,
        Service::Compute,
        "POST",
        &format!("/servers/{id}/action"),
        Some(json!({"os-start": null})),
    )
    .await;
    let mut seen = Vec::new();
    wait_server(c, &id, "ACTIVE", &mut seen).await;
    r.push(("start".into(), json!([code, seen.last()])));

    // 404s.
    let none = "00000000-0000-4000-8000-000000000000";
    for (svc, path) in [
        (Service::Compute, format!("/servers/{none}")),
        (Service::Network, format!("/floatingips/{none}")),
        (Service::Network, format!("/security-groups/{none}")),
        (Service::Network, format!("/ports/{none}")),
        (Service::Volume, format!("/volumes/{none}")),
    ] {
        let (code, _) = call(c, svc, "GET", &path, None).await;
        r.push((format!("GET {path}"), json!(code)));
    }

    // Quota: 2 instances allowed, the third create is refused.
    let qimage = find_id(quota, Service::Image, "/images", "images", "debian-12").await;
    let qnet = {
        let (_, v) = call(quota, Service::Network, "GET", "/networks", None).await;
        arr(&v["networks"])
            .iter()
            .find(|n| n["router:external"] != true)
            .map(|n| st(&n["id"]))
    };
    let mut qids = Vec::new();
    let mut codes = Vec::new();
    let mut refusal_names_quota = Value::Null;
    for i in 0..3 {
        let mut body = json!({"server": {"name": format!("diffq-{tag}-{i}"), "imageRef": qimage,
            "flavorRef": "1", "networks": "none"}});
        if let Some(n) = &qnet {
            body["server"]["networks"] = json!([{"uuid": n}]);
        }
        let (code, v) = call(quota, Service::Compute, "POST", "/servers", Some(body)).await;
        codes.push(code);
        if code == 202 {
            let q = st(&v["server"]["id"]);
            // Nova counts instances in its cell database, which a server reaches only once
            // the conductor has scheduled it; a create that comes before that is accepted
            // and fails later, at the conductor's quota recheck (`[quota] recheck_quota`).
            // A user's creates are that far apart; waiting makes the third one's refusal
            // deterministic instead of depending on how busy the conductor is.
            wait_server(quota, &q, "ACTIVE", &mut Vec::new()).await;
            qids.push(q);
        } else {
            refusal_names_quota = json!(st(&v).to_lowercase().contains("quota"));
        }
    }
    r.push(("3 creates with instances quota 2".into(), json!(codes)));
    r.push(("quota refusal names quota".into(), refusal_names_quota));
    for q in &qids {
        call(
            quota,
            Service::Compute,
            "DELETE",
            &format!("/servers/{q}"),
            None,
        )
        .await;
    }

    // Delete: 204, then 404.
    let (code, _) = call(
        c,
        Service::Compute,
        "DELETE",
        &format!("/servers/{id}"),
        None,
    )
    .await;
    r.push(("server delete".into(), json!(code)));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, _) = call(c, Service::Compute, "GET", &format!("/servers/{id}"), None).await;
        if code == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "server {id} not deleted");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = call(c, Service::Volume, "GET", &format!("/volumes/{vid}"), None).await;
        if v["volume"]["status"] == "available" || Instant::now() > deadline {
            r.push((
                "volume after server delete".into(),
                v["volume"]["status"].clone(),
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, v) = call(
        c,
        Service::Network,
        "GET",
        &format!("/floatingips/{fid}"),
        None,
    )
    .await;
    r.push((
        "floating ip after server delete".into(),
        json!([
            v["floatingip"]["port_id"],
            v["floatingip"]["fixed_ip_address"]
        ]),
    ));
    let (code, _) = call(
        c,
        Service::Network,
        "DELETE",
        &format!("/floatingips/{fid}"),
        None,
    )
    .await;
    r.push(("floating ip delete".into(), json!(code)));
    let (code, _) = call(
        c,
        Service::Volume,
        "DELETE",
        &format!("/volumes/{vid}"),
        None,
    )
    .await;
    r.push(("volume delete".into(), json!(code)));
    let (code, _) = call(
        c,
        Service::Network,
        "DELETE",
        &format!("/security-groups/{sg}"),
        None,
    )
    .await;
    r.push(("sg delete".into(), json!(code)));
    for q in &qids {
        let deadline = Instant::now() + Duration::from_secs(60);
        while call(
            quota,
            Service::Compute,
            "GET",
            &format!("/servers/{q}"),
            None,
        )
        .await
        .0 != 404
        {
            assert!(Instant::now() < deadline, "quota server {q} not deleted");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    r
}

#[test]
fn raw_client_calls_behave_the_same_on_devcloud_and_real_openstack() {
    let Some(real) = real("raw_client_calls_behave_the_same_on_devcloud_and_real_openstack") else {
        return;
    };
    let qyaml = quota_cloud(&real, "rs-quota-diff");
    let dev = support::TestCloud::records(
        "boot_time: {min_ms: 2000, max_ms: 2000}\naction_time_ms: 500\n",
    );
    let dev_yaml = real.path("devcloud-clouds.yaml");
    std::fs::write(
        &dev_yaml,
        format!(
            "clouds:\n  dev:\n    auth:\n      auth_url: {}/identity/v3\n      username: demo\n      \
             password: {}\n      project_name: demo\n      user_domain_name: Default\n      \
             project_domain_name: Default\n    interface: public\n",
            dev.url(),
            dev.password()
        ),
    )
    .expect("write devcloud clouds.yaml");
    // devcloud's quota case: a second devcloud whose projects allow 2 instances.
    let devq = support::TestCloud::records(
        "boot_time: {min_ms: 200, max_ms: 200}\nquotas: {instances: 2}\n",
    );
    let devq_yaml = real.path("devcloudq-clouds.yaml");
    std::fs::write(
        &devq_yaml,
        format!(
            "clouds:\n  devq:\n    auth:\n      auth_url: {}/identity/v3\n      username: demo\n      \
             password: {}\n      project_name: demo\n      user_domain_name: Default\n      \
             project_domain_name: Default\n    interface: public\n",
            devq.url(),
            devq.password()
        ),
    )
    .expect("write devcloud clouds.yaml");

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (real_rec, dev_rec) = rt.block_on(async {
        let r = Cloud::connect(&load_cloud(&real.clouds_yaml, &real.cloud))
            .await
            .expect("connect real");
        let rq = Cloud::connect(&load_cloud(&qyaml, "quota"))
            .await
            .expect("connect real quota project");
        let d = Cloud::connect(&load_cloud(&dev_yaml, "dev"))
            .await
            .expect("connect devcloud");
        let dq = Cloud::connect(&load_cloud(&devq_yaml, "devq"))
            .await
            .expect("connect devcloud (quota)");
        let tag = unique("d");
        tokio::join!(sequence(&r, &rq, &tag), sequence(&d, &dq, &tag))
    });
    let mut diffs = Vec::new();
    for (i, (step, real_v)) in real_rec.iter().enumerate() {
        let dev_v = dev_rec.get(i).map(|x| &x.1);
        eprintln!(
            "{step}: real {real_v} | devcloud {}",
            dev_v.unwrap_or(&Value::Null)
        );
        if dev_rec.get(i).map(|x| &x.0) != Some(step) || dev_v != Some(real_v) {
            diffs.push(format!(
                "{step}: real OpenStack {real_v}, devcloud {}",
                dev_v.unwrap_or(&Value::Null)
            ));
        }
    }
    assert_eq!(real_rec.len(), dev_rec.len(), "step counts differ");
    assert!(
        diffs.is_empty(),
        "devcloud differs from real OpenStack in {} step(s):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

// --- object storage: EC2 credentials, the catalog, S3 through Swift ------------------------

/// A new project with one member user, and a clouds.yaml (cloud `fresh`) for that user;
/// deleted again on drop. EC2 credentials are per user and project, so a fresh pair is
/// the only way to see "created once" on a cloud that outlives test runs.
struct FreshProject<'a> {
    real: &'a Real,
    name: String,
    yaml: PathBuf,
}

impl<'a> FreshProject<'a> {
    fn new(real: &'a Real, tag: &str) -> FreshProject<'a> {
        let name = unique(tag);
        let a = &real.admin;
        let password = unique("pw");
        real.os_on(a, &["project", "create", &name]);
        real.os_on(
            a,
            &[
                "user",
                "create",
                "--project",
                &name,
                "--password",
                &password,
                &name,
            ],
        );
        real.os_do(
            a,
            &["role", "add", "--project", &name, "--user", &name, "member"],
        );
        let yaml = std::fs::read_to_string(&real.clouds_yaml).expect("clouds.yaml");
        let auth_url = yaml
            .lines()
            .find_map(|l| l.trim().strip_prefix("auth_url:"))
            .map(|u| u.trim().to_string())
            .expect("an auth_url in clouds.yaml");
        let path = real.path(&format!("{name}-clouds.yaml"));
        std::fs::write(
            &path,
            format!(
                "clouds:\n  fresh:\n    auth:\n      auth_url: {auth_url}\n      username: {name}\n      \
                 password: {password}\n      project_name: {name}\n      user_domain_name: Default\n      \
                 project_domain_name: Default\n    region_name: RegionOne\n    interface: public\n"
            ),
        )
        .expect("write the fresh project's clouds.yaml");
        FreshProject {
            real,
            name,
            yaml: path,
        }
    }
}

impl Drop for FreshProject<'_> {
    fn drop(&mut self) {
        // Keystone deletes a deleted user's credentials with it.
        for what in ["user", "project"] {
            let _ = Command::new(&self.real.os_bin)
                .args(["--os-cloud", &self.real.admin, what, "delete", &self.name])
                .env("OS_CLIENT_CONFIG_FILE", &self.real.clouds_yaml)
                .env_remove("OS_CLOUD")
                .output();
        }
    }
}

/// One S3 request signed with AWS Signature V4 by a real S3 client (curl's
/// `--aws-sigv4`), with the payload hash S3 requires in `x-amz-content-sha256` (curl 7.88
/// does not send it by itself). Returns the status and body; the secret never appears in
/// an assertion message.
fn s3(method: &str, url: &str, access: &str, secret: &str, body: &[u8]) -> (u16, String) {
    use sha2::Digest;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("body");
    let out = dir.path().join("out");
    std::fs::write(&data, body).expect("write body");
    let sha = hex::encode(sha2::Sha256::digest(body));
    let res = Command::new("curl")
        .args(["-sS", "-X", method, "--aws-sigv4", "aws:amz:RegionOne:s3"])
        .arg("--user")
        .arg(format!("{access}:{secret}"))
        .arg("-H")
        .arg(format!("x-amz-content-sha256: {sha}"))
        .arg("--data-binary")
        .arg(format!("@{}", data.display()))
        .args(["-H", "Content-Type: application/octet-stream"])
        .arg("-o")
        .arg(&out)
        .args(["-w", "%{http_code}", url])
        .output()
        .expect("run curl");
    let (code, stdout, stderr) = text(&res);
    assert_eq!(code, 0, "curl {method} {url}: {stderr}");
    let status = stdout.trim().parse().unwrap_or(0);
    (status, std::fs::read_to_string(&out).unwrap_or_default())
}

#[test]
fn ec2_credentials_and_s3_through_swift_against_real_openstack() {
    let Some(real) = real("ec2_credentials_and_s3_through_swift_against_real_openstack") else {
        return;
    };
    let fresh = FreshProject::new(&real, "s3");
    let project_id = st(&real.os_on(&real.admin, &["project", "show", &fresh.name])["id"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let c = rt
        .block_on(Cloud::connect(&load_cloud(&fresh.yaml, "fresh")))
        .expect("connect as the fresh project's user");

    // The catalog, as Keystone's endpoint list (the CLI) has it.
    let url_of = |service: &str| {
        let v = real.os_on(
            &real.admin,
            &[
                "endpoint",
                "list",
                "--service",
                service,
                "--interface",
                "public",
            ],
        );
        let e = arr(&v);
        assert_eq!(e.len(), 1, "public {service} endpoints: {v}");
        st(&e[0]["URL"]).replace("%(project_id)s", &project_id)
    };
    let s3_url = rt.block_on(c.service_endpoint("s3")).expect("s3 lookup");
    assert_eq!(s3_url, Some(url_of("s3")));
    let swift_url = rt
        .block_on(c.service_endpoint("object-store"))
        .expect("object-store lookup");
    assert_eq!(swift_url, Some(url_of("object-store")));
    assert!(
        swift_url
            .as_deref()
            .is_some_and(|u| u.ends_with(&format!("/v1/AUTH_{project_id}"))),
        "{swift_url:?}"
    );
    assert_eq!(
        rt.block_on(c.service_endpoint("no-such-service-type"))
            .expect("lookup of an unknown type"),
        None
    );

    // EC2 credentials: none yet; ensure creates one, then reuses it.
    assert!(rt.block_on(c.ec2_credentials()).expect("list").is_empty());
    let (cred, created) = rt.block_on(c.ensure_ec2_credential()).expect("ensure");
    assert!(
        created,
        "a fresh user has no credential, so ensure creates one"
    );
    assert_eq!(cred.project_id, project_id);
    assert!(!format!("{cred:?}").contains(cred.secret.expose()));
    let (again, created) = rt
        .block_on(c.ensure_ec2_credential())
        .expect("ensure again");
    assert!(
        !created,
        "the second ensure must reuse the first credential"
    );
    assert_eq!(again, cred);
    let witness = real.os_in(&fresh.yaml, "fresh", &["ec2", "credentials", "list"]);
    let listed: Vec<(String, String, String)> = arr(&witness)
        .iter()
        .map(|x| (st(&x["Access"]), st(&x["Project ID"]), st(&x["User ID"])))
        .collect();
    assert_eq!(
        listed,
        vec![(
            cred.access.clone(),
            project_id.clone(),
            cred.user_id.clone()
        )],
        "openstack ec2 credentials list"
    );
    let mine = rt.block_on(c.ec2_credentials()).expect("list again");
    assert_eq!(mine, vec![cred.clone()]);

    // S3 through Swift's s3api, signed with the credential; Swift's own API shows the result.
    let root = s3_url.expect("an s3 endpoint");
    let bucket = fresh.name.clone();
    let object = format!("{root}/{bucket}/hello.txt");
    let (access, secret) = (cred.access.as_str(), cred.secret.expose());
    let (status, body) = s3("PUT", &format!("{root}/{bucket}"), access, secret, b"");
    assert_eq!(status, 200, "S3 create bucket: {body}");
    let (status, body) = s3("PUT", &object, access, secret, b"hello through s3\n");
    assert_eq!(status, 200, "S3 put object: {body}");
    let (status, body) = s3("GET", &object, access, secret, b"");
    assert_eq!((status, body.as_str()), (200, "hello through s3\n"));
    let objects = real.os_in(&fresh.yaml, "fresh", &["object", "list", &bucket]);
    assert_eq!(
        arr(&objects)
            .iter()
            .map(|o| st(&o["Name"]))
            .collect::<Vec<_>>(),
        vec!["hello.txt"],
        "openstack object list {bucket}: {objects}"
    );

    // A wrong secret: Keystone's signature check fails and S3 answers 403.
    let (status, body) = s3("GET", &object, access, "0123456789abcdef", b"");
    assert_eq!(status, 403, "wrong secret: {body}");
    assert!(
        body.contains("SignatureDoesNotMatch") || body.contains("AccessDenied"),
        "{body}"
    );

    // The product's module, in a playbook as the spark role runs it: the catalog's S3
    // endpoint and region, the project's credential reused (not a second one), and the
    // secret only in the registered result, never in the run's output.
    let result = real.path("object-storage.json");
    let book = real.path("object-storage.yml");
    let playbook = r#"- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - spark_openstack.object_storage: {}
      register: s3
      no_log: true
    - copy: {content: "{{ s3 | to_json }}", dest: RESULT, mode: "0600"}
      no_log: true
"#;
    std::fs::write(&book, playbook.replace("RESULT", result.to_str().unwrap())).unwrap();
    let yaml = fresh.yaml.display().to_string();
    let (code, out, err) = real.tool_env(
        &["play", book.to_str().unwrap(), "-v"],
        &[("OS_CLIENT_CONFIG_FILE", &yaml), ("OS_CLOUD", "fresh")],
    );
    assert_eq!(code, 0, "play:\n{out}\n{err}");
    assert!(
        !out.contains(secret) && !err.contains(secret),
        "the EC2 secret is in the play's output"
    );
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    assert_eq!(got["endpoint"], json!(root.trim_end_matches('/')));
    assert_eq!(got["region"], json!("RegionOne"));
    assert_eq!(got["access_key"], json!(cred.access));
    assert!(
        got["secret_key"].as_str() == Some(secret),
        "the module's secret is not the credential's"
    );
    assert_eq!(got["created"], json!(false));
    assert_eq!(got["ca_cert"], Value::Null);
    assert_eq!(rt.block_on(c.ec2_credentials()).expect("list").len(), 1);

    let (status, body) = s3("DELETE", &object, access, secret, b"");
    assert_eq!(status, 204, "S3 delete object: {body}");
    let (status, body) = s3("DELETE", &format!("{root}/{bucket}"), access, secret, b"");
    assert_eq!(status, 204, "S3 delete bucket: {body}");
}
