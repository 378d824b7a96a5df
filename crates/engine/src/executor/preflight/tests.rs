use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::playbook::{Loader, load_playbook};

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The preflight problems of `site.yml` (and the other files) in a fresh directory.
fn problems(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    let registry = Arc::new(Registry::builtin());
    let loader = Loader {
        registry: registry.clone(),
        roles_path: Vec::new(),
    };
    let book = load_playbook(&dir.path().join("site.yml"), &loader).unwrap();
    check(&[book], &registry)
        .into_iter()
        .map(|m| m.replace(&format!("{}/", dir.path().display()), ""))
        .collect()
}

#[test]
fn typos_bad_choices_and_missing_arguments_are_found_with_their_place() {
    let got = problems(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - copy: {content: x, dset: /tmp/x}\n    - file: path=/tmp/d state=directroy\n    - get_url:\n        url: http://example.com/a\n    - lineinfile: {path: /x, line: y, state: \"{{ s }}\"}\n    - service: {name: ssh, state: started}\n",
    )]);
    assert_eq!(
        got,
        vec![
            "site.yml:3:32: copy: unsupported argument 'dset' (did you mean 'dest'?); supported: backup, checksum, content, decrypt, dest, directory_mode, follow, force, group, local_follow, mode, owner, remote_src, src, unsafe_writes".to_string(),
            "site.yml:3:7: copy: missing required arguments: dest".to_string(),
            "site.yml:4:13: file: value of state must be one of: file, directory, touch, link, hard, absent, got: directroy (did you mean 'directory'?)".to_string(),
            "site.yml:5:7: get_url: missing required arguments: dest".to_string(),
        ]
    );
}

#[test]
fn sources_are_looked_for_where_the_task_would_look() {
    let role_task = "- template: {src: app.conf.j2, dest: /etc/app.conf}\n- template: {src: nope.j2, dest: /etc/x}\n- copy: {src: data.txt, dest: /x}\n- copy: {src: /abs/missing, dest: /x}\n- copy: {src: gone.txt, dest: /x, remote_src: true}\n- unarchive: {src: \"{{ tarball }}\", dest: /opt}\n";
    let got = problems(&[
        (
            "site.yml",
            "- hosts: all\n  roles: [app]\n  tasks:\n    - copy: {src: top.txt, dest: /x}\n    - template: {src: app.conf.j2, dest: /x}\n",
        ),
        ("files/top.txt", "x"),
        ("roles/app/tasks/main.yml", role_task),
        ("roles/app/templates/app.conf.j2", "x"),
        ("roles/app/files/data.txt", "x"),
    ]);
    assert_eq!(
        got,
        vec![
            "roles/app/tasks/main.yml:2:19: template: could not find or access 'nope.j2': not in templates/ of the role or of the playbook, nor next to them".to_string(),
            "site.yml:5:23: template: could not find or access 'app.conf.j2': not in templates/ of the role or of the playbook, nor next to them".to_string(),
        ]
    );
}

#[test]
fn sources_are_not_checked_when_the_run_writes_on_the_controller() {
    let got = problems(&[(
        "site.yml",
        "- hosts: all\n  tasks:\n    - fetch: {src: /etc/hostname, dest: got/}\n    - copy: {src: got/h, dest: /x}\n",
    )]);
    assert!(got.is_empty(), "{got:?}");
}
