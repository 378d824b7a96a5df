//! Parsing the PLAY RECAP both tools print, into per-host counts.

use std::collections::BTreeMap;

/// ok, changed, unreachable, failed, skipped, rescued, ignored.
pub type Counts = [u64; 7];

const FIELDS: [&str; 7] = [
    "ok",
    "changed",
    "unreachable",
    "failed",
    "skipped",
    "rescued",
    "ignored",
];

/// The counts of every host in the last PLAY RECAP of `stdout` (empty when there is none,
/// e.g. after a syntax error).
pub fn parse(stdout: &str) -> BTreeMap<String, Counts> {
    let mut hosts = BTreeMap::new();
    let Some(start) = stdout.rfind("PLAY RECAP") else {
        return hosts;
    };
    for line in stdout[start..].lines().skip(1) {
        let Some((host, rest)) = line.split_once(" : ") else {
            continue;
        };
        let mut counts = [0u64; 7];
        let mut seen = 0;
        for field in rest.split_whitespace() {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            if let (Some(i), Ok(n)) = (FIELDS.iter().position(|f| *f == k), v.parse()) {
                counts[i] = n;
                seen += 1;
            }
        }
        if seen == FIELDS.len() {
            hosts.insert(host.trim().to_string(), counts);
        }
    }
    hosts
}

/// `ok=2 changed=1 ...` without the zero fields, for short messages.
pub fn show(c: &Counts) -> String {
    let parts: Vec<String> = FIELDS
        .iter()
        .zip(c)
        .filter(|(_, n)| **n != 0)
        .map(|(f, n)| format!("{f}={n}"))
        .collect();
    if parts.is_empty() {
        "(nothing)".into()
    } else {
        parts.join(" ")
    }
}

#[test]
fn parses_ansible_recap() {
    let out = "PLAY RECAP *****\nhost1                      : ok=2    changed=1    \
               unreachable=0    failed=0    skipped=3    rescued=0    ignored=1   \n";
    let r = parse(out);
    assert_eq!(r["host1"], [2, 1, 0, 0, 3, 0, 1]);
}
