//! The lookup plugins, as plain functions of JSON values: what `lookup()`/`query()` call
//! in a template and what a task's `with_<name>:` loop calls (Ansible's `with_X` is the
//! lookup `X` run with the loop's terms and `wantlist=True`).
//!
//! Each follows ansible-core 2.19's plugin of the same name (`plugins/lookup/*.py`),
//! messages included. Relative file names are searched like Ansible's
//! `find_file_in_search_path`: see [`find_file`].

use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::template::filters::json_bool;
use crate::template::pyjson::{py_repr, py_str};

/// What a lookup may read besides its terms.
pub struct LookupEnv<'a> {
    /// A variable of the task (or template), if defined.
    pub var: &'a dyn Fn(&str) -> Option<Value>,
    /// Set when the lookup runs as a task's `with_<name>` loop: the task's action
    /// (`first_found` then picks the directory to search from it).
    pub with_action: Option<&'a str>,
}

impl LookupEnv<'_> {
    /// Ansible's `ansible_search_path` (the task's role, then the task file's directory),
    /// falling back to the role's and the playbook's directories.
    fn search_paths(&self) -> Vec<PathBuf> {
        if let Some(Value::Array(a)) = (self.var)("ansible_search_path") {
            return a
                .iter()
                .filter_map(|p| p.as_str())
                .map(PathBuf::from)
                .collect();
        }
        let mut out: Vec<PathBuf> = ["role_path", "playbook_dir"]
            .iter()
            .filter_map(|n| (self.var)(n))
            .filter_map(|v| v.as_str().map(PathBuf::from))
            .collect();
        if out.is_empty() {
            out.push(PathBuf::from("."));
        }
        out
    }

    fn basedir(&self) -> PathBuf {
        (self.var)("playbook_dir")
            .and_then(|v| v.as_str().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// [`find_file`] with this task's search path.
    pub fn find_file(&self, subdir: Option<&str>, source: &str) -> Option<PathBuf> {
        find_file(
            &self.search_paths(),
            &self.basedir(),
            subdir,
            source,
            (self.var)("role_path").is_some(),
        )
    }
}

/// The lookups [`run`] knows.
pub const PLUGINS: &[&str] = &[
    "env",
    "file",
    "fileglob",
    "first_found",
    "indexed_items",
    "nested",
    "pipe",
    "random_choice",
    "sequence",
    "subelements",
    "together",
    "vars",
];

/// Runs lookup `plugin` (without its `ansible.builtin.` prefix) on `terms` with the
/// options `opts` (`wantlist` and `errors` already taken out). `Ok(None)`: no such plugin.
/// The error is the plugin's own message; callers add "The lookup plugin 'x' failed: ".
pub fn run(
    plugin: &str,
    terms: Vec<Value>,
    opts: &Map<String, Value>,
    env: &LookupEnv,
) -> Option<Result<Vec<Value>, String>> {
    Some(match plugin {
        "env" => Ok(terms
            .iter()
            .map(|t| {
                let default = opts.get("default").map(py_str).unwrap_or_default();
                Value::String(std::env::var(py_str(t)).unwrap_or(default))
            })
            .collect()),
        "file" => file(&terms, opts, env),
        "fileglob" => Ok(fileglob(&terms, env)),
        "first_found" => first_found(terms, opts, env),
        "indexed_items" => Ok(flatten_one(&terms)
            .into_iter()
            .enumerate()
            .map(|(i, x)| Value::Array(vec![i.into(), x]))
            .collect()),
        "nested" => nested(&terms),
        "pipe" => terms.iter().map(|t| pipe(&py_str(t))).collect(),
        "random_choice" => Ok(random_choice(terms)),
        "sequence" => sequence(terms, opts),
        "subelements" => subelements_lookup(&terms),
        "together" => together(&terms),
        "vars" => terms
            .iter()
            .map(|t| {
                let name = py_str(t);
                (env.var)(&name)
                    .or_else(|| opts.get("default").cloned())
                    .ok_or_else(|| format!("No variable named {}.", py_repr(t)))
            })
            .collect(),
        _ => return None,
    })
}

/// Python's `os.path.normpath(os.path.abspath(p))` (Ansible's `unfrackpath` without
/// following links): `.` and `..` resolved by name.
pub fn unfrack(p: &Path) -> PathBuf {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

fn expand_home(source: &str) -> PathBuf {
    match source.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => PathBuf::from(format!(
            "{}{rest}",
            std::env::var("HOME").unwrap_or_default()
        )),
        _ => PathBuf::from(source),
    }
}

/// Ansible's `path_dwim_relative_stack`: an absolute (or `~`) `source` as it is; a
/// relative one in each directory of `paths` (for a role's task file directory
/// `R/tasks/x`, first `R/<subdir>` and `R/tasks`), as `<dir>/<subdir>/<source>` then
/// `<dir>/<source>`, and last in the playbook's directory `basedir` the same way. The
/// first candidate that exists (a file or a directory) wins. Without `subdir` only the
/// plain candidates are tried (Ansible joins the literal directory name `None`).
pub fn find_file(
    paths: &[PathBuf],
    basedir: &Path,
    subdir: Option<&str>,
    source: &str,
    is_role: bool,
) -> Option<PathBuf> {
    if source.starts_with('~') || source.starts_with('/') {
        let p = unfrack(&expand_home(source));
        return p.exists().then_some(p);
    }
    let mut search = Vec::new();
    let both = |search: &mut Vec<PathBuf>, dir: &Path| {
        if let Some(s) = subdir {
            search.push(dir.join(s).join(source));
        }
        search.push(dir.join(source));
    };
    for path in paths {
        let upath = unfrack(path);
        if let Some(base) = upath.parent().filter(|b| is_role && b.ends_with("tasks")) {
            if let (Some(s), Some(role)) = (subdir, base.parent()) {
                search.push(role.join(s).join(source));
            }
            search.push(base.join(source));
        }
        both(&mut search, &upath);
    }
    both(&mut search, basedir);
    search.into_iter().find(|c| c.exists())
}

/// `file`: the contents of each file, found in `files/` along the search path.
fn file(terms: &[Value], opts: &Map<String, Value>, env: &LookupEnv) -> Result<Vec<Value>, String> {
    let flag = |k: &str, d: bool| opts.get(k).map(json_bool).unwrap_or(d);
    let (lstrip, rstrip) = (flag("lstrip", false), flag("rstrip", true));
    terms
        .iter()
        .map(|t| {
            let term = py_str(t);
            let text = env
                .find_file(Some("files"), &term)
                .and_then(|p| std::fs::read_to_string(p).ok())
                .ok_or_else(|| format!("Unable to access the file {}.", py_repr(t)))?;
            let text = if lstrip { text.trim_start() } else { &text };
            let text = if rstrip { text.trim_end() } else { text };
            Ok(Value::String(text.to_string()))
        })
        .collect()
}

/// `fileglob`: the files (not directories) matching each pattern. As Ansible's plugin, a
/// pattern with a directory has that directory found along the search path (under
/// `files/` first, so `../templates/*.j2` in a role is the role's templates); a bare
/// pattern is tried in each search path's `files/`, then the path itself, and the first
/// place with a match wins. Matches are sorted (Python's `glob` gives directory order)
/// and, like Python's `glob`, `*` does not match a leading dot.
fn fileglob(terms: &[Value], env: &LookupEnv) -> Vec<Value> {
    let mut out = Vec::new();
    for t in terms {
        let term = py_str(t);
        let (dir, pattern) = match term.rsplit_once('/') {
            Some((d, f)) => (Some(if d.is_empty() { "/" } else { d }), f),
            None => (None, term.as_str()),
        };
        let places: Vec<PathBuf> = match dir {
            Some(d) => env.find_file(Some("files"), d).into_iter().collect(),
            None => env
                .search_paths()
                .into_iter()
                .flat_map(|p| [p.join("files"), p])
                .collect(),
        };
        let Ok(glob) = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map(|g| g.compile_matcher())
        else {
            continue;
        };
        for place in places {
            let Ok(entries) = std::fs::read_dir(&place) else {
                continue;
            };
            let mut found: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    glob.is_match(name.as_ref())
                        && (!name.starts_with('.') || pattern.starts_with('.'))
                })
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .map(|p| p.display().to_string())
                .collect();
            if !found.is_empty() {
                found.sort();
                out.extend(found.into_iter().map(Value::String));
                break;
            }
        }
    }
    out
}

