use super::*;
use serde_json::json;

fn no_vars(_: &str) -> Option<Value> {
    None
}

fn seq(terms: Value, opts: Value) -> Result<Vec<Value>, String> {
    let terms = match terms {
        Value::Array(a) => a,
        other => vec![other],
    };
    let env = LookupEnv {
        var: &no_vars,
        with_action: None,
    };
    let opts = opts.as_object().cloned().unwrap_or_default();
    run("sequence", terms, &opts, &env).expect("a plugin")
}

fn strings(v: &[&str]) -> Vec<Value> {
    v.iter().map(|s| json!(s)).collect()
}

#[test]
fn sequence_forms_as_ansible() {
    let ok = |t: Value| seq(t, json!({})).unwrap();
    assert_eq!(
        ok(json!("start=1 end=3 format=w%02d")),
        strings(&["w01", "w02", "w03"])
    );
    assert_eq!(ok(json!("5")), strings(&["1", "2", "3", "4", "5"]));
    assert_eq!(ok(json!("4-8/2")), strings(&["4", "6", "8"]));
    assert_eq!(ok(json!("2:host%02d")), strings(&["host01", "host02"]));
    // Counting: `count` from `start` by `stride`; decimal, so '010' is ten.
    assert_eq!(
        ok(json!("count=3 start=010 format=%x")),
        strings(&["a", "b", "c"])
    );
    assert_eq!(
        ok(json!("start=0 count=3 stride=2")),
        strings(&["0", "2", "4"])
    );
    assert_eq!(
        ok(json!("start=5 end=1 stride=-2")),
        strings(&["5", "3", "1"])
    );
    assert_eq!(ok(json!("start=5 end=5")), strings(&["5"]));
    // Empty sequences are no items, not errors.
    assert_eq!(ok(json!("count=0")), Vec::<Value>::new());
    assert_eq!(ok(json!("start=1 end=3 stride=0")), Vec::<Value>::new());
    // Several terms add up; keyword options apply to each.
    assert_eq!(ok(json!(["2", "1-2"])), strings(&["1", "2", "1", "2"]));
    assert_eq!(
        seq(json!([]), json!({"start": 2, "end": 3})).unwrap(),
        strings(&["2", "3"])
    );
}

#[test]
fn sequence_errors_are_ansibles() {
    let err = |t: &str| seq(json!(t), json!({})).unwrap_err();
    assert_eq!(
        err("start=0x10 count=2"),
        "Config 'start' for 'sequence' lookup plugin from 'Direct' has an invalid value: Invalid value provided for 'integer': '0x10'"
    );
    assert_eq!(err("start=1"), "must specify count or end in with_sequence");
    assert_eq!(
        err("end=3 count=2"),
        "can't specify both count and end in with_sequence"
    );
    assert_eq!(
        err("start=5 end=1"),
        "to count backwards make stride negative"
    );
    assert_eq!(
        err("start=1 end=5 stride=-1"),
        "to count forward don't make stride negative"
    );
    assert_eq!(err("end=3 format=%d%d"), "bad formatting string: %d%d");
    assert_eq!(
        err("end=3 stop=4"),
        "unrecognized arguments to with_sequence: ['stop']"
    );
    assert_eq!(
        seq(json!(2), json!({})).unwrap_err(),
        "unknown error parsing with_sequence arguments: 2. Error was: expected string or bytes-like object, got 'int'"
    );
    assert_eq!(
        err("end=2 format=%(x)s"),
        "problem formatting 1 with '%(x)s'"
    );
}

#[test]
fn integer_options_read_like_pythons_decimal() {
    assert_eq!(integer("n", &json!(" 12 ")), Ok(12));
    assert_eq!(integer("n", &json!("1_000")), Ok(1000));
    assert_eq!(integer("n", &json!("-3")), Ok(-3));
    assert_eq!(integer("n", &json!("2.0")), Ok(2));
    assert_eq!(integer("n", &json!("1e2")), Ok(100));
    assert_eq!(integer("n", &json!(7)), Ok(7));
    for bad in ["2.5", "x", "", "0x1f", "1__0", "."] {
        assert!(integer("n", &json!(bad)).is_err(), "{bad}");
    }
}

fn users() -> Value {
    json!([
        {"name": "alice", "keys": ["k1", "k2"], "mysql": {"hosts": ["h1"]}},
        {"name": "bob", "keys": ["k3"]},
        {"name": "carol"}
    ])
}

