//! Ansible's Jinja source, rewritten into source minijinja reads the same way.
//!
//! Three differences between Jinja2-in-Ansible and minijinja live in the syntax, not in
//! any value, so they are handled on the source, token by token, before minijinja
//! compiles it (strings, comments and `{% raw %}` are never touched):
//! - Python's `%` operator formats strings (`'spark://%s:7077' % ip`); minijinja's `%`
//!   is arithmetic only. Every `a % b` becomes `_ansible_percent(a, b, tuple?)`, which
//!   formats when `a` is a string and takes the remainder otherwise (see `percent.rs`).
//!   The operands are found with Jinja's precedence: `%` binds like `*` and `/`, looser
//!   than filters, tests, attributes, calls and `**`, tighter than `+`, `-` and `~`.
//! - Ansible escapes backslashes in the string constants of `{{ }}` expressions, so a
//!   backslash the YAML already decoded reaches the string as written:
//!   `"{{ x | regex_replace('(a)', '\\1') }}"` replaces with the group, not with `\x01`.
//!   Not in `{% %}` statements, not in conditionals, not in template files, as in Ansible.
//! - Python's lexer takes any Unicode whitespace (a no-break space) between tokens.

use std::borrow::Cow;

/// The global function a `%` operator becomes.
pub const PERCENT_FN: &str = "_ansible_percent";

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ws(String),
    Str(String),
    Name(String),
    Num(String),
    Op(String),
    Open(char),
    Close(char),
}

impl Tok {
    fn text(&self) -> Cow<'_, str> {
        match self {
            Tok::Ws(s) | Tok::Str(s) | Tok::Name(s) | Tok::Num(s) | Tok::Op(s) => {
                Cow::Borrowed(s.as_str())
            }
            Tok::Open(c) | Tok::Close(c) => Cow::Owned(c.to_string()),
        }
    }
}

/// Rewrites a template (text with `{{ }}`, `{% %}` and `{# #}`). `escape_backslashes`
/// is Ansible's setting of that name: on for strings from YAML, off for template files.
pub fn rewrite_template(src: &str, escape_backslashes: bool) -> Cow<'_, str> {
    if !needs_rewrite(src) {
        return Cow::Borrowed(src);
    }
    let mut out = String::with_capacity(src.len() + 16);
    let mut rest = src;
    loop {
        let Some(start) = find_open(rest) else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        if rest.starts_with("{#") {
            let end = rest.find("#}").map(|e| e + 2).unwrap_or(rest.len());
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        if rest.starts_with("{%")
            && let Some(end) = raw_block_end(rest)
        {
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let var = rest.starts_with("{{");
        let mut open_len = 2;
        if rest[2..].starts_with(['-', '+']) {
            open_len = 3;
        }
        out.push_str(&rest[..open_len]);
        rest = &rest[open_len..];
        let (mut toks, used, closed) = lex(rest, Some(if var { "}}" } else { "%}" }));
        transform(&mut toks, var && escape_backslashes);
        toks.iter().for_each(|t| out.push_str(&t.text()));
        rest = &rest[used..];
        if !closed {
            break;
        }
    }
    Cow::Owned(out)
}

/// Rewrites a bare expression (`when:`, `{{ }}` without the braces).
pub fn rewrite_expression(expr: &str, escape_backslashes: bool) -> Cow<'_, str> {
    if !needs_rewrite(expr) {
        return Cow::Borrowed(expr);
    }
    let (mut toks, _, _) = lex(expr, None);
    transform(&mut toks, escape_backslashes);
    Cow::Owned(toks.iter().map(|t| t.text()).collect())
}

fn needs_rewrite(s: &str) -> bool {
    s.contains(['%', '\\']) || s.chars().any(|c| !c.is_ascii() && c.is_whitespace())
}

fn find_open(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(1)).find(|&i| b[i] == b'{' && matches!(b[i + 1], b'{' | b'%' | b'#'))
}

