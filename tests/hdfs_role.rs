//! The hdfs role's refusal to start Hadoop on a Java it does not support, run by the real
//! binary on a `local` host: a Hadoop tree (only the jar name matters) and a `java` that
//! reports a version, combined four ways. Hadoop before 3.5 runs on Java 8 and 11 only,
//! 3.5 needs 17 or newer; the end-to-end test covers the supported case on real daemons.

use std::path::Path;
use std::process::Command;

/// Runs the role's `check-java.yml` against Hadoop `hadoop` and Java `java` (major
/// version); returns whether it passed and the output.
fn check(hadoop: &str, java: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ephemeral-hdfs");
    let common = home.join("share/hadoop/common");
    std::fs::create_dir_all(&common).unwrap();
    for jar in [
        format!("hadoop-common-{hadoop}.jar"),
        format!("hadoop-common-{hadoop}-tests.jar"),
        "hadoop-auth-9.9.9.jar".to_string(),
    ] {
        std::fs::write(common.join(jar), "").unwrap();
    }
    let java_home = dir.path().join("jdk");
    std::fs::create_dir_all(java_home.join("bin")).unwrap();
    let java_bin = java_home.join("bin/java");
    let version = if java == "8" { "1.8.0_412" } else { java };
    std::fs::write(
        &java_bin,
        format!(
            "#!/bin/sh\necho 'openjdk version \"{version}\" 2024-04-16' >&2\n\
             echo 'OpenJDK Runtime Environment (build {version})' >&2\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&java_bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The bundled roles, next to a playbook that runs only the check.
    let roles = Path::new(env!("CARGO_MANIFEST_DIR")).join("roles");
    std::os::unix::fs::symlink(&roles, dir.path().join("roles")).unwrap();
    let book = dir.path().join("check.yml");
    std::fs::write(
        &book,
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - include_role:\n        name: hdfs\n        tasks_from: check-java.yml\n",
    )
    .unwrap();
    // What the role's instance loop and the common role would have set.
    let vars = serde_json::json!({
        "hdfs": {"name": "ephemeral-hdfs", "home": home},
        "java_home": java_home,
    });
    let out = Command::new(env!("CARGO_BIN_EXE_spark-openstack"))
        .args(["play", "-i", "node,", "-c", "local", "-e"])
        .arg(vars.to_string())
        .arg(&book)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn hadoop_before_3_5_is_refused_on_java_17_and_3_5_on_java_11() {
    for (hadoop, java) in [
        ("3.5.0", "17"),
        ("3.5.0", "25"),
        ("3.4.1", "11"),
        ("3.3.6", "8"),
    ] {
        let (ok, out) = check(hadoop, java);
        assert!(ok, "Hadoop {hadoop} on Java {java} is supported:\n{out}");
    }
    let (ok, out) = check("3.4.1", "17");
    assert!(!ok, "{out}");
    assert!(
        out.contains("Hadoop 3.4.1 (")
            && out.contains("does not support Java 17")
            && out.contains("Hadoop before 3.5 runs on Java 8 or 11"),
        "{out}"
    );
    let (ok, out) = check("3.5.0", "11");
    assert!(!ok, "{out}");
    assert!(
        out.contains("does not support Java 11") && out.contains("need Java 17 or newer"),
        "{out}"
    );
}