#[test]
fn subelements_lookup_takes_the_key_out_of_the_item() {
    let got = subelements_lookup(&[users(), json!("keys"), json!({"skip_missing": true})]).unwrap();
    assert_eq!(
        got,
        vec![
            json!([{"name": "alice", "mysql": {"hosts": ["h1"]}}, "k1"]),
            json!([{"name": "alice", "mysql": {"hosts": ["h1"]}}, "k2"]),
            json!([{"name": "bob"}, "k3"]),
        ]
    );
    let nested =
        subelements_lookup(&[users(), json!("mysql.hosts"), json!({"skip_missing": true})])
            .unwrap();
    assert_eq!(
        nested,
        vec![json!([{"name": "alice", "keys": ["k1", "k2"], "mysql": {}}, "h1"])]
    );
    assert_eq!(
        subelements_lookup(&[users(), json!("keys")]).unwrap_err(),
        "could not find 'keys' key in iterated item '{'name': 'carol'}'"
    );
    // A registered loop result that was skipped, and skipped items, give nothing.
    assert_eq!(
        subelements_lookup(&[json!({"skipped": true, "results": []}), json!("x")]).unwrap(),
        Vec::<Value>::new()
    );
    assert_eq!(
        subelements_lookup(&[json!([{"skipped": true}, {"x": [1]}]), json!("x")]).unwrap(),
        vec![json!([{}, 1])]
    );
    assert!(
        subelements_lookup(&[users()])
            .unwrap_err()
            .contains("two or three items")
    );
    assert_eq!(
        subelements_lookup(&[json!([{"x": 1}]), json!("x")]).unwrap_err(),
        "the key x should point to a list, got '1'"
    );
}

#[test]
fn subelements_filter_keeps_the_key() {
    let got = subelements_filter(&users(), &json!("keys"), true).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2], json!([{"name": "bob", "keys": ["k3"]}, "k3"]));
    assert_eq!(
        subelements_filter(&users(), &json!("keys"), false).unwrap_err(),
        "could not find 'keys' key in iterated item {'name': 'carol'}"
    );
    assert_eq!(
        subelements_filter(&users(), &json!(["mysql", "hosts"]), true).unwrap()[0][1],
        json!("h1")
    );
}

/// A playbook directory with a role `r`, as Ansible lays one out.
fn tree() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (p, text) in [
        ("files/a.txt", "  play a \n\n"),
        ("roles/r/files/b.txt", "role b\n"),
        ("roles/r/templates/t.j2", "t\n"),
        ("roles/r/tasks/main.yml", "[]\n"),
        ("roles/r/vars/v.yml", "{}\n"),
    ] {
        let f = d.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    d
}

fn role_vars(d: &Path) -> impl Fn(&str) -> Option<Value> + '_ {
    move |n: &str| match n {
        "ansible_search_path" => Some(json!([
            d.join("roles/r").display().to_string(),
            d.join("roles/r/tasks").display().to_string()
        ])),
        "role_path" => Some(json!(d.join("roles/r").display().to_string())),
        "playbook_dir" => Some(json!(d.display().to_string())),
        _ => None,
    }
}

#[test]
fn files_are_found_along_the_search_path() {
    let d = tree();
    let vars = role_vars(d.path());
    let env = LookupEnv {
        var: &vars,
        with_action: None,
    };
    let opts = Map::new();
    let file = |t: &str, o: &Map<String, Value>| run("file", vec![json!(t)], o, &env).unwrap();
    // The role's files/ first, then the playbook's.
    assert_eq!(file("b.txt", &opts), Ok(vec![json!("role b")]));
    assert_eq!(file("a.txt", &opts), Ok(vec![json!("  play a")]));
    let strip = json!({"lstrip": true, "rstrip": false});
    assert_eq!(
        file("a.txt", strip.as_object().unwrap()),
        Ok(vec![json!("play a \n\n")])
    );
    assert_eq!(
        file("nope.txt", &opts),
        Err("Unable to access the file 'nope.txt'.".into())
    );
}

#[test]
fn first_found_searches_like_ansible() {
    let d = tree();
    let root = d.path().display().to_string();
    let vars = role_vars(d.path());
    let ff = |terms: Value, opts: Value, action: Option<&str>| {
        let env = LookupEnv {
            var: &vars,
            with_action: action,
        };
        let terms = terms.as_array().cloned().unwrap();
        run("first_found", terms, opts.as_object().unwrap(), &env).unwrap()
    };
    // In a loop, the directory follows the action: templates/ for `template`.
    assert_eq!(
        ff(json!(["nope", "t.j2"]), json!({}), Some("template")),
        Ok(vec![json!(format!("{root}/roles/r/templates/t.j2"))])
    );
    assert_eq!(
        ff(json!(["t.j2"]), json!({}), Some("debug")),
        Err("No file was found when using first_found.".into())
    );
    assert_eq!(
        ff(json!(["b.txt"]), json!({}), Some("debug")),
        Ok(vec![json!(format!("{root}/roles/r/files/b.txt"))])
    );
    // include_vars looks in vars/.
    assert_eq!(
        ff(json!(["v.yml"]), json!({}), Some("include_vars")),
        Ok(vec![json!(format!("{root}/roles/r/vars/v.yml"))])
    );
    // In lookup(), no subdirectory: names are relative to the role, its tasks, the play.
    assert_eq!(
        ff(json!(["b.txt"]), json!({}), None),
        Err("No file was found when using first_found.".into())
    );
    assert_eq!(
        ff(json!(["files/b.txt"]), json!({}), None),
        Ok(vec![json!(format!("{root}/roles/r/files/b.txt"))])
    );
    // Mappings with files, paths and skip; names split on , and ;.
    assert_eq!(
        ff(
            json!([{"files": "x,main.yml", "paths": ["tasks"]}]),
            json!({}),
            None
        ),
        Ok(vec![json!(format!("{root}/roles/r/tasks/main.yml"))])
    );
    assert_eq!(
        ff(
            json!([{"files": ["x", "y"], "skip": true}]),
            json!({}),
            None
        ),
        Ok(vec![])
    );
    assert_eq!(
        ff(json!([]), json!({"files": ["nope", "files/a.txt"]}), None),
        Ok(vec![json!(format!("{root}/files/a.txt"))])
    );
    // Absolute names as they are, normalized.
    let abs = format!("{root}/roles/r/../r/files/b.txt");
    assert_eq!(
        ff(json!([abs]), json!({}), None),
        Ok(vec![json!(format!("{root}/roles/r/files/b.txt"))])
    );
}

