//! Python literals as `ast.literal_eval` reads them, for INI inventory values:
//! ints (`1_000`, `0x10`, `-3`), floats, `True`/`False`/`None`, quoted strings, and
//! lists, tuples and dicts of those. Anything else stays the original string, as in
//! Ansible (`yes`, `0644`, `FALSE` are strings).

use serde_json::{Map, Value};

pub fn parse_value(s: &str) -> Value {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
        depth: 0,
    };
    match p.value() {
        Some(v) if p.skip_ws_at_end() => v,
        _ => Value::String(s.to_string()),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    /// Nesting depth, bounded so hostile input cannot overflow the stack.
    depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn skip_ws_at_end(&mut self) -> bool {
        self.ws();
        self.i == self.s.len()
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self) -> Option<Value> {
        self.ws();
        self.depth += 1;
        if self.depth > 64 {
            return None;
        }
        let v = self.value_inner();
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self) -> Option<Value> {
        match self.peek()? {
            b'[' => self.seq(b']'),
            b'(' => self.seq(b')'),
            b'{' => self.dict(),
            b'\'' | b'"' => self.string().map(Value::String),
            _ => self.atom(),
        }
    }

    fn seq(&mut self, close: u8) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        loop {
            self.ws();
            if self.peek()? == close {
                self.i += 1;
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {}
                _ => return None,
            }
        }
    }

    fn dict(&mut self) -> Option<Value> {
        self.i += 1;
        let mut map = Map::new();
        loop {
            self.ws();
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(Value::Object(map));
            }
            let key = match self.value()? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            let v = self.value()?;
            map.insert(key, v);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {}
                _ => return None,
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        other => other,
                    });
                }
                c if c == quote => return String::from_utf8(out).ok(),
                c => out.push(c),
            }
        }
        None
    }

    fn atom(&mut self) -> Option<Value> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"+-._".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        let word = std::str::from_utf8(&self.s[start..self.i]).ok()?;
        match word {
            "True" => return Some(Value::Bool(true)),
            "False" => return Some(Value::Bool(false)),
            "None" => return Some(Value::Null),
            _ => {}
        }
        number(word)
    }
}

fn number(word: &str) -> Option<Value> {
    let (neg, body) = match word.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, word.strip_prefix('+').unwrap_or(word)),
    };
    if body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let clean = body.replace('_', "");
    let lower = clean.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if clean.bytes().all(|c| c.is_ascii_digit()) && !clean.is_empty() {
        // Python 3 rejects leading zeros (`0644`) in decimal literals.
        if clean.len() > 1 && clean.starts_with('0') && clean.bytes().any(|c| c != b'0') {
            return None;
        }
        clean.parse().ok()
    } else {
        None
    };
    if let Some(i) = int {
        return Some(Value::from(if neg { -i } else { i }));
    }
    let looks_float = clean.bytes().any(|c| c.is_ascii_digit())
        && clean
            .bytes()
            .all(|c| c.is_ascii_digit() || b".eE+-".contains(&c));
    if looks_float {
        let f: f64 = clean.parse().ok()?;
        return serde_json::Number::from_f64(if neg { -f } else { f }).map(Value::Number);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_literals() {
        for (src, want) in [
            ("5", json!(5)),
            ("-3", json!(-3)),
            ("1_000", json!(1000)),
            ("0x10", json!(16)),
            ("1.5", json!(1.5)),
            ("True", json!(true)),
            ("None", json!(null)),
            ("'x y'", json!("x y")),
            ("[1, 'a', (2, 3)]", json!([1, "a", [2, 3]])),
            ("{'k': [1, 2]}", json!({"k": [1, 2]})),
            ("0644", json!("0644")),
            ("yes", json!("yes")),
            ("FALSE", json!("FALSE")),
            ("{k:[1,2]}", json!("{k:[1,2]}")),
            ("10.0.0.1", json!("10.0.0.1")),
            ("", json!("")),
            ("[1,", json!("[1,")),
        ] {
            assert_eq!(parse_value(src), want, "{src}");
        }
    }

    #[test]
    fn deep_nesting_stays_a_string() {
        let deep = "[".repeat(100_000);
        assert_eq!(parse_value(&deep), json!(deep));
    }
}
