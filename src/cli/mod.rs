//! Command-line parsing and dispatch. Each subcommand's arguments and entry point live in
//! their own file; this file only ties them together and maps outcomes to exit codes.

pub mod cluster;
pub mod devcloud;
pub mod inventory;
pub mod play;
pub mod testbed;

use std::process::ExitCode;

use crate::commands::Failure;
use clap::{Parser, Subcommand};

/// Exit codes, as `ansible-playbook` uses them, so scripts written for Ansible keep working.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    /// A generic error (bad config, cloud API error).
    Error = 1,
    /// One or more hosts failed.
    HostFailed = 2,
    /// One or more hosts were unreachable, or a playbook/inventory could not be parsed.
    Unreachable = 4,
    /// Invalid or incomplete command-line options.
    BadOptions = 5,
    /// Interrupted by Ctrl-C.
    Interrupted = 99,
}

impl Exit {
    /// Ansible's parse errors share code 4 with unreachable hosts.
    pub const PARSE_ERROR: Exit = Exit::Unreachable;
}

/// The one mapping from a command's failure to its exit code (ansible-playbook's codes).
impl From<Failure> for Exit {
    fn from(f: Failure) -> Exit {
        match f {
            Failure::Error => Exit::Error,
            Failure::HostsFailed => Exit::HostFailed,
            Failure::Unreachable => Exit::Unreachable,
            Failure::ParseError => Exit::PARSE_ERROR,
            Failure::BadOptions => Exit::BadOptions,
            Failure::Interrupted => Exit::Interrupted,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "spark-openstack",
    version,
    about = "Launch, manage and shut down Spark + HDFS clusters on OpenStack",
    propagate_version = true
)]
pub struct Cli {
    /// More output: -v shows command output, -vv connection details, -vvv everything.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// The cloud to use from clouds.yaml (as `openstack --os-cloud`).
    #[arg(long, env = "OS_CLOUD", global = true)]
    pub os_cloud: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a playbook (Ansible syntax) against an inventory.
    Play(Box<play::PlayArgs>),
    /// Show an inventory as Ansible dynamic-inventory JSON or as a graph.
    Inventory(inventory::InventoryArgs),
    /// Run the local OpenStack-compatible cloud for tests and first use.
    Devcloud(devcloud::DevcloudArgs),
    /// Start or stop local sshd test hosts (for tests and benchmarks).
    #[command(hide = true)]
    Testbed(testbed::TestbedArgs),
    /// Print shell completions.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Cluster(cluster::ClusterCommand),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => Exit::BadOptions.into(),
            };
        }
    };
    init_logging(cli.verbose);
    let exit = match cli.command {
        Command::Play(args) => play::run(*args, cli.os_cloud, cli.verbose),
        Command::Inventory(args) => inventory::run(args, cli.os_cloud),
        Command::Devcloud(args) => devcloud::run(args),
        Command::Testbed(args) => testbed::run(args),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "spark-openstack",
                &mut std::io::stdout(),
            );
            Exit::Ok
        }
        Command::Cluster(c) => cluster::run(c, cli.os_cloud, cli.verbose),
    };
    exit.into()
}

/// Logs go to stderr through tracing; `SPARK_OPENSTACK_LOG` overrides the level filter.
fn init_logging(verbose: u8) {
    let default = match verbose {
        0 | 1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SPARK_OPENSTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(|| AboveBars)
        .with_target(false)
        .try_init();
}

/// Stderr for log lines, written above the live progress lines (a warning printed while
/// `launch` draws its phases would otherwise be overwritten or break them).
struct AboveBars;

impl std::io::Write for AboveBars {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::cluster::report::bars().suspend(|| std::io::stderr().write_all(buf))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Prints one error line in the tool's format and returns the exit code.
pub fn fail(exit: Exit, msg: impl std::fmt::Display) -> Exit {
    eprintln!("ERROR! {msg}");
    exit
}
