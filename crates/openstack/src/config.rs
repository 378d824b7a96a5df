//! Cloud configuration, read exactly the way the `openstack` CLI reads it.
//!
//! Sources, as openstacksdk's `openstack/config/loader.py` defines them:
//! - `clouds.yaml` (or `.yml`/`.json`): the first file found in `$OS_CLIENT_CONFIG_FILE`,
//!   `./`, `~/.config/openstack/`, `/etc/xdg/openstack/`, `/etc/openstack/` wins; files
//!   are not merged.
//! - `secure.yaml` from the same directories (`$OS_CLIENT_SECURE_FILE` first) is deep-merged
//!   over it, so passwords can live apart from the shareable file.
//! - `clouds-public.yaml` vendor `profile:`s sit underneath a cloud's own settings.
//! - `OS_*` variables of an openrc.
//!
//! Which cloud: `--os-cloud`, else `OS_CLOUD`; else, if any `OS_*` credential variable is
//! set, the environment alone (openstacksdk's `envvars` cloud); else the only cloud of
//! clouds.yaml. When a named cloud is selected, the `OS_*` variables still override its
//! individual keys: the CLI registers every `--os-*` option with its `OS_*` variable as
//! default and osc-lib applies those options over the cloud (`get_one_cloud(argparse=..)`).
//! That is why a stale `OS_PASSWORD` in a shell breaks `openstack --os-cloud x`, and it
//! breaks us the same way, which is what users of the CLI expect.
//!
//! Loading takes the environment as a map so tests never depend on the process state.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use spanned_yaml::{self as yaml, Node, NodeKind};

use super::error::{CloudError, Result};

/// A string that never appears in logs or Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself; call only where it goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How to authenticate against Keystone v3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    Password,
    ApplicationCredential,
    Token,
}

/// The `auth:` section, with openrc names lower-cased (`OS_USERNAME` -> `username`).
#[derive(Clone, Debug, Default)]
pub struct AuthParams {
    pub auth_url: String,
    pub username: Option<String>,
    pub user_id: Option<String>,
    pub password: Option<Secret>,
    pub user_domain_name: Option<String>,
    pub user_domain_id: Option<String>,
    pub project_name: Option<String>,
    pub project_id: Option<String>,
    pub project_domain_name: Option<String>,
    pub project_domain_id: Option<String>,
    pub domain_name: Option<String>,
    pub domain_id: Option<String>,
    pub application_credential_id: Option<String>,
    pub application_credential_name: Option<String>,
    pub application_credential_secret: Option<Secret>,
    pub token: Option<Secret>,
}

/// One resolved cloud: everything needed to authenticate and pick endpoints.
#[derive(Clone, Debug)]
pub struct CloudConfig {
    /// The cloud's name in clouds.yaml, or `envvars`.
    pub name: String,
    /// Where it came from, for error messages ("/root/.config/openstack/clouds.yaml").
    pub source: String,
    pub auth_type: AuthType,
    pub auth: AuthParams,
    pub region_name: Option<String>,
    /// public, internal or admin.
    pub interface: String,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// false when `verify: false` / `insecure: true` / `OS_INSECURE`.
    pub verify: bool,
    /// `compute_api_version` pin ("2.79"), else negotiated.
    pub compute_api_version: Option<String>,
}

/// Where to look, so tests can point at temporary directories.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `--os-cloud`; wins over `OS_CLOUD`.
    pub cloud: Option<String>,
    /// Directories searched in order; default: cwd, ~/.config/openstack,
    /// /etc/xdg/openstack, /etc/openstack.
    pub search_dirs: Vec<PathBuf>,
}