/// An option of type `list`: a string is split on commas (Ansible's `ensure_type`).
fn list_option(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(py_str).collect(),
        Some(Value::String(s)) => s.split(',').map(|x| x.trim().to_string()).collect(),
        Some(other) => vec![py_str(other)],
    }
}

/// `first_found`'s `_split_on`: each name split on any of `splitters`.
fn split_on(names: &[String], splitters: &[char]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| n.split(splitters).map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// `first_found`: the first of the files (each term a name, a list of names, or a mapping
/// with `files`, `paths` and `skip`) that exists along the search path, as one absolute
/// path; none found is an error unless `skip` is true (then no item). Inside a
/// `with_first_found` loop the directory searched depends on the task's action
/// (`templates`, `vars`, else `files`), as Ansible's; in `lookup()` there is none.
fn first_found(
    terms: Vec<Value>,
    opts: &Map<String, Value>,
    env: &LookupEnv,
) -> Result<Vec<Value>, String> {
    struct State {
        paths: Vec<String>,
        skip: bool,
        search: Vec<String>,
    }
    fn process(terms: &[Value], st: &mut State) -> Result<(), String> {
        for term in terms {
            let files = match term {
                Value::Object(m) => {
                    // Each mapping sets all the options afresh (Ansible's `set_options`).
                    st.paths = list_option(m.get("paths"));
                    st.skip = m.get("skip").map(json_bool).unwrap_or(false);
                    list_option(m.get("files"))
                }
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => {
                    process(a, st)?;
                    continue;
                }
                other => {
                    return Err(format!(
                        "Invalid term supplied. A string, dict or list is required, not {}).",
                        py_repr(&Value::String(type_name(other).into()))
                    ));
                }
            };
            let files = split_on(&files, &[',', ';']);
            let paths = split_on(&st.paths, &[',', ':', ';']);
            if paths.is_empty() {
                st.search.extend(files);
            } else {
                for p in &paths {
                    for f in &files {
                        st.search
                            .push(Path::new(p).join(f).to_string_lossy().into_owned());
                    }
                }
            }
        }
        Ok(())
    }
    let mut st = State {
        paths: list_option(opts.get("paths")),
        skip: opts.get("skip").map(json_bool).unwrap_or(false),
        search: Vec::new(),
    };
    let terms = if terms.is_empty() {
        list_option(opts.get("files"))
            .into_iter()
            .map(Value::String)
            .collect()
    } else {
        terms
    };
    process(&terms, &mut st)?;
    let subdir = env.with_action.map(|action| {
        ["template", "var"]
            .iter()
            .find(|d| action.contains(*d))
            .map_or("files".to_string(), |d| format!("{d}s"))
    });
    for name in &st.search {
        if let Some(found) = env.find_file(subdir.as_deref(), name) {
            return Ok(vec![Value::String(unfrack(&found).display().to_string())]);
        }
    }
    if st.skip {
        return Ok(Vec::new());
    }
    Err("No file was found when using first_found.".into())
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// `pipe`: the command's stdout (trailing whitespace removed); a non-zero exit status is
/// an error.
fn pipe(cmd: &str) -> Result<Value, String> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("lookup('pipe'): cannot run /bin/sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "lookup('pipe'): command {cmd:?} exited with {}",
            out.status.code().unwrap_or(-1)
        ));
    }
    Ok(Value::String(
        String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
    ))
}

