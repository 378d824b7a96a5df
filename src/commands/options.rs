//! The options that shape a cluster, declared once.
//!
//! [`OPTIONS`] is the one place a launch option is written down: its long name, short flag,
//! kind of value, help and value name. From it come
//! - the command-line flags of `launch` and `add-slaves` ([`Shape`], [`GrowShape`]),
//! - the keys the config file may set ([`super::config::keys`]),
//! - the layering of the command line over the file ([`Shape::layer`]),
//! - the playbook variable names ([`OptionDef::var`]: `_` for `-`), and
//! - the check of every value by its kind ([`OptionDef::check`]), made while the settings
//!   are built, so a bad value is a bad option (exit 5) naming where it was set, before
//!   any playbook runs.
//!
//! `playbooks/launch.yml` lists the options explicitly (it is the user-editable interface);
//! a test keeps it, and the cluster module's [`crate::cluster::spec::LAUNCH_ARGS`], in step
//! with the table.

use clap::builder::PossibleValuesParser;
use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches};
use serde_json::Value;

use super::config::Settings;
use playbook_engine::template::filters::parse_bool;

/// What a value must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A name or id (numbers are accepted and rendered).
    Text,
    /// A whole number from 0 to the given maximum.
    Count(u64),
    /// A size in GB (0 means none).
    SizeGb,
    /// A list of names: a YAML list, or one string with commas between items.
    List,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// An IPv4 or IPv6 network in CIDR notation.
    Cidr,
    /// On or off: a flag without a value on the command line (given means on), a boolean
    /// in the config file.
    Flag,
}

/// Where the playbooks pass an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// An argument of the `spark_openstack.cluster` module (`playbooks/launch.yml`).
    Module,
    /// A role variable, recorded on the master with the others (`role_vars`).
    Roles,
}

/// One option that shapes a cluster.
#[derive(Debug)]
pub struct OptionDef {
    /// The long option (`--instance-type`) and the config file key.
    pub name: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    pub help: &'static str,
    pub value_name: &'static str,
    pub target: Target,
    /// Also an option of `add-slaves` (the new slaves' flavor and zones).
    pub add_slaves: bool,
}

const fn opt(
    name: &'static str,
    short: Option<char>,
    kind: Kind,
    value_name: &'static str,
    help: &'static str,
) -> OptionDef {
    OptionDef {
        name,
        short,
        kind,
        help,
        value_name,
        target: Target::Module,
        add_slaves: false,
    }
}

impl OptionDef {
    const fn roles(self) -> OptionDef {
        OptionDef {
            target: Target::Roles,
            ..self
        }
    }
    const fn add_slaves(self) -> OptionDef {
        OptionDef {
            add_slaves: true,
            ..self
        }
    }

    /// The playbook variable and module argument: the name with `_` for `-`.
    pub fn var(&self) -> String {
        self.name.replace('-', "_")
    }

