//! The fidelity check with the real python-openstackclient (tests/openstack_cli.sh), run
//! when `OPENSTACK_BIN` points at an `openstack` executable; skipped otherwise.

use std::process::Command;

#[test]
fn real_openstack_client_works_against_devcloud() {
    let Ok(openstack) = std::env::var("OPENSTACK_BIN") else {
        eprintln!(
            "skipped: set OPENSTACK_BIN to python-openstackclient's `openstack` to run this test"
        );
        return;
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openstack_cli.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_spark-openstack"))
        .env("OPENSTACK_BIN", openstack)
        .output()
        .expect("run tests/openstack_cli.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "openstack_cli.sh failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn up_status_down_manage_a_background_server() {
    let bin = env!("CARGO_BIN_EXE_spark-openstack");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let clouds = dir.path().join("clouds.yaml");
    std::fs::write(
        &clouds,
        "clouds:\n  keep:\n    auth: {auth_url: 'http://192.0.2.1'}\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(bin)
            .args(args)
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap()
    };
    let up = Command::new(bin)
        .args(["devcloud", "up", "--listen", "127.0.0.1:0", "--clouds-yaml"])
        .arg(&clouds)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let printed = String::from_utf8_lossy(&up.stdout);
    let written = std::fs::read_to_string(&clouds).unwrap();
    assert!(
        written.contains("keep:") && written.contains("devcloud:"),
        "{written}"
    );
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("state.json")).unwrap()).unwrap();
    let password = st["users"][0]["password"].as_str().unwrap();
    assert!(written.contains(password));
    assert!(
        !printed.contains(password),
        "the password must not be printed"
    );
    let status = run(&["devcloud", "status"]);
    assert!(status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("running at http://127.0.0.1:"));
    assert!(run(&["devcloud", "down"]).status.success());
    let status = run(&["devcloud", "status"]);
    assert!(!status.status.success());
    assert!(String::from_utf8_lossy(&status.stdout).contains("not running"));
}
