//! `spark-openstack testbed`: local sshd hosts for tests and benchmarks (hidden command).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use sshd_testbed::{Testbed, TestbedOptions};

#[derive(Args, Debug)]
pub struct TestbedArgs {
    #[command(subcommand)]
    pub action: TestbedAction,
}

#[derive(Subcommand, Debug)]
pub enum TestbedAction {
    /// Start N sshd hosts and write DIR/inventory.yml, DIR/known_hosts and DIR/ssh_config.
    Up {
        /// How many hosts (host1..hostN).
        #[arg(long, default_value_t = 3)]
        hosts: usize,
        /// Directory for keys, configs, logs and each host's private root.
        #[arg(long)]
        dir: PathBuf,
        /// First port (host i listens on base-port + i - 1); free ports when omitted.
        #[arg(long)]
        base_port: Option<u16>,
        /// sshd LogLevel (DEBUG1 also logs forwarded connections).
        #[arg(long, default_value = "VERBOSE")]
        log_level: String,
    },
    /// Stop every sshd started in DIR (files are kept).
    Down {
        #[arg(long)]
        dir: PathBuf,
    },
}

pub fn run(args: TestbedArgs) -> Exit {
    match args.action {
        TestbedAction::Up {
            hosts,
            dir,
            base_port,
            log_level,
        } => {
            if hosts == 0 {
                return super::fail(Exit::BadOptions, "--hosts must be at least 1");
            }
            let mut opts = TestbedOptions::new(&dir, hosts, base_port);
            for h in &mut opts.hosts {
                h.log_level = log_level.clone();
            }
            match Testbed::up(&opts) {
                Ok(tb) => {
                    let tb = tb.detach();
                    for h in &tb.hosts {
                        println!("{} {}:{} pid {}", h.name, h.address, h.port, h.pid);
                    }
                    println!("inventory: {}", tb.inventory.display());
                    println!("ssh_config: {}", tb.ssh_config.display());
                    println!(
                        "stop with: spark-openstack testbed down --dir {}",
                        tb.dir.display()
                    );
                    Exit::Ok
                }
                Err(e) => {
                    // Do not leave half a testbed running.
                    let _ = Testbed::down(&dir);
                    super::fail(Exit::Error, format!("{e:#}"))
                }
            }
        }
        TestbedAction::Down { dir } => match Testbed::down(&dir) {
            Ok(n) => {
                println!("stopped {n} sshd process(es)");
                Exit::Ok
            }
            Err(e) => super::fail(Exit::Error, format!("{e:#}")),
        },
    }
}
