//! clouds.yaml / secure.yaml / OS_* precedence, with temp dirs and explicit env maps.

use super::*;
use std::fs;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn opts(dirs: &[&Path], cloud: Option<&str>) -> LoadOptions {
    LoadOptions {
        cloud: cloud.map(String::from),
        search_dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
    }
}

const CLOUDS: &str = "clouds:
  alpha:
    auth:
      auth_url: https://keystone.example.com:5000/v3
      username: demo
      project-name: demo
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
  beta:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://other.example.com/identity
      application_credential_id: abc
      application_credential_secret: s3cr3t
    verify: false
";

#[test]
fn secure_yaml_merges_password_over_clouds_yaml() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("clouds.yaml"), CLOUDS).unwrap();
    fs::write(
        d.path().join("secure.yaml"),
        "clouds:\n  alpha:\n    auth:\n      password: hunter2\n",
    )
    .unwrap();
    let c = load(&opts(&[d.path()], Some("alpha")), &env(&[])).unwrap();
    assert_eq!(c.name, "alpha");
    assert_eq!(c.auth_type, AuthType::Password);
    assert_eq!(c.auth.password.as_ref().unwrap().expose(), "hunter2");
    assert_eq!(c.auth.project_name.as_deref(), Some("demo"));
    assert_eq!(c.region_name.as_deref(), Some("RegionOne"));
    assert_eq!(c.interface, "public");
    assert!(c.verify);
    // Secrets never show in Debug output.
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn first_directory_wins_and_files_are_not_merged() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    fs::write(
        a.path().join("clouds.yml"),
        "clouds:\n  only:\n    auth: {auth_url: http://a/v3, token: t}\n",
    )
    .unwrap();
    fs::write(b.path().join("clouds.yaml"), CLOUDS).unwrap();
    let c = load(&opts(&[a.path(), b.path()], None), &env(&[])).unwrap();
    assert_eq!(c.name, "only");
    assert_eq!(c.auth_type, AuthType::Token);
    let e = load(&opts(&[a.path(), b.path()], Some("alpha")), &env(&[])).unwrap_err();
    assert!(
        e.to_string().contains("cloud 'alpha' not found in")
            && e.to_string().ends_with("clouds defined: only"),
        "{e}"
    );
}

#[test]
fn os_client_config_file_goes_first() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    fs::write(a.path().join("clouds.yaml"), CLOUDS).unwrap();
    let special = b.path().join("mine.yaml");
    fs::write(
        &special,
        "clouds:\n  gamma:\n    auth: {auth_url: http://g/v3, token: t}\n",
    )
    .unwrap();
    let e = env(&[
        ("OS_CLIENT_CONFIG_FILE", special.to_str().unwrap()),
        ("OS_CLOUD", "gamma"),
    ]);
    let c = load(&opts(&[a.path()], None), &e).unwrap();
    assert_eq!(c.auth.auth_url, "http://g/v3");
    assert_eq!(c.source, special.display().to_string());
}

#[test]
fn app_credential_cloud_and_verify_false() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("clouds.yaml"), CLOUDS).unwrap();
    let c = load(&opts(&[d.path()], None), &env(&[("OS_CLOUD", "beta")])).unwrap();
    assert_eq!(c.auth_type, AuthType::ApplicationCredential);
    assert_eq!(c.auth.application_credential_id.as_deref(), Some("abc"));
    assert!(!c.verify);
}

#[test]
fn os_cloud_flag_beats_os_cloud_env_and_env_overrides_keys() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("clouds.yaml"), CLOUDS).unwrap();
    let e = env(&[
        ("OS_CLOUD", "beta"),
        ("OS_PASSWORD", "from-env"),
        ("OS_REGION_NAME", "RegionTwo"),
        ("OS_INTERFACE", "internal"),
    ]);
    let c = load(&opts(&[d.path()], Some("alpha")), &e).unwrap();
    assert_eq!(c.name, "alpha");
    assert_eq!(c.auth.password.unwrap().expose(), "from-env");
    assert_eq!(c.region_name.as_deref(), Some("RegionTwo"));
    assert_eq!(c.interface, "internal");
}

