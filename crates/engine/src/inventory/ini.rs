//! The INI inventory format, parsed like Ansible's `ini` plugin:
//! `[group]` host lines (`name[range][:port] key=value ...`), `[group:children]`,
//! `[group:vars]`; hosts before any section are `ungrouped`. Values are typed like
//! Python literals after shell-style splitting (ansible-core 2.19 does this for host
//! lines and for `:vars` lines alike: `y = 5` is the integer 5, `x=FALSE` a string).
//! Errors are `file:line: what is wrong`, with Ansible's wording.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::literal::parse_value;
use super::{Inventory, InventoryError, hostrange};

#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Children,
    Vars,
}

pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let mut inv = Inventory::new();
    let mut group = "ungrouped".to_string();
    let mut state = State::Hosts;
    // Groups referenced by `:vars` or `:children` before being defined: (line, section, group).
    let mut pending: HashMap<String, (usize, String, State)> = HashMap::new();
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        let err =
            |msg: String| InventoryError::Parse(format!("{}:{lineno}: {msg}", path.display()));
        let line = raw.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            let (name, kind) = parse_section(line).map_err(err)?;
            state = match kind.as_deref() {
                None | Some("hosts") => State::Hosts,
                Some("children") => State::Children,
                Some("vars") => State::Vars,
                Some(other) => {
                    return Err(err(format!(
                        "Section [{name}:{other}] has unknown type: {other}"
                    )));
                }
            };
            if state == State::Vars && !inv.groups.contains_key(&name) {
                pending
                    .entry(name.clone())
                    .or_insert((lineno, name.clone(), State::Vars));
            } else {
                pending.remove(&name);
                inv.add_group(&name);
            }
            group = name;
            continue;
        }
        match state {
            State::Hosts => {
                let tokens = shell_split(line)
                    .map_err(|e| err(format!("Error parsing host definition '{line}': {e}")))?;
                let Some((first, rest)) = tokens.split_first() else {
                    continue;
                };
                let (pattern, port) = hostrange::split_port(first).map_err(err)?;
                let hosts = hostrange::expand(&pattern).map_err(err)?;
                let mut vars = Vec::new();
                for t in rest {
                    let Some((k, v)) = t.split_once('=') else {
                        return Err(err(format!(
                            "Expected key=value host variable assignment, got: {t}"
                        )));
                    };
                    vars.push((k.to_string(), parse_value(v)));
                }
                for h in &hosts {
                    inv.add_host(h, &group);
                    if let Some(p) = port {
                        inv.set_host_var(h, "ansible_port", Value::from(p));
                    }
                    for (k, v) in &vars {
                        inv.set_host_var(h, k, v.clone());
                    }
                }
            }
            State::Children => {
                let child = line
                    .split(|c: char| c.is_whitespace() || c == '#' || c == ';')
                    .next()
                    .unwrap_or(line);
                if !inv.groups.contains_key(child) {
                    pending.entry(child.to_string()).or_insert((
                        lineno,
                        group.clone(),
                        State::Children,
                    ));
                }
                inv.add_child(&group, child);
            }
            State::Vars => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(err(format!("Expected key=value, got: {line}")));
                };
                let value = parse_value(v.trim());
                inv.set_group_var(&group, k.trim(), value).map_err(err)?;
            }
        }
    }
    // A group only ever named in `:vars` or `:children` was never defined.
    let mut first: Vec<_> = pending.into_iter().collect();
    first.sort_by_key(|(_, (line, _, _))| *line);
    if let Some((name, (line, section, state))) = first.into_iter().next() {
        let msg = match state {
            State::Vars => format!("Section [{name}:vars] not valid for undefined group '{name}'."),
            _ => format!("Section [{section}:children] includes undefined group '{name}'."),
        };
        return Err(InventoryError::Parse(format!(
            "{}:{line}: {msg}",
            path.display()
        )));
    }
    Ok(inv)
}

/// `[name]` or `[name:kind]`, optionally followed by a comment.
fn parse_section(line: &str) -> Result<(String, Option<String>), String> {
    let Some(end) = line.find(']') else {
        return Err(format!(
            "Invalid section entry: '{line}'. Please make sure that there are no spaces or other characters in the section entry."
        ));
    };
    let after = line[end + 1..].trim();
    let inner = &line[1..end];
    if inner.is_empty()
        || inner.chars().any(char::is_whitespace)
        || !(after.is_empty() || after.starts_with('#') || after.starts_with(';'))
    {
        return Err(format!(
            "Invalid section entry: '{line}'. Please make sure that there are no spaces or other characters in the section entry."
        ));
    }
    Ok(match inner.split_once(':') {
        Some((name, kind)) => (name.to_string(), Some(kind.to_string())),
        None => (inner.to_string(), None),
    })
}

/// Python's `shlex.split(line, comments=True)`: whitespace-separated words, single and
/// double quotes, backslash escapes, and `#` starting a comment outside quotes.
pub fn shell_split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' => break,
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("No closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => word.push(e),
                            Some(e) => {
                                word.push('\\');
                                word.push(e);
                            }
                            None => return Err("No closing quotation".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("No closing quotation".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(e) => word.push(e),
                    None => return Err("No escaped character".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shlex_like_python() {
        // As Python's shlex with comments=True: `#` ends the line even inside a word.
        assert_eq!(shell_split("h a=b#c d=1").unwrap(), ["h", "a=b"]);
        assert_eq!(
            shell_split(r#"h d='x y' e="q\"r" # c"#).unwrap(),
            ["h", "d=x y", "e=q\"r"]
        );
        assert_eq!(shell_split("a='x").unwrap_err(), "No closing quotation");
    }
}