impl LoadOptions {
    /// The directories the `openstack` CLI searches on Linux.
    pub fn standard(cloud: Option<String>) -> LoadOptions {
        let mut dirs = Vec::new();
        if let Ok(cwd) = std::env::current_dir() {
            dirs.push(cwd);
        }
        if let Some(cfg) = dirs::config_dir() {
            dirs.push(cfg.join("openstack"));
        }
        if let Some(home) = dirs::home_dir() {
            let p = home.join(".config/openstack");
            if !dirs.contains(&p) {
                dirs.push(p);
            }
        }
        // platformdirs' site_config_dir on Linux, then the classic location.
        dirs.push(PathBuf::from("/etc/xdg/openstack"));
        dirs.push(PathBuf::from("/etc/openstack"));
        LoadOptions {
            cloud,
            search_dirs: dirs,
        }
    }
}

/// The cloud the `openstack` CLI would use: standard search path, process environment.
/// `cloud` is the `--os-cloud` option.
pub fn load_default(cloud: Option<String>) -> Result<CloudConfig> {
    load(&LoadOptions::standard(cloud), &process_env())
}

/// The process environment as a map (the only place that reads it).
pub fn process_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("OS_"))
        .collect()
}

/// Variables that select a cloud rather than describe one (loader.py does not build an
/// `envvars` cloud from these alone).
const SELECTOR_VARS: &[&str] = &[
    "OS_CLOUD",
    "OS_REGION_NAME",
    "OS_CLIENT_CONFIG_FILE",
    "OS_CLIENT_SECURE_FILE",
    "OS_CLOUD_NAME",
];

/// A flat view of one cloud: key -> (value, where it was set).
type Settings = BTreeMap<String, (String, String)>;

/// Resolves the cloud to use from files and `env`.
pub fn load(opts: &LoadOptions, env: &BTreeMap<String, String>) -> Result<CloudConfig> {
    let clouds_file = find_file(opts, env.get("OS_CLIENT_CONFIG_FILE"), "clouds");
    let secure_file = find_file(opts, env.get("OS_CLIENT_SECURE_FILE"), "secure");
    let env_settings = env_settings(env);
    let selected = opts
        .cloud
        .clone()
        .or_else(|| env.get("OS_CLOUD").cloned())
        .filter(|s| !s.is_empty());

    let (mut settings, name, source) = match (&selected, &clouds_file) {
        (Some(name), Some(file)) => {
            let s = file_cloud(file, secure_file.as_deref(), name, opts)?;
            (s, name.clone(), file.display().to_string())
        }
        (Some(name), None) => {
            return Err(CloudError::Config(format!(
                "cloud '{name}' requested but no clouds.yaml was found (looked in {}); create one or unset OS_CLOUD",
                looked_in(opts, env)
            )));
        }
        (None, _) if !env_settings.is_empty() => (
            Settings::new(),
            env.get("OS_CLOUD_NAME")
                .cloned()
                .unwrap_or_else(|| "envvars".into()),
            "OS_* environment variables".to_string(),
        ),
        (None, Some(file)) => {
            let names = cloud_names(file)?;
            match names.as_slice() {
                [only] => {
                    let s = file_cloud(file, secure_file.as_deref(), only, opts)?;
                    (s, only.clone(), file.display().to_string())
                }
                _ => {
                    return Err(CloudError::Config(format!(
                        "{} defines clouds {}; choose one with --os-cloud or OS_CLOUD",
                        file.display(),
                        if names.is_empty() {
                            "(none)".to_string()
                        } else {
                            names.join(", ")
                        }
                    )));
                }
            }
        }
        (None, None) => {
            return Err(CloudError::Config(format!(
                "no OpenStack credentials found: no clouds.yaml (looked in {}) and no OS_AUTH_URL/OS_* variables; source your openrc or write a clouds.yaml",
                looked_in(opts, env)
            )));
        }
    };
    // OS_* variables override the selected cloud (see the module doc); OS_REGION_NAME is
    // a selector but overrides too.
    for (k, v) in env_settings {
        settings.insert(k, v);
    }
    if let Some(r) = env.get("OS_REGION_NAME").filter(|r| !r.is_empty()) {
        settings.insert("region_name".into(), (r.clone(), "OS_REGION_NAME".into()));
    }
    build(settings, name, source)
}