/// `random_choice`: one of the terms, or none when there are none.
fn random_choice(terms: Vec<Value>) -> Vec<Value> {
    use rand::seq::IndexedRandom;
    match terms.choose(&mut rand::rng()) {
        Some(v) => vec![v.clone()],
        None => terms,
    }
}

/// An integer option as Ansible's `ensure_type(value, 'integer')` reads it: an int, or a
/// string or float whose decimal value is whole (`'010'` is 10, `'0x10'` is invalid).
fn integer(name: &str, v: &Value) -> Result<i64, String> {
    let bad = || {
        format!(
            "Config '{name}' for 'sequence' lookup plugin from 'Direct' has an invalid value: Invalid value provided for 'integer': {}",
            py_repr(v)
        )
    };
    let from_f64 = |f: f64| {
        (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15)
            .then_some(f as i64)
            .ok_or_else(bad)
    };
    match v {
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(i),
            None => from_f64(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => {
            let s = s.trim();
            let digits = |t: &str| {
                !t.is_empty()
                    && !t.starts_with('_')
                    && !t.ends_with('_')
                    && !t.contains("__")
                    && t.chars().all(|c| c.is_ascii_digit() || c == '_')
            };
            let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
            if digits(unsigned) {
                return s.replace('_', "").parse::<i64>().map_err(|_| bad());
            }
            let re = regex::Regex::new(r"^[+-]?(\d+(_\d+)*)?(\.(\d+(_\d+)*)?)?([eE][+-]?\d+)?$")
                .expect("valid regex");
            let has_digit = unsigned
                .split(['e', 'E'])
                .next()
                .is_some_and(|m| m.chars().any(|c| c.is_ascii_digit()));
            if re.is_match(s) && has_digit {
                return from_f64(s.replace('_', "").parse::<f64>().map_err(|_| bad())?);
            }
            Err(bad())
        }
        _ => Err(bad()),
    }
}

/// `sequence`: numbers from `start` to `end` (or `count` of them) by `stride`, each
/// formatted with `format` (printf style). Each term is the shortcut
/// `[start-]end[/stride][:format]` or `k=v` words; keyword options apply to every term.
fn sequence(terms: Vec<Value>, opts: &Map<String, Value>) -> Result<Vec<Value>, String> {
    const FIELDS: [&str; 5] = ["start", "end", "stride", "count", "format"];
    let terms = if terms.is_empty() && !opts.is_empty() {
        vec![Value::String(String::new())]
    } else {
        terms
    };
    let shortcut =
        regex::Regex::new(r"(?i)^((0?x?[0-9a-f]+)-)?(0?x?[0-9a-f]+)(/(0?x?[0-9a-f]+))?(:(.+))?$")
            .expect("valid regex");
    let mut out = Vec::new();
    for term in terms {
        let Value::String(term) = term else {
            return Err(format!(
                "unknown error parsing with_sequence arguments: {}. Error was: expected string or bytes-like object, got '{}'",
                py_repr(&term),
                type_name(&term)
            ));
        };
        let mut set: Map<String, Value> = opts.clone();
        if let Some(c) = shortcut.captures(&term) {
            for (key, group) in [("start", 2), ("end", 3), ("stride", 5), ("format", 7)] {
                if let Some(m) = c.get(group) {
                    set.insert(key.into(), Value::String(m.as_str().into()));
                }
            }
        } else {
            let mut kv = crate::playbook::parse_kv("sequence", &term, None);
            for f in FIELDS {
                if let Some(v) = kv.remove(f) {
                    set.insert(f.into(), v);
                }
            }
            if !kv.is_empty() {
                let keys: Vec<Value> = kv.keys().map(|k| Value::String(k.clone())).collect();
                return Err(format!(
                    "unrecognized arguments to with_sequence: {}",
                    py_repr(&Value::Array(keys))
                ));
            }
        }
        let int = |k: &str, d: Option<i64>| match set.get(k) {
            Some(Value::Null) | None => Ok(d),
            Some(v) => integer(k, v).map(Some),
        };
        let start = int("start", Some(1))?.unwrap_or(1);
        let stride = int("stride", Some(1))?.unwrap_or(1);
        let (end, count) = (int("end", None)?, int("count", None)?);
        let format = match set.get("format") {
            Some(Value::Null) | None => "%d".to_string(),
            Some(v) => py_str(v),
        };
        let end = match (end, count) {
            (None, None) => return Err("must specify count or end in with_sequence".into()),
            (Some(_), Some(_)) => {
                return Err("can't specify both count and end in with_sequence".into());
            }
            (_, Some(0)) => continue,
            (_, Some(n)) => start + n * stride - 1,
            (Some(e), None) => e,
        };
        if stride > 0 && end < start {
            return Err("to count backwards make stride negative".into());
        }
        if stride < 0 && end > start {
            return Err("to count forward don't make stride negative".into());
        }
        if stride == 0 {
            continue;
        }
        if format.matches('%').count() != 1 {
            return Err(format!("bad formatting string: {format}"));
        }
        let stop = end + stride.signum();
        let mut i = start;
        while (stride > 0 && i < stop) || (stride < 0 && i > stop) {
            let s = crate::template::percent::format(&format, &[minijinja::Value::from(i)], None)
                .map_err(|_| {
                format!(
                    "problem formatting {i} with {}",
                    py_repr(&Value::String(format.clone()))
                )
            })?;
            out.push(Value::String(s));
            i += stride;
        }
    }
    Ok(out)
}

/// Python's iteration of a term: a list's items, a string's characters, a mapping's keys.
fn iterate(v: &Value, plugin: &str) -> Result<Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.into())).collect()),
        Value::Object(m) => Ok(m.keys().map(|k| Value::String(k.clone())).collect()),
        other => Err(format!(
            "with_{plugin} expects lists, got {}",
            py_repr(&Value::String(type_name(other).into()))
        )),
    }
}