/// The end of `{% raw %}...{% endraw %}` when `s` starts with a raw tag.
fn raw_block_end(s: &str) -> Option<usize> {
    let tag = |s: &str, word: &str| -> Option<usize> {
        let inner = s.strip_prefix("{%")?;
        let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
        let trimmed = inner.trim_start();
        let after = trimmed.strip_prefix(word)?;
        let after = after.trim_start();
        let after = after.strip_prefix(['-', '+']).unwrap_or(after);
        after.starts_with("%}").then(|| s.len() - after.len() + 2)
    };
    tag(s, "raw")?;
    let mut pos = 0;
    while let Some(i) = s[pos..].find("{%") {
        let at = pos + i;
        if let Some(len) = tag(&s[at..], "endraw") {
            return Some(at + len);
        }
        pos = at + 2;
    }
    Some(s.len())
}

/// Tokens of an expression up to `end` (`}}` or `%}`) at bracket depth 0, or to the end
/// of the input. Returns the tokens, the bytes consumed (the end marker included) and
/// whether the end marker was found.
fn lex(s: &str, end: Option<&str>) -> (Vec<Tok>, usize, bool) {
    let mut toks = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let b = s.as_bytes();
    while i < s.len() {
        let rest = &s[i..];
        if depth == 0
            && let Some(end) = end
        {
            let marker = rest
                .strip_prefix(['-', '+'])
                .filter(|r| r.starts_with(end))
                .map(|_| end.len() + 1)
                .or_else(|| rest.starts_with(end).then_some(end.len()));
            if let Some(len) = marker {
                toks.push(Tok::Op(rest[..len].to_string()));
                return (toks, i + len, true);
            }
        }
        let c = rest.chars().next().expect("not at the end");
        if c.is_whitespace() {
            let len = rest
                .find(|ch: char| !ch.is_whitespace())
                .unwrap_or(rest.len());
            let ws: String = rest[..len]
                .chars()
                .map(|ch| if ch.is_ascii() { ch } else { ' ' })
                .collect();
            toks.push(Tok::Ws(ws));
            i += len;
        } else if c == '\'' || c == '"' {
            let mut j = i + 1;
            while j < s.len() && b[j] != c as u8 {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let stop = (j + 1).min(s.len());
            toks.push(Tok::Str(s[i..stop].to_string()));
            i = stop;
        } else if c.is_alphabetic() || c == '_' {
            let len = rest
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            toks.push(Tok::Name(rest[..len].to_string()));
            i += len;
        } else if c.is_ascii_digit() {
            let len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == '.'))
                .unwrap_or(rest.len());
            toks.push(Tok::Num(rest[..len].to_string()));
            i += len;
        } else if matches!(c, '(' | '[' | '{') {
            depth += 1;
            toks.push(Tok::Open(c));
            i += 1;
        } else if matches!(c, ')' | ']' | '}') {
            depth = depth.saturating_sub(1);
            toks.push(Tok::Close(c));
            i += 1;
        } else {
            let two = ["//", "**", "==", "!=", "<=", ">="]
                .into_iter()
                .find(|op| rest.starts_with(op));
            let op = two.map(str::to_string).unwrap_or_else(|| c.to_string());
            i += op.len();
            toks.push(Tok::Op(op));
        }
    }
    (toks, s.len(), false)
}

fn transform(toks: &mut Vec<Tok>, escape_backslashes: bool) {
    if escape_backslashes {
        for t in toks.iter_mut() {
            if let Tok::Str(s) = t {
                *s = escape_string(s);
            }
        }
    }
    while let Some(i) = toks.iter().position(|t| *t == Tok::Op("%".into())) {
        if !rewrite_percent(toks, i) {
            break;
        }
    }
}

/// `'a\1'` → `'a\\1'`: the constant's value is its text as written, as Ansible's lexer
/// makes it (backslashes doubled before Jinja decodes its escapes).
fn escape_string(lit: &str) -> String {
    let mut chars = lit.chars();
    let Some(q) = chars.next() else {
        return lit.to_string();
    };
    let body: String = chars.collect();
    let Some(inner) = body.strip_suffix(q) else {
        return lit.to_string();
    };
    let mut out = String::with_capacity(lit.len() + 4);
    out.push(q);
    let mut it = inner.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\\' {
            out.push_str("\\\\");
            // An escaped quote stays escaped, or it would end the string.
            if it.peek() == Some(&q) {
                out.push('\\');
                out.push(q);
                it.next();
            }
        } else {
            out.push(c);
        }
    }
    out.push(q);
    out
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "elif",
    "for",
    "set",
    "with",
    "recursive",
    "import",
    "from",
    "as",
    "include",
    "print",
    "do",
    "call",
    "filter",
    "macro",
    "block",
    "extends",
];

