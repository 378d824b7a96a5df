//! Typed access to a module's arguments.
//!
//! Every module reads its arguments through [`Args`], so a bad value always produces the
//! same shape of error: `copy: argument 'mode' must be ...`, naming the module, the
//! argument and what was expected. Unknown arguments are rejected up front with a
//! "did you mean" hint, because a typo such as `dset:` would otherwise be silently ignored.

use serde_json::{Map, Value};

use super::ModuleError;

/// The closest of `names` to `word`, when it is close enough to be a typo.
pub fn did_you_mean<'n>(word: &str, names: &[&'n str]) -> Option<&'n str> {
    names
        .iter()
        .map(|k| (strsim::jaro_winkler(word, k), *k))
        .filter(|(s, _)| *s > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// The error for argument `key` when `module` does not accept it (`None` when it does).
/// Keys starting with `_` (`_raw_params`, `_uses_shell`) are internal and always allowed.
pub fn unknown_argument(module: &str, key: &str, known: &[&str]) -> Option<String> {
    if key.starts_with('_') || known.contains(&key) {
        return None;
    }
    let hint = did_you_mean(key, known)
        .map(|k| format!(" (did you mean '{k}'?)"))
        .unwrap_or_default();
    let mut names: Vec<&str> = known.to_vec();
    names.sort_unstable();
    Some(format!(
        "{module}: unsupported argument '{key}'{hint}; supported: {}",
        names.join(", ")
    ))
}

/// A module's arguments, checked against the names it accepts.
pub struct Args<'a> {
    module: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Wraps `map`, failing on the first argument not in `known`. Keys starting with `_`
    /// (`_raw_params`, `_uses_shell`) are internal and always allowed.
    pub fn new(
        module: &'static str,
        map: &'a Map<String, Value>,
        known: &[&str],
    ) -> Result<Self, ModuleError> {
        match map.keys().find_map(|k| unknown_argument(module, k, known)) {
            Some(msg) => Err(ModuleError::Args(msg)),
            None => Ok(Args { module, map }),
        }
    }

    pub fn module(&self) -> &'static str {
        self.module
    }

    /// An error about argument `key`, prefixed with the module name.
    pub fn err(&self, key: &str, what: impl std::fmt::Display) -> ModuleError {
        ModuleError::Args(format!("{}: argument '{key}' {what}", self.module))
    }

    /// A plain error prefixed with the module name.
    pub fn fail(&self, msg: impl std::fmt::Display) -> ModuleError {
        ModuleError::Args(format!("{}: {msg}", self.module))
    }

    /// The raw value of `key`, `None` when absent or null (for arguments of a shape of their own).
    pub fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.value(key).is_some()
    }

    /// A string argument; numbers and booleans are accepted and printed, as Ansible does.
    pub fn opt_str(&self, key: &str) -> Result<Option<String>, ModuleError> {
        match self.value(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(if *b { "True" } else { "False" }.into())),
            Some(other) => Err(self.err(key, format!("must be a string, got {}", kind(other)))),
        }
    }

    pub fn str(&self, key: &str) -> Result<String, ModuleError> {
        self.opt_str(key)?
            .ok_or_else(|| self.err(key, "is required"))
    }

    pub fn str_or(&self, key: &str, default: &str) -> Result<String, ModuleError> {
        Ok(self.opt_str(key)?.unwrap_or_else(|| default.to_string()))
    }

    /// A boolean in any of Ansible's spellings (`yes`, `true`, `on`, `1`, ...).
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, ModuleError> {
        let v = match self.value(key) {
            None => return Ok(None),
            Some(v) => v,
        };
        let parsed = match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            Value::String(s) if s.is_empty() => Some(false),
            Value::String(s) => crate::template::filters::parse_bool(s),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| self.err(key, format!("must be a boolean (yes/no), got {}", show(v))))
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, ModuleError> {
        Ok(self.opt_bool(key)?.unwrap_or(default))
    }

    /// An integer, given as a number or a numeric string.
    pub fn opt_int(&self, key: &str) -> Result<Option<i64>, ModuleError> {
        let v = match self.value(key) {
            None => return Ok(None),
            Some(v) => v,
        };
        let parsed = match v {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| self.err(key, format!("must be an integer, got {}", show(v))))
    }

    pub fn int_or(&self, key: &str, default: i64) -> Result<i64, ModuleError> {
        Ok(self.opt_int(key)?.unwrap_or(default))
    }

    /// A list of strings; a single string becomes a one-element list, and a
    /// comma-separated string is split, as Ansible's `type='list'` does.
    pub fn str_list(&self, key: &str) -> Result<Vec<String>, ModuleError> {
        match self.value(key) {
            None => Ok(vec![]),
            Some(Value::String(s)) => Ok(s
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Bool(b) => Ok(b.to_string()),
                    other => Err(self.err(
                        key,
                        format!("must be a list of strings, found {}", kind(other)),
                    )),
                })
                .collect(),
            Some(other) => Err(self.err(key, format!("must be a list, got {}", kind(other)))),
        }
    }

    /// One of a fixed set of choices.
    pub fn choice(
        &self,
        key: &str,
        choices: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, ModuleError> {
        match self.opt_str(key)? {
            None => Ok(default),
            Some(s) => choices.iter().find(|c| **c == s).copied().ok_or_else(|| {
                self.err(
                    key,
                    format!("must be one of {}, got '{s}'", choices.join(", ")),
                )
            }),
        }
    }

    /// A file mode: an octal string (`'0644'`, `'644'`), an integer (the YAML loader reads
    /// `0644` as octal, 420, like PyYAML, so an integer is taken as the mode's value), a
    /// symbolic mode (`u+x,g-w`), or `preserve`, which the caller resolves.
    pub fn opt_mode(&self, key: &str) -> Result<Option<Mode>, ModuleError> {
        let bad = || {
            self.err(
                key,
                "must be an octal string like '0644', an integer, or a symbolic mode like 'u+x'",
            )
        };
        match self.value(key) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                let i = n.as_u64().ok_or_else(bad)?;
                if i > 0o7777 {
                    return Err(bad());
                }
                Ok(Some(Mode::Octal(i as u32)))
            }
            Some(Value::String(s)) => Mode::parse(s).map(Some).ok_or_else(bad),
            Some(_) => Err(bad()),
        }
    }
}

