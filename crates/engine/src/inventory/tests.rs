//! Inventory model, precedence, patterns and connection specs.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::connection::{ConnectionKind, HostKeyPolicy};

fn ini(text: &str) -> Inventory {
    let mut inv = ini::parse(text, Path::new("t.ini")).unwrap();
    inv.reconcile();
    inv
}

fn hosts(inv: &Inventory, pattern: &str) -> Vec<String> {
    inv.select(pattern).unwrap().hosts
}

const SAMPLE: &str = "\
top
[web]
web[1:3]
[db]
db1
web2
[app:children]
web
db
[app:vars]
level=app
[web:vars]
level=web
";

#[test]
fn groups_all_and_ungrouped_always_exist() {
    let inv = ini("");
    assert!(inv.groups.contains_key("all") && inv.groups.contains_key("ungrouped"));
    let inv = ini(SAMPLE);
    assert_eq!(inv.groups["ungrouped"].hosts, ["top"]);
    assert_eq!(inv.groups["all"].children, ["ungrouped", "app"]);
    assert_eq!(inv.host_groups("web2"), ["web", "app", "all", "db"]);
}

#[test]
fn child_group_vars_beat_parent_vars_and_priority_breaks_ties() {
    let inv = ini(SAMPLE);
    assert_eq!(inv.get_vars("web1").unwrap()["level"], json!("web"));
    assert_eq!(inv.get_vars("db1").unwrap()["level"], json!("app"));
    // Same depth: name order, unless ansible_group_priority says otherwise.
    let text = "[a]\nh\n[b]\nh\n[a:vars]\nv=a\n[b:vars]\nv=b\n";
    assert_eq!(ini(text).get_vars("h").unwrap()["v"], json!("b"));
    let text = format!("{text}ansible_group_priority=5\n")
        .replace("[b:vars]\nv=b\nansible", "[b:vars]\nv=b\n[a:vars]\nansible");
    let inv = ini(&text);
    assert_eq!(inv.get_vars("h").unwrap()["v"], json!("a"));
    assert!(
        !inv.get_vars("h")
            .unwrap()
            .contains_key("ansible_group_priority")
    );
}

#[test]
fn host_vars_beat_group_vars_and_vars_dirs_follow_ansible_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("hosts"),
        "[web]\nh1 v=host\nh2\n[web:vars]\nv=group\nw=group\n",
    )
    .unwrap();
    std::fs::create_dir_all(d.join("group_vars/web")).unwrap();
    std::fs::write(d.join("group_vars/all.yml"), "w: all_dir\nx: all_dir\n").unwrap();
    std::fs::write(d.join("group_vars/web/a.yml"), "x: web_a\n").unwrap();
    std::fs::write(d.join("group_vars/web/b.yml"), "x: web_b\n").unwrap();
    std::fs::create_dir_all(d.join("pb/host_vars")).unwrap();
    std::fs::write(d.join("pb/host_vars/h1"), "v: playbook\n").unwrap();
    let mut inv = load_sources(&[d.join("hosts").display().to_string()]).unwrap();
    let h1 = inv.get_vars("h1").unwrap();
    assert_eq!(
        (h1["v"].clone(), h1["w"].clone(), h1["x"].clone()),
        (json!("host"), json!("all_dir"), json!("web_b"))
    );
    inv.vars_dirs.playbook = Some(d.join("pb"));
    assert_eq!(inv.get_vars("h1").unwrap()["v"], json!("playbook"));
    assert_eq!(inv.get_vars("h2").unwrap()["v"], json!("group"));
    std::fs::write(d.join("group_vars/all.yml"), "- a list\n").unwrap();
    // Files are read once per inventory: a fresh load sees the change.
    let inv = load_sources(&[d.join("hosts").display().to_string()]).unwrap();
    let e = inv.get_vars("h1").unwrap_err().to_string();
    assert!(
        e.ends_with("all.yml:1:1: a variables file must be a mapping, found a list"),
        "{e}"
    );
}