    /// Checks a value from the config file or the command line (`null` is "not given").
    /// The message names the option and the value; the caller adds where it was set.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        let shown = match value {
            Value::String(s) => format!("'{s}'"),
            other => other.to_string(),
        };
        let bad = |what: String| Err(format!("--{} {shown}: must be {what}", self.name));
        let whole = |v: &Value| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        let word = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        if value.is_null() {
            return Ok(());
        }
        match self.kind {
            Kind::Text if word(value).is_none() => bad("a name or id".into()),
            Kind::Text => Ok(()),
            Kind::Count(max) => match whole(value) {
                Some(n) if n <= max => Ok(()),
                _ => bad(format!("a whole number from 0 to {max}")),
            },
            Kind::SizeGb if whole(value).is_none() => {
                bad("a size in GB (a whole number >= 0)".into())
            }
            Kind::SizeGb => Ok(()),
            Kind::List => match value {
                Value::String(_) => Ok(()),
                Value::Array(items) if items.iter().all(|i| word(i).is_some()) => Ok(()),
                _ => bad("a name or a list of names".into()),
            },
            Kind::Choice(choices) => match value.as_str() {
                Some(s) if choices.contains(&s) => Ok(()),
                _ => bad(format!("one of {}", choices.join(", "))),
            },
            Kind::Cidr => match value.as_str() {
                Some(s) => crate::cluster::secgroups::validate_cidr(s),
                None => bad("a CIDR such as 203.0.113.7/32".into()),
            },
            Kind::Flag => match value {
                Value::Bool(_) => Ok(()),
                Value::String(s) if parse_bool(s).is_some() => Ok(()),
                _ => bad("true or false".into()),
            },
        }
    }

    /// The value of the option given `raw` on the command line: a number for the
    /// numeric kinds (left as text when it is not one, for [`Self::check`] to refuse),
    /// a list for [`Kind::List`], text otherwise.
    fn cli_value(&self, raw: &[String]) -> Value {
        match self.kind {
            Kind::List => Value::from(raw.to_vec()),
            Kind::Count(_) | Kind::SizeGb => {
                let s = raw.last().cloned().unwrap_or_default();
                s.parse::<u64>().map(Value::from).unwrap_or(Value::from(s))
            }
            _ => Value::from(raw.last().cloned().unwrap_or_default()),
        }
    }

    fn arg(&self) -> Arg {
        let mut a = Arg::new(self.name).long(self.name).help(self.help);
        if self.kind != Kind::Flag {
            a = a.value_name(self.value_name);
        }
        if let Some(c) = self.short {
            a = a.short(c);
        }
        match self.kind {
            Kind::List => a.action(ArgAction::Append).value_delimiter(','),
            // A negative number is a value to refuse by name, not an unknown flag.
            Kind::Count(_) | Kind::SizeGb => a.action(ArgAction::Set).allow_negative_numbers(true),
            Kind::Choice(choices) => a
                .action(ArgAction::Set)
                .value_parser(PossibleValuesParser::new(choices)),
            Kind::Text | Kind::Cidr => a.action(ArgAction::Set),
            Kind::Flag => a.action(ArgAction::SetTrue),
        }
    }
}

/// Every option that shapes a cluster, in `--help` order.
pub const OPTIONS: &[OptionDef] = &[
    opt("image", Some('a'), Kind::Text, "IMAGE", "Image name or id"),
    opt(
        "key-pair",
        Some('k'),
        Kind::Text,
        "KEY_PAIR",
        "Nova key pair name",
    ),
    opt(
        "slaves",
        Some('s'),
        Kind::Count(1000),
        "SLAVES",
        "Number of slaves",
    ),
    opt(
        "instance-type",
        Some('t'),
        Kind::Text,
        "INSTANCE_TYPE",
        "Slave flavor (name or id); its ephemeral disk is used for HDFS",
    )
    .add_slaves(),
    opt(
        "master-instance-type",
        Some('m'),
        Kind::Text,
        "MASTER_INSTANCE_TYPE",
        "Master flavor [default: the slave flavor]",
    ),
    opt(
        "openstack-network-communication-method",
        None,
        Kind::Choice(&["floating", "static"]),
        "OPENSTACK_NETWORK_COMMUNICATION_METHOD",
        "How the controller reaches nodes",
    ),
    opt(
        "zone",
        Some('z'),
        Kind::List,
        "ZONE",
        "Availability zone(s); slaves are spread over them (comma-separated or repeated)",
    )
    .add_slaves(),
    opt(
        "network",
        None,
        Kind::Text,
        "NETWORK",
        "Network for the cluster [default: the only internal network]",
    ),
    opt(
        "floating-ip-pool",
        None,
        Kind::Text,
        "FLOATING_IP_POOL",
        "External network to allocate the master's floating IP from [default: the only one]",
    ),
    opt(
        "authorized-address",
        None,
        Kind::Cidr,
        "CIDR",
        "CIDR allowed to reach SSH and the web UIs [default: SSH only, from anywhere]",
    ),
    opt(
        "spark-version",
        None,
        Kind::Text,
        "SPARK_VERSION",
        "Spark version to install [default: the spark role's spark_version]",
    )
    .roles(),
    opt(
        "object-storage",
        None,
        Kind::Flag,
        "",
        "Give Spark the cloud's object storage (s3a://BUCKET/...) with your EC2 credentials",
    )
    .roles(),
    opt(
        "s3-endpoint",
        None,
        Kind::Text,
        "URL",
        "The S3 API's URL for --object-storage [default: the catalog's s3 service]",
    )
    .roles(),
    opt(
        "slave-volume-size",
        None,
        Kind::SizeGb,
        "GB",
        "Cinder volume per slave (GB) for HDFS data",
    ),
    opt(
        "persistent-volume-size",
        None,
        Kind::SizeGb,
        "GB",
        "Cinder volume per node (GB) for persistent HDFS, kept across stop/start",
    ),
];

