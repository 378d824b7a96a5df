//! One task mapping → [`Task`]: finding the action among the keys (Ansible's dynamic
//! task shape), free-form arguments, loops and the task's own keywords.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::keywords::{string_list, vars_map};
use super::parse::{as_bool, expect_map, merge_scope, number, scalar_string};
use super::*;
use crate::yaml::{Node, NodeKind};

/// `when:`-style value: a string, a boolean or a list of them.
pub(super) fn conditions(node: &Node) -> Result<Vec<Cond>> {
    let one = |n: &Node| -> Result<Cond> {
        let expr = match &n.kind {
            NodeKind::Str(s) => s.clone(),
            NodeKind::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            NodeKind::Int(i) => i.to_string(),
            _ => {
                return Err(ParseError::at(
                    &n.loc,
                    format!("a condition must be a string, found {}", n.type_name()),
                ));
            }
        };
        Ok(Cond {
            expr,
            loc: n.loc.clone(),
        })
    };
    match &node.kind {
        NodeKind::Seq(items) => items.iter().map(one).collect(),
        NodeKind::Null => Ok(Vec::new()),
        _ => Ok(vec![one(node)?]),
    }
}

/// Parses one task mapping.
pub(super) fn parse_task(
    node: &Node,
    entries: &[(String, Node)],
    parent: &Scope,
    registry: &Registry,
) -> Result<Task> {
    let mut own = Scope::default();
    let mut action: Option<(String, &Node)> = None;
    let mut args = Map::new();
    let mut arg_locs = std::collections::BTreeMap::new();
    let mut unknown: Option<(&str, &Node)> = None;
    let mut loop_: Option<LoopSpec> = None;
    let mut t = TaskFields::default();
    for (k, v) in entries {
        let key = k.as_str();
        if let Some(lookup) = key.strip_prefix("with_") {
            let kind = match lookup {
                "items" => LoopKind::Items,
                "list" => LoopKind::List,
                "dict" => LoopKind::Dict,
                other => LoopKind::Lookup(other.to_string()),
            };
            set_loop(&mut loop_, kind, v)?;
            continue;
        }
        match key {
            "name" => t.name = Some(scalar_string(v)),
            "when" => own.when = conditions(v)?,
            "loop" => set_loop(&mut loop_, LoopKind::Loop, v)?,
            "loop_control" => t.loop_control = loop_control(v)?,
            "register" => {
                t.register =
                    Some(v.as_str().map(str::to_string).ok_or_else(|| {
                        ParseError::at(&v.loc, "'register' must be a variable name")
                    })?)
            }
            "notify" => t.notify = string_list(v, "notify")?,
            "listen" => t.listen = string_list(v, "listen")?,
            "changed_when" => t.changed_when = conditions(v)?,
            "failed_when" => t.failed_when = conditions(v)?,
            "until" => t.until = conditions(v)?,
            "retries" => t.retries = Some(v.to_json()),
            "delay" => t.delay = Some(v.to_json()),
            "tags" => own.tags = string_list(v, "tags")?,
            "vars" => t.vars = vars_map(v)?,
            "args" => match v.to_json() {
                Value::Object(m) => {
                    note_locs(&mut arg_locs, v, m.keys());
                    args.extend(m)
                }
                Value::Null => {}
                _ => return Err(ParseError::at(&v.loc, "'args' must be a mapping")),
            },
            "action" | "local_action" => {
                let (name, a) = action_form(v)?;
                if key == "local_action" {
                    own.kw.delegate_to = Some(Value::String("localhost".into()));
                }
                set_action(&mut action, name, v)?;
                args.extend(a);
            }
            "async" => t.async_ = Some(v.to_json()),
            "poll" => t.poll = Some(v.to_json()),
            "debugger" | "module_defaults" | "collections" => {}
            _ if own.kw.set(key, v)? => {}
            _ if is_action(registry, key) => {
                set_action(&mut action, Registry::canonical(key).to_string(), v)?;
                let m = module_args(registry, Registry::canonical(key), v)?;
                note_locs(&mut arg_locs, v, m.keys());
                args.extend(m);
            }
            _ => {
                if unknown.is_none() {
                    unknown = Some((key, v));
                }
            }
        }
    }
    let (action, _) = match (action, unknown) {
        (Some(a), None) => a,
        (Some(_), Some((k, v))) => {
            return Err(ParseError::at(
                &v.loc,
                format!("'{k}' is not a valid attribute for a Task"),
            ));
        }
        (None, Some(("include" | "ansible.builtin.include", _))) => {
            return Err(ParseError::at(
                &node.loc,
                "'include' was removed from Ansible (ansible-core 2.16): use 'include_tasks' \
                 (decided when the task runs) or 'import_tasks' (read with the playbook) for \
                 task files, 'import_playbook' for playbooks",
            ));
        }
        (None, Some((k, v))) => {
            let mut msg = format!(
                "couldn't resolve module/action '{k}'. This often indicates a misspelling, missing collection, or incorrect module path."
            );
            if let Some(s) = registry.suggest(k) {
                msg.push_str(&format!(" Did you mean '{s}'?"));
            }
            let _ = v;
            return Err(ParseError::at(&node.loc, msg));
        }
        (None, None) => {
            return Err(ParseError::at(
                &node.loc,
                "no module/action detected in task",
            ));
        }
    };
    if loop_.is_none() && t.loop_control.loop_var.is_some() {
        // Harmless in Ansible; nothing to do.
    }
    let scope = merge_scope(parent, &own);
    Ok(Task {
        name: t.name,
        action,
        args,
        loc: node.loc.clone(),
        arg_locs,
        scope,
        parent_scope: Arc::new(parent.clone()),
        vars: Arc::new(t.vars),
        loop_,
        loop_control: t.loop_control,
        register: t.register,
        notify: t.notify,
        listen: t.listen,
        changed_when: t.changed_when,
        failed_when: t.failed_when,
        until: t.until,
        retries: t.retries,
        delay: t.delay,
        async_: t.async_,
        poll: t.poll,
    })
}