#[test]
fn ini_values_are_python_literals() {
    let inv = ini("h a=5 b='x y' c=True d=[1,2] e=0644 f=1.5 g=yes\n[all:vars]\nn = 7\ns=FALSE\n");
    let v = inv.get_vars("h").unwrap();
    assert_eq!(
        serde_json::Value::Object(v),
        json!({"n": 7, "s": "FALSE", "a": 5, "b": "x y", "c": true, "d": [1, 2], "e": "0644", "f": 1.5, "g": "yes"})
    );
}

#[test]
fn yaml_inventory_nests_and_types() {
    let text = "all:\n  vars: {a: 1}\n  children:\n    web:\n      hosts:\n        w[01:02]:\n        w3:2200: {b: [1]}\n      children:\n        inner:\n          hosts: {i1: }\n";
    let mut inv = yaml_inv::parse(text, Path::new("i.yml")).unwrap();
    inv.reconcile();
    assert_eq!(inv.group_hosts("web"), ["w01", "w02", "w3", "i1"]);
    assert_eq!(inv.get_vars("w3").unwrap()["ansible_port"], json!(2200));
    assert_eq!(inv.get_vars("i1").unwrap()["a"], json!(1));
    let e = yaml_inv::parse("all:\n  hostz: {}\n", Path::new("i.yml")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "i.yml:2:10: unexpected key 'hostz' in group 'all': only 'vars', 'children' and 'hosts' are valid"
    );
}

#[test]
fn format_detection() {
    assert!(yaml_inv::looks_like_yaml(
        "all:\n  hosts:\n",
        Path::new("x")
    ));
    assert!(!yaml_inv::looks_like_yaml("h1\nh2\n", Path::new("x")));
    assert!(!yaml_inv::looks_like_yaml("[web]\nh1\n", Path::new("x")));
    assert!(!yaml_inv::looks_like_yaml("h1 a=1\n", Path::new("x")));
}

#[test]
fn patterns_like_ansible() {
    let inv = ini(SAMPLE);
    assert_eq!(hosts(&inv, "all"), ["top", "web1", "web2", "web3", "db1"]);
    assert_eq!(hosts(&inv, "*"), hosts(&inv, "all"));
    assert_eq!(hosts(&inv, "web:db"), ["web1", "web2", "web3", "db1"]);
    assert_eq!(hosts(&inv, "web,top"), ["web1", "web2", "web3", "top"]);
    assert_eq!(hosts(&inv, "web:&db"), ["web2"]);
    assert_eq!(hosts(&inv, "app:!db"), ["web1", "web3"]);
    assert_eq!(hosts(&inv, "!web"), ["top", "db1"]);
    assert_eq!(hosts(&inv, "web*"), ["web1", "web2", "web3"]);
    assert_eq!(hosts(&inv, "~(web|db)[13]"), ["web1", "web3", "db1"]);
    assert_eq!(hosts(&inv, "web[0]"), ["web1"]);
    assert_eq!(hosts(&inv, "web[1:2]"), ["web2", "web3"]);
    assert_eq!(hosts(&inv, "web[-1]"), ["web3"]);
    assert_eq!(hosts(&inv, "app[1:]:top"), ["web2", "web3", "db1", "top"]);
    assert_eq!(hosts(&inv, "localhost"), ["localhost"]);
    let sel = inv.select("web:nope").unwrap();
    assert_eq!(sel.hosts, ["web1", "web2", "web3"]);
    assert_eq!(
        sel.warnings,
        ["Could not match supplied host pattern, ignoring: nope"]
    );
    assert!(inv.select("~(").is_err());
}

#[test]
fn limits_apply_on_top_and_read_files() {
    let inv = ini(SAMPLE);
    let mut sel = inv.select("app").unwrap();
    inv.apply_limit(&mut sel, "web:!web2").unwrap();
    assert_eq!(sel.hosts, ["web1", "web3"]);
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), "db1\nweb3\n").unwrap();
    let mut sel = inv.select("all").unwrap();
    inv.apply_limit(&mut sel, &format!("@{}", f.path().display()))
        .unwrap();
    assert_eq!(sel.hosts, ["web3", "db1"]);
}