/// A requested file mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    Octal(u32),
    /// Symbolic clauses (`u+x,go-w`), applied to the current mode by [`Mode::apply`].
    Symbolic(String),
    /// Keep the source file's mode (`copy`/`template` `mode: preserve`).
    Preserve,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        let s = s.trim();
        if s == "preserve" {
            return Some(Mode::Preserve);
        }
        if !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
            return u32::from_str_radix(s, 8).ok().map(Mode::Octal);
        }
        // Validate symbolic syntax now so errors surface before anything runs.
        apply_symbolic(s, 0, false).map(|_| Mode::Symbolic(s.to_string()))
    }

    /// The resulting permission bits for a file whose current mode is `current`.
    pub fn apply(&self, current: u32, is_dir: bool) -> u32 {
        match self {
            Mode::Octal(m) => *m,
            Mode::Symbolic(s) => apply_symbolic(s, current, is_dir).unwrap_or(current),
            Mode::Preserve => current,
        }
    }
}

/// Applies chmod-style symbolic clauses (`[ugoa]*[+-=][rwxXst]*`, comma separated).
fn apply_symbolic(spec: &str, current: u32, is_dir: bool) -> Option<u32> {
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let who_len = clause.bytes().take_while(|b| b"ugoa".contains(b)).count();
        let (who, rest) = clause.split_at(who_len);
        let mut who_mask = 0u32;
        for w in who.bytes() {
            who_mask |= match w {
                b'u' => 0o4700,
                b'g' => 0o2070,
                b'o' => 0o0007,
                _ => 0o6777,
            };
        }
        if who.is_empty() {
            who_mask = 0o6777;
        }
        let mut chars = rest.chars().peekable();
        chars.peek()?;
        while let Some(op) = chars.next() {
            if !matches!(op, '+' | '-' | '=') {
                return None;
            }
            let mut bits = 0u32;
            while let Some(&c) = chars.peek() {
                if matches!(c, '+' | '-' | '=') {
                    break;
                }
                bits |= match c {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || current & 0o111 != 0 => 0o111,
                    'X' => 0,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => return None,
                };
                chars.next();
            }
            let bits = bits & (who_mask | if who.is_empty() { 0o1000 } else { 0 });
            match op {
                '+' => mode |= bits,
                '-' => mode &= !bits,
                _ => mode = (mode & !(who_mask & 0o777)) | bits,
            }
        }
    }
    Some(mode)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

