//! Parser tests: task shapes, inheritance, and errors that name file:line:col.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::*;

fn loader() -> Loader {
    Loader {
        registry: Arc::new(Registry::builtin()),
        roles_path: Vec::new(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn parse(text: &str) -> Result<Playbook> {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "site.yml", text);
    load_playbook(&p, &loader())
}

fn task(item: &TaskItem) -> &Task {
    match item {
        TaskItem::Task(t) => t,
        TaskItem::Block(_) => panic!("expected a task"),
    }
}

#[test]
fn free_form_args_and_fully_qualified_names() {
    let book = parse(
        "- hosts: all\n  tasks:\n    - ansible.builtin.shell: echo hi chdir=/tmp\n    - debug: msg=hello var2=x\n    - action: fail msg=boom\n",
    )
    .unwrap();
    let tasks = &book.plays[0].tasks;
    let shell = task(&tasks[0]);
    assert_eq!(shell.action, "shell");
    assert_eq!(shell.args.get("chdir"), Some(&json!("/tmp")));
    assert_eq!(
        shell.args.get("cmd").or(shell.args.get("_raw_params")),
        Some(&json!("echo hi"))
    );
    assert_eq!(task(&tasks[1]).args.get("msg"), Some(&json!("hello")));
    assert_eq!(task(&tasks[2]).action, "fail");
}

#[test]
fn block_keywords_are_inherited_by_tasks() {
    let book = parse(
        "- hosts: all\n  become: true\n  tags: [p]\n  tasks:\n    - block:\n        - debug: msg=a\n          when: y_\n          tags: t\n      when: x_\n      vars: {v: 1}\n      ignore_errors: true\n      tags: b\n",
    )
    .unwrap();
    let TaskItem::Block(b) = &book.plays[0].tasks[0] else {
        panic!("block")
    };
    let t = task(&b.block[0]);
    let whens: Vec<&str> = t.scope.when.iter().map(|c| c.expr.as_str()).collect();
    assert_eq!(whens, ["x_", "y_"]);
    assert_eq!(t.scope.tags, ["p", "b", "t"]);
    assert_eq!(t.scope.kw.become_, Some(json!(true)));
    assert_eq!(t.scope.kw.ignore_errors, Some(json!(true)));
    assert_eq!(t.scope.vars[0].get("v"), Some(&json!(1)));
}

#[test]
fn unknown_module_names_location_and_suggestion() {
    let err = parse("- hosts: all\n  tasks:\n    - name: x\n      debgu: msg=hi\n").unwrap_err();
    assert!(
        err.msg
            .contains("site.yml:3:7: couldn't resolve module/action 'debgu'"),
        "{}",
        err.msg
    );
    assert!(err.msg.contains("Did you mean 'debug'?"), "{}", err.msg);
}

#[test]
fn unknown_attribute_next_to_a_module() {
    let err =
        parse("- hosts: all\n  tasks:\n    - debug: msg=hi\n      registr: out\n").unwrap_err();
    assert!(
        err.msg
            .contains("site.yml:4:16: 'registr' is not a valid attribute for a Task"),
        "{}",
        err.msg
    );
}

#[test]
fn type_errors_point_at_the_node() {
    let err = parse("- hosts: all\n  tasks:\n    - debug: msg=hi\n      loop_control: [1]\n")
        .unwrap_err();
    assert!(err.msg.contains(":4:21:"), "{}", err.msg);
    let err = parse("- hosts: all\n  serial: many\n  tasks: []\n").unwrap_err();
    assert!(
        err.msg
            .contains(":2:11: 'serial' must be a count or a percentage"),
        "{}",
        err.msg
    );
    let err = parse("- tasks: []\n").unwrap_err();
    assert!(
        err.msg.contains("the field 'hosts' is required"),
        "{}",
        err.msg
    );
}

#[test]
fn with_items_and_loop_control() {
    let book = parse(
        "- hosts: all\n  tasks:\n    - debug: msg={{ i }}\n      with_items: [[1, 2], 3]\n      loop_control: {loop_var: i, label: '{{ i }}'}\n",
    )
    .unwrap();
    let t = task(&book.plays[0].tasks[0]);
    assert!(matches!(t.loop_.as_ref().unwrap().kind, LoopKind::Items));
    assert_eq!(t.loop_control.loop_var.as_deref(), Some("i"));
}

#[test]
fn roles_run_dependencies_first_and_once() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "roles/common/tasks/main.yml",
        "- debug: msg=common\n",
    );
    write(
        dir.path(),
        "roles/app/meta/main.yml",
        "dependencies: [common]\n",
    );
    write(
        dir.path(),
        "roles/app/tasks/main.yml",
        "- name: app task\n  debug: msg=app\n",
    );
    write(
        dir.path(),
        "roles/app/handlers/main.yml",
        "- name: restart\n  debug: msg=r\n",
    );
    write(dir.path(), "roles/app/defaults/main.yml", "level: 1\n");
    let p = write(
        dir.path(),
        "site.yml",
        "- hosts: all\n  roles: [app, common]\n",
    );
    let book = load_playbook(&p, &loader()).unwrap();
    let play = &book.plays[0];
    let names: Vec<String> = play.roles.iter().map(|i| task(i).display_name()).collect();
    assert_eq!(names, ["common : debug", "app : app task"]);
    assert_eq!(play.handlers[0].display_name(), "app : restart");
    let app = task(&play.roles[1]).scope.role.clone().unwrap();
    assert_eq!(app.defaults.get("level"), Some(&json!(1)));
}