/// `LookupBase._flatten`: list items spliced in, one level.
fn flatten_one(terms: &[Value]) -> Vec<Value> {
    terms
        .iter()
        .flat_map(|t| match t {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        })
        .collect()
}

/// `nested`: every combination of one item of each list, in order (`[[a, b], [1, 2]]`
/// gives `[a, 1], [a, 2], [b, 1], [b, 2]`).
fn nested(terms: &[Value]) -> Result<Vec<Value>, String> {
    let Some((first, rest)) = terms.split_first() else {
        return Err("with_nested requires at least one element in the nested list".into());
    };
    let mut result = iterate(first, "nested")?;
    for next in rest {
        let next = iterate(next, "nested")?;
        result = result
            .iter()
            .flat_map(|x| {
                next.iter()
                    .map(|y| Value::Array(flatten_one(&[x.clone(), y.clone()])))
                    .collect::<Vec<_>>()
            })
            .collect();
    }
    result
        .iter()
        .map(|x| Ok(Value::Array(flatten_one(&iterate(x, "nested")?))))
        .collect()
}

/// `together`: the lists side by side (`[1, 2], [3]` gives `[1, 3], [2, None]`).
fn together(terms: &[Value]) -> Result<Vec<Value>, String> {
    if terms.is_empty() {
        return Err("with_together requires at least one element in each list".into());
    }
    let lists = terms
        .iter()
        .map(|t| iterate(t, "together"))
        .collect::<Result<Vec<_>, _>>()?;
    let n = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok((0..n)
        .map(|i| {
            let row: Vec<Value> = lists
                .iter()
                .map(|l| l.get(i).cloned().unwrap_or(Value::Null))
                .collect();
            Value::Array(flatten_one(&row))
        })
        .collect())
}

