//! `spark_openstack.object_storage`: what a cluster needs to use the cloud's object storage
//! through S3 (Hadoop's S3A): the S3 endpoint, its signing region, the user's EC2
//! credentials and the cloud's CA.
//!
//! ```yaml
//! - spark_openstack.object_storage:
//!     endpoint: https://s3.example.org   # optional: else the catalog's `s3` service,
//!                                        # else the host of its `object-store` service
//!     region: RegionOne                  # optional: else the endpoint's catalog region
//!   no_log: true                         # the result holds the secret key
//!   register: s3
//! ```
//! Returns `endpoint`, `region`, `access_key`, `secret_key`, `ca_cert` (the PEM text of
//! clouds.yaml's `cacert`, or null) and `created`. `changed` when the credential was
//! made: Keystone keeps EC2 credentials per user and project, and the first one of the
//! project is reused, so a cluster launched again (or a second cluster) does not pile up
//! credentials. They are never deleted by `destroy`: other clusters and tools may share
//! them (`openstack ec2 credentials delete ACCESS` removes one).
//!
//! Why EC2 credentials and not the user's password or token: Swift's s3api (through
//! Keystone's `s3token`) and Ceph RGW accept exactly these, they can be revoked on their
//! own, and a Keystone token would expire under a long-running cluster.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::Clouds;
use playbook_engine::modules::args::Args;
use playbook_engine::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

#[derive(Default)]
pub struct ObjectStorage {
    clouds: Arc<Clouds>,
}

impl ObjectStorage {
    pub fn new(clouds: Arc<Clouds>) -> Self {
        ObjectStorage { clouds }
    }
}

/// The S3 API's base URL from the catalog: the `s3` service as it is, else the scheme,
/// host and port of the `object-store` (Swift) service, where Swift's s3api and Ceph
/// RGW answer S3 requests (`/v1/AUTH_...` and RGW's `/swift/v1` are Swift's own paths).
pub fn s3_endpoint(s3: Option<&str>, object_store: Option<&str>) -> Option<String> {
    if let Some(u) = s3 {
        return Some(u.trim_end_matches('/').to_string());
    }
    let u = object_store?;
    let (scheme, rest) = u.split_once("://")?;
    let host = rest.split('/').next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

#[async_trait]
impl Module for ObjectStorage {
    fn name(&self) -> &'static str {
        "spark_openstack.object_storage"
    }
    fn runs_on_controller(&self) -> bool {
        true
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        let a = Args::new(self.name(), args, &["endpoint", "region", "cloud"])?;
        let given = a.opt_str("endpoint")?.filter(|s| !s.trim().is_empty());
        if let Some(e) = &given
            && !(e.starts_with("https://") || e.starts_with("http://"))
        {
            return Err(a.err(
                "endpoint",
                format!("'{e}' is not an http:// or https:// URL"),
            ));
        }
        let api = self
            .clouds
            .get(super::cloud_name(args, ctx.vars))
            .await
            .map_err(ModuleError::Failed)?;
        let cloud = &api.cloud;
        let failed = |doing: &str, e: openstack_client::CloudError| {
            ModuleError::Failed(format!("object storage: {doing}: {e}"))
        };
        let endpoint = match given {
            Some(e) => e.trim_end_matches('/').to_string(),
            None => {
                let s3 = cloud
                    .service_endpoint("s3")
                    .await
                    .map_err(|e| failed("reading the catalog", e))?;
                let swift = cloud
                    .service_endpoint("object-store")
                    .await
                    .map_err(|e| failed("reading the catalog", e))?;
                s3_endpoint(s3.as_deref(), swift.as_deref()).ok_or_else(|| {
                    ModuleError::Failed(
                        "object storage: the cloud's catalog has no 's3' or 'object-store' \
                         service; give the S3 API's URL with --s3-endpoint"
                            .into(),
                    )
                })?
            }
        };
        let region = match a.opt_str("region")?.filter(|s| !s.is_empty()) {
            Some(r) => r,
            None => cloud
                .service_region(&["s3", "object-store"])
                .await
                .map_err(|e| failed("reading the catalog", e))?
                .unwrap_or_else(|| "RegionOne".into()),
        };
        let (cred, created) = cloud
            .ensure_ec2_credential()
            .await
            .map_err(|e| failed("getting EC2 credentials", e))?;
        let ca_cert = match &cloud.config().cacert {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
                ModuleError::Failed(format!(
                    "object storage: cannot read the cloud's CA file {} (clouds.yaml cacert): {e}",
                    path.display()
                ))
            })?),
            None => None,
        };
        let mut r = ModuleResult::ok()
            .with("endpoint", json!(endpoint))
            .with("region", json!(region))
            .with("access_key", json!(cred.access))
            .with("secret_key", json!(cred.secret.expose()))
            .with("ca_cert", json!(ca_cert))
            .with("created", json!(created));
        r.changed = created;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::s3_endpoint;

    #[test]
    fn the_s3_service_wins_and_loses_its_trailing_slash() {
        assert_eq!(
            s3_endpoint(
                Some("https://s3.example.org:8080/"),
                Some("https://x/v1/AUTH_p")
            ),
            Some("https://s3.example.org:8080".into())
        );
    }

    #[test]
    fn swift_without_s3_gives_its_host() {
        assert_eq!(
            s3_endpoint(None, Some("https://swift.example.org:8080/v1/AUTH_abc")),
            Some("https://swift.example.org:8080".into())
        );
        assert_eq!(
            s3_endpoint(None, Some("http://10.0.0.1/swift/v1")),
            Some("http://10.0.0.1".into())
        );
    }

    #[test]
    fn nothing_to_go_on_gives_none() {
        assert_eq!(s3_endpoint(None, None), None);
        assert_eq!(s3_endpoint(None, Some("not a url")), None);
    }
}
