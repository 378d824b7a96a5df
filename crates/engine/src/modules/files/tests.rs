//! The file modules against real files in a temp directory, through `LocalConnection`.

use std::os::unix::fs::PermissionsExt;

use serde_json::json;

use super::blockinfile::BlockInFile;
use super::copy::Copy;
use super::fetch::Fetch;
use super::file::File;
use super::lineinfile::LineInFile;
use super::slurp::Slurp;
use super::stat::Stat;
use super::template::Template;
use crate::modules::testutil::Harness;

fn mode_of(p: &str) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[tokio::test]
async fn copy_writes_a_list_or_mapping_content_as_json() {
    let h = Harness::new();
    let dest = h.path("data.json");
    let args = json!({"content": ["a", 1, {"k": "v"}], "dest": dest});
    assert!(h.ok(&Copy, args.clone()).await.changed);
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        r#"["a", 1, {"k": "v"}]"#
    );
    assert!(!h.ok(&Copy, args).await.changed);
}

#[tokio::test]
async fn copy_content_is_idempotent_with_mode_and_diff() {
    let mut h = Harness::new();
    let dest = h.path("out.txt");
    let args = json!({"content": "hello\n", "dest": dest, "mode": "0640"});
    h.check_mode = true;
    h.diff = true;
    let r = h.ok(&Copy, args.clone()).await;
    assert!(r.changed);
    assert!(
        !std::path::Path::new(&dest).exists(),
        "check mode must not write"
    );
    assert_eq!(r.diff.unwrap().after, "hello\n");
    h.check_mode = false;
    let r = h.ok(&Copy, args.clone()).await;
    assert!(r.changed);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "hello\n");
    assert_eq!(mode_of(&dest), 0o640);
    assert_eq!(
        r.data["checksum"],
        json!("f572d396fae9206628714fb2ce00f72e94f2258f")
    );
    let r = h.ok(&Copy, args).await;
    assert!(!r.changed, "second run must be ok");
    // Only the mode differs: changed, content untouched.
    let r = h
        .ok(
            &Copy,
            json!({"content": "hello\n", "dest": dest, "mode": "u+x"}),
        )
        .await;
    assert!(r.changed);
    assert_eq!(mode_of(&dest), 0o740);
    // New content shows a diff and makes a backup when asked.
    let r = h
        .ok(
            &Copy,
            json!({"content": "bye\n", "dest": dest, "backup": true}),
        )
        .await;
    let d = r.diff.unwrap();
    assert_eq!((d.before.as_str(), d.after.as_str()), ("hello\n", "bye\n"));
    let backup = r.data["backup_file"].as_str().unwrap().to_string();
    assert_eq!(std::fs::read_to_string(backup).unwrap(), "hello\n");
    assert_eq!(mode_of(&dest), 0o740, "an existing file keeps its mode");
}

