//! Turning a host's variables into a [`ConnectionSpec`].
//!
//! Read: `ansible_host`, `ansible_port` (22), `ansible_user` (CLI default, else the
//! current user), `ansible_ssh_private_key_file`, `ansible_connection` (`ssh`/`smart`/
//! `paramiko` → SSH, `local`), `ansible_ssh_timeout`/`ansible_timeout`,
//! `ansible_ssh_retries`, `ansible_host_key_checking` (false → off, true → strict) or our
//! `spark_openstack_host_key_policy` (`strict`/`accept-new`/`off`), and from
//! `ansible_ssh_common_args` then `ansible_ssh_extra_args`: `-o ProxyJump=`, `-J`,
//! `-o ProxyCommand="ssh -W %h:%p [user@]bastion"`, `-o StrictHostKeyChecking=`,
//! `-o UserKnownHostsFile=`, `-o ConnectTimeout=`. Our clearer `spark_openstack_jump_host`
//! (an inventory host name, or `[user@]host[:port]`) wins over the SSH options.
//! A jump written as an address defaults to the target's user and keys: on a cloud the
//! bastion and the cluster nodes share the image user and keypair.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::{Inventory, InventoryError, Vars};
use crate::connection::{ConnectionKind, ConnectionSpec, HostKeyPolicy, expand_home};

/// Command-line defaults under the inventory variables.
#[derive(Clone, Debug)]
pub struct ConnDefaults {
    pub user: Option<String>,
    pub private_key: Option<PathBuf>,
    pub host_key_policy: HostKeyPolicy,
    pub known_hosts_files: Vec<PathBuf>,
    pub timeout: Duration,
    pub retries: u32,
}

impl Default for ConnDefaults {
    fn default() -> Self {
        ConnDefaults {
            user: None,
            private_key: None,
            host_key_policy: HostKeyPolicy::default(),
            known_hosts_files: Vec::new(),
            timeout: Duration::from_secs(10),
            retries: 3,
        }
    }
}

/// Resolves `host`'s connection from its variables. A jump host given by name is taken
/// as an address; use [`Inventory::connection_spec`] to resolve inventory hosts.
pub fn connection_spec(
    host: &str,
    vars: &Vars,
    defaults: &ConnDefaults,
) -> Result<ConnectionSpec, InventoryError> {
    connection_spec_with(host, vars, defaults, &|_| Ok(None))
}

type Resolver<'a> = dyn Fn(&str) -> Result<Option<ConnectionSpec>, InventoryError> + 'a;

