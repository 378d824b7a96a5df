//! Python's `%` operator, which Jinja2 inherits: printf-style formatting when the left
//! operand is a string (`'%s-%d' % (a, n)`, `'%(k)s' % d`), the floored remainder for
//! numbers. `source.rs` turns every `a % b` into a call of [`percent`]. Errors are
//! Python's own messages ("not enough arguments for format string", ...).

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};

use super::pyjson::{py_repr, py_str};
use super::to_json;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// Python's type name of a value, for error messages.
fn type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Map => "dict",
        ValueKind::Seq | ValueKind::Iterable => "list",
        _ => "object",
    }
}

/// `lhs % rhs`; `tuple` says `rhs` was written as a tuple literal `(a, b)`, which is the
/// argument list (a list value is one argument, as in Python).
pub fn percent(lhs: &Value, rhs: &Value, tuple: bool) -> Result<Value, Error> {
    if lhs.is_undefined() || rhs.is_undefined() {
        // The caller names the variable (the template's static check, or the executor).
        return Err(Error::from(ErrorKind::UndefinedError));
    }
    if let Some(fmt) = lhs.as_str() {
        let args: Vec<Value> = if tuple {
            rhs.try_iter()?.collect()
        } else {
            vec![rhs.clone()]
        };
        let mapping = (!tuple && rhs.kind() == ValueKind::Map).then_some(rhs);
        return format(fmt, &args, mapping).map(Value::from);
    }
    remainder(lhs, rhs)
}

fn remainder(a: &Value, b: &Value) -> Result<Value, Error> {
    let numeric = |v: &Value| matches!(v.kind(), ValueKind::Number | ValueKind::Bool);
    if !numeric(a) || !numeric(b) {
        return Err(err(format!(
            "unsupported operand type(s) for %: '{}' and '{}'",
            type_name(a),
            type_name(b)
        )));
    }
    let int = |v: &Value| {
        v.as_i64()
            .filter(|_| v.is_integer() || v.kind() == ValueKind::Bool)
    };
    if let (Some(x), Some(y)) = (int(a), int(b)) {
        if y == 0 {
            return Err(err("integer modulo by zero"));
        }
        return Ok(Value::from(
            x.rem_euclid(y) + if y < 0 && x.rem_euclid(y) != 0 { y } else { 0 },
        ));
    }
    let f = |v: &Value| f64::try_from(v.clone()).map_err(|_| err("float expected"));
    let (x, y) = (f(a)?, f(b)?);
    if y == 0.0 {
        return Err(err("float modulo by zero"));
    }
    let r = x % y;
    Ok(Value::from(if r != 0.0 && (r < 0.0) != (y < 0.0) {
        r + y
    } else {
        r
    }))
}