#[derive(Default)]
struct TaskFields {
    name: Option<String>,
    loop_control: LoopControl,
    register: Option<String>,
    notify: Vec<String>,
    listen: Vec<String>,
    changed_when: Vec<Cond>,
    failed_when: Vec<Cond>,
    until: Vec<Cond>,
    retries: Option<Value>,
    delay: Option<Value>,
    async_: Option<Value>,
    poll: Option<Value>,
    vars: Map<String, Value>,
}

/// Records where each of `keys` was written in the arguments node `v`: a mapping's
/// values where they are, `k=v` words at their string.
fn note_locs<'k>(
    locs: &mut std::collections::BTreeMap<String, crate::yaml::Loc>,
    v: &Node,
    keys: impl Iterator<Item = &'k String>,
) {
    let entries = match &v.kind {
        NodeKind::Map(entries) => entries.as_slice(),
        _ => &[],
    };
    for k in keys {
        let at = entries
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, n)| &n.loc);
        locs.insert(k.clone(), at.unwrap_or(&v.loc).clone());
    }
}

fn set_loop(slot: &mut Option<LoopSpec>, kind: LoopKind, v: &Node) -> Result<()> {
    if slot.is_some() {
        return Err(ParseError::at(
            &v.loc,
            "a task can have only one loop (loop or with_*)",
        ));
    }
    *slot = Some(LoopSpec {
        kind,
        value: v.to_json(),
    });
    Ok(())
}

fn set_action<'a>(slot: &mut Option<(String, &'a Node)>, name: String, v: &'a Node) -> Result<()> {
    if let Some((prev, _)) = slot {
        return Err(ParseError::at(
            &v.loc,
            format!("conflicting action statements: {prev}, {name}"),
        ));
    }
    *slot = Some((name, v));
    Ok(())
}

fn loop_control(v: &Node) -> Result<LoopControl> {
    let entries = expect_map(v, "'loop_control'")?;
    let mut lc = LoopControl::default();
    for (k, n) in entries {
        match k.as_str() {
            "loop_var" => lc.loop_var = Some(scalar_string(n)),
            "index_var" => lc.index_var = Some(scalar_string(n)),
            "label" => lc.label = Some(n.to_json()),
            "pause" => lc.pause = Some(number(n, "pause")?),
            "extended" => lc.extended = as_bool(n, "extended")?,
            "extended_allitems" | "break_when" => {}
            _ => {
                return Err(ParseError::at(
                    &n.loc,
                    format!("'{k}' is not a valid attribute for loop_control"),
                ));
            }
        }
    }
    Ok(lc)
}