#[test]
fn a_role_has_its_dependencies_variables_its_own_winning() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "roles/java/tasks/main.yml",
        "- debug: msg=java\n",
    );
    write(
        dir.path(),
        "roles/java/defaults/main.yml",
        "home: /jvm\nheap: 1g\n",
    );
    write(dir.path(), "roles/java/vars/main.yml", "pkg: jre\n");
    write(
        dir.path(),
        "roles/spark/meta/main.yml",
        "dependencies: [java]\n",
    );
    write(dir.path(), "roles/spark/defaults/main.yml", "heap: 4g\n");
    write(
        dir.path(),
        "roles/spark/tasks/main.yml",
        "- debug: msg=spark\n",
    );
    let include = write(
        dir.path(),
        "site.yml",
        "- hosts: all\n  tasks:\n    - include_role: {name: spark}\n",
    );
    let book = load_playbook(&include, &loader()).unwrap();
    let inc = task(&book.plays[0].tasks[0]);
    assert_eq!(inc.display_name(), "include_role : spark");
    // At run time, the include expands to the dependency's tasks then the role's.
    let items = expand_include_role(inc, &loader()).unwrap();
    let spark = task(&items[1]).scope.role.clone().unwrap();
    assert_eq!(spark.name, "spark");
    assert_eq!(spark.defaults.get("home"), Some(&json!("/jvm")));
    assert_eq!(spark.defaults.get("heap"), Some(&json!("4g")));
    assert_eq!(spark.vars.get("pkg"), Some(&json!("jre")));
}

#[test]
fn missing_role_says_where_it_looked() {
    let err = parse("- hosts: all\n  roles:\n    - nosuchrole\n").unwrap_err();
    assert!(
        err.msg
            .contains(":3:7: the role 'nosuchrole' was not found in:"),
        "{}",
        err.msg
    );
    assert!(err.msg.contains("roles/nosuchrole"), "{}", err.msg);
}

#[test]
fn import_tasks_inherits_when_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "more.yml", "- debug: msg=inner\n");
    let p = write(
        dir.path(),
        "site.yml",
        "- hosts: all\n  tasks:\n    - import_tasks: more.yml\n      when: flag\n      tags: imp\n",
    );
    let book = load_playbook(&p, &loader()).unwrap();
    let t = task(&book.plays[0].tasks[0]);
    assert_eq!(t.action, "debug");
    assert_eq!(t.scope.when[0].expr, "flag");
    assert_eq!(t.scope.tags, ["imp"]);
}

#[test]
fn malformed_yaml_reports_its_location() {
    let err = parse("- hosts: all\n  tasks:\n    - debug: {msg: [1, 2}\n").unwrap_err();
    assert!(err.msg.contains("site.yml:3:"), "{}", err.msg);
}

#[test]
fn kv_words_keep_jinja_and_quotes_together() {
    use super::task::{parse_kv, split_args};
    assert_eq!(
        split_args("path=/x/{{ v }} owner={{ u | default('root') }} msg=\"two words\""),
        [
            "path=/x/{{ v }}",
            "owner={{ u | default('root') }}",
            "msg=\"two words\""
        ]
    );
    // Like Ansible, a `{% %}` tag is kept whole, not the text between two tags.
    assert_eq!(
        split_args("a={% if x == 'a b' %}1{% endif %}  b='c d'"),
        ["a={% if x == 'a b' %}1{% endif %}", "b='c d'"]
    );
    let m = parse_kv(
        "set_fact",
        "a={{ r.stdout }} b=\"x y\" c='it''s' d=line\\nbreak",
        None,
    );
    assert_eq!(m["a"], json!("{{ r.stdout }}"));
    assert_eq!(m["b"], json!("x y"));
    assert_eq!(m["d"], json!("line\nbreak"));
    let m = parse_kv(
        "file",
        "path=/x/{{ v }} owner={{ u }} state=directory",
        None,
    );
    assert_eq!(m["path"], json!("/x/{{ v }}"));
    assert_eq!(m["owner"], json!("{{ u }}"));
    assert_eq!(m["state"], json!("directory"));
    // Command-like modules keep the command as written, options taken out.
    let m = parse_kv("shell", "echo {{ a }} > /tmp/x chdir=\"/tmp\"", None);
    assert_eq!(m["chdir"], json!("/tmp"));
    assert_eq!(m["_raw_params"], json!("echo {{ a }} > /tmp/x"));
}