/// Like [`connection_spec`]; `resolve` turns a jump host name into its own spec when it
/// is an inventory host.
pub fn connection_spec_with(
    host: &str,
    vars: &Vars,
    defaults: &ConnDefaults,
    resolve: &Resolver<'_>,
) -> Result<ConnectionSpec, InventoryError> {
    let bad = |var: &str, v: &Value, want: &str| {
        InventoryError::Invalid(format!("host '{host}': {var} must be {want}, got {v}"))
    };
    let text = |name: &str| vars.get(name).and_then(scalar_text);
    let kind = match text("ansible_connection").as_deref() {
        None | Some("ssh" | "smart" | "paramiko") => ConnectionKind::Ssh,
        Some("local") => ConnectionKind::Local,
        Some(other) => {
            return Err(InventoryError::Invalid(format!(
                "host '{host}': ansible_connection '{other}' is not supported (use ssh or local)"
            )));
        }
    };
    let port = match vars.get("ansible_port").or(vars.get("ansible_ssh_port")) {
        None | Some(Value::Null) => 22,
        Some(v) => scalar_text(v)
            .and_then(|s| s.trim().parse::<u16>().ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("ansible_port", v, "a port number (1-65535)"))?,
    };
    let user = text("ansible_user")
        .or_else(|| text("ansible_ssh_user"))
        .or_else(|| defaults.user.clone())
        .unwrap_or_else(current_user);
    let mut identity_files = Vec::new();
    if let Some(k) =
        text("ansible_ssh_private_key_file").or_else(|| text("ansible_private_key_file"))
    {
        identity_files.push(expand_home(&k));
    }
    if let Some(k) = &defaults.private_key
        && !identity_files.contains(k)
    {
        identity_files.push(k.clone());
    }
    let mut policy = defaults.host_key_policy;
    if let Some(v) = vars
        .get("ansible_host_key_checking")
        .or(vars.get("ansible_ssh_host_key_checking"))
    {
        policy = if crate::template::filters::json_bool(v) {
            HostKeyPolicy::Strict
        } else {
            HostKeyPolicy::Off
        };
    }
    let mut timeout = defaults.timeout;
    for name in ["ansible_timeout", "ansible_ssh_timeout"] {
        if let Some(v) = vars.get(name) {
            let secs = scalar_text(v)
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| *s > 0.0)
                .ok_or_else(|| bad(name, v, "a number of seconds"))?;
            timeout = Duration::from_secs_f64(secs);
        }
    }
    let connect_retries = match vars.get("ansible_ssh_retries") {
        None => defaults.retries,
        Some(v) => scalar_text(v)
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| bad("ansible_ssh_retries", v, "a number"))?,
    };
    let mut known_hosts_files = defaults.known_hosts_files.clone();
    let mut jump_text: Option<String> = None;
    for name in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        let Some(args) = text(name) else { continue };
        let opts = ssh_options(&args)
            .map_err(|e| InventoryError::Invalid(format!("host '{host}': {name}: {e}")))?;
        for (key, value) in opts {
            match key.to_ascii_lowercase().as_str() {
                "proxyjump" => jump_text = Some(value),
                "proxycommand" => {
                    if let Some(j) = proxy_command_target(&value) {
                        jump_text = Some(j);
                    }
                }
                "stricthostkeychecking" => {
                    policy = match value.to_ascii_lowercase().as_str() {
                        "no" | "off" => HostKeyPolicy::Off,
                        "accept-new" => HostKeyPolicy::AcceptNew,
                        _ => HostKeyPolicy::Strict,
                    }
                }
                "userknownhostsfile" => {
                    for f in value.split_whitespace() {
                        if f != "/dev/null" {
                            known_hosts_files.push(expand_home(f));
                        } else {
                            policy = HostKeyPolicy::Off;
                        }
                    }
                }
                "connecttimeout" => {
                    if let Ok(s) = value.parse::<u64>() {
                        timeout = Duration::from_secs(s);
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(p) = text("spark_openstack_host_key_policy") {
        policy = match p.as_str() {
            "strict" => HostKeyPolicy::Strict,
            "accept-new" => HostKeyPolicy::AcceptNew,
            "off" => HostKeyPolicy::Off,
            other => {
                return Err(InventoryError::Invalid(format!(
                    "host '{host}': spark_openstack_host_key_policy must be strict, accept-new or off, got '{other}'"
                )));
            }
        };
    }
    let mut spec = ConnectionSpec {
        name: host.to_string(),
        kind,
        address: text("ansible_host")
            .or_else(|| text("ansible_ssh_host"))
            .unwrap_or_else(|| host.to_string()),
        port,
        user,
        identity_files,
        jump: None,
        host_key_policy: policy,
        known_hosts_files,
        connect_timeout: timeout,
        connect_retries,
    };
    // Our own variable is explicit, and wins; ProxyJump chains (`a,b`) go outermost first.
    let (jump_text, target_defaults) = match text("spark_openstack_jump_host") {
        Some(j) => (Some(j), true),
        None => (jump_text, false),
    };
    if let Some(chain) = jump_text.filter(|j| !j.eq_ignore_ascii_case("none")) {
        let mut outer: Option<Box<ConnectionSpec>> = None;
        for hop in chain.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            let mut hop_spec = match resolve(hop)? {
                Some(s) => s,
                None => jump_from_text(hop, &spec, defaults, target_defaults)?,
            };
            if hop_spec.jump.is_none() {
                hop_spec.jump = outer;
            }
            outer = Some(Box::new(hop_spec));
        }
        spec.jump = outer;
    }
    Ok(spec)
}

/// `[user@]host[:port]` as a jump host spec, inheriting the target's keys and policy.
fn jump_from_text(
    hop: &str,
    target: &ConnectionSpec,
    defaults: &ConnDefaults,
    user_from_target: bool,
) -> Result<ConnectionSpec, InventoryError> {
    let (user, rest) = match hop.rsplit_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, hop),
    };
    let (address, port) = super::hostrange::split_port(rest)
        .map_err(|e| InventoryError::Invalid(format!("jump host '{hop}': {e}")))?;
    let user = user.unwrap_or_else(|| {
        if user_from_target {
            target.user.clone()
        } else {
            defaults.user.clone().unwrap_or_else(current_user)
        }
    });
    Ok(ConnectionSpec {
        name: address.clone(),
        kind: ConnectionKind::Ssh,
        address,
        port: port.unwrap_or(22),
        user,
        identity_files: target.identity_files.clone(),
        jump: None,
        host_key_policy: target.host_key_policy,
        known_hosts_files: target.known_hosts_files.clone(),
        connect_timeout: target.connect_timeout,
        connect_retries: target.connect_retries,
    })
}