/// `action: copy src=a dest=b` or `action: {module: copy, src: a}`.
fn action_form(v: &Node) -> Result<(String, Map<String, Value>)> {
    match v.to_json() {
        Value::String(s) => {
            let s = s.trim();
            let (name, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
            let name = Registry::canonical(name).to_string();
            Ok((name.clone(), parse_kv(&name, rest.trim(), None)))
        }
        Value::Object(mut m) => {
            let name = m
                .remove("module")
                .and_then(|n| n.as_str().map(str::to_string))
                .ok_or_else(|| ParseError::at(&v.loc, "'action' needs a 'module' key"))?;
            Ok((Registry::canonical(&name).to_string(), m))
        }
        _ => Err(ParseError::at(
            &v.loc,
            "'action' must be a string or a mapping",
        )),
    }
}

/// Arguments written under the module key: a mapping, or a free-form string.
fn module_args(registry: &Registry, name: &str, v: &Node) -> Result<Map<String, Value>> {
    match v.to_json() {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        Value::String(s) => {
            let free = registry.get(name).and_then(|m| m.free_form());
            Ok(parse_kv(name, &s, free))
        }
        other if matches!(name, "meta" | "include_tasks" | "import_tasks") => {
            let mut m = Map::new();
            m.insert("_raw_params".into(), other);
            Ok(m)
        }
        _ => Err(ParseError::at(
            &v.loc,
            format!(
                "the arguments of '{name}' must be a mapping or a string, found {}",
                v.type_name()
            ),
        )),
    }
}

/// Modules whose free-form string is a command line; only a few `k=v` words are options.
const COMMAND_LIKE: &[&str] = &["command", "shell", "raw", "script"];
const COMMAND_OPTIONS: &[&str] = &["chdir", "creates", "removes", "executable", "stdin", "warn"];

/// Ansible's `k=v` argument strings. For command-like modules the rest of the line is the
/// command (`_raw_params`, or the module's free-form key).
pub(crate) fn parse_kv(name: &str, s: &str, free_form: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    let raw_key = free_form.unwrap_or("_raw_params");
    let words = split_args(s);
    let command_like = COMMAND_LIKE.contains(&name);
    if command_like {
        for w in &words {
            if let Some((k, v)) = w.split_once('=')
                && COMMAND_OPTIONS.contains(&k)
            {
                out.insert(k.to_string(), Value::String(unquote(v).to_string()));
            }
        }
        let rest = s_without_options(s, &out).unwrap_or_else(|| s.trim().to_string());
        if !rest.is_empty() {
            out.insert(raw_key.to_string(), Value::String(rest));
        }
        return out;
    }
    let mut free = Vec::new();
    for w in words {
        let decoded = decode_escapes(&w);
        match decoded.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                out.insert(k.to_string(), Value::String(unquote(v.trim()).to_string()));
            }
            _ => free.push(w),
        }
    }
    if !free.is_empty() {
        out.insert(raw_key.to_string(), Value::String(free.join(" ")));
    }
    out
}

/// Ansible's argument splitter (`split_args`): words are separated by whitespace outside
/// quotes and outside Jinja's `{{ }}`, `{% %}` and `{# #}`, so `a={{ r.stdout }}` and
/// `msg="two words"` are one word each. Quotes stay in the words (`unquote` removes them
/// from values), as in Ansible.
pub(super) fn split_args(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if let Some(q) = quote {
            cur.push(c);
            if c == '\\' {
                if let Some(n) = next {
                    cur.push(n);
                    i += 1;
                }
            } else if c == q {
                quote = None;
            }
        } else if c == '{' && matches!(next, Some('{' | '%' | '#')) {
            depth += 1;
            cur.push(c);
            cur.push(next.unwrap_or_default());
            i += 1;
        } else if depth > 0 && matches!(c, '}' | '%' | '#') && next == Some('}') {
            depth -= 1;
            cur.push(c);
            cur.push('}');
            i += 1;
        } else if depth == 0 && (c == '"' || c == '\'') {
            quote = Some(c);
            cur.push(c);
        } else if depth == 0 && c.is_whitespace() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
        i += 1;
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// A value without the quotes around it (`"a b"` → `a b`), as Ansible's `unquote`.
fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Python's string escapes in a `k=v` word (`\n`, `\t`, `\\`, `\"`, `\xHH`, `\uHHHH`),
/// decoded as Ansible's `parse_kv` does; anything else is kept as written.
fn decode_escapes(w: &str) -> String {
    if !w.contains('\\') {
        return w.to_string();
    }
    let mut out = String::new();
    let mut it = w.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(&n) = it.peek() else {
            out.push(c);
            break;
        };
        let simple = match n {
            '\\' => Some('\\'),
            '\'' => Some('\''),
            '"' => Some('"'),
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            _ => None,
        };
        if let Some(d) = simple {
            it.next();
            out.push(d);
            continue;
        }
        let width = match n {
            'x' => 2,
            'u' => 4,
            'U' => 8,
            _ => 0,
        };
        if width > 0 {
            let hex: String = it.clone().skip(1).take(width).collect();
            if hex.len() == width
                && let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
            {
                for _ in 0..=width {
                    it.next();
                }
                out.push(ch);
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// The command text with option words removed, keeping the user's own spacing and quoting.
fn s_without_options(s: &str, opts: &Map<String, Value>) -> Option<String> {
    let mut text = s.to_string();
    for k in opts.keys() {
        let pat = format!("{k}=");
        let pos = text.find(&pat)?;
        let end = text[pos..]
            .find(char::is_whitespace)
            .map(|e| pos + e)
            .unwrap_or(text.len());
        text.replace_range(pos..end, "");
    }
    Some(text.trim().to_string())
}
