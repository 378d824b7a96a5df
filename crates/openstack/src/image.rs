//! Glance v2 images. Glance pages at 25 by default, so listing always follows `next`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::Result;
use super::{Cloud, Service, pick_one, q};

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Image {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub min_disk: Option<u64>,
    #[serde(default)]
    pub min_ram: Option<u64>,
    #[serde(default)]
    pub size: Option<u64>,
    /// Custom properties (`os_distro`, `os_admin_user`, ...) are top-level in Glance v2.
    #[serde(flatten)]
    pub properties: serde_json::Map<String, Value>,
}

impl Cloud {
    /// All images matching Glance filters (`[("status", "active")]`), every page.
    pub async fn list_images(&self, filters: &[(&str, &str)]) -> Result<Vec<Image>> {
        let query: Vec<String> = filters
            .iter()
            .map(|(k, v)| format!("{}={}", q(k), q(v)))
            .collect();
        let path = if query.is_empty() {
            "/images".to_string()
        } else {
            format!("/images?{}", query.join("&"))
        };
        self.list_all(Service::Image, &path, "images").await
    }

    pub async fn get_image(&self, id: &str) -> Result<Image> {
        self.get(Service::Image, &format!("/images/{}", q(id)))
            .await
    }

    /// An image by id or exact name; several images with that name is an error listing
    /// their ids (names are not unique in Glance).
    pub async fn find_image(&self, name_or_id: &str) -> Result<Image> {
        if uuid::Uuid::parse_str(name_or_id).is_ok() {
            match self.get_image(name_or_id).await {
                Ok(img) => return Ok(img),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        let hits = self.list_images(&[("name", name_or_id)]).await?;
        pick_one("image", name_or_id, hits, |i| &i.id)
    }
}