/// Files considered, for the "nothing found" error.
fn looked_in(opts: &LoadOptions, env: &BTreeMap<String, String>) -> String {
    let mut v: Vec<String> = env
        .get("OS_CLIENT_CONFIG_FILE")
        .map(|f| vec![format!("{f} (OS_CLIENT_CONFIG_FILE)")])
        .unwrap_or_default();
    v.extend(
        opts.search_dirs
            .iter()
            .map(|d| d.join("clouds.yaml").display().to_string()),
    );
    v.join(", ")
}

fn find_file(opts: &LoadOptions, explicit: Option<&String>, stem: &str) -> Option<PathBuf> {
    if let Some(f) = explicit.filter(|f| !f.is_empty()) {
        let p = PathBuf::from(f);
        if p.is_file() {
            return Some(p);
        }
    }
    opts.search_dirs.iter().find_map(|d| {
        ["yaml", "yml", "json"]
            .iter()
            .map(|ext| d.join(format!("{stem}.{ext}")))
            .find(|p| p.is_file())
    })
}

fn load_yaml(path: &Path) -> Result<Node> {
    yaml::load_file(path).map_err(|e| CloudError::Config(e.to_string()))
}

fn cloud_names(file: &Path) -> Result<Vec<String>> {
    let doc = load_yaml(file)?;
    Ok(doc
        .get("clouds")
        .and_then(Node::as_map)
        .map(|m| m.iter().map(|(k, _)| k.clone()).collect())
        .unwrap_or_default())
}

/// One cloud from clouds.yaml, with its profile underneath and secure.yaml on top.
fn file_cloud(
    file: &Path,
    secure: Option<&Path>,
    name: &str,
    opts: &LoadOptions,
) -> Result<Settings> {
    let doc = load_yaml(file)?;
    let clouds = doc.get("clouds").ok_or_else(|| {
        CloudError::Config(format!(
            "{}: no top-level 'clouds:' mapping",
            file.display()
        ))
    })?;
    let names: Vec<&str> = clouds
        .as_map()
        .map(|m| m.iter().map(|(k, _)| k.as_str()).collect())
        .unwrap_or_default();
    let mut cloud = clouds.get(name).cloned().ok_or_else(|| {
        CloudError::Config(format!(
            "cloud '{name}' not found in {}; clouds defined: {}",
            file.display(),
            if names.is_empty() {
                "(none)".to_string()
            } else {
                names.join(", ")
            }
        ))
    })?;
    if let Some(secure) = secure {
        let sdoc = load_yaml(secure)?;
        if let Some(over) = sdoc.get("clouds").and_then(|c| c.get(name)) {
            merge(&mut cloud, over);
        }
    }
    if let Some(profile) = cloud.get("profile").and_then(Node::as_str) {
        let profile = profile.to_string();
        let public = find_file(opts, None, "clouds-public").ok_or_else(|| {
            CloudError::Config(format!(
                "cloud '{name}' uses profile '{profile}' but no clouds-public.yaml was found"
            ))
        })?;
        let pdoc = load_yaml(&public)?;
        let mut base = pdoc
            .get("public-clouds")
            .and_then(|p| p.get(&profile))
            .cloned()
            .ok_or_else(|| {
                CloudError::Config(format!(
                    "profile '{profile}' of cloud '{name}' not found in {}",
                    public.display()
                ))
            })?;
        merge(&mut base, &cloud);
        cloud = base;
    }
    flatten(&cloud)
}

/// Deep merge, `over` wins (secure.yaml over clouds.yaml, cloud over profile).
fn merge(base: &mut Node, over: &Node) {
    match (&mut base.kind, &over.kind) {
        (NodeKind::Map(b), NodeKind::Map(o)) => {
            for (k, v) in o {
                match b.iter_mut().find(|(bk, _)| bk == k) {
                    Some((_, bv)) => merge(bv, v),
                    None => b.push((k.clone(), v.clone())),
                }
            }
        }
        _ => *base = over.clone(),
    }
}