fn defaults() -> ConnDefaults {
    ConnDefaults {
        user: Some("cli".into()),
        private_key: Some("/k/default".into()),
        ..Default::default()
    }
}

#[test]
fn connection_spec_reads_ansible_vars() {
    let vars = json!({"ansible_host": "10.0.0.5", "ansible_port": "2222", "ansible_user": "ubuntu",
        "ansible_ssh_private_key_file": "/k/id", "ansible_ssh_timeout": 3, "ansible_host_key_checking": false});
    let s = connection_spec("n1", vars.as_object().unwrap(), &defaults()).unwrap();
    assert_eq!(
        (s.address.as_str(), s.port, s.user.as_str()),
        ("10.0.0.5", 2222, "ubuntu")
    );
    assert_eq!(
        s.identity_files,
        [Path::new("/k/id"), Path::new("/k/default")]
    );
    assert_eq!(
        (s.connect_timeout, s.host_key_policy, s.kind),
        (
            Duration::from_secs(3),
            HostKeyPolicy::Off,
            ConnectionKind::Ssh
        )
    );
    let s = connection_spec("n2", &Vars::new(), &defaults()).unwrap();
    assert_eq!(
        (
            s.address.as_str(),
            s.port,
            s.user.as_str(),
            s.jump.is_none()
        ),
        ("n2", 22, "cli", true)
    );
    let bad = json!({"ansible_port": "ssh"});
    assert_eq!(
        connection_spec("n3", bad.as_object().unwrap(), &defaults())
            .unwrap_err()
            .to_string(),
        "host 'n3': ansible_port must be a port number (1-65535), got \"ssh\""
    );
    let bad = json!({"ansible_connection": "winrm"});
    assert!(
        connection_spec("n3", bad.as_object().unwrap(), &defaults())
            .unwrap_err()
            .to_string()
            .contains("'winrm' is not supported")
    );
}

#[test]
fn jump_hosts_from_ssh_args_and_our_variable() {
    let vars = json!({"ansible_user": "u", "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o ProxyJump=jumper@bastion:2200"});
    let s = connection_spec("n", vars.as_object().unwrap(), &defaults()).unwrap();
    let j = s.jump.as_deref().unwrap();
    assert_eq!(
        (j.address.as_str(), j.port, j.user.as_str()),
        ("bastion", 2200, "jumper")
    );
    assert_eq!(s.host_key_policy, HostKeyPolicy::Off);
    let vars = json!({"ansible_ssh_extra_args": "-J a,b:23"});
    let s = connection_spec("n", vars.as_object().unwrap(), &defaults()).unwrap();
    let b = s.jump.as_deref().unwrap();
    assert_eq!(
        (b.address.as_str(), b.port, b.user.as_str()),
        ("b", 23, "cli")
    );
    assert_eq!(b.jump.as_deref().unwrap().address, "a");
    let vars =
        json!({"ansible_ssh_common_args": "-o ProxyCommand=\"ssh -W %h:%p -q -p 2022 ops@gw\""});
    let s = connection_spec("n", vars.as_object().unwrap(), &defaults()).unwrap();
    let j = s.jump.as_deref().unwrap();
    assert_eq!(
        (j.address.as_str(), j.port, j.user.as_str()),
        ("gw", 2022, "ops")
    );
    // An inventory host as jump: its own address, port and user.
    let mut inv = ini(
        "bastion ansible_host=192.0.2.1 ansible_port=2201 ansible_user=b\nn1 ansible_user=u spark_openstack_jump_host=bastion\nn2 ansible_user=u spark_openstack_jump_host=1.2.3.4\n",
    );
    inv.vars_dirs.inventory.push("/inv".into());
    let s = inv.connection_spec("n1", &defaults()).unwrap();
    let j = s.jump.as_deref().unwrap();
    assert_eq!(
        (j.name.as_str(), j.address.as_str(), j.port, j.user.as_str()),
        ("bastion", "192.0.2.1", 2201, "b")
    );
    assert_eq!(s.known_hosts_files, [Path::new("/inv/known_hosts")]);
    let j2 = inv
        .connection_spec("n2", &defaults())
        .unwrap()
        .jump
        .unwrap();
    assert_eq!((j2.address.as_str(), j2.user.as_str()), ("1.2.3.4", "u"));
    let looped = ini("a spark_openstack_jump_host=b\nb spark_openstack_jump_host=a\n");
    assert!(
        looped
            .connection_spec("a", &defaults())
            .unwrap_err()
            .to_string()
            .contains("loop")
    );
}