/// Splits Ansible's inline `key=value` options out of a free-form string
/// (`command: ls creates=/x chdir=/tmp`), for the keys a module knows. The playbook
/// parser normally does this; doing it here too keeps modules correct either way.
pub fn split_free_form(raw: &str, keys: &[&str]) -> (String, Vec<(String, String)>) {
    let mut kept = Vec::new();
    let mut opts = Vec::new();
    for token in tokens(raw) {
        if let Some((k, v)) = token.split_once('=')
            && keys.contains(&k)
        {
            let v = shell_words::split(v)
                .ok()
                .and_then(|w| w.into_iter().next())
                .unwrap_or_else(|| v.to_string());
            opts.push((k.to_string(), v));
            continue;
        }
        kept.push(token);
    }
    (kept.join(" ").trim().to_string(), opts)
}

/// Splits on spaces outside quotes, keeping each token's text (quotes included) intact.
fn tokens(raw: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quote) = (0, None);
    for (i, c) in raw.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') => {
                if i > start {
                    out.push(&raw[start..i]);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < raw.len() {
        out.push(&raw[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_boolean_rule_for_filters_and_module_arguments() {
        use crate::template::filters::parse_bool;
        for (s, want) in [
            ("y", true),
            (" Yes ", true),
            ("T", true),
            ("1", true),
            ("off", false),
            ("n", false),
            ("F", false),
        ] {
            assert_eq!(parse_bool(s), Some(want), "{s:?}");
            let map = json!({"keep_volumes": s}).as_object().cloned().unwrap();
            let a = Args::new("m", &map, &["keep_volumes"]).unwrap();
            assert_eq!(a.bool_or("keep_volumes", !want).unwrap(), want, "{s:?}");
        }
        assert_eq!(parse_bool("maybe"), None);
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn unknown_arguments_get_a_suggestion() {
        let m = map(json!({"dset": "/x"}));
        let err = Args::new("copy", &m, &["dest", "src"]).err().unwrap();
        assert!(err.to_string().contains("unsupported argument 'dset'"));
        assert!(err.to_string().contains("did you mean 'dest'"));
    }

    #[test]
    fn typed_getters_name_the_argument() {
        let m = map(json!({"force": "maybe", "mode": "0x9", "n": "12", "l": "a, b"}));
        let a = Args::new("copy", &m, &["force", "mode", "n", "l"]).unwrap();
        let e = a.opt_bool("force").unwrap_err().to_string();
        assert!(
            e.starts_with("copy: argument 'force' must be a boolean"),
            "{e}"
        );
        let e = a.opt_mode("mode").unwrap_err().to_string();
        assert!(e.contains("octal string like '0644'"), "{e}");
        assert_eq!(a.opt_int("n").unwrap(), Some(12));
        assert_eq!(a.str_list("l").unwrap(), vec!["a", "b"]);
        assert!(
            a.str("missing")
                .unwrap_err()
                .to_string()
                .contains("is required")
        );
    }

    #[test]
    fn modes_octal_and_symbolic() {
        assert_eq!(Mode::parse("0644"), Some(Mode::Octal(0o644)));
        assert_eq!(Mode::parse("755"), Some(Mode::Octal(0o755)));
        assert_eq!(Mode::parse("u+x").unwrap().apply(0o644, false), 0o744);
        assert_eq!(Mode::parse("go-r").unwrap().apply(0o644, false), 0o600);
        assert_eq!(
            Mode::parse("u=rwx,g=rx,o=").unwrap().apply(0o600, false),
            0o750
        );
        assert_eq!(Mode::parse("a+X").unwrap().apply(0o600, true), 0o711);
        assert_eq!(Mode::parse("a+X").unwrap().apply(0o600, false), 0o600);
        assert_eq!(Mode::parse("+x").unwrap().apply(0o600, false), 0o711);
        assert!(Mode::parse("u+q").is_none());
        assert!(Mode::parse("").is_none());
    }

    #[test]
    fn free_form_options_are_split_out() {
        let (cmd, opts) =
            split_free_form("ls -l creates=/tmp/x chdir='/a b'", &["creates", "chdir"]);
        assert_eq!(cmd, "ls -l");
        assert_eq!(opts[0], ("creates".to_string(), "/tmp/x".to_string()));
        assert_eq!(opts[1], ("chdir".to_string(), "/a b".to_string()));
    }
}
