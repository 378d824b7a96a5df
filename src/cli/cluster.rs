//! The cluster commands of the original `spark_openstack.py` (launch, destroy, stop, start,
//! login, get-master) and the ones added since. This file only parses options; the work is
//! in `crate::commands::ctx` and `crate::commands::ssh`. Options the config file may
//! also set are `Option`s here, so "not given" falls through to the file; the options that
//! shape a cluster come from the table in `crate::commands::options`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::Exit;
use crate::commands::Failure;
use crate::commands::config::{self, Settings};
use crate::commands::ctx::{self as cmds, CmdResult, Ctx, Show};
use crate::commands::options::{GrowShape, Shape};
use crate::commands::{connect, ssh, tunnel};
use playbook_engine::connection::expand_home;

/// Options every command accepts.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// Config file [default: ./spark-openstack.yaml, else ~/.config/spark-openstack/config.yaml].
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// SSH private key for the cluster's key pair.
    #[arg(short = 'i', long, value_name = "FILE", global = true)]
    pub identity_file: Option<String>,
    /// Login user on the nodes [default: recorded at launch, else ubuntu].
    #[arg(long, value_name = "USER", global = true)]
    pub ssh_user: Option<String>,
    /// Playbook variables for the roles (`k=v`, JSON/YAML, or `@file`), as in `play -e`;
    /// they win over the config file's `vars`. Repeatable.
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS", global = true)]
    pub extra_vars: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Launch a cluster, or converge an existing one (idempotent).
    Launch {
        cluster: String,
        #[command(flatten)]
        shape: Box<Shape>,
        #[command(flatten)]
        common: Common,
        /// Resume a launch that failed or was interrupted (the cluster must exist).
        #[arg(long)]
        resume: bool,
        /// Create the cloud resources only; do not connect to the nodes.
        #[arg(long)]
        cloud_only: bool,
    },
    /// Delete a cluster: servers, its floating IPs, volumes and security groups.
    Destroy {
        cluster: String,
        #[arg(long)]
        keep_volumes: bool,
        #[arg(short = 'y', long)]
        yes: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Power a cluster off (root disks and volumes are kept).
    Stop {
        cluster: String,
        #[arg(short = 'y', long)]
        yes: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Power a stopped cluster on and reconfigure it.
    Start {
        cluster: String,
        #[arg(long)]
        cloud_only: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Open a shell on the master (OpenSSH); a trailing command runs instead of a shell.
    Login {
        cluster: String,
        /// Local port forwarding, as ssh -L.
        #[arg(short = 'L', value_name = "[ADDR:]PORT:HOST:HOSTPORT")]
        local: Vec<String>,
        /// SOCKS proxy, as ssh -D.
        #[arg(short = 'D', value_name = "[ADDR:]PORT")]
        dynamic: Option<String>,
        #[command(flatten)]
        common: Common,
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Print the master's address.
    GetMaster {
        cluster: String,
        #[command(flatten)]
        common: Common,
    },
    /// Show a cluster (or all clusters): state, nodes, addresses, web UIs.
    Describe {
        cluster: Option<String>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Add N slaves like the existing ones.
    AddSlaves {
        cluster: String,
        count: u32,
        #[arg(long)]
        cloud_only: bool,
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        shape: GrowShape,
    },
    /// Remove the N highest-numbered slaves, their HDFS DataNodes decommissioned first.
    RemoveSlaves {
        cluster: String,
        count: u32,
        #[arg(long)]
        keep_volumes: bool,
        /// Only delete the servers: no SSH, so no HDFS decommissioning (for nodes that were
        /// never configured or cannot be reached).
        #[arg(long)]
        cloud_only: bool,
        #[arg(short = 'y', long)]
        yes: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run a shell command on every node (or the master only).
    RunCommand {
        cluster: String,
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
        #[arg(long)]
        master_only: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Push a local directory to the same path on every node (or to --to).
    CopyDir {
        cluster: String,
        dir: PathBuf,
        /// Path on the nodes [default: the same as DIR]; relative to the login home.
        #[arg(long, value_name = "PATH")]
        to: Option<String>,
        #[arg(long)]
        master_only: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Run a Spark application (.py or .jar) on the cluster from the master, streaming its
    /// output; the exit code is spark-submit's.
    Submit {
        cluster: String,
        /// The application on this machine; it is copied to the master first.
        app: PathBuf,
        /// Arguments for the application.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
        /// Main class of a .jar application.
        #[arg(long)]
        class: Option<String>,
        /// Spark properties for this application (`--conf k=v`), repeatable.
        #[arg(long = "conf", value_name = "K=V")]
        conf: Vec<String>,
        /// Spark's directory on the master, relative to the login home.
        #[arg(long, default_value = "spark")]
        spark_home: String,
        #[command(flatten)]
        common: Common,
    },
    /// Forward the master's web UIs and Spark Connect to local ports over one SSH
    /// connection, until Ctrl-C.
    ///
    /// The cluster's security groups open only SSH to the world, so the Spark master UI,
    /// the HDFS NameNode UIs, Ganglia, the application UI and Spark Connect are reached
    /// through the master's SSH connection. Only the services
    /// that answer on the master are listed, one line each (`NAME  URL`); `-v` names the
    /// ones skipped.
    Tunnel {
        cluster: String,
        /// Local port for one service instead of a free one (`spark_master=28080`);
        /// repeatable.
        #[arg(long = "port", value_name = "NAME=PORT")]
        ports: Vec<String>,
        /// Print the mapping as one JSON object line, for scripts.
        #[arg(long)]
        json: bool,
        /// Show Spark Connect's token in its URL. Without it the line reads the token
        /// from the controller's owner-only copy: `sc://localhost:PORT/;token=$(cat FILE)`.
        #[arg(long)]
        show_token: bool,
        /// Also write Spark Connect's token to FILE (owner-only), and read it from there
        /// in the printed URL.
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// Print the Spark Connect URL of a cluster, token included, for a `tunnel` whose
    /// Spark Connect listens on PORT:
    ///
    ///   spark-openstack tunnel demo --port spark_connect=15002 &
    ///   pyspark --remote "$(spark-openstack connect-url demo)"
    ///
    /// The token is read from the master (the spark role makes one per cluster) and kept
    /// on the controller with owner-only permissions.
    #[command(name = "connect-url")]
    ConnectUrl {
        cluster: String,
        /// The local port of the tunnel's spark_connect.
        #[arg(long, default_value_t = 15002)]
        port: u16,
        #[command(flatten)]
        common: Common,
    },
    /// Print a cluster as Ansible dynamic-inventory JSON (`--list`).
    #[command(name = "cluster-inventory")]
    ClusterInventory {
        cluster: String,
        /// Accepted for ansible-inventory compatibility; the list is always printed.
        #[arg(long)]
        list: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Write editable copies of the bundled playbooks/ and roles/ to DIR.
    Init {
        #[arg(default_value = ".")]
        dir: PathBuf,
        #[arg(long)]
        force: bool,
    },
}

fn layer(s: &mut Settings, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        s.set(key, v, format!("--{key}"));
    }
}

fn context(
    cluster: Option<&str>,
    common: &Common,
    shape: Option<&Shape>,
    os_cloud: Option<String>,
    verbose: u8,
) -> Result<Ctx, (Failure, String)> {
    if let Some(c) = cluster {
        crate::cluster::model::validate_name(c).map_err(|e| (Failure::BadOptions, e))?;
    }
    let mut settings =
        config::load(common.config.as_deref(), cluster).map_err(|e| (Failure::BadOptions, e))?;
    layer(
        &mut settings,
        "identity-file",
        common.identity_file.clone().map(Value::from),
    );
    layer(
        &mut settings,
        "ssh-user",
        common.ssh_user.clone().map(Value::from),
    );
    if let Some(sh) = shape {
        sh.layer(&mut settings)
            .map_err(|e| (Failure::BadOptions, e))?;
    }
    let os_cloud = os_cloud.or(settings
        .str("os-cloud")
        .map_err(|e| (Failure::BadOptions, e))?);
    let extra_vars = playbook_engine::executor::vars::parse_all_extra_vars(&common.extra_vars)
        .map_err(|msg| (Failure::BadOptions, msg))?;
    Ok(Ctx {
        cluster: cluster.unwrap_or_default().to_string(),
        os_cloud,
        verbose,
        settings,
        extra_vars,
    })
}

pub fn run(cmd: ClusterCommand, os_cloud: Option<String>, verbose: u8) -> Exit {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return super::fail(Exit::Error, format!("cannot start the async runtime: {e}"));
        }
    };
    match rt.block_on(dispatch(cmd, os_cloud, verbose)) {
        Ok(()) => Exit::Ok,
        Err((failure, msg)) => super::fail(failure.into(), msg),
    }
}

async fn dispatch(cmd: ClusterCommand, os_cloud: Option<String>, verbose: u8) -> CmdResult {
    use ClusterCommand as C;
    let ctx = |cluster: Option<&str>, common: &Common, shape: Option<&Shape>| {
        context(cluster, common, shape, os_cloud.clone(), verbose)
    };
    match cmd {
        C::Launch {
            cluster,
            shape,
            common,
            resume,
            cloud_only,
        } => {
            let ctx = ctx(Some(&cluster), &common, Some(&shape))?;
            cmds::preflight_launch(&ctx, resume).await?;
            let extra = json!({"resume": resume})
                .as_object()
                .cloned()
                .unwrap_or_default();
            cmds::run_playbooks(&ctx, "launch", extra, Show::ProgressAndSummary, cloud_only).await
        }
        C::Destroy {
            cluster,
            keep_volumes,
            yes,
            common,
        } => {
            let ctx = ctx(Some(&cluster), &common, None)?;
            cmds::confirm_loss(&ctx, "destroy", None, keep_volumes, yes).await?;
            let extra = json!({"keep_volumes": keep_volumes})
                .as_object()
                .cloned()
                .unwrap_or_default();
            let r = cmds::run_playbooks(&ctx, "destroy", extra, Show::Progress, true).await;
            if r.is_ok()
                && let Some(kh) = ctx.conn_options().ok().and_then(|c| c.known_hosts)
            {
                let _ = std::fs::remove_file(kh);
            }
            r
        }
        C::Stop {
            cluster,
            yes,
            common,
        } => {
            let ctx = ctx(Some(&cluster), &common, None)?;
            cmds::confirm_loss(&ctx, "stop", None, true, yes).await?;
            cmds::run_playbooks(&ctx, "stop", Default::default(), Show::Progress, true).await
        }
        C::Start {
            cluster,
            cloud_only,
            common,
        } => {
            let ctx = ctx(Some(&cluster), &common, None)?;
            cmds::run_playbooks(
                &ctx,
                "start",
                Default::default(),
                Show::ProgressAndSummary,
                cloud_only,
            )
            .await
        }
        C::Login {
            cluster,
            local,
            dynamic,
            common,
            command,
        } => {
            let ctx = ctx(Some(&cluster), &common, None)?;
            ssh::login(&ctx, &local, dynamic.as_deref(), &command).await
        }
        C::GetMaster { cluster, common } => {
            cmds::get_master(&ctx(Some(&cluster), &common, None)?).await
        }
        C::Describe {
            cluster,
            json,
            common,
        } => {
            let ctx = ctx(cluster.as_deref(), &common, None)?;
            cmds::describe_cmd(&ctx, cluster.is_none(), json).await
        }
        C::AddSlaves {
            cluster,
            count,
            cloud_only,
            common,
            shape,
        } => {
            let ctx = ctx(Some(&cluster), &common, Some(&shape.0))?;
            let mut extra = serde_json::Map::new();
            extra.insert("count".into(), json!(count));
            // The cluster's size is what exists plus `count`, not the configured default.
            let mut ctx = ctx;
            ctx.settings.values.shift_remove("slaves");
            cmds::run_playbooks(
                &ctx,
                "add-slaves",
                extra,
                Show::ProgressAndSummary,
                cloud_only,
            )
            .await
        }
        C::RemoveSlaves {
            cluster,
            count,
            keep_volumes,
            cloud_only,
            yes,
            common,
        } => {
            let ctx = ctx(Some(&cluster), &common, None)?;
            cmds::confirm_loss(
                &ctx,
                "remove-slaves",
                Some(count as usize),
                keep_volumes,
                yes,
            )
            .await?;
            let extra = json!({"count": count, "keep_volumes": keep_volumes})
                .as_object()
                .cloned()
                .unwrap_or_default();
            // The master is reached (not cloud-only) to decommission the leaving DataNodes.
            cmds::run_playbooks(&ctx, "remove-slaves", extra, Show::Progress, cloud_only).await
        }
        C::RunCommand {
            cluster,
            command,
            master_only,
            common,
        } => {
            let ctx = ctx(Some(&cluster), &common, None)?;
            ssh::run_command(&ctx, &command.join(" "), master_only).await
        }
        C::CopyDir {
            cluster,
            dir,
            to,
            master_only,
            common,
        } => {
            let ctx = ctx(Some(&cluster), &common, None)?;
            let dir = std::path::absolute(&dir)
                .map_err(|e| (Failure::BadOptions, format!("{}: {e}", dir.display())))?;
            if !dir.is_dir() {
                return Err((
                    Failure::BadOptions,
                    format!("{}: not a directory", dir.display()),
                ));
            }
            let mut extra = json!({"dir": dir.display().to_string(), "master_only": master_only})
                .as_object()
                .cloned()
                .unwrap_or_default();
            if let Some(to) = to {
                extra.insert("dest".into(), json!(to));
            }
            cmds::run_playbooks(&ctx, "copy-dir", extra, Show::Console, false).await
        }
        C::Submit {
            cluster,
            app,
            args,
            class,
            conf,
            spark_home,
            common,
        } => {
            let ctx = ctx(Some(&cluster), &common, None)?;
            let job = ssh::SparkJob {
                app: &app,
                args: &args,
                class: class.as_deref(),
                conf: &conf,
                spark_home: &spark_home,
            };
            ssh::submit(&ctx, &job).await
        }
        C::Tunnel {
            cluster,
            ports,
            json,
            show_token,
            token_file,
            common,
        } => {
            let ctx = ctx(Some(&cluster), &common, None)?;
            let ports = tunnel::parse_ports(&ports).map_err(|m| (Failure::BadOptions, m))?;
            let opts = tunnel::TunnelOptions {
                ports,
                json,
                show_token,
                token_file: token_file.map(|f| expand_home(&f.display().to_string())),
            };
            tunnel::tunnel(&ctx, &opts).await
        }
        C::ConnectUrl {
            cluster,
            port,
            common,
        } => {
            if port == 0 {
                return Err((
                    Failure::BadOptions,
                    "--port 0: not a port number (1-65535)".into(),
                ));
            }
            let ctx = ctx(Some(&cluster), &common, None)?;
            connect::connect_url_cmd(&ctx, port).await
        }
        C::ClusterInventory {
            cluster,
            list: _,
            common,
        } => cmds::inventory_list(&ctx(Some(&cluster), &common, None)?).await,
        C::Init { dir, force } => cmds::init(&dir, force),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    /// Builds the settings as `launch` does, with `text` as the config file.
    fn launch_context(name: &str, text: &str, args: &[&str]) -> Result<Ctx, (Failure, String)> {
        let path = std::env::temp_dir().join(format!(
            "spark-openstack-{}-{name}.yaml",
            std::process::id()
        ));
        std::fs::write(&path, text).unwrap();
        let config = path.display().to_string();
        let argv = ["spark-openstack", "launch", "demo", "--config", &config];
        let cli = Cli::try_parse_from(argv.iter().chain(args)).unwrap();
        let r = match cli.command {
            Command::Cluster(ClusterCommand::Launch { shape, common, .. }) => {
                context(Some("demo"), &common, Some(&shape), None, 0)
            }
            other => panic!("{other:?}"),
        };
        let _ = std::fs::remove_file(&path);
        r
    }

    #[test]
    fn bad_values_are_bad_options_before_anything_runs() {
        let Err((failure, msg)) = launch_context("file", "defaults:\n  slaves: many\n", &[]) else {
            panic!("slaves: many was accepted");
        };
        assert_eq!(failure, Failure::BadOptions);
        assert!(msg.contains(".yaml:2:11: --slaves 'many'"), "{msg}");
        let Err((failure, msg)) = launch_context("cli", "", &["--slave-volume-size", "-3"]) else {
            panic!("--slave-volume-size -3 was accepted");
        };
        assert_eq!(failure, Failure::BadOptions);
        assert!(msg.starts_with("--slave-volume-size '-3'"), "{msg}");
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let ctx = launch_context(
            "layers",
            "defaults:\n  slaves: 1\n  image: a\n",
            &["-s", "4", "-z", "az1,az2"],
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let s = &ctx.settings;
        assert_eq!(s.uint("slaves").unwrap(), Some(4));
        assert_eq!(s.get("slaves").unwrap().origin, "--slaves");
        assert_eq!(s.str("image").unwrap().as_deref(), Some("a"));
        assert_eq!(s.list("zone").unwrap(), ["az1", "az2"]);
    }

    // The option table (commands::options) as the command line sees it.
    use crate::commands::options::tests::{good, yaml_json};
    use crate::commands::options::{Kind, OPTIONS};

    fn command_line(argv: &[&str]) -> Result<ClusterCommand, clap::Error> {
        let argv = ["spark-openstack"].iter().chain(argv);
        match Cli::try_parse_from(argv)?.command {
            Command::Cluster(c) => Ok(c),
            other => panic!("not a cluster command: {other:?}"),
        }
    }

    fn launch(args: &[&str]) -> Result<Shape, clap::Error> {
        let argv: Vec<&str> = ["launch", "demo"].iter().chain(args).copied().collect();
        match command_line(&argv)? {
            ClusterCommand::Launch { shape, .. } => Ok(*shape),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_option_is_accepted_on_the_command_line() {
        for o in OPTIONS {
            let long = format!("--{}", o.name);
            let short = o.short.map(|c| format!("-{c}"));
            // A flag takes no value: given means on.
            let value: &[&str] = if o.kind == Kind::Flag {
                &[]
            } else {
                &[good(o)]
            };
            for flag in std::iter::once(&long).chain(&short) {
                let argv: Vec<&str> = std::iter::once(flag.as_str())
                    .chain(value.iter().copied())
                    .collect();
                let shape = launch(&argv).unwrap_or_else(|e| panic!("{flag}: {e}"));
                let mut s = Settings::default();
                shape.layer(&mut s).unwrap();
                let set = s
                    .get(o.name)
                    .unwrap_or_else(|| panic!("{flag} not layered"));
                assert_eq!(set.origin, long);
                let typed = match o.kind {
                    Kind::List => json!(["az1", "az2"]),
                    Kind::Flag => json!(true),
                    Kind::Count(_) | Kind::SizeGb => yaml_json(good(o)),
                    _ => json!(good(o)),
                };
                assert_eq!(set.value, typed, "{flag}");
            }
            // add-slaves takes the new slaves' flavor and zones, and nothing else.
            let mut argv = vec!["add-slaves", "demo", "1", long.as_str()];
            argv.extend(value);
            let grown = command_line(&argv);
            match grown {
                Ok(ClusterCommand::AddSlaves { shape, .. }) => {
                    assert!(o.add_slaves, "{long}");
                    assert_eq!(shape.0.given.len(), 1, "{long}");
                }
                Ok(other) => panic!("{other:?}"),
                Err(e) => assert!(!o.add_slaves, "{long}: {e}"),
            }
        }
        // Repeated and comma-separated list values add up.
        let shape = launch(&["-z", "a,b", "--zone", "c"]).unwrap();
        assert_eq!(shape.given[0].1, json!(["a", "b", "c"]));
    }

    #[test]
    fn help_lists_every_option() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("launch")
            .unwrap()
            .render_long_help()
            .to_string();
        for o in OPTIONS {
            let usage = if o.kind == Kind::Flag {
                format!("--{}\n", o.name)
            } else {
                format!("--{} <{}>", o.name, o.value_name)
            };
            assert!(help.contains(&usage), "{help}");
            assert!(help.contains(o.help), "{}: {help}", o.name);
            if let Some(c) = o.short {
                assert!(help.contains(&format!("-{c}, --{}", o.name)), "{help}");
            }
        }
    }

    #[test]
    fn bad_command_line_values_are_refused_naming_the_flag() {
        let e = launch(&["--slave-volume-size", "-3"])
            .unwrap()
            .layer(&mut Settings::default())
            .unwrap_err();
        assert_eq!(
            e,
            "--slave-volume-size '-3': must be a size in GB (a whole number >= 0)"
        );
        for (args, expected) in [
            (["-s", "many"], "--slaves 'many': "),
            (["--slaves", "1001"], "--slaves 1001: "),
            (
                ["--authorized-address", "10.0.0/8"],
                "--authorized-address '10.0.0/8' ",
            ),
        ] {
            let e = launch(&args)
                .unwrap()
                .layer(&mut Settings::default())
                .unwrap_err();
            assert!(e.starts_with(expected), "{e}");
        }
        // A choice is refused by clap itself, which lists the choices (exit 5 too).
        let e = launch(&["--openstack-network-communication-method", "public"]).unwrap_err();
        assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
    }
}
