//! Host patterns in inventory files: ranges (`web[01:10]`, `db-[a:f]`, `n[0:10:2]`) and
//! the `host:port` short form, as Ansible's `expand_hostname_range` / `parse_address`.

/// Splits `host:port` (or `[v6]:port`); a bare IPv6 address has no port.
pub fn split_port(item: &str) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = item.strip_prefix('[')
        && let Some((addr, tail)) = rest.split_once(']')
        && addr.parse::<std::net::Ipv6Addr>().is_ok()
    {
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None => None,
        };
        return Ok((addr.to_string(), port));
    }
    if item.matches(':').count() > 1 && !item.contains('[') {
        return Ok((item.to_string(), None)); // IPv6 address
    }
    // The last ':' outside a range subscript separates the port.
    let mut depth = 0;
    let mut split = None;
    for (i, c) in item.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => split = Some(i),
            _ => {}
        }
    }
    match split {
        Some(i) => Ok((item[..i].to_string(), Some(parse_port(&item[i + 1..])?))),
        None => Ok((item.to_string(), None)),
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    p.parse::<u16>()
        .map_err(|_| format!("invalid port {p:?} (expected 1-65535)"))
}

/// A bound on one pattern's expansion, so a typo cannot exhaust memory.
const MAX_HOSTS: usize = 100_000;

/// Expands every `[a:b(:step)]` range in `pattern`; a name without ranges is returned as is.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let Some(close_rel) = pattern[open..].find(']') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = open + close_rel;
    let (head, range, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    if !range.contains(':') {
        return Ok(vec![pattern.to_string()]);
    }
    let bounds: Vec<&str> = range.split(':').collect();
    if bounds.len() != 2 && bounds.len() != 3 {
        return Err("host range must be begin:end or begin:end:step".into());
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err("host range must specify end value".into());
    }
    let step: usize = match bounds.get(2) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("host range step must be a positive integer, got {s:?}"))?,
        None => 1,
    };
    let width = if beg.len() > 1 && beg.starts_with('0') {
        if beg.len() != end.len() {
            return Err("host range must specify equal-length begin and end formats".into());
        }
        beg.len()
    } else {
        0
    };
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').collect();
    let items: Vec<String> = match (single_letter(beg), single_letter(end)) {
        (Some(b), Some(e)) => {
            let (bi, ei) = (
                letters.iter().position(|c| *c == b).unwrap_or(0),
                letters.iter().position(|c| *c == e).unwrap_or(0),
            );
            if bi > ei {
                return Err("host range must have begin <= end".into());
            }
            letters[bi..=ei]
                .iter()
                .step_by(step)
                .map(char::to_string)
                .collect()
        }
        _ => {
            let (b, e): (u64, u64) = match (beg.parse(), end.parse()) {
                (Ok(b), Ok(e)) => (b, e),
                _ => return Err(format!("invalid host range [{range}]")),
            };
            if e.saturating_sub(b) > MAX_HOSTS as u64 {
                return Err(format!(
                    "host range in {pattern:?} expands to more than {MAX_HOSTS} hosts"
                ));
            }
            (b..=e)
                .step_by(step)
                .map(|i| format!("{i:0width$}"))
                .collect()
        }
    };
    let mut out = Vec::new();
    for item in items {
        out.extend(expand(&format!("{head}{item}{tail}"))?);
        if out.len() > MAX_HOSTS {
            return Err(format!(
                "host range in {pattern:?} expands to more than {MAX_HOSTS} hosts"
            ));
        }
    }
    Ok(out)
}

fn single_letter(s: &str) -> Option<char> {
    let mut chars = s.chars();
    let c = chars.next()?;
    (chars.next().is_none() && c.is_ascii_alphabetic()).then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(expand("web[01:03]").unwrap(), ["web01", "web02", "web03"]);
        assert_eq!(
            expand("db-[a:c].x").unwrap(),
            ["db-a.x", "db-b.x", "db-c.x"]
        );
        assert_eq!(expand("s[0:10:5]").unwrap(), ["s0", "s5", "s10"]);
        assert_eq!(
            expand("n[1:2]-[a:b]").unwrap(),
            ["n1-a", "n1-b", "n2-a", "n2-b"]
        );
        assert_eq!(expand("plain").unwrap(), ["plain"]);
        assert_eq!(
            expand("h[1:]").unwrap_err(),
            "host range must specify end value"
        );
        assert!(expand("h[01:100]").unwrap_err().contains("equal-length"));
        assert!(expand("h[c:a]").unwrap_err().contains("begin <= end"));
        assert!(
            expand("h[0:99999][0:99999]")
                .unwrap_err()
                .contains("more than 100000 hosts")
        );
        for bad in ["h[a:9]", "h[-1:3]", "h[1:2:0]", "h[1:2:3:4]"] {
            assert!(expand(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(split_port("h:2222").unwrap(), ("h".into(), Some(2222)));
        assert_eq!(
            split_port("web[1:3]:22").unwrap(),
            ("web[1:3]".into(), Some(22))
        );
        assert_eq!(split_port("web[1:3]").unwrap(), ("web[1:3]".into(), None));
        assert_eq!(split_port("::1").unwrap(), ("::1".into(), None));
        assert_eq!(split_port("[::1]:22").unwrap(), ("::1".into(), Some(22)));
        assert!(split_port("h:x").is_err());
    }
}
