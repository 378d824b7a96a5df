//! Cloud-like links: a bandwidth (and, where the kernel can, a latency) on every machine's
//! interfaces, so what is measured on devcloud (how long an archive takes to reach 32
//! slaves, how many bytes leave the master) is what a cloud's network would give, not what
//! a veth at memory speed gives.
//!
//! Each veth is shaped at both ends: inside the machine (what it sends) and on the host end
//! (what it receives, which is the host end's egress). Traffic between two machines thus
//! passes two shapers, one per machine, as it passes two virtual NICs on a cloud. The
//! bandwidth is a token bucket (`tbf`), present in every kernel; a latency needs `netem`,
//! which some kernels lack (the one CI runs on has neither netem nor fq): [`probe`] finds
//! out once, when devcloud starts, so a config asking for a latency fails there with the
//! reason instead of at the first boot.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::cmd::{run, run_tolerant};
use super::error::{NetnsError, Result};

/// A machine interface's bandwidth and one-way latency.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LinkShape {
    /// Bandwidth in each direction, in Mbit/s (a cloud VM typically gets 1000 to 10000).
    pub rate_mbit: f64,
    /// Added one-way delay between two machines, in milliseconds (0: none). Half of it is
    /// added by each machine's interface. Needs the kernel's `netem` queueing discipline.
    #[serde(default)]
    pub latency_ms: f64,
}

impl fmt::Display for LinkShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Mbit/s", self.rate_mbit)?;
        if self.latency_ms > 0.0 {
            write!(f, ", {} ms", self.latency_ms)?;
        }
        Ok(())
    }
}

impl LinkShape {
    /// Checks the numbers; the error names the setting (`netns.link.<key>`).
    pub fn validate(&self) -> std::result::Result<(), String> {
        if !(self.rate_mbit.is_finite() && self.rate_mbit >= 1.0 && self.rate_mbit <= 100_000.0) {
            return Err(format!(
                "netns.link.rate_mbit: {} must be a number of Mbit/s from 1 to 100000",
                self.rate_mbit
            ));
        }
        if !(self.latency_ms.is_finite() && self.latency_ms >= 0.0 && self.latency_ms <= 1000.0) {
            return Err(format!(
                "netns.link.latency_ms: {} must be a number of milliseconds from 0 to 1000",
                self.latency_ms
            ));
        }
        Ok(())
    }

    /// The `tc qdisc replace dev DEV root ...` arguments after the device, for one end.
    ///
    /// The bucket holds 10 ms of traffic (at least 64 KiB, so a 1 Mbit/s link still passes
    /// a full TSO segment), which keeps the rate smooth at the sub-millisecond timescale of
    /// TCP's ACK clock; packets may queue for 100 ms before being dropped, like a switch
    /// port's buffer, not a bufferbloated home router's.
    fn qdisc_args(&self) -> Vec<String> {
        let rate = format!("{}kbit", (self.rate_mbit * 1000.0).round() as u64);
        if self.latency_ms > 0.0 {
            // netem shapes the rate itself; half the one-way delay at each end.
            let delay = format!("{}us", (self.latency_ms * 500.0).round() as u64);
            return ["netem", "delay", &delay, "rate", &rate, "limit", "10000"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        let burst_bytes = ((self.rate_mbit * 1e6 / 8.0) * 0.010).max(65536.0) as u64;
        vec![
            "tbf".into(),
            "rate".into(),
            rate,
            "burst".into(),
            burst_bytes.to_string(),
            "latency".into(),
            "100ms".into(),
        ]
    }
}

/// Shapes both ends of a machine's veth: `inside` in namespace `ns`, `host_end` on the host.
pub fn shape(ns: &str, inside: &str, host_end: &str, link: &LinkShape) -> Result<()> {
    let q = link.qdisc_args();
    let q: Vec<&str> = q.iter().map(String::as_str).collect();
    let mut host = vec!["qdisc", "replace", "dev", host_end, "root"];
    host.extend_from_slice(&q);
    run("tc", &host)?;
    let mut guest = vec![
        "netns", "exec", ns, "tc", "qdisc", "replace", "dev", inside, "root",
    ];
    guest.extend_from_slice(&q);
    run("ip", &guest).map(|_| ())
}

/// Finds out whether this kernel can shape `link` (a latency needs `netem`), in a scratch
/// namespace `scratch` that is removed again. The error says what is missing and what to
/// change in the config.
pub fn probe(scratch: &str, link: &LinkShape) -> Result<()> {
    link.validate().map_err(NetnsError::Invalid)?;
    let _ = run_tolerant("ip", &["netns", "del", scratch], &["No such file"]);
    run("ip", &["netns", "add", scratch])?;
    let q = link.qdisc_args();
    let mut args = vec![
        "netns", "exec", scratch, "tc", "qdisc", "add", "dev", "lo", "root",
    ];
    args.extend(q.iter().map(String::as_str));
    let tried = run("ip", &args);
    let _ = run_tolerant("ip", &["netns", "del", scratch], &["No such file"]);
    match tried {
        Ok(_) => Ok(()),
        Err(NetnsError::Command { stderr, .. }) if stderr.contains("qdisc kind is unknown") => {
            let what = if link.latency_ms > 0.0 {
                "netns.link.latency_ms needs the kernel's netem queueing discipline \
                 (sch_netem), which this kernel lacks; set latency_ms: 0 to shape the \
                 bandwidth only"
            } else {
                "netns.link.rate_mbit needs the kernel's tbf queueing discipline (sch_tbf), \
                 which this kernel lacks; remove netns.link"
            };
            Err(NetnsError::Invalid(what.into()))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bandwidth_alone_is_a_token_bucket_holding_ten_milliseconds() {
        let l = LinkShape {
            rate_mbit: 1000.0,
            latency_ms: 0.0,
        };
        assert_eq!(
            l.qdisc_args(),
            [
                "tbf",
                "rate",
                "1000000kbit",
                "burst",
                "1250000",
                "latency",
                "100ms"
            ]
        );
        let slow = LinkShape {
            rate_mbit: 1.0,
            latency_ms: 0.0,
        };
        assert_eq!(slow.qdisc_args()[4], "65536", "at least one TSO segment");
    }

    #[test]
    fn a_latency_is_split_between_the_two_ends() {
        let l = LinkShape {
            rate_mbit: 1000.0,
            latency_ms: 0.5,
        };
        assert_eq!(
            l.qdisc_args(),
            [
                "netem",
                "delay",
                "250us",
                "rate",
                "1000000kbit",
                "limit",
                "10000"
            ]
        );
    }

    #[test]
    fn out_of_range_numbers_name_their_setting() {
        for (rate, lat, key) in [
            (0.0, 0.0, "rate_mbit"),
            (f64::NAN, 0.0, "rate_mbit"),
            (100.0, -1.0, "latency_ms"),
            (100.0, 5000.0, "latency_ms"),
        ] {
            let e = LinkShape {
                rate_mbit: rate,
                latency_ms: lat,
            }
            .validate()
            .unwrap_err();
            assert!(e.starts_with(&format!("netns.link.{key}")), "{e}");
        }
    }
}