#[tokio::test]
async fn copy_force_no_and_missing_parent() {
    let h = Harness::new();
    let dest = h.path("f");
    std::fs::write(&dest, "old").unwrap();
    let r = h
        .ok(
            &Copy,
            json!({"content": "new", "dest": dest, "force": false}),
        )
        .await;
    assert!(!r.changed);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "old");
    let err = h
        .run(&Copy, json!({"content": "x", "dest": h.path("nope/f")}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Destination directory"), "{err}");
    let err = h
        .run(&Copy, json!({"content": "x", "dest": dest, "mdoe": "0644"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("did you mean 'mode'"), "{err}");
}

#[tokio::test]
async fn copy_src_file_into_dir_and_tree_with_trailing_slash() {
    let h = Harness::new();
    let files = h.dir.path().join("files");
    std::fs::create_dir_all(files.join("tree/sub")).unwrap();
    std::fs::write(files.join("a.conf"), "A").unwrap();
    std::fs::write(files.join("tree/x"), "X").unwrap();
    std::fs::write(files.join("tree/sub/y"), "Y").unwrap();
    let out = h.path("out");
    std::fs::create_dir(&out).unwrap();
    let r = h.ok(&Copy, json!({"src": "a.conf", "dest": out})).await;
    assert!(r.changed);
    assert_eq!(
        std::fs::read_to_string(format!("{out}/a.conf")).unwrap(),
        "A"
    );
    assert!(
        !h.ok(&Copy, json!({"src": "a.conf", "dest": out}))
            .await
            .changed
    );
    // Without the slash the directory itself is copied, with it only its contents.
    assert!(
        h.ok(&Copy, json!({"src": "tree", "dest": out}))
            .await
            .changed
    );
    assert_eq!(
        std::fs::read_to_string(format!("{out}/tree/sub/y")).unwrap(),
        "Y"
    );
    assert!(
        !h.ok(&Copy, json!({"src": "tree", "dest": out}))
            .await
            .changed
    );
    assert!(
        h.ok(
            &Copy,
            json!({"src": "tree/", "dest": format!("{out}/flat")})
        )
        .await
        .changed
    );
    assert_eq!(
        std::fs::read_to_string(format!("{out}/flat/x")).unwrap(),
        "X"
    );
    // remote_src copies on the host.
    let r = h.ok(&Copy, json!({"src": format!("{out}/a.conf"), "dest": format!("{out}/b.conf"), "remote_src": true})).await;
    assert!(r.changed);
    assert_eq!(
        std::fs::read_to_string(format!("{out}/b.conf")).unwrap(),
        "A"
    );
    let r = h.ok(&Copy, json!({"src": format!("{out}/a.conf"), "dest": format!("{out}/b.conf"), "remote_src": true})).await;
    assert!(!r.changed);
}

#[tokio::test]
async fn template_renders_vars() {
    let mut h = Harness::new();
    let tdir = h.dir.path().join("templates");
    std::fs::create_dir_all(&tdir).unwrap();
    std::fs::write(
        tdir.join("t.j2"),
        "# {{ ansible_managed }}\nport={{ port }}\n",
    )
    .unwrap();
    h.vars.insert("port".into(), json!(7077));
    let dest = h.path("spark.conf");
    let r = h.ok(&Template, json!({"src": "t.j2", "dest": dest})).await;
    assert!(r.changed);
    assert_eq!(
        std::fs::read_to_string(&dest).unwrap(),
        "# Ansible managed\nport=7077\n"
    );
    assert!(
        !h.ok(&Template, json!({"src": "t.j2", "dest": dest}))
            .await
            .changed
    );
    let err = h
        .run(&Template, json!({"src": "missing.j2", "dest": dest}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("'missing.j2' was not found"),
        "{err}"
    );
}

#[tokio::test]
async fn file_states() {
    let mut h = Harness::new();
    let d = h.path("d/e");
    let r = h
        .ok(
            &File,
            json!({"path": d, "state": "directory", "mode": "0750"}),
        )
        .await;
    assert!(r.changed);
    assert_eq!(mode_of(&d), 0o750);
    assert_eq!(
        mode_of(&h.path("d")),
        0o750,
        "every directory made gets the mode"
    );
    assert_eq!(r.data["mode"], json!("0750"));
    // Odd spellings: doubled and trailing slashes, a space and a newline in names.
    let odd = format!("{}//x y/\nz/", h.path("d"));
    assert!(
        h.ok(
            &File,
            json!({"path": odd, "state": "directory", "mode": "0700"})
        )
        .await
        .changed
    );
    assert_eq!(mode_of(&h.path("d/x y/\nz")), 0o700);
    assert_eq!(mode_of(&h.path("d/x y")), 0o700);
    assert!(
        !h.ok(
            &File,
            json!({"path": d, "state": "directory", "mode": "0750"})
        )
        .await
        .changed
    );
    let f = h.path("d/e/f");
    assert!(
        h.ok(&File, json!({"path": f, "state": "touch"}))
            .await
            .changed
    );
    let r = h.ok(&File, json!({"path": f, "mode": "u+x,go="})).await;
    assert!(r.changed);
    assert_eq!(mode_of(&f), 0o700);
    assert!(
        !h.ok(&File, json!({"path": f, "mode": "u+x,go="}))
            .await
            .changed
    );
    // Recursive mode changes report changed only when something changed.
    let top = h.path("d");
    assert!(
        h.ok(
            &File,
            json!({"path": top, "state": "directory", "recurse": true, "mode": "0755"})
        )
        .await
        .changed
    );
    assert!(
        !h.ok(
            &File,
            json!({"path": top, "state": "directory", "recurse": true, "mode": "0755"})
        )
        .await
        .changed
    );
    // Links.
    let l = h.path("link");
    let r = h
        .ok(&File, json!({"path": l, "src": f, "state": "link"}))
        .await;
    assert!(r.changed);
    assert_eq!(std::fs::read_link(&l).unwrap().display().to_string(), f);
    assert!(
        !h.ok(&File, json!({"path": l, "src": f, "state": "link"}))
            .await
            .changed
    );
    let hl = h.path("hard");
    assert!(
        h.ok(&File, json!({"path": hl, "src": f, "state": "hard"}))
            .await
            .changed
    );
    assert!(
        !h.ok(&File, json!({"path": hl, "src": f, "state": "hard"}))
            .await
            .changed
    );
    let r = h
        .ok(
            &File,
            json!({"path": f, "state": "link", "src": "/nonexistent"}),
        )
        .await;
    assert!(r.failed);
    // Absent, with check mode and diff first.
    h.check_mode = true;
    h.diff = true;
    let r = h.ok(&File, json!({"path": top, "state": "absent"})).await;
    assert!(r.changed);
    assert!(r.diff.unwrap().before.contains("state: directory"));
    assert!(std::path::Path::new(&top).exists());
    h.check_mode = false;
    assert!(
        h.ok(&File, json!({"path": top, "state": "absent"}))
            .await
            .changed
    );
    assert!(!std::path::Path::new(&top).exists());
    assert!(
        !h.ok(&File, json!({"path": top, "state": "absent"}))
            .await
            .changed
    );
    let r = h
        .ok(&File, json!({"path": h.path("nope"), "state": "file"}))
        .await;
    assert!(r.failed && r.msg.unwrap().contains("is absent, cannot continue"));
}

#[tokio::test]
async fn lineinfile_and_blockinfile_on_disk() {
    let mut h = Harness::new();
    let p = h.path("hosts");
    std::fs::write(&p, "127.0.0.1 localhost\n").unwrap();
    let args = json!({"path": p, "regexp": "^10\\.0\\.0\\.5", "line": "10.0.0.5 master"});
    h.diff = true;
    let r = h.ok(&LineInFile, args.clone()).await;
    assert!(r.changed);
    assert_eq!(r.msg.as_deref(), Some("line added"));
    assert_eq!(
        r.diff.unwrap().after,
        "127.0.0.1 localhost\n10.0.0.5 master\n"
    );
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "127.0.0.1 localhost\n10.0.0.5 master\n"
    );
    assert!(!h.ok(&LineInFile, args).await.changed);
    let r = h
        .ok(&LineInFile, json!({"path": h.path("missing"), "line": "x"}))
        .await;
    assert!(r.failed);
    let created = h.path("created");
    assert!(
        h.ok(
            &LineInFile,
            json!({"path": created, "line": "x", "create": true})
        )
        .await
        .changed
    );
    assert_eq!(std::fs::read_to_string(&created).unwrap(), "x\n");
    let r = h
        .ok(
            &LineInFile,
            json!({"path": p, "regexp": "^10\\.", "state": "absent"}),
        )
        .await;
    assert_eq!(r.msg.as_deref(), Some("1 line(s) removed"));

    let block = json!({"path": p, "block": "a\nb", "marker": "# {mark} spark"});
    h.check_mode = true;
    assert!(h.ok(&BlockInFile, block.clone()).await.changed);
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "127.0.0.1 localhost\n"
    );
    h.check_mode = false;
    assert!(h.ok(&BlockInFile, block.clone()).await.changed);
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "127.0.0.1 localhost\n# BEGIN spark\na\nb\n# END spark\n"
    );
    assert!(!h.ok(&BlockInFile, block).await.changed);
    let r = h
        .ok(
            &BlockInFile,
            json!({"path": p, "marker": "# {mark} spark", "state": "absent"}),
        )
        .await;
    assert_eq!(r.msg.as_deref(), Some("Block removed"));
    assert_eq!(
        std::fs::read_to_string(&p).unwrap(),
        "127.0.0.1 localhost\n"
    );
}

#[tokio::test]
async fn stat_slurp_fetch() {
    let mut h = Harness::new();
    let p = h.path("data");
    std::fs::write(&p, "abc").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o604)).unwrap();
    let r = h.ok(&Stat, json!({"path": p})).await;
    let st = &r.data["stat"];
    assert_eq!(st["exists"], json!(true));
    assert_eq!(st["isreg"], json!(true));
    assert_eq!(st["mode"], json!("0604"));
    assert_eq!(st["size"], json!(3));
    assert_eq!(
        st["checksum"],
        json!("a9993e364706816aba3e25717850c26c9cd0d89d")
    );
    let r = h.ok(&Stat, json!({"path": h.path("none")})).await;
    assert_eq!(r.data["stat"], json!({"exists": false}));
    let r = h.ok(&Slurp, json!({"src": p})).await;
    assert_eq!(r.data["content"], json!("YWJj"));
    assert!(h.ok(&Slurp, json!({"src": h.path("none")})).await.failed);

    let out = h.path("fetched");
    let r = h.ok(&Fetch, json!({"src": p, "dest": out})).await;
    assert!(r.changed);
    let local = format!("{out}/localhost{p}");
    assert_eq!(std::fs::read_to_string(&local).unwrap(), "abc");
    assert!(!h.ok(&Fetch, json!({"src": p, "dest": out})).await.changed);
    h.check_mode = true;
    let flat = h
        .ok(
            &Fetch,
            json!({"src": p, "dest": format!("{out}/flat/"), "flat": true}),
        )
        .await;
    assert!(flat.changed);
    assert_eq!(flat.data["dest"], json!(format!("{out}/flat/data")));
    assert!(!std::path::Path::new(&format!("{out}/flat/data")).exists());
}