/// The table entry for a long name or config key.
pub fn find(name: &str) -> Option<&'static OptionDef> {
    OPTIONS.iter().find(|o| o.name == name)
}

/// The shaping options given on the command line, in table order.
#[derive(Clone, Debug, Default)]
pub struct Shape {
    pub given: Vec<(&'static OptionDef, Value)>,
}

impl Shape {
    /// Sets every given option over `settings` (origin `--name`), checking each value.
    pub fn layer(&self, settings: &mut Settings) -> Result<(), String> {
        for (def, value) in &self.given {
            def.check(value)?;
            settings.set(def.name, value.clone(), format!("--{}", def.name));
        }
        Ok(())
    }

    fn augment(cmd: Command, which: fn(&OptionDef) -> bool) -> Command {
        cmd.args(OPTIONS.iter().filter(|o| which(o)).map(OptionDef::arg))
    }

    fn read(m: &ArgMatches, which: fn(&OptionDef) -> bool) -> Shape {
        let given = OPTIONS
            .iter()
            .filter(|o| which(o))
            .filter_map(|o| {
                if o.kind == Kind::Flag {
                    return m.get_flag(o.name).then_some((o, Value::Bool(true)));
                }
                let raw: Vec<String> = m.try_get_many::<String>(o.name).ok()??.cloned().collect();
                Some((o, o.cli_value(&raw)))
            })
            .collect();
        Shape { given }
    }
}

fn all(_: &OptionDef) -> bool {
    true
}

impl FromArgMatches for Shape {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(Shape::read(m, all))
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        *self = Shape::read(m, all);
        Ok(())
    }
}

impl clap::Args for Shape {
    fn augment_args(cmd: Command) -> Command {
        Shape::augment(cmd, all)
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Shape::augment(cmd, all)
    }
}

/// The shaping options `add-slaves` takes: those marked [`OptionDef::add_slaves`].
#[derive(Clone, Debug, Default)]
pub struct GrowShape(pub Shape);

fn grow(o: &OptionDef) -> bool {
    o.add_slaves
}

impl FromArgMatches for GrowShape {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        Ok(GrowShape(Shape::read(m, grow)))
    }
    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0 = Shape::read(m, grow);
        Ok(())
    }
}

impl clap::Args for GrowShape {
    fn augment_args(cmd: Command) -> Command {
        Shape::augment(cmd, grow)
    }
    fn augment_args_for_update(cmd: Command) -> Command {
        Shape::augment(cmd, grow)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;

    use playbook_engine::modules::args::Args;
    use playbook_engine::yaml;
    use serde_json::{Map, json};

    use super::*;
    use crate::cluster::spec::{LAUNCH_ARGS, LaunchSpec, without_empty};
    use crate::commands::config;
    use crate::commands::ctx::Ctx;

    /// The module arguments that are not shaping options: set by the command itself
    /// (`cluster`, `resume`, the key pair's public half), shared with every command
    /// (`ssh_user`), or for playbooks only (`boot_timeout`).
    const MODULE_ONLY: &[&str] = &[
        "cluster",
        "resume",
        "key_pair_public_key",
        "ssh_user",
        "boot_timeout",
    ];

    /// A good value of the option's kind, as typed on the command line or in the file.
    pub(crate) fn good(o: &OptionDef) -> &'static str {
        match o.kind {
            Kind::Text => "x-1",
            Kind::Count(_) => "3",
            Kind::SizeGb => "10",
            Kind::List => "az1,az2",
            Kind::Choice(choices) => choices[choices.len() - 1],
            Kind::Cidr => "10.0.0.0/8",
            Kind::Flag => "true",
        }
    }

