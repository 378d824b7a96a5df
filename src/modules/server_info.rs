//! `openstack.cloud.server_info`: list servers, optionally of one cluster, as Ansible's
//! module of that name returns them (`servers`: a list of server dicts).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};

use super::Clouds;
use crate::cluster::model::Cluster;
use playbook_engine::modules::args::Args;
use playbook_engine::modules::{Module, ModuleCtx, ModuleError, ModuleResult};

#[derive(Default)]
pub struct ServerInfo {
    clouds: Arc<Clouds>,
}

impl ServerInfo {
    pub fn new(clouds: Arc<Clouds>) -> Self {
        ServerInfo { clouds }
    }
}

#[async_trait]
impl Module for ServerInfo {
    fn name(&self) -> &'static str {
        "openstack.cloud.server_info"
    }
    fn runs_on_controller(&self) -> bool {
        true
    }

    async fn run(
        &self,
        ctx: &ModuleCtx<'_>,
        args: &Map<String, Value>,
    ) -> Result<ModuleResult, ModuleError> {
        use crate::cluster::api::ClusterApi;
        let a = Args::new(self.name(), args, &["name", "cluster", "cloud"])?;
        let name = a.opt_str("name")?.filter(|s| !s.is_empty());
        let cluster = a.opt_str("cluster")?.filter(|s| !s.is_empty());
        let api = self
            .clouds
            .get(super::cloud_name(args, ctx.vars))
            .await
            .map_err(ModuleError::Failed)?;
        let all = api
            .servers()
            .await
            .map_err(|e| ModuleError::Failed(e.msg))?;
        let selected: Vec<_> = match &cluster {
            Some(c) => Cluster::collect(c, &all, &[], &[])
                .servers()
                .cloned()
                .collect(),
            None => all,
        };
        let servers: Vec<Value> = selected
            .iter()
            .filter(|s| name.as_deref().is_none_or(|n| s.name == n || s.id == n))
            .map(|s| {
                json!({
                    "id": s.id, "name": s.name, "status": s.status, "metadata": s.metadata,
                    "flavor": {"id": s.flavor_id}, "image": {"id": s.image_id},
                    "availability_zone": s.availability_zone, "key_name": s.key_name,
                    "security_groups": s.security_groups.iter().map(|g| json!({"name": g})).collect::<Vec<_>>(),
                    "private_v4": s.fixed_ip(), "public_v4": s.floating_ip(),
                    "access_ipv4": s.floating_ip().or(s.fixed_ip()),
                })
            })
            .collect();
        Ok(ModuleResult::ok().with("servers", servers))
    }
}