/// Normalises a key the way openstacksdk does: dashes are underscores, legacy names renamed.
fn normalize_key(k: &str) -> String {
    let k = k.replace('-', "_").to_lowercase();
    match k.as_str() {
        "tenant_name" => "project_name".into(),
        "tenant_id" => "project_id".into(),
        "endpoint_type" => "interface".into(),
        "os_cloud" => "cloud".into(),
        _ => k,
    }
}

fn scalar(node: &Node) -> Result<String> {
    match &node.kind {
        NodeKind::Str(s) => Ok(s.clone()),
        NodeKind::Int(i) => Ok(i.to_string()),
        NodeKind::Float(f) => Ok(f.to_string()),
        NodeKind::Bool(b) => Ok(b.to_string()),
        NodeKind::Null => Ok(String::new()),
        _ => Err(CloudError::Config(format!(
            "{}: expected a single value, found {}",
            node.loc,
            node.type_name()
        ))),
    }
}

fn flatten(cloud: &Node) -> Result<Settings> {
    let map = cloud.as_map().ok_or_else(|| {
        CloudError::Config(format!(
            "{}: a cloud must be a mapping, found {}",
            cloud.loc,
            cloud.type_name()
        ))
    })?;
    let mut out = Settings::new();
    for (k, v) in map {
        match k.as_str() {
            "auth" => {
                let auth = v.as_map().ok_or_else(|| {
                    CloudError::Config(format!(
                        "{}: 'auth' must be a mapping, found {}",
                        v.loc,
                        v.type_name()
                    ))
                })?;
                for (ak, av) in auth {
                    out.insert(normalize_key(ak), (scalar(av)?, av.loc.to_string()));
                }
            }
            "regions" => {
                // The first region is the default one, as in openstacksdk.
                let first = v.as_seq().and_then(|s| s.first());
                if let Some(first) = first {
                    let r = match first.get("name") {
                        Some(n) => scalar(n)?,
                        None => scalar(first)?,
                    };
                    out.entry("region_name".into())
                        .or_insert((r, first.loc.to_string()));
                }
            }
            _ if matches!(v.kind, NodeKind::Map(_) | NodeKind::Seq(_)) => {}
            _ => {
                out.insert(normalize_key(k), (scalar(v)?, v.loc.to_string()));
            }
        }
    }
    Ok(out)
}

/// The cloud described by `OS_*` variables (loader.py `_get_os_environ`).
fn env_settings(env: &BTreeMap<String, String>) -> Settings {
    let describing = env.keys().any(|k| {
        k.starts_with("OS_")
            && !SELECTOR_VARS.contains(&k.as_str())
            && !k.starts_with("OS_TEST")
            && !k.starts_with("OS_STD")
            && !k.starts_with("OS_LOG")
    });
    if !describing {
        return Settings::new();
    }
    env.iter()
        .filter(|(k, v)| {
            k.starts_with("OS_")
                && !v.is_empty()
                && !SELECTOR_VARS.contains(&k.as_str())
                && !k.starts_with("OS_TEST")
                && !k.starts_with("OS_STD")
                && !k.starts_with("OS_LOG")
        })
        .map(|(k, v)| (normalize_key(&k[3..]), (v.clone(), k.clone())))
        .collect()
}

fn truthy(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on" | "y"
    )
}

