//! String filters: regular expressions (Python `re` flavour), paths, base64, hashing and
//! shell quoting.

use base64::Engine as _;
use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, Value};
use regex::{Regex, RegexBuilder};

use super::invalid;

pub fn register(env: &mut Environment<'static>) {
    env.add_filter("regex_replace", regex_replace);
    env.add_filter("regex_search", regex_search);
    env.add_filter("regex_findall", regex_findall);
    env.add_filter("regex_escape", |s: String| regex::escape(&s));
    env.add_filter("b64encode", |s: String| {
        base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
    });
    env.add_filter("b64decode", b64decode);
    env.add_filter("basename", basename);
    env.add_filter("dirname", dirname);
    env.add_filter("quote", |s: Value| shell_quote(&text_of(&s)));
    env.add_filter("hash", hash);
    env.add_filter("checksum", |s: String| hash(s, None));
    env.add_filter("md5", |s: String| hash(s, Some("md5".into())));
    env.add_filter("sha1", |s: String| hash(s, Some("sha1".into())));
    env.add_filter("comment", comment);
}

/// `text | comment(style='plain', **params)`: Ansible's `comment` filter, the banner a
/// template puts at the top of a generated config file ("managed by ...").
fn comment(text: Value, style: Option<String>, kwargs: Kwargs) -> Result<String, Error> {
    let text = text_of(&text);
    let style = style.unwrap_or_else(|| "plain".into());
    // (beginning, decoration, end) of each predefined style.
    let (beginning, decoration, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => {
            return Err(invalid(format!(
                "comment: unknown style '{other}' (plain, erlang, c, cblock, xml)"
            )));
        }
    };
    let get = |k: &str, default: &str| -> Result<String, Error> {
        Ok(kwargs
            .get::<Option<Value>>(k)?
            .map(|v| text_of(&v))
            .unwrap_or_else(|| default.to_string()))
    };
    let count =
        |k: &str| -> Result<usize, Error> { Ok(kwargs.get::<Option<usize>>(k)?.unwrap_or(1)) };
    // The prefix and postfix lines default to the decoration without its trailing space.
    let decoration = get("decoration", decoration)?;
    let newline = get("newline", "\n")?;
    let beginning = get("beginning", beginning)?;
    let prefix = get("prefix", decoration.trim_end())?;
    let postfix = get("postfix", decoration.trim_end())?;
    let end = get("end", end)?;
    let (prefix_count, postfix_count) = (count("prefix_count")?, count("postfix_count")?);
    kwargs.assert_all_used()?;
    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let one = if prefix != newline {
            format!("{prefix}{newline}")
        } else {
            newline.clone()
        };
        out.push_str(&one.repeat(prefix_count));
    }
    let body = format!(
        "{decoration}{}",
        text.replace(&newline, &format!("{newline}{decoration}"))
    )
    .replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    );
    out.push_str(&body);
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(out)
}

/// The text of a value as Python's `str()` would give it (None → "None").
fn text_of(v: &Value) -> String {
    if v.is_none() {
        return "None".into();
    }
    v.to_string()
}

/// Compiles a Python-style pattern with Ansible's `ignorecase` / `multiline` options.
pub(crate) fn compile(pattern: &str, ignorecase: bool, multiline: bool) -> Result<Regex, Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .build()
        .map_err(|e| invalid(format!("invalid regular expression {pattern:?}: {e}")))
}

fn flags(kwargs: &Kwargs) -> Result<(bool, bool), Error> {
    Ok((
        kwargs.get::<Option<bool>>("ignorecase")?.unwrap_or(false),
        kwargs.get::<Option<bool>>("multiline")?.unwrap_or(false),
    ))
}

