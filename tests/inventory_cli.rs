//! Runs `spark-openstack inventory` on fixture inventories and compares the output with
//! `ansible-inventory`'s: live when `ANSIBLE_INVENTORY_BIN` names the binary, otherwise
//! with the outputs ansible-core 2.19 printed for the same files (tests/fixtures/inventory/expected).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pretty_assertions::assert_eq;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inventory")
}

fn ours(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .arg("inventory")
        .args(args)
        .current_dir(fixtures())
        .output()
        .expect("run spark-openstack")
}

/// What ansible-inventory prints for `args`: live, or the recorded file.
fn reference(args: &[&str], recorded: &str) -> String {
    match std::env::var_os("ANSIBLE_INVENTORY_BIN") {
        Some(bin) => {
            let out = Command::new(bin)
                .args(args)
                .current_dir(fixtures())
                .output()
                .expect("run ansible-inventory");
            assert!(out.status.success(), "ansible-inventory {args:?} failed");
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
        None => std::fs::read_to_string(fixtures().join("expected").join(recorded))
            .expect("recorded output"),
    }
}

fn check(args: &[&str], recorded: &str) {
    let out = ours(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8_lossy(&out.stdout);
    let want = reference(args, recorded);
    if recorded.ends_with(".json") {
        // Compare as text (key order and layout matter to scripts), after checking it parses.
        serde_json::from_str::<serde_json::Value>(&got).expect("our output is JSON");
    }
    assert_eq!(got.trim_end(), want.trim_end(), "{args:?}");
}

#[test]
fn ini_list_and_graph_match_ansible() {
    check(&["-i", "basic.ini", "--list"], "basic.list.json");
    check(&["-i", "basic.ini", "--graph"], "basic.graph.txt");
}

#[test]
fn directory_with_yaml_ini_and_vars_dirs_matches_ansible() {
    check(&["-i", "nested", "--list"], "nested.list.json");
    check(&["-i", "nested", "--graph"], "nested.graph.txt");
    check(&["-i", "nested", "--host", "web3"], "nested.host-web3.json");
}

#[test]
fn several_sources_merge_like_ansible() {
    check(
        &["-i", "multi1.ini", "-i", "multi2.yml", "--list"],
        "multi.list.json",
    );
    check(
        &["-i", "multi1.ini", "-i", "multi2.yml", "--graph"],
        "multi.graph.txt",
    );
}

#[test]
fn comma_host_list() {
    check(&["-i", "a,b:2222,", "--list"], "hostlist.list.json");
}

#[test]
fn graph_of_one_group_and_limit() {
    let out = ours(&["-i", "basic.ini", "--graph", "workers"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "@workers:\n  |--slave0\n  |--slave5\n  |--slave10\n"
    );
    let out = ours(&["-i", "basic.ini", "--list", "--limit", "slave5,top1"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let hostvars = v["_meta"]["hostvars"].as_object().expect("hostvars");
    assert_eq!(hostvars.keys().collect::<Vec<_>>(), ["slave5", "top1"]);
    assert_eq!(v["workers"]["hosts"], serde_json::json!(["slave5"]));
}

#[test]
fn bad_inventories_name_file_and_line_and_exit_4() {
    for (file, msg) in [
        (
            "bad/novalue.ini",
            "bad/novalue.ini:2: Expected key=value host variable assignment, got: novalue",
        ),
        (
            "bad/section.ini",
            "bad/section.ini:1: Section [web:foo] has unknown type: foo",
        ),
        (
            "bad/vars_undefined.ini",
            "bad/vars_undefined.ini:1: Section [g:vars] not valid for undefined group 'g'.",
        ),
        (
            "bad/range.ini",
            "bad/range.ini:1: host range must specify end value",
        ),
        (
            "bad/quote.ini",
            "bad/quote.ini:2: Error parsing host definition 'h1 a=\"x': No closing quotation",
        ),
        (
            "bad/hosts_list.yml",
            "bad/hosts_list.yml:2:10: invalid \"hosts\" entry for \"all\" group: requires a mapping, found a list",
        ),
    ] {
        let out = ours(&["-i", file, "--list"]);
        assert_eq!(out.status.code(), Some(4), "{file}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("ERROR! {msg}\n"),
            "{file}"
        );
        assert!(out.stdout.is_empty(), "{file}");
    }
}

#[test]
fn missing_file_and_unknown_host_are_errors() {
    let out = ours(&["-i", "nope.ini", "--list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("ERROR! nope.ini: cannot read inventory:")
    );
    let out = ours(&["-i", "basic.ini", "--host", "ghost"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ERROR! You must pass a single valid host to --host parameter: ghost\n"
    );
    let out = ours(&["-i", "basic.ini"]);
    assert_eq!(out.status.code(), Some(5), "an action is required");
}

/// YAML output: the same tree as ansible-inventory's (scalar quoting style may differ,
/// so both are parsed and compared as data).
#[test]
fn yaml_list_has_ansibles_tree() {
    let args = &["-i", "nested", "--list", "--yaml"][..];
    let out = ours(args);
    assert!(out.status.success(), "{args:?}");
    let parse = |text: &str| {
        spanned_yaml::load_str(text, Path::new("out.yaml"))
            .expect("valid YAML")
            .to_json()
    };
    let got = parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(got, parse(&reference(args, "nested.list.yaml")));
    assert!(got["all"]["children"].is_object());
    // PyYAML writes the key `y` bare, which YAML 1.1 readers take for `true`; ours is quoted.
    let out = ours(&["-i", "basic.ini", "--list", "--yaml"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let tree = spanned_yaml::load_str(&text, Path::new("out.yaml"))
        .expect("valid YAML")
        .to_json();
    let web01 =
        &tree["all"]["children"]["spark"]["children"]["db"]["children"]["web"]["hosts"]["web01"];
    assert_eq!(web01["y"], serde_json::json!(5));
    assert_eq!(web01["mode"], serde_json::json!("0644"));
}

#[test]
fn the_example_inventory_of_the_repository_reads_like_ansible_and_fits_configure() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let hosts = repo.join("inventory/hosts.yml").display().to_string();
    check(&["-i", &hosts, "--list"], "repo_hosts_list.json");
    // The bundled node setup finds its groups in it.
    let out = Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .args([
            "play",
            "playbooks/configure.yml",
            "-i",
            &hosts,
            "--list-hosts",
        ])
        .current_dir(repo)
        .output()
        .expect("run spark-openstack");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Install and configure the software"),
        "{text}"
    );
    assert_eq!(text.matches("onprem-slave-2").count(), 2, "{text}");
}