/// One conversion specifier: `%(key)-08.3f`.
#[derive(Default)]
struct Spec {
    key: Option<String>,
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    alt: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Python's `fmt % args`.
pub fn format(fmt: &str, args: &[Value], mapping: Option<&Value>) -> Result<String, Error> {
    let mut out = String::new();
    let chars: Vec<char> = fmt.chars().collect();
    let mut next_arg = 0usize;
    let mut take = |spec_key: &Option<String>| -> Result<Value, Error> {
        if let Some(k) = spec_key {
            let m = mapping.ok_or_else(|| err("format requires a mapping"))?;
            let v = m.get_item(&Value::from(k.as_str()))?;
            if v.is_undefined() {
                return Err(err(format!("'{k}'")));
            }
            return Ok(v);
        }
        let v = args
            .get(next_arg)
            .cloned()
            .ok_or_else(|| err("not enough arguments for format string"))?;
        next_arg += 1;
        Ok(v)
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        if chars.get(i) == Some(&'(') {
            let mut depth = 1;
            let mut j = i + 1;
            while j < chars.len() && depth > 0 {
                match chars[j] {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                j += 1;
            }
            if depth > 0 {
                return Err(err("incomplete format key"));
            }
            spec.key = Some(chars[i + 1..j - 1].iter().collect());
            i = j;
        }
        while let Some(&f) = chars.get(i) {
            match f {
                '-' => spec.left = true,
                '0' => spec.zero = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '#' => spec.alt = true,
                _ => break,
            }
            i += 1;
        }
        let number = |i: &mut usize, take: &mut dyn FnMut() -> Result<Value, Error>| {
            if chars.get(*i) == Some(&'*') {
                *i += 1;
                let v = take()?;
                return v
                    .as_i64()
                    .map(|n| Some(n.max(0) as usize))
                    .ok_or_else(|| err("* wants int"));
            }
            let s = *i;
            while chars.get(*i).is_some_and(|c| c.is_ascii_digit()) {
                *i += 1;
            }
            Ok((*i > s).then(|| chars[s..*i].iter().collect::<String>().parse().unwrap_or(0)))
        };
        let no_key = None;
        spec.width = number(&mut i, &mut || take(&no_key))?;
        if chars.get(i) == Some(&'.') {
            i += 1;
            spec.precision = Some(number(&mut i, &mut || take(&no_key))?.unwrap_or(0));
        }
        while matches!(chars.get(i), Some('h' | 'l' | 'L')) {
            i += 1;
        }
        let Some(&conv) = chars.get(i) else {
            return Err(err("incomplete format"));
        };
        i += 1;
        if conv == '%' {
            out.push('%');
            continue;
        }
        if !"sradiuoxXeEfFgGc".contains(conv) {
            return Err(err(format!(
                "unsupported format character '{conv}' (0x{:x}) at index {}",
                conv as u32,
                i - 1
            )));
        }
        let v = take(&spec.key)?;
        out.push_str(&convert(conv, &spec, &v)?);
    }
    if mapping.is_none() && next_arg < args.len() {
        return Err(err("not all arguments converted during string formatting"));
    }
    Ok(out)
}

fn pad(spec: &Spec, body: String, numeric_zero: bool) -> String {
    let width = spec.width.unwrap_or(0);
    let len = body.chars().count();
    if len >= width {
        return body;
    }
    let fill = width - len;
    if spec.left {
        return body + &" ".repeat(fill);
    }
    if numeric_zero && spec.zero {
        // Zeros go after the sign and the `0x` prefix.
        let sign_len = body
            .find(|c: char| c.is_ascii_digit() || c == 'i' || c == 'n')
            .unwrap_or(0);
        let prefix_len = if body[sign_len..].starts_with("0x")
            || body[sign_len..].starts_with("0X")
            || body[sign_len..].starts_with("0o")
        {
            sign_len + 2
        } else {
            sign_len
        };
        return format!(
            "{}{}{}",
            &body[..prefix_len],
            "0".repeat(fill),
            &body[prefix_len..]
        );
    }
    " ".repeat(fill) + &body
}

fn sign(spec: &Spec, negative: bool) -> &'static str {
    match (negative, spec.plus, spec.space) {
        (true, _, _) => "-",
        (false, true, _) => "+",
        (false, false, true) => " ",
        _ => "",
    }
}

fn convert(conv: char, spec: &Spec, v: &Value) -> Result<String, Error> {
    match conv {
        's' | 'r' | 'a' => {
            let j = to_json(v);
            let mut s = if conv == 's' { py_str(&j) } else { py_repr(&j) };
            if let Some(p) = spec.precision {
                s = s.chars().take(p).collect();
            }
            Ok(pad(spec, s, false))
        }
        'd' | 'i' | 'u' => {
            let n = as_int(v, conv, true)?;
            let mut digits = n.unsigned_abs().to_string();
            if let Some(p) = spec.precision {
                digits = format!("{digits:0>p$}");
            }
            Ok(pad(spec, format!("{}{digits}", sign(spec, n < 0)), true))
        }
        'x' | 'X' | 'o' => {
            let n = as_int(v, conv, false)?;
            let a = n.unsigned_abs();
            let (digits, prefix) = match conv {
                'x' => (format!("{a:x}"), "0x"),
                'X' => (format!("{a:X}"), "0X"),
                _ => (format!("{a:o}"), "0o"),
            };
            let prefix = if spec.alt { prefix } else { "" };
            Ok(pad(
                spec,
                format!("{}{prefix}{digits}", sign(spec, n < 0)),
                true,
            ))
        }
        'c' => {
            let s = match v.as_str() {
                Some(s) if s.chars().count() == 1 => s.to_string(),
                Some(_) => {
                    return Err(err(
                        "%c requires an int or a unicode character, not a string of length other than 1",
                    ));
                }
                None => v
                    .as_i64()
                    .and_then(|n| u32::try_from(n).ok())
                    .and_then(char::from_u32)
                    .map(String::from)
                    .ok_or_else(|| {
                        err(format!(
                            "%c requires an int or a unicode character, not {}",
                            type_name(v)
                        ))
                    })?,
            };
            Ok(pad(spec, s, false))
        }
        _ => {
            let x = as_float(v)?;
            let p = spec.precision.unwrap_or(6);
            let body = if !x.is_finite() {
                let s = if x.is_nan() { "nan" } else { "inf" };
                if conv.is_ascii_uppercase() {
                    s.to_uppercase()
                } else {
                    s.to_string()
                }
            } else {
                match conv {
                    'f' | 'F' => format!("{:.p$}", x.abs()),
                    'e' | 'E' => exp(x.abs(), p, conv == 'E'),
                    _ => general(x.abs(), p, spec.alt, conv == 'G'),
                }
            };
            let body = if spec.alt && p == 0 && matches!(conv, 'f' | 'F') {
                body + "."
            } else {
                body
            };
            let negative = x.is_sign_negative();
            Ok(pad(
                spec,
                format!("{}{body}", sign(spec, negative && !x.is_nan())),
                x.is_finite(),
            ))
        }
    }
}

/// `1.234568e+04`, as C and Python print it (at least two exponent digits).
fn exp(x: f64, p: usize, upper: bool) -> String {
    let s = format!("{x:.p$e}");
    let (mantissa, e) = s.split_once('e').expect("Rust's {:e} has an exponent");
    let e: i32 = e.parse().unwrap_or(0);
    let sign = if e < 0 { '-' } else { '+' };
    let out = format!("{mantissa}e{sign}{:02}", e.abs());
    if upper { out.to_uppercase() } else { out }
}

/// `%g`: fixed or exponent notation, whichever C's rule picks, without trailing zeros.
fn general(x: f64, p: usize, alt: bool, upper: bool) -> String {
    let p = p.max(1);
    if x == 0.0 {
        return if alt {
            format!("{:.*}", p - 1, 0.0)
        } else {
            "0".into()
        };
    }
    let e_form = exp(x, p - 1, false);
    let e: i32 = e_form
        .rsplit_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0);
    let strip = |s: String| -> String {
        if alt || !s.contains('.') {
            return s;
        }
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let out = if e < -4 || e >= p as i32 {
        let (m, ex) = e_form.split_once('e').expect("exponent form");
        format!("{}e{ex}", strip(m.to_string()))
    } else {
        let decimals = (p as i32 - 1 - e).max(0) as usize;
        strip(format!("{x:.decimals$}"))
    };
    if upper { out.to_uppercase() } else { out }
}

fn as_int(v: &Value, conv: char, floats: bool) -> Result<i64, Error> {
    match v.kind() {
        ValueKind::Bool => Ok(i64::from(v.is_true())),
        ValueKind::Number if v.is_integer() => v.as_i64().ok_or_else(|| err("integer too large")),
        ValueKind::Number if floats => Ok(f64::try_from(v.clone()).map(|f| f.trunc() as i64)?),
        _ if floats => Err(err(format!(
            "%{conv} format: a real number is required, not {}",
            type_name(v)
        ))),
        _ => Err(err(format!(
            "%{conv} format: an integer is required, not {}",
            type_name(v)
        ))),
    }
}

fn as_float(v: &Value) -> Result<f64, Error> {
    match v.kind() {
        ValueKind::Bool => Ok(if v.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => Ok(f64::try_from(v.clone())?),
        _ => Err(err(format!("must be real number, not {}", type_name(v)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fmt: &str, args: Vec<Value>) -> String {
        format(fmt, &args, None).unwrap_or_else(|e| panic!("{fmt}: {e}"))
    }

    fn v(x: impl Into<Value>) -> Value {
        x.into()
    }

    #[test]
    fn formats_like_python() {
        assert_eq!(
            f("spark://%s:7077", vec![v("10.0.0.1")]),
            "spark://10.0.0.1:7077"
        );
        assert_eq!(f("%s-%d", vec![v("a"), v(3)]), "a-3");
        assert_eq!(f("%05.2f", vec![v(1.23456)]), "01.23");
        assert_eq!(
            f(
                "%r|%5s|%-4d|%x|%o|%e|%g|%%|%c",
                vec![
                    v("q"),
                    v("ab"),
                    v(7),
                    v(255),
                    v(8),
                    v(12345.678),
                    v(0.0001),
                    v(65)
                ]
            ),
            "'q'|   ab|7   |ff|10|1.234568e+04|0.0001|%|A"
        );
        assert_eq!(
            f("%.1f %s %s", vec![v(2), v(true), Value::from(())]),
            "2.0 True None"
        );
        assert_eq!(
            f("%+d %#x %#o %-6.2e|", vec![v(5), v(255), v(8), v(-1.5)]),
            "+5 0xff 0o10 -1.50e+00|"
        );
        assert_eq!(
            f(
                "%g %g %g %G",
                vec![v(100000.0), v(1e6), v(1.5e-5), v(2.5e20)]
            ),
            "100000 1e+06 1.5e-05 2.5E+20"
        );
        assert_eq!(
            f("%d %05d %.3d", vec![v(-7.9), v(-42), v(7)]),
            "-7 -0042 007"
        );
        assert_eq!(f("%s", vec![Value::from(vec![v(1), v("b")])]), "[1, 'b']");
        let d = super::super::filters::from_json(&serde_json::json!({"k": "v", "n": 3}));
        assert_eq!(
            format("%(k)s %(n)03d", std::slice::from_ref(&d), Some(&d)).unwrap(),
            "v 003"
        );
        assert_eq!(
            format("%s", std::slice::from_ref(&d), Some(&d)).unwrap(),
            "{'k': 'v', 'n': 3}"
        );
    }

    #[test]
    fn mismatched_arguments_fail_with_pythons_messages() {
        let e = |fmt: &str, args: Vec<Value>| {
            format(fmt, &args, None)
                .unwrap_err()
                .detail()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            e("%s %s", vec![Value::from("a")]),
            "not enough arguments for format string"
        );
        assert_eq!(
            e("%s", vec![Value::from(1), Value::from(2)]),
            "not all arguments converted during string formatting"
        );
        assert_eq!(
            e("%d", vec![Value::from("a")]),
            "%d format: a real number is required, not str"
        );
        assert_eq!(
            e("%x", vec![Value::from(1.5)]),
            "%x format: an integer is required, not float"
        );
        assert_eq!(
            e("%f", vec![Value::from("a")]),
            "must be real number, not str"
        );
        assert_eq!(
            e("%(k)s", vec![Value::from(1)]),
            "format requires a mapping"
        );
        assert_eq!(
            e("%y", vec![Value::from(1)]),
            "unsupported format character 'y' (0x79) at index 1"
        );
        assert_eq!(e("50%", vec![]), "incomplete format");
    }

    #[test]
    fn numbers_take_the_floored_remainder() {
        let r = |a: Value, b: Value| remainder(&a, &b).unwrap();
        assert_eq!(r(Value::from(7), Value::from(3)), Value::from(1));
        assert_eq!(r(Value::from(-7), Value::from(3)), Value::from(2));
        assert_eq!(r(Value::from(7), Value::from(-3)), Value::from(-2));
        assert_eq!(r(Value::from(7.5), Value::from(2)), Value::from(1.5));
        assert_eq!(r(Value::from(-7.5), Value::from(2)), Value::from(0.5));
        assert!(remainder(&Value::from(1), &Value::from(0)).is_err());
        assert_eq!(
            remainder(&Value::from(vec![1]), &Value::from(2))
                .unwrap_err()
                .detail(),
            Some("unsupported operand type(s) for %: 'list' and 'int'")
        );
    }
}