#[test]
fn openrc_alone_makes_an_envvars_cloud() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("clouds.yaml"), CLOUDS).unwrap();
    let e = env(&[
        ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
        ("OS_USERNAME", "u"),
        ("OS_PASSWORD", "p"),
        ("OS_TENANT_NAME", "proj"),
        ("OS_DOMAIN_NAME", "Dom"),
        ("OS_ENDPOINT_TYPE", "internalURL"),
        ("OS_INSECURE", "true"),
        ("OS_CACERT", "/tmp/ca.pem"),
    ]);
    let c = load(&opts(&[d.path()], None), &e).unwrap();
    assert_eq!(c.name, "envvars");
    assert_eq!(c.auth.project_name.as_deref(), Some("proj"));
    // OS_DOMAIN_NAME with a project scope sets both domains.
    assert_eq!(c.auth.user_domain_name.as_deref(), Some("Dom"));
    assert_eq!(c.auth.project_domain_name.as_deref(), Some("Dom"));
    assert_eq!(c.interface, "internal");
    assert!(!c.verify);
    assert_eq!(c.cacert.as_deref(), Some(Path::new("/tmp/ca.pem")));
}

#[test]
fn selectors_alone_do_not_make_an_env_cloud() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("clouds.yaml"), CLOUDS).unwrap();
    let e = load(
        &opts(&[d.path()], None),
        &env(&[("OS_REGION_NAME", "RegionOne")]),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("defines clouds alpha, beta; choose one"),
        "{e}"
    );
}

#[test]
fn nothing_configured_says_where_it_looked() {
    let d = tempfile::tempdir().unwrap();
    let e = load(&opts(&[d.path()], None), &env(&[])).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("no OpenStack credentials found"), "{msg}");
    assert!(
        msg.contains(&d.path().join("clouds.yaml").display().to_string()),
        "{msg}"
    );
    let e = load(&opts(&[d.path()], Some("x")), &env(&[])).unwrap_err();
    assert!(
        e.to_string()
            .contains("cloud 'x' requested but no clouds.yaml")
    );
}

#[test]
fn missing_password_names_the_fix() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("clouds.yaml"), CLOUDS).unwrap();
    let e = load(&opts(&[d.path()], Some("alpha")), &env(&[])).unwrap_err();
    assert!(
        e.to_string().contains("cloud 'alpha' (")
            && e.to_string().contains(
                "auth.password is missing; set it in clouds.yaml/secure.yaml or OS_PASSWORD"
            ),
        "{e}"
    );
}

#[test]
fn yaml_errors_point_at_file_line_col() {
    let d = tempfile::tempdir().unwrap();
    fs::write(
        d.path().join("clouds.yaml"),
        "clouds:\n  a:\n    auth:\n      auth_url: [1, 2]\n",
    )
    .unwrap();
    let e = load(&opts(&[d.path()], Some("a")), &env(&[])).unwrap_err();
    assert!(e.to_string().contains("clouds.yaml:4:"), "{e}");
}

#[test]
fn profile_from_clouds_public_sits_underneath() {
    let d = tempfile::tempdir().unwrap();
    fs::write(
        d.path().join("clouds-public.yaml"),
        "public-clouds:\n  vendor:\n    auth:\n      auth_url: https://vendor/v3\n    region_name: V1\n",
    )
    .unwrap();
    fs::write(
        d.path().join("clouds.yaml"),
        "clouds:\n  mine:\n    profile: vendor\n    auth: {username: u, password: p}\n    region_name: V2\n",
    )
    .unwrap();
    let c = load(&opts(&[d.path()], None), &env(&[])).unwrap();
    assert_eq!(c.auth.auth_url, "https://vendor/v3");
    assert_eq!(c.region_name.as_deref(), Some("V2"));
}

#[test]
fn unsupported_auth_type_is_one_sentence() {
    let e = load(
        &opts(&[], None),
        &env(&[("OS_AUTH_URL", "http://x"), ("OS_AUTH_TYPE", "v3oidc")]),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("auth_type 'v3oidc' is not supported")
    );
}