#[test]
fn random_choice_picks_one_term() {
    let env = LookupEnv {
        var: &no_vars,
        with_action: None,
    };
    let got = run("random_choice", strings(&["a", "b"]), &Map::new(), &env)
        .unwrap()
        .unwrap();
    assert!(got == strings(&["a"]) || got == strings(&["b"]));
    assert_eq!(
        run("random_choice", vec![], &Map::new(), &env).unwrap(),
        Ok(vec![])
    );
    assert!(run("nope", vec![], &Map::new(), &env).is_none());
}

#[test]
fn nested_together_and_indexed_items_as_ansible() {
    let env = LookupEnv {
        var: &no_vars,
        with_action: None,
    };
    let run = |name: &str, terms: Value| {
        run(name, terms.as_array().cloned().unwrap(), &Map::new(), &env).unwrap()
    };
    assert_eq!(
        run("nested", json!([["a", "b"], [1, 2]])),
        Ok(vec![
            json!(["a", 1]),
            json!(["a", 2]),
            json!(["b", 1]),
            json!(["b", 2])
        ])
    );
    assert_eq!(
        run("nested", json!([["a"], [1], ["x", "y"]])),
        Ok(vec![json!(["a", 1, "x"]), json!(["a", 1, "y"])])
    );
    assert!(
        run("nested", json!([]))
            .unwrap_err()
            .contains("at least one element")
    );
    assert_eq!(
        run("together", json!([[1, 2], [3]])),
        Ok(vec![json!([1, 3]), json!([2, null])])
    );
    assert_eq!(
        run("indexed_items", json!([["a", "b"], "c"])),
        Ok(vec![json!([0, "a"]), json!([1, "b"]), json!([2, "c"])])
    );
}

#[test]
fn fileglob_searches_like_ansible() {
    let d = tree();
    for (p, text) in [
        ("roles/r/files/.hidden.txt", "h"),
        ("roles/r/files/c.txt", "c"),
        ("roles/r/files/sub/d.txt", "d"),
        ("roles/r/templates/u.j2", "u"),
    ] {
        let f = d.path().join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, text).unwrap();
    }
    let root = d.path().display().to_string();
    let vars = role_vars(d.path());
    let env = LookupEnv {
        var: &vars,
        with_action: None,
    };
    let glob = |t: &str| run("fileglob", vec![json!(t)], &Map::new(), &env).unwrap();
    // A bare pattern: the role's files/ holds a match, so the play's is not searched; no
    // directory, no dot file. Sorted.
    assert_eq!(
        glob("*.txt"),
        Ok(vec![
            json!(format!("{root}/roles/r/files/b.txt")),
            json!(format!("{root}/roles/r/files/c.txt")),
        ])
    );
    assert_eq!(
        glob(".h*"),
        Ok(vec![json!(format!("{root}/roles/r/files/.hidden.txt"))])
    );
    // A directory is found along the search path, files/ first: `../templates` is the
    // role's, written as Ansible writes it (not normalised).
    assert_eq!(
        glob("../templates/*.j2"),
        Ok(vec![
            json!(format!("{root}/roles/r/files/../templates/t.j2")),
            json!(format!("{root}/roles/r/files/../templates/u.j2")),
        ])
    );
    assert_eq!(
        glob("sub/*"),
        Ok(vec![json!(format!("{root}/roles/r/files/sub/d.txt"))])
    );
    // Nothing matches, or the directory is nowhere: no files, no error.
    assert_eq!(glob("*.none"), Ok(vec![]));
    assert_eq!(glob("nowhere/*"), Ok(vec![]));
}
