//! The command modules against the local host.

use serde_json::json;

use super::command::Command;
use super::raw::Raw;
use super::script::Script;
use super::shell::Shell;
use crate::modules::testutil::Harness;

#[tokio::test]
async fn command_does_not_use_a_shell_and_reports_output() {
    let h = Harness::new();
    // No shell: the redirection is an argument. Variables expand as in ansible-core
    // (expand_argument_vars), unless turned off.
    let r = h
        .ok(&Command, json!({"cmd": "echo $NOPE_UNSET 'a b' > x"}))
        .await;
    assert!(r.changed && !r.failed);
    assert_eq!(r.data["stdout"], json!("$NOPE_UNSET a b > x"));
    assert_eq!(
        r.data["cmd"],
        json!(["echo", "$NOPE_UNSET", "a b", ">", "x"])
    );
    assert_eq!(r.data["rc"], json!(0));
    let home = std::env::var("HOME").unwrap_or_default();
    let r = h.ok(&Command, json!({"cmd": "echo $HOME"})).await;
    assert_eq!(r.data["stdout"], json!(home));
    let r = h
        .ok(
            &Command,
            json!({"cmd": "echo $HOME", "expand_argument_vars": false}),
        )
        .await;
    assert_eq!(r.data["stdout"], json!("$HOME"));
    let r = h
        .ok(
            &Command,
            json!({"argv": ["sh", "-c", "echo e >&2; exit 3"]}),
        )
        .await;
    assert!(r.failed);
    assert_eq!(r.msg.as_deref(), Some("non-zero return code"));
    assert_eq!(r.data["stderr_lines"], json!(["e"]));
    assert_eq!(r.data["rc"], json!(3));
    let r = h.ok(&Command, json!({"cmd": "cat", "stdin": "in"})).await;
    assert_eq!(r.data["stdout"], json!("in"));
}

#[tokio::test]
async fn creates_removes_and_check_mode() {
    let mut h = Harness::new();
    let marker = h.path("marker");
    let args = json!({"cmd": format!("touch {marker}"), "creates": marker});
    h.check_mode = true;
    let r = h.ok(&Command, args.clone()).await;
    assert!(
        r.changed,
        "check mode: creates decides the command would run"
    );
    assert!(!std::path::Path::new(&marker).exists());
    let r = h.ok(&Command, json!({"cmd": "true"})).await;
    assert!(r.skipped);
    h.check_mode = false;
    assert!(h.ok(&Command, args.clone()).await.changed);
    let r = h.ok(&Command, args).await;
    assert!(!r.changed);
    assert_eq!(
        r.msg,
        Some(format!("Did not run command since '{marker}' exists"))
    );
    // Inline options in the free form, and a glob for removes.
    let r = h
        .ok(
            &Shell,
            json!({"cmd": format!("rm {marker} removes={}/mark*", h.path(""))}),
        )
        .await;
    assert!(r.changed);
    let r = h
        .ok(
            &Shell,
            json!({"cmd": format!("rm {marker} removes={}/mark*", h.path(""))}),
        )
        .await;
    assert!(!r.changed);
}

#[tokio::test]
async fn shell_raw_and_script() {
    let h = Harness::new();
    let r = h
        .ok(
            &Shell,
            json!({"cmd": "echo a | tr a b; pwd", "chdir": "/tmp"}),
        )
        .await;
    assert_eq!(r.data["stdout_lines"], json!(["b", "/tmp"]));
    let r = h
        .ok(&Shell, json!({"cmd": "echo $0", "executable": "/bin/bash"}))
        .await;
    assert_eq!(r.data["stdout"], json!("/bin/bash"));
    let r = h.ok(&Raw, json!({"cmd": "echo raw"})).await;
    assert_eq!(r.data["stdout"], json!("raw\n"));
    let files = h.dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("s.sh"), "#!/bin/sh\necho \"args: $1 $2\"\n").unwrap();
    let r = h.ok(&Script, json!({"cmd": "s.sh one 'two three'"})).await;
    assert_eq!(r.data["stdout"], json!("args: one two three"));
    let err = h.run(&Script, json!({"cmd": "nope.sh"})).await.unwrap_err();
    assert!(
        err.to_string().contains("could not find script 'nope.sh'"),
        "{err}"
    );
}