/// The `-o Key=Value` / `-o Key Value` / `-J hop` options in an ssh argument string.
fn ssh_options(args: &str) -> Result<Vec<(String, String)>, String> {
    let words = shell_words::split(args).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut it = words.into_iter();
    while let Some(w) = it.next() {
        let opt = if w == "-o" {
            it.next()
        } else if let Some(rest) = w.strip_prefix("-o") {
            Some(rest.to_string())
        } else if w == "-J" {
            it.next().map(|j| format!("ProxyJump={j}"))
        } else {
            None
        };
        if let Some(opt) = opt {
            let (k, v) = match opt.split_once('=') {
                Some((k, v)) => (k.trim(), v.trim()),
                None => opt.split_once(' ').unwrap_or((&opt, "")),
            };
            out.push((k.to_string(), v.trim().to_string()));
        }
    }
    Ok(out)
}

/// `ssh -W %h:%p [-p port] [user@]bastion` → `[user@]bastion[:port]`.
fn proxy_command_target(cmd: &str) -> Option<String> {
    let words = shell_words::split(cmd).ok()?;
    if !words.first()?.ends_with("ssh") || !words.iter().any(|w| w == "-W") {
        return None;
    }
    let mut port = None;
    let mut user = None;
    let mut dest = None;
    let mut it = words.iter().skip(1);
    while let Some(w) = it.next() {
        match w.as_str() {
            "-p" => port = it.next().cloned(),
            "-l" => user = it.next().cloned(),
            "-W" | "-i" | "-o" | "-F" => {
                it.next();
            }
            w if w.starts_with('-') => {}
            w => dest = Some(w.to_string()),
        }
    }
    let mut dest = dest?;
    if let Some(u) = user.filter(|_| !dest.contains('@')) {
        dest = format!("{u}@{dest}");
    }
    Some(match port {
        Some(p) => format!("{dest}:{p}"),
        None => dest,
    })
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The controller's login name (`$USER`, else the passwd entry of the current uid).
pub fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "root".into())
}

impl Inventory {
    /// The connection spec of `host`, with jump hosts that are inventory hosts resolved
    /// through their own variables, and `<inventory dir>/known_hosts` consulted.
    pub fn connection_spec(
        &self,
        host: &str,
        defaults: &ConnDefaults,
    ) -> Result<ConnectionSpec, InventoryError> {
        self.connection_spec_depth(host, defaults, 0)
    }

    fn connection_spec_depth(
        &self,
        host: &str,
        defaults: &ConnDefaults,
        depth: usize,
    ) -> Result<ConnectionSpec, InventoryError> {
        if depth > 8 {
            return Err(InventoryError::Invalid(format!(
                "host '{host}': jump hosts form a loop (more than 8 hops)"
            )));
        }
        let mut defaults = defaults.clone();
        if let Some(dir) = self.base_dir() {
            let kh = dir.join("known_hosts");
            if !defaults.known_hosts_files.contains(&kh) {
                defaults.known_hosts_files.push(kh);
            }
        }
        let vars = self.get_vars(host)?;
        let resolve = |name: &str| {
            if self.hosts.contains_key(name) {
                self.connection_spec_depth(name, &defaults, depth + 1)
                    .map(Some)
            } else {
                Ok(None)
            }
        };
        connection_spec_with(host, &vars, &defaults, &resolve)
    }
}
