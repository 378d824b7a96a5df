//! A [`ModuleCtx`] over a real [`LocalConnection`], for module tests in temp directories.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{Module, ModuleCtx, ModuleError, ModuleResult};
use crate::connection::local::LocalConnection;
use crate::connection::{ConnectionKind, ConnectionSpec, HostKeyPolicy};
use crate::template::Templar;

pub struct Harness {
    pub spec: ConnectionSpec,
    pub conn: Arc<LocalConnection>,
    pub templar: Templar,
    pub vars: Map<String, Value>,
    pub search_paths: Vec<PathBuf>,
    pub check_mode: bool,
    pub diff: bool,
    pub env: Vec<(String, String)>,
    pub jobs: crate::modules::commands::async_job::AsyncJobs,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Harness {
            spec: ConnectionSpec {
                name: "localhost".into(),
                kind: ConnectionKind::Local,
                address: "127.0.0.1".into(),
                port: 22,
                user: "root".into(),
                identity_files: vec![],
                jump: None,
                host_key_policy: HostKeyPolicy::default(),
                known_hosts_files: vec![],
                connect_timeout: Duration::from_secs(5),
                connect_retries: 1,
            },
            conn: Arc::new(LocalConnection::new("localhost")),
            templar: Templar::new(),
            vars: Map::new(),
            search_paths: vec![dir.path().to_path_buf()],
            check_mode: false,
            diff: false,
            env: vec![],
            jobs: Default::default(),
            dir,
        }
    }

    /// A path inside the test's temp directory.
    pub fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    pub async fn run(&self, m: &dyn Module, args: Value) -> Result<ModuleResult, ModuleError> {
        let context = Templar::context(&self.vars);
        let ctx = ModuleCtx {
            host: "localhost",
            conn: self.conn.clone(),
            conn_spec: &self.spec,
            check_mode: self.check_mode,
            diff: self.diff,
            become_: None,
            env: self.env.clone(),
            vars: &self.vars,
            context: &context,
            templar: &self.templar,
            search_paths: &self.search_paths,
            async_job: None,
            jobs: &self.jobs,
        };
        let args = args.as_object().cloned().unwrap_or_default();
        m.run(&ctx, &args).await
    }

    /// Runs and unwraps, failing the test with the module's message on error.
    pub async fn ok(&self, m: &dyn Module, args: Value) -> ModuleResult {
        match self.run(m, args).await {
            Ok(r) => r,
            Err(e) => panic!("{} failed: {e}", m.name()),
        }
    }
}