    /// A bad value of the option's kind, as YAML.
    fn bad(o: &OptionDef) -> &'static str {
        match o.kind {
            Kind::Text | Kind::List => "{a: 1}",
            Kind::Count(_) => "many",
            Kind::SizeGb => "-3",
            Kind::Choice(_) => "public",
            Kind::Cidr => "foo",
            Kind::Flag => "maybe",
        }
    }

    pub(crate) fn yaml_json(text: &str) -> Value {
        yaml::load_str(text, Path::new("value.yaml"))
            .unwrap()
            .to_json()
    }

    fn file(text: &str) -> Result<Settings, String> {
        let node =
            yaml::load_str(text, Path::new("spark-openstack.yaml")).map_err(|e| e.to_string())?;
        config::from_node(&node, Some("demo"))
    }

    fn module(args: Value) -> Result<LaunchSpec, String> {
        let map = without_empty(args.as_object().unwrap());
        let a =
            Args::new("spark_openstack.cluster", &map, LAUNCH_ARGS).map_err(|e| e.to_string())?;
        LaunchSpec::from_args(&a).map_err(|e| e.to_string())
    }

    #[test]
    fn every_option_is_accepted_in_the_config_file() {
        for o in OPTIONS {
            for key in [o.name.to_string(), o.var()] {
                let text = format!("clusters:\n  demo:\n    {key}: {}\n", good(o));
                let s = file(&text).unwrap_or_else(|e| panic!("{key}: {e}"));
                let set = s.get(o.name).unwrap_or_else(|| panic!("{key} not read"));
                assert_eq!(set.value, yaml_json(good(o)), "{key}");
                assert!(
                    set.origin.starts_with("spark-openstack.yaml:3:"),
                    "{key}: {}",
                    set.origin
                );
            }
        }
        let keys: Vec<&str> = config::keys().collect();
        for k in config::OTHER_KEYS {
            assert!(keys.contains(k) && find(k).is_none(), "{k}");
        }
    }

    #[test]
    fn every_option_reaches_the_playbooks_under_its_variable_name() {
        let mut settings = Settings::default();
        for o in OPTIONS {
            settings.set(o.name, json!(good(o)), format!("--{}", o.name));
        }
        let ctx = Ctx {
            cluster: "demo".into(),
            os_cloud: None,
            verbose: 0,
            settings,
            extra_vars: Map::new(),
        };
        let vars = ctx.vars();
        let role_vars = ctx.role_vars();
        for o in OPTIONS {
            assert_eq!(vars.get(&o.var()), Some(&json!(good(o))), "{}", o.name);
            // Role variables are recorded on the master; module arguments are not.
            let recorded = role_vars.contains_key(&o.var());
            assert_eq!(recorded, o.target == Target::Roles, "{}", o.name);
        }
    }

    #[test]
    fn every_module_option_is_a_cluster_module_argument() {
        for o in OPTIONS.iter().filter(|o| o.target == Target::Module) {
            let args = json!({"cluster": "demo", o.var(): good(o)});
            module(args).unwrap_or_else(|e| panic!("{}: {e}", o.name));
            // The module refuses what the table refuses, for `play -e` and edited playbooks.
            let args = json!({"cluster": "demo", o.var(): yaml_json(bad(o))});
            let e = module(args).expect_err(o.name);
            assert!(
                e.contains(&o.var()) || e.contains(o.name),
                "{}: {e}",
                o.name
            );
        }
        let mut expected: Vec<String> = OPTIONS
            .iter()
            .filter(|o| o.target == Target::Module)
            .map(OptionDef::var)
            .chain(MODULE_ONLY.iter().map(|s| s.to_string()))
            .collect();
        let mut actual: Vec<String> = LAUNCH_ARGS.iter().map(|s| s.to_string()).collect();
        expected.sort();
        actual.sort();
        assert_eq!(actual, expected, "LAUNCH_ARGS drifted from OPTIONS");
    }

    #[test]
    fn launch_yml_passes_every_option() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/launch.yml");
        let doc = yaml::load_file(&path).unwrap().to_json();
        let args = doc[0]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|t| t.get("spark_openstack.cluster"))
            .and_then(Value::as_object)
            .expect("launch.yml has a spark_openstack.cluster task");
        for o in OPTIONS {
            let (key, var) = match o.target {
                Target::Module => (o.var(), o.var()),
                Target::Roles => ("role_vars".into(), "spark_openstack_role_vars".into()),
            };
            let value = args.get(&key).and_then(Value::as_str);
            assert!(
                value.is_some_and(|v| v.contains(&format!("{{{{ {var} "))),
                "launch.yml's cluster task does not pass {key} from {{{{ {var} }}}} (for --{})",
                o.name
            );
        }
    }

    #[test]
    fn bad_values_are_refused_naming_their_origin() {
        for o in OPTIONS {
            let text = format!("defaults:\n  {}: {}\n", o.name, bad(o));
            let e = file(&text).expect_err(o.name);
            let col = o.name.len() + 5;
            assert!(
                e.starts_with(&format!("spark-openstack.yaml:2:{col}: --{} ", o.name)),
                "{e}"
            );
        }
    }
}
