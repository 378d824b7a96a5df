//! One conformance case: a directory holding `playbook.yml` (plus any roles, templates,
//! files or group_vars it needs) and an optional `case.yml` describing how to run it and
//! which differences from Ansible are deliberate.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `case.yml`. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    /// What the case checks, for the humans reading it.
    #[serde(default)]
    #[allow(dead_code)]
    pub about: String,
    /// An Ansible collection ansible-playbook needs for this case (`ansible.posix`).
    #[serde(default)]
    pub needs_collection: Option<String>,
    /// An environment variable that must name an existing file the case uses (a download
    /// `.ci/run` makes, such as `SPARK_OPENSTACK_SUPERVISOR_WHEEL`).
    #[serde(default)]
    pub needs_env: Option<String>,
    /// Extra command-line arguments given to both tools on every run (`--tags x`, `--check`).
    #[serde(default)]
    pub args: Vec<String>,
    /// Runs after the first two, each with its own arguments, on the same hosts and files.
    #[serde(default)]
    pub then: Vec<Vec<String>>,
    /// Deliberate differences from Ansible; each needs a reason.
    #[serde(default)]
    pub differences: Vec<Difference>,
}

/// A declared difference: one thing the comparison ignores, and why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Difference {
    /// Glob (relative to a host root, e.g. `*/.ansible/**`) of paths not compared.
    #[serde(default)]
    pub ignore_path: Option<String>,
    /// Do not compare the recaps (only use this when the counts cannot match by design).
    #[serde(default)]
    pub ignore_recap: bool,
    pub reason: String,
}

pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub file: CaseFile,
    pub ignore: globset::GlobSet,
}

impl Case {
    /// Every subdirectory with a `playbook.yml` whose name contains `filter`, by name.
    pub fn load_all(root: &Path, filter: &str) -> Result<Vec<Case>, String> {
        let entries =
            std::fs::read_dir(root).map_err(|e| format!("cannot list {}: {e}", root.display()))?;
        let mut cases = Vec::new();
        for entry in entries {
            let dir = entry.map_err(|e| e.to_string())?.path();
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if dir.join("playbook.yml").is_file() && name.contains(filter) {
                cases.push(Case::load(name, dir)?);
            }
        }
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(cases)
    }

    fn load(name: String, dir: PathBuf) -> Result<Case, String> {
        let path = dir.join("case.yml");
        let file: CaseFile = match std::fs::read_to_string(&path) {
            Ok(text) => {
                serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(_) => CaseFile::default(),
        };
        let mut globs = globset::GlobSetBuilder::new();
        for d in &file.differences {
            if d.reason.trim().is_empty() {
                return Err(format!("{}: a difference without a reason", path.display()));
            }
            if let Some(p) = &d.ignore_path {
                let g = globset::Glob::new(p)
                    .map_err(|e| format!("{}: bad ignore_path '{p}': {e}", path.display()))?;
                globs.add(g);
            }
        }
        let ignore = globs.build().map_err(|e| e.to_string())?;
        Ok(Case {
            name,
            dir,
            file,
            ignore,
        })
    }

    pub fn ignores_recap(&self) -> bool {
        self.file.differences.iter().any(|d| d.ignore_recap)
    }

    /// The argument lists of every run, in order: the first run, the idempotency re-run,
    /// then any `then:` runs.
    pub fn runs(&self) -> Vec<Vec<String>> {
        let mut runs = vec![self.file.args.clone(), self.file.args.clone()];
        runs.extend(self.file.then.iter().cloned());
        runs
    }
}