fn is_operand_name(t: &Tok) -> bool {
    matches!(t, Tok::Name(n) if !KEYWORDS.contains(&n.as_str()))
}

/// The index of the bracket matching the one at `i`, searching in direction `step`.
fn matching(toks: &[Tok], i: usize, forward: bool) -> Option<usize> {
    let mut depth = 0i32;
    let mut j = i;
    loop {
        match &toks[j] {
            Tok::Open(_) => depth += if forward { 1 } else { -1 },
            Tok::Close(_) => depth += if forward { -1 } else { 1 },
            _ => {}
        }
        if depth == 0 {
            return Some(j);
        }
        if forward {
            j += 1;
            if j >= toks.len() {
                return None;
            }
        } else {
            j = j.checked_sub(1)?;
        }
    }
}

fn prev_sig(toks: &[Tok], i: usize) -> Option<usize> {
    (0..i).rev().find(|&j| !matches!(toks[j], Tok::Ws(_)))
}

fn next_sig(toks: &[Tok], i: usize) -> Option<usize> {
    (i + 1..toks.len()).find(|&j| !matches!(toks[j], Tok::Ws(_)))
}

/// The first token of the left operand of the operator at `op`.
fn left_start(toks: &[Tok], op: usize) -> Option<usize> {
    let mut start = None;
    let mut j = prev_sig(toks, op);
    while let Some(k) = j {
        let include = match &toks[k] {
            Tok::Close(_) => {
                let open = matching(toks, k, false)?;
                start = Some(open);
                j = prev_sig(toks, open);
                continue;
            }
            Tok::Str(_) | Tok::Num(_) => true,
            t if is_operand_name(t) => true,
            Tok::Op(o) if matches!(o.as_str(), "." | "|" | "*" | "/" | "//" | "**") => true,
            Tok::Op(o) if o == "-" || o == "+" => {
                // Unary (binds tighter than `%`) when nothing operand-like precedes it.
                let before = prev_sig(toks, k);
                let unary = match before.map(|p| &toks[p]) {
                    None | Some(Tok::Open(_)) => true,
                    Some(Tok::Op(_)) => true,
                    Some(t @ Tok::Name(_)) => !is_operand_name(t),
                    _ => false,
                };
                if !unary {
                    break;
                }
                true
            }
            _ => false,
        };
        if !include {
            break;
        }
        start = Some(k);
        j = prev_sig(toks, k);
    }
    start
}

/// The last token of the right operand of the operator at `op`.
fn right_end(toks: &[Tok], op: usize) -> Option<usize> {
    let mut k = next_sig(toks, op)?;
    loop {
        // Unary signs, then a primary.
        while matches!(&toks[k], Tok::Op(o) if o == "-" || o == "+") {
            k = next_sig(toks, k)?;
        }
        let mut end = match &toks[k] {
            Tok::Open(_) => matching(toks, k, true)?,
            Tok::Str(_) => {
                let mut e = k;
                while let Some(n) = next_sig(toks, e).filter(|&n| matches!(toks[n], Tok::Str(_))) {
                    e = n;
                }
                e
            }
            Tok::Num(_) => k,
            t if is_operand_name(t) => k,
            _ => return None,
        };
        // Postfix: attributes, subscripts, calls, filters, tests.
        loop {
            let Some(n) = next_sig(toks, end) else {
                return Some(end);
            };
            match &toks[n] {
                Tok::Open('(') | Tok::Open('[') => end = matching(toks, n, true)?,
                Tok::Op(o) if o == "." || o == "|" => {
                    let name = next_sig(toks, n)?;
                    if !matches!(toks[name], Tok::Name(_) | Tok::Num(_)) {
                        return Some(end);
                    }
                    end = name;
                }
                Tok::Name(w) if w == "is" => {
                    let mut name = next_sig(toks, n)?;
                    if matches!(&toks[name], Tok::Name(w) if w == "not") {
                        name = next_sig(toks, name)?;
                    }
                    if !matches!(toks[name], Tok::Name(_)) {
                        return Some(end);
                    }
                    end = name;
                }
                Tok::Op(o) if o == "**" => break,
                _ => return Some(end),
            }
        }
        // `a % b ** c`: the power belongs to the right operand.
        k = next_sig(toks, next_sig(toks, end)?)?;
    }
}