/// Turns flat settings into a validated [`CloudConfig`].
fn build(mut s: Settings, name: String, source: String) -> Result<CloudConfig> {
    let mut take = |k: &str| s.remove(k).map(|(v, _)| v).filter(|v| !v.is_empty());
    let mut auth = AuthParams {
        auth_url: take("auth_url").unwrap_or_default(),
        username: take("username"),
        user_id: take("user_id"),
        password: take("password").map(Secret),
        user_domain_name: take("user_domain_name"),
        user_domain_id: take("user_domain_id"),
        project_name: take("project_name"),
        project_id: take("project_id"),
        project_domain_name: take("project_domain_name"),
        project_domain_id: take("project_domain_id"),
        domain_name: take("domain_name"),
        domain_id: take("domain_id"),
        application_credential_id: take("application_credential_id"),
        application_credential_name: take("application_credential_name"),
        application_credential_secret: take("application_credential_secret").map(Secret),
        token: take("token").map(Secret),
    };
    let explicit_type = take("auth_type");
    let region_name = take("region_name");
    let interface = take("interface").unwrap_or_else(|| "public".into());
    let cacert = take("cacert").map(PathBuf::from);
    let cert = take("cert").map(PathBuf::from);
    let key = take("key").map(PathBuf::from);
    let insecure = take("insecure").is_some_and(|v| truthy(&v));
    let verify = take("verify").is_none_or(|v| truthy(&v)) && !insecure;
    let compute_api_version = take("compute_api_version");

    let whence = format!("cloud '{name}' ({source})");
    let auth_type = match explicit_type.as_deref() {
        Some("password" | "v3password") => AuthType::Password,
        Some("v3applicationcredential" | "applicationcredential" | "application_credential") => {
            AuthType::ApplicationCredential
        }
        Some("token" | "v3token" | "admin_token") => AuthType::Token,
        Some(other) => {
            return Err(CloudError::Config(format!(
                "{whence}: auth_type '{other}' is not supported; use password, v3applicationcredential or v3token"
            )));
        }
        None if auth.application_credential_secret.is_some() => AuthType::ApplicationCredential,
        None if auth.token.is_some() && auth.password.is_none() => AuthType::Token,
        None => AuthType::Password,
    };
    // openstacksdk `_handle_domain_id`: a plain domain applies to user and project when a
    // project scope is requested.
    if auth.project_name.is_some() || auth.project_id.is_some() {
        if let Some(d) = auth.domain_id.take() {
            auth.user_domain_id.get_or_insert(d.clone());
            auth.project_domain_id.get_or_insert(d);
        }
        if let Some(d) = auth.domain_name.take() {
            auth.user_domain_name.get_or_insert(d.clone());
            auth.project_domain_name.get_or_insert(d);
        }
    }
    let missing = |what: &str, var: &str| {
        CloudError::Config(format!(
            "{whence}: {what} is missing; set it in clouds.yaml/secure.yaml or {var}"
        ))
    };
    if auth.auth_url.is_empty() {
        return Err(missing("auth.auth_url", "OS_AUTH_URL"));
    }
    match auth_type {
        AuthType::Password => {
            if auth.username.is_none() && auth.user_id.is_none() {
                return Err(missing("auth.username", "OS_USERNAME"));
            }
            if auth.password.is_none() {
                return Err(missing("auth.password", "OS_PASSWORD"));
            }
        }
        AuthType::ApplicationCredential => {
            if auth.application_credential_secret.is_none() {
                return Err(missing(
                    "auth.application_credential_secret",
                    "OS_APPLICATION_CREDENTIAL_SECRET",
                ));
            }
            if auth.application_credential_id.is_none()
                && (auth.application_credential_name.is_none()
                    || (auth.username.is_none() && auth.user_id.is_none()))
            {
                return Err(missing(
                    "auth.application_credential_id (or _name with username/user_id)",
                    "OS_APPLICATION_CREDENTIAL_ID",
                ));
            }
        }
        AuthType::Token => {
            if auth.token.is_none() {
                return Err(missing("auth.token", "OS_TOKEN"));
            }
        }
    }
    if !matches!(interface.as_str(), "public" | "internal" | "admin") {
        let norm = interface.trim_end_matches("URL").to_string();
        if !matches!(norm.as_str(), "public" | "internal" | "admin") {
            return Err(CloudError::Config(format!(
                "{whence}: interface '{interface}' is not one of public, internal, admin"
            )));
        }
    }
    Ok(CloudConfig {
        name,
        source,
        auth_type,
        auth,
        region_name,
        interface: interface.trim_end_matches("URL").to_string(),
        cacert,
        cert,
        key,
        verify,
        compute_api_version,
    })
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
