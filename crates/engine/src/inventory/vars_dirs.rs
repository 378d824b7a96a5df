//! `group_vars/` and `host_vars/` files, as Ansible's `host_group_vars` plugin finds them:
//! `<dir>/<name>`, `<name>.yml`, `<name>.yaml`, `<name>.json` (all that exist, in that
//! order), or a directory `<dir>/<name>/` whose files load in lexical order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::{InventoryError, Vars};

/// Files read once per run: `get_vars` is called for every host, and the same
/// `group_vars/all` would otherwise be parsed a thousand times for a thousand hosts.
#[derive(Clone, Default)]
pub struct VarsCache(Arc<RwLock<HashMap<EntityKey, Arc<Vars>>>>);

/// A vars directory (`.../group_vars`) and the group or host name in it.
type EntityKey = (PathBuf, String);

impl std::fmt::Debug for VarsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VarsCache")
    }
}

impl VarsCache {
    /// [`load_entity`], remembered per (directory, name).
    pub fn load(&self, dir: &Path, name: &str) -> Result<Arc<Vars>, InventoryError> {
        let key = (dir.to_path_buf(), name.to_string());
        if let Some(v) = self.0.read().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(v);
        }
        let vars = Arc::new(load_entity(dir, name)?);
        if let Ok(mut m) = self.0.write() {
            m.insert(key, vars.clone());
        }
        Ok(vars)
    }
}

const EXTENSIONS: &[&str] = &["", ".yml", ".yaml", ".json"];

/// The merged variables for one group or host under `dir` (empty when none exist).
pub fn load_entity(dir: &Path, name: &str) -> Result<Vars, InventoryError> {
    let mut vars = Vars::new();
    if !dir.is_dir() {
        return Ok(vars);
    }
    for ext in EXTENSIONS {
        let p = dir.join(format!("{name}{ext}"));
        if p.is_file() {
            vars.extend(load_vars_file(&p)?);
        } else if ext.is_empty() && p.is_dir() {
            for f in dir_files(&p)? {
                vars.extend(load_vars_file(&f)?);
            }
        }
    }
    Ok(vars)
}

/// Files under `dir` (recursively) with a vars extension, in lexical order.
fn dir_files(dir: &Path) -> Result<Vec<PathBuf>, InventoryError> {
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'))
    {
        let entry = entry.map_err(|e| InventoryError::Io {
            path: dir.to_path_buf(),
            msg: e.to_string(),
        })?;
        let name = entry.file_name().to_string_lossy();
        let ok_ext =
            !name.contains('.') || [".yml", ".yaml", ".json"].iter().any(|e| name.ends_with(e));
        if entry.file_type().is_file() && ok_ext {
            out.push(entry.into_path());
        }
    }
    Ok(out)
}

fn load_vars_file(path: &Path) -> Result<Vars, InventoryError> {
    let node = crate::yaml::load_file(path).map_err(|e| InventoryError::Parse(e.to_string()))?;
    if node.is_null() {
        return Ok(Vars::new());
    }
    match node.to_json() {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(InventoryError::Parse(format!(
            "{}: a variables file must be a mapping, found {}",
            node.loc,
            node.type_name()
        ))),
    }
}