#[tokio::test]
async fn tilde_paths_expand_on_the_host() {
    let mut h = Harness::new();
    h.env = vec![("HOME".into(), h.path(""))];
    let r = h
        .ok(&Copy, json!({"content": "x", "dest": "~/in home.txt"}))
        .await;
    assert!(r.changed);
    assert_eq!(std::fs::read_to_string(h.path("in home.txt")).unwrap(), "x");
    assert!(
        !h.ok(&Copy, json!({"content": "x", "dest": "~/in home.txt"}))
            .await
            .changed
    );
    let r = h
        .ok(&File, json!({"path": "~/d", "state": "directory"}))
        .await;
    assert!(r.changed && std::path::Path::new(&h.path("d")).is_dir());
}

/// `lineinfile` and `blockinfile` on a `~/` path whose content is already right but whose
/// mode is not: the mode is fixed in the (become) user's home, as `copy` and `file` do,
/// instead of failing on a literal `~` directory.
#[tokio::test]
async fn tilde_paths_get_their_mode_fixed_by_line_and_block_edits() {
    let mut h = Harness::new();
    h.env = vec![("HOME".into(), h.path(""))];
    let conf = h.path("edit me.conf");
    std::fs::write(&conf, "a=1\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let line = json!({"path": "~/edit me.conf", "line": "a=1", "mode": "0600"});
    let r = h.ok(&LineInFile, line.clone()).await;
    assert!(r.changed, "{:?}", r.msg);
    assert_eq!(
        r.msg.as_deref(),
        Some("ownership, perms or SE linux context changed")
    );
    assert_eq!(mode_of(&conf), 0o600);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "a=1\n");
    assert!(!h.ok(&LineInFile, line).await.changed);

    let block = json!({"path": "~/edit me.conf", "block": "b=2", "mode": "0640"});
    assert!(h.ok(&BlockInFile, block.clone()).await.changed);
    assert_eq!(mode_of(&conf), 0o640);
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Only the mode differs now.
    let r = h.ok(&BlockInFile, block.clone()).await;
    assert!(r.changed, "{:?}", r.msg);
    assert_eq!(mode_of(&conf), 0o640);
    assert!(!h.ok(&BlockInFile, block).await.changed);
}