/// Replaces `L % R` (the `%` at `op`) with a call of [`PERCENT_FN`]. False when the
/// operands cannot be found; minijinja then reports the expression as it is.
fn rewrite_percent(toks: &mut Vec<Tok>, op: usize) -> bool {
    let (Some(ls), Some(re)) = (left_start(toks, op), right_end(toks, op)) else {
        return false;
    };
    let rs = next_sig(toks, op).expect("right_end found an operand");
    // A literal tuple `(a, b)` is the argument list; anything else is one argument.
    let tuple = matches!(toks[rs], Tok::Open('('))
        && matching(toks, rs, true) == Some(re)
        && (re == rs + 1 || top_level_comma(&toks[rs + 1..re]));
    let mut call = vec![Tok::Name(PERCENT_FN.into()), Tok::Open('(')];
    call.extend(toks[ls..op].iter().cloned());
    call.push(Tok::Op(",".into()));
    call.extend(toks[op + 1..=re].iter().cloned());
    call.push(Tok::Op(",".into()));
    call.push(Tok::Name(if tuple { "true" } else { "false" }.into()));
    call.push(Tok::Close(')'));
    toks.splice(ls..=re, call);
    true
}

fn top_level_comma(toks: &[Tok]) -> bool {
    let mut depth = 0i32;
    toks.iter().any(|t| {
        match t {
            Tok::Open(_) => depth += 1,
            Tok::Close(_) => depth -= 1,
            Tok::Op(o) if o == "," && depth == 0 => return true,
            _ => {}
        }
        false
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(src: &str) -> String {
        rewrite_template(src, true).into_owned()
    }

    #[test]
    fn percent_becomes_a_call_with_jinja_precedence() {
        assert_eq!(
            t("{{ 'spark://%s:7077' % ip }}"),
            "{{ _ansible_percent('spark://%s:7077' , ip,false) }}"
        );
        assert_eq!(
            t("{{ '%s-%d' % (a, n) }}"),
            "{{ _ansible_percent('%s-%d' , (a, n),true) }}"
        );
        assert_eq!(
            t("{{ x ~ '%s' % y | upper ~ z }}"),
            "{{ x ~ _ansible_percent('%s' , y | upper,false) ~ z }}"
        );
        assert_eq!(
            t("{{ 2 * 3 % 4 + 1 }}"),
            "{{ _ansible_percent(2 * 3 , 4,false) + 1 }}"
        );
        assert_eq!(
            t("{{ a % b % c }}"),
            "{{ _ansible_percent(_ansible_percent(a , b,false) , c,false) }}"
        );
        assert_eq!(
            t("{% if loop.index % 2 == 0 %}x{% endif %}"),
            "{% if _ansible_percent(loop.index , 2,false) == 0 %}x{% endif %}"
        );
        assert_eq!(
            t("{{ f(x)['k'].y % -d.z ** 2 }}"),
            "{{ _ansible_percent(f(x)['k'].y , -d.z ** 2,false) }}"
        );
        // Not operators: in strings, comments, raw blocks, delimiters.
        for same in [
            "{{ '100%' }}",
            "{# 5 % 2 #}",
            "{% raw %}{{ 5 % 2 }}{% endraw %}",
            "{%- if x -%}50%{%- endif %}",
        ] {
            assert_eq!(t(same), same);
        }
    }

    #[test]
    fn backslashes_in_expression_strings_are_kept() {
        assert_eq!(t(r"{{ x | f('a\1') }}"), r"{{ x | f('a\\1') }}");
        assert_eq!(t(r"{{ 'it\'s' }}"), r"{{ 'it\\\'s' }}");
        // Statements and template files (escape_backslashes off) decode them.
        assert_eq!(t(r"{% set v = 'a\t' %}"), r"{% set v = 'a\t' %}");
        assert_eq!(rewrite_template(r"{{ 'a\t' }}", false), r"{{ 'a\t' }}");
        assert_eq!(rewrite_expression(r"x == 'a\t'", false), r"x == 'a\t'");
    }

    #[test]
    fn unicode_whitespace_is_whitespace() {
        assert_eq!(t("{{\u{a0}1 +\u{a0}2\u{a0}}}"), "{{ 1 + 2 }}");
        assert_eq!(t("a\u{a0}{{ 'b\u{a0}' }}"), "a\u{a0}{{ 'b\u{a0}' }}");
    }
}
