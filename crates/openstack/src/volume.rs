//! Cinder v3 volumes. Attaching goes through Nova (`Cloud::attach_volume`).

use std::time::Instant;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{CloudError, Result};
use super::wait::Wait;
use super::{Cloud, Service};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Volume {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub attachments: Vec<Value>,
}

/// What `POST /volumes` needs.
#[derive(Clone, Debug, Default)]
pub struct VolumeCreate {
    pub name: String,
    pub size_gb: u64,
    pub availability_zone: Option<String>,
    pub volume_type: Option<String>,
}

impl Cloud {
    pub async fn create_volume(&self, spec: &VolumeCreate) -> Result<Volume> {
        let mut v = json!({"name": spec.name, "size": spec.size_gb});
        if let Some(az) = &spec.availability_zone {
            v["availability_zone"] = json!(az);
        }
        if let Some(t) = &spec.volume_type {
            v["volume_type"] = json!(t);
        }
        self.call(
            Service::Volume,
            Method::POST,
            "/volumes",
            Some(json!({"volume": v})),
        )
        .await?
        .json_at("volume")
    }

    /// Cinder's availability zones (often only `nova`, whatever Nova's are).
    pub async fn volume_availability_zones(&self) -> Result<Vec<String>> {
        self.service_zones(Service::Volume).await
    }

    pub async fn get_volume(&self, id: &str) -> Result<Volume> {
        self.get_at(Service::Volume, &format!("/volumes/{id}"), "volume")
            .await
    }

    pub async fn list_volumes(&self) -> Result<Vec<Volume>> {
        self.list_all(Service::Volume, "/volumes/detail", "volumes")
            .await
    }

    /// Deletes; an already deleted volume is not an error.
    pub async fn delete_volume(&self, id: &str) -> Result<()> {
        match self
            .call(
                Service::Volume,
                Method::DELETE,
                &format!("/volumes/{id}"),
                None,
            )
            .await
        {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// Polls until the volume has `status` ("available", "in-use"); `error*` fails.
    pub async fn wait_for_volume(&self, id: &str, status: &str, wait: Wait) -> Result<Volume> {
        let start = Instant::now();
        loop {
            let v = self.get_volume(id).await?;
            if v.status == status {
                return Ok(v);
            }
            if v.status.starts_with("error") {
                return Err(CloudError::Failed(format!(
                    "volume {id} went to status {}",
                    v.status
                )));
            }
            if start.elapsed() >= wait.timeout {
                return Err(CloudError::Timeout(format!(
                    "timed out after {}s waiting for volume {id} to be {status} (it is {})",
                    wait.timeout.as_secs(),
                    v.status
                )));
            }
            tokio::time::sleep(wait.interval).await;
        }
    }
}