/// Whether a registered result (or one of its items) says it was skipped.
fn was_skipped(m: &Map<String, Value>) -> bool {
    m.get("skipped").is_some_and(|s| s != &Value::Bool(false))
}

/// The `subelements` lookup (`with_subelements`): for each mapping of the first term,
/// one `[mapping, x]` item per element `x` of the list at the dotted key of the second
/// term. As in Ansible, the mapping in the item no longer holds that list's key, skipped
/// results are passed over, and `{skip_missing: true}` as a third term passes over the
/// mappings without the key.
fn subelements_lookup(terms: &[Value]) -> Result<Vec<Value>, String> {
    let terms_error =
        |msg: &str| format!("subelements lookup expects a list of two or three items, {msg}");
    if !(2..=3).contains(&terms.len()) {
        return Err(terms_error(""));
    }
    let Some(key) = terms[1]
        .as_str()
        .filter(|_| terms[0].is_array() || terms[0].is_object())
    else {
        return Err(terms_error(
            "first a dict or a list, second a string pointing to the subkey",
        ));
    };
    let subkeys: Vec<&str> = key.split('.').collect();
    let elements: Vec<Value> = match &terms[0] {
        Value::Object(m) if was_skipped(m) => return Ok(Vec::new()),
        Value::Object(m) => m.values().cloned().collect(),
        Value::Array(a) => a.clone(),
        _ => unreachable!("checked above"),
    };
    let skip_missing = match terms.get(2) {
        Some(Value::Object(flags)) => flags.get("skip_missing").is_some_and(json_bool),
        Some(_) => {
            return Err(terms_error(
                "the optional third item must be a dict with flags ('skip_missing',)",
            ));
        }
        None => false,
    };
    let mut out = Vec::new();
    for item0 in elements {
        let Value::Object(mut item0) = item0 else {
            return Err(format!(
                "subelements lookup expects a dictionary, got {}",
                py_repr(&Value::String(py_str(&item0)))
            ));
        };
        if was_skipped(&item0) {
            continue;
        }
        // Walk to the mapping holding the last key, then take the list out of it.
        let mut path: Vec<&str> = Vec::new();
        let mut take = None;
        let mut cur: &Map<String, Value> = &item0;
        for (n, sub) in subkeys.iter().enumerate() {
            let Some(v) = cur.get(*sub) else {
                if skip_missing {
                    continue;
                }
                return Err(format!(
                    "could not find '{sub}' key in iterated item '{}'",
                    py_repr(&Value::Object(cur.clone()))
                ));
            };
            if n + 1 == subkeys.len() {
                if !v.is_array() {
                    return Err(format!(
                        "the key {sub} should point to a list, got '{}'",
                        py_str(v)
                    ));
                }
                take = Some(*sub);
            } else if let Value::Object(next) = v {
                path.push(sub);
                cur = next;
            } else if !skip_missing {
                return Err(format!(
                    "the key {sub} should point to a dictionary, got '{}'",
                    py_str(v)
                ));
            }
        }
        let mut sublist = Vec::new();
        if let Some(key) = take {
            let mut m = &mut item0;
            for p in &path {
                m = m
                    .get_mut(*p)
                    .and_then(Value::as_object_mut)
                    .expect("a mapping, walked above");
            }
            if let Some(Value::Array(a)) = m.shift_remove(key) {
                sublist = a;
            }
        }
        let item0 = Value::Object(item0);
        out.extend(
            sublist
                .into_iter()
                .map(|x| Value::Array(vec![item0.clone(), x])),
        );
    }
    Ok(out)
}