/// Python `re.sub`/`Match.expand` replacement syntax (`\1`, `\g<1>`, `\g<name>`, and the
/// `\n`, `\r`, `\t`, `\\` escapes) to the regex crate's (`${1}`, with `$` escaped). The
/// one converter for both `regex_replace` and `lineinfile`'s `backrefs`, so a playbook's
/// replacement means the same thing wherever it is written, as in Ansible.
pub fn python_replacement(rep: &str) -> String {
    let mut out = String::with_capacity(rep.len());
    let mut chars = rep.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' => out.push_str("$$"),
            '\\' => match chars.peek().copied() {
                Some(d) if d.is_ascii_digit() => {
                    let mut num = String::new();
                    while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                        num.push(d);
                        chars.next();
                    }
                    out.push_str(&format!("${{{num}}}"));
                }
                Some('g') => {
                    chars.next();
                    let mut name = String::new();
                    if chars.peek() == Some(&'<') {
                        chars.next();
                        for d in chars.by_ref() {
                            if d == '>' {
                                break;
                            }
                            name.push(d);
                        }
                        out.push_str(&format!("${{{name}}}"));
                    } else {
                        out.push_str("\\g");
                    }
                }
                Some('n') => {
                    chars.next();
                    out.push('\n');
                }
                Some('r') => {
                    chars.next();
                    out.push('\r');
                }
                Some('t') => {
                    chars.next();
                    out.push('\t');
                }
                Some('\\') => {
                    chars.next();
                    out.push('\\');
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    out
}

/// `value | regex_replace(pattern, replacement='', ignorecase=False, multiline=False)`.
fn regex_replace(
    value: Value,
    pattern: String,
    replacement: Option<String>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let (ic, ml) = flags(&kwargs)?;
    let count: usize = kwargs.get::<Option<usize>>("count")?.unwrap_or(0);
    kwargs.assert_all_used()?;
    let re = compile(&pattern, ic, ml)?;
    let rep = python_replacement(replacement.as_deref().unwrap_or(""));
    Ok(re
        .replacen(&text_of(&value), count, rep.as_str())
        .into_owned())
}

/// `value | regex_search(pattern, '\\1', '\\g<name>', ...)`: the first match (None when
/// there is none), or with group arguments, the list of those groups.
fn regex_search(
    value: String,
    pattern: String,
    groups: Rest<String>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let (ic, ml) = flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let re = compile(&pattern, ic, ml)?;
    let Some(caps) = re.captures(&value) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    let mut out = Vec::new();
    for g in groups.iter() {
        let m = if let Some(n) = g.strip_prefix('\\').and_then(|n| n.parse::<usize>().ok()) {
            caps.get(n)
        } else if let Some(name) = g.strip_prefix("\\g<").and_then(|n| n.strip_suffix('>')) {
            match name.parse::<usize>() {
                Ok(n) => caps.get(n),
                Err(_) => caps.name(name),
            }
        } else {
            return Err(invalid(format!("regex_search: unknown argument {g:?}")));
        };
        out.push(m.map_or(Value::from(()), |m| Value::from(m.as_str())));
    }
    Ok(Value::from(out))
}

/// `value | regex_findall(pattern)`: like Python's `re.findall`: whole matches without
/// groups, the group's text with one group, a list per match with several.
fn regex_findall(value: String, pattern: String, kwargs: Kwargs) -> Result<Value, Error> {
    let (ic, ml) = flags(&kwargs)?;
    kwargs.assert_all_used()?;
    let re = compile(&pattern, ic, ml)?;
    let groups = re.captures_len() - 1;
    let items: Vec<Value> = re
        .captures_iter(&value)
        .map(|caps| {
            let text = |i: usize| caps.get(i).map_or("", |m| m.as_str()).to_string();
            match groups {
                0 => Value::from(text(0)),
                1 => Value::from(text(1)),
                n => Value::from((1..=n).map(text).collect::<Vec<_>>()),
            }
        })
        .collect();
    Ok(Value::from(items))
}

fn b64decode(s: String) -> Result<String, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim().as_bytes())
        .map_err(|e| invalid(format!("b64decode: {e}")))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Python's `os.path.basename`: the text after the last `/` (empty for `a/`).
fn basename(path: String) -> String {
    path.rsplit('/').next().unwrap_or("").to_string()
}

/// Python's `os.path.dirname`: the text before the last `/`, trailing slashes removed
/// unless it is the root.
fn dirname(path: String) -> String {
    match path.rfind('/') {
        None => String::new(),
        Some(i) => {
            let head = &path[..=i];
            let trimmed = head.trim_end_matches('/');
            if trimmed.is_empty() {
                head.to_string()
            } else {
                trimmed.to_string()
            }
        }
    }
}

/// Python's `shlex.quote`, which Ansible's `quote` filter is.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    if s.chars()
        .all(|c| c.is_alphanumeric() || "_@%+=:,./-".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// `value | hash('sha1')` (the default), `'md5'`, `'sha256'`, `'sha512'`: hex digest.
fn hash(s: String, algo: Option<String>) -> Result<String, Error> {
    use sha2::Digest;
    let data = s.as_bytes();
    Ok(match algo.as_deref().unwrap_or("sha1") {
        "sha1" => hex::encode(sha1::Sha1::digest(data)),
        "md5" => hex::encode(md5::Md5::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        other => return Err(invalid(format!("hash: unsupported algorithm {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacement_syntax() {
        assert_eq!(python_replacement(r"\1-\g<name>$"), "${1}-${name}$$");
        assert_eq!(python_replacement(r"\g<2>\12"), "${2}${12}");
        assert_eq!(python_replacement(r"a\nb\tc\rd"), "a\nb\tc\rd");
        assert_eq!(python_replacement(r"\\1 \d \g"), "\\1 \\d \\g");
        // Expanded by the regex crate as Python would.
        let re = Regex::new(r"(?P<k>\w+)=(\w+)").unwrap();
        let caps = re.captures("port=22").unwrap();
        let mut out = String::new();
        caps.expand(&python_replacement(r"\g<k>: \2\n$HOME"), &mut out);
        assert_eq!(out, "port: 22\n$HOME");
    }

    #[test]
    fn python_paths() {
        assert_eq!(basename("/a/b.txt".into()), "b.txt");
        assert_eq!(basename("a/".into()), "");
        assert_eq!(dirname("/a/b".into()), "/a");
        assert_eq!(dirname("/a".into()), "/");
        assert_eq!(dirname("a".into()), "");
        assert_eq!(dirname("a//b".into()), "a");
    }

    #[test]
    fn shlex_quote() {
        assert_eq!(shell_quote("abc"), "abc");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
        assert_eq!(shell_quote("a b"), "'a b'");
    }
}