#[test]
fn implicit_localhost_is_local() {
    let inv = ini("[all:vars]\nx=1\n");
    let s = inv.connection_spec("localhost", &defaults()).unwrap();
    assert_eq!(s.kind, ConnectionKind::Local);
    assert_eq!(inv.get_vars("localhost").unwrap()["x"], json!(1));
    let inv = ini("localhost\n");
    assert_eq!(
        inv.connection_spec("localhost", &defaults()).unwrap().kind,
        ConnectionKind::Ssh
    );
}

#[test]
fn hostile_input_gives_errors_not_panics() {
    for text in [
        "[",
        "[]",
        "[a:b:c]",
        "h[",
        "h]",
        "[:vars]",
        ":",
        "h:",
        "h:0",
        "h:99999",
        "[g:children]\n[x",
        "h a=",
        "h =1",
        "h a=b=c",
        "[g]\nh\n[g:vars]\n=x",
        "\u{feff}h",
        "h[1:3]:22 a=[1,{2:3}]",
        "é[a:c] é=1",
        "h \"unterminated",
        "[g:children]\ng",
        "h\\",
    ] {
        let _ = ini::parse(text, Path::new("fuzz.ini"));
        let _ = yaml_inv::parse(text, Path::new("fuzz.yml"));
        let _ = yaml_inv::looks_like_yaml(text, Path::new("fuzz"));
    }
    for text in [
        "all: 3",
        "all: [1]",
        "all:\n  children: [a]",
        "all:\n  hosts:\n    h: 3",
        "a:\n  vars: 1",
        "- x",
    ] {
        assert!(yaml_inv::parse(text, Path::new("f.yml")).is_err(), "{text}");
    }
    let inv = ini("a\nb\n");
    for p in [
        "[",
        "]",
        "a[",
        "a[1:",
        "a[x]",
        "~",
        "&",
        "!",
        ":::",
        "a[99999999999999999999]",
        "*[0:-9]",
    ] {
        let _ = inv.select(p);
    }
}

#[test]
fn an_ini_inventory_named_yaml_is_read_as_ini_and_broken_yaml_stays_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let ini_named_yaml = dir.path().join("hosts.yaml");
    std::fs::write(&ini_named_yaml, "# hosts\n[spark]\nm1 ansible_port=2222\n").unwrap();
    let inv = load_file(&ini_named_yaml).unwrap();
    assert_eq!(hosts(&inv, "spark"), ["m1"]);
    let broken = dir.path().join("broken.yml");
    std::fs::write(&broken, "all:\n  hosts:\n   a: {\n").unwrap();
    let e = load_file(&broken).unwrap_err().to_string();
    assert!(e.contains("broken.yml"), "{e}");
}

#[test]
fn a_bare_localhost_source_is_the_implicit_localhost_as_in_ansible() {
    let inv = load_sources(&["localhost".to_string()]).unwrap();
    assert!(inv.hosts.is_empty());
    assert!(inv.is_implicit_localhost("localhost"));
    // Any other missing file is still an error that names it.
    let err = load_sources(&["no-such-inventory-file".to_string()]).unwrap_err();
    assert!(err.to_string().contains("no-such-inventory-file"), "{err}");
}