/// The `subelements` filter: `[element, x]` for each `x` in the list at the dotted (or
/// listed) key of each element of a list or of a mapping's values; unlike the lookup, the
/// element keeps the key. `skip_missing` passes over elements without the key.
pub fn subelements_filter(
    obj: &Value,
    keys: &Value,
    skip_missing: bool,
) -> Result<Vec<Value>, String> {
    let elements: Vec<&Value> = match obj {
        Value::Object(m) => m.values().collect(),
        Value::Array(a) => a.iter().collect(),
        _ => return Err("obj must be a list of dicts or a nested dict".into()),
    };
    let keys: Vec<Value> = match keys {
        Value::Array(a) => a.clone(),
        Value::String(s) => s.split('.').map(|k| Value::String(k.into())).collect(),
        _ => return Err("subelements must be a list or a string".into()),
    };
    let mut out = Vec::new();
    for element in elements {
        let mut values = element;
        let empty = Value::Array(Vec::new());
        let mut last_key = String::new();
        for key in &keys {
            last_key = py_str(key);
            let next = match (values, key) {
                (Value::Object(m), Value::String(k)) => m.get(k),
                (Value::Object(_), _) => None,
                (Value::Array(a), Value::Number(n)) => n.as_u64().and_then(|i| a.get(i as usize)),
                _ => {
                    return Err(format!(
                        "the key {last_key} should point to a dictionary, got '{}'",
                        py_str(values)
                    ));
                }
            };
            match next {
                Some(v) => values = v,
                None if skip_missing => {
                    values = &empty;
                    break;
                }
                None => {
                    return Err(format!(
                        "could not find {} key in iterated item {}",
                        py_repr(key),
                        py_repr(values)
                    ));
                }
            }
        }
        let Value::Array(list) = values else {
            return Err(format!(
                "the key {} should point to a list, got {}",
                py_repr(&Value::String(last_key)),
                py_repr(values)
            ));
        };
        out.extend(
            list.iter()
                .map(|x| Value::Array(vec![element.clone(), x.clone()])),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
