//! The bundled `playbooks/` and `roles/`, embedded in the binary so the tool runs from any
//! directory (the original script had to be started from its own directory).
//!
//! A run materialises them in a fresh temporary directory; a `playbooks/` or `roles/`
//! directory next to the user's config file replaces the embedded one as a whole, and
//! `init [DIR]` writes editable copies to start from.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

static PLAYBOOKS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/playbooks");
static ROLES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/roles");

/// Where a run finds its playbooks and roles.
pub struct Bundle {
    pub playbooks: PathBuf,
    pub roles: PathBuf,
    /// Keeps the materialised copy alive for the run.
    _tmp: Option<tempfile::TempDir>,
}

impl Bundle {
    /// The playbook file for `name` (`launch` → `playbooks/launch.yml`).
    pub fn playbook(&self, name: &str) -> PathBuf {
        self.playbooks.join(format!("{name}.yml"))
    }
}

/// The bundle for a run: user overrides from `config_dir`, embedded files for the rest.
pub fn prepare(config_dir: Option<&Path>) -> Result<Bundle, String> {
    let user = |sub: &str| config_dir.map(|d| d.join(sub)).filter(|p| p.is_dir());
    let (pb_user, roles_user) = (user("playbooks"), user("roles"));
    if let (Some(playbooks), Some(roles)) = (&pb_user, &roles_user) {
        return Ok(Bundle {
            playbooks: playbooks.clone(),
            roles: roles.clone(),
            _tmp: None,
        });
    }
    let tmp = tempfile::Builder::new()
        .prefix("spark-openstack-")
        .tempdir()
        .map_err(|e| {
            format!("cannot create a temporary directory for the bundled playbooks: {e}")
        })?;
    write_tree(tmp.path(), false)?;
    Ok(Bundle {
        playbooks: pb_user.unwrap_or_else(|| tmp.path().join("playbooks")),
        roles: roles_user.unwrap_or_else(|| tmp.path().join("roles")),
        _tmp: Some(tmp),
    })
}

/// `init [DIR]`: writes `DIR/playbooks` and `DIR/roles`; refuses to overwrite a file that
/// exists unless `force`. Returns the files written.
pub fn init(dir: &Path, force: bool) -> Result<Vec<PathBuf>, String> {
    write_tree(dir, !force)
}

fn write_tree(dir: &Path, refuse_existing: bool) -> Result<Vec<PathBuf>, String> {
    let mut written = Vec::new();
    for (sub, tree) in [("playbooks", &PLAYBOOKS), ("roles", &ROLES)] {
        let root = dir.join(sub);
        let mut files = Vec::new();
        collect(tree, &mut files);
        for f in files {
            let dest = root.join(f.path());
            if refuse_existing && dest.exists() {
                return Err(format!(
                    "{} exists; remove it or use --force to overwrite the bundled files",
                    dest.display()
                ));
            }
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("{}: cannot create directory: {e}", parent.display()))?;
            }
            std::fs::write(&dest, f.contents())
                .map_err(|e| format!("{}: cannot write: {e}", dest.display()))?;
            written.push(dest);
        }
        std::fs::create_dir_all(&root)
            .map_err(|e| format!("{}: cannot create directory: {e}", root.display()))?;
    }
    Ok(written)
}

fn collect<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    out.extend(dir.files());
    for d in dir.dirs() {
        collect(d, out);
    }
}

/// The names of the bundled playbooks, for help texts.
pub fn playbook_names() -> Vec<String> {
    PLAYBOOKS
        .files()
        .filter_map(|f| f.path().file_stem()?.to_str().map(String::from))
        .collect()
}
