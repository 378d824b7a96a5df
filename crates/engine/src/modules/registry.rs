//! Name → module lookup, with `ansible.builtin.` / `ansible.legacy.` prefixes accepted and
//! a "did you mean" suggestion for unknown names.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Module;

/// Modules of collections outside ansible-core that are implemented natively.
const COLLECTION_MODULES: &[(&str, &str)] = &[
    ("ansible.posix", "synchronize"),
    ("ansible.posix", "authorized_key"),
    ("ansible.posix", "sysctl"),
    ("ansible.posix", "mount"),
    ("community.general", "pam_limits"),
    ("community.general", "supervisorctl"),
];

pub struct Registry {
    modules: BTreeMap<&'static str, Arc<dyn Module>>,
}

impl Registry {
    /// All built-in modules. Add a module by adding one line here.
    pub fn builtin() -> Self {
        use super::{commands, files, net, system};
        let list: Vec<Arc<dyn Module>> = vec![
            Arc::new(commands::command::Command),
            Arc::new(commands::shell::Shell),
            Arc::new(commands::raw::Raw),
            Arc::new(commands::script::Script),
            Arc::new(commands::async_job::AsyncStatus),
            Arc::new(files::copy::Copy),
            Arc::new(files::template::Template),
            Arc::new(files::file::File),
            Arc::new(files::lineinfile::LineInFile),
            Arc::new(files::blockinfile::BlockInFile),
            Arc::new(files::stat::Stat),
            Arc::new(files::slurp::Slurp),
            Arc::new(files::fetch::Fetch),
            Arc::new(system::setup::Setup),
            Arc::new(system::apt::Apt),
            Arc::new(system::apt_repository::AptRepository),
            Arc::new(system::package::Package),
            Arc::new(system::dnf::Dnf::DNF),
            Arc::new(system::dnf::Dnf::YUM),
            Arc::new(system::pip::Pip),
            Arc::new(system::service::Service::SERVICE),
            Arc::new(system::service::Service::SYSTEMD),
            Arc::new(system::authorized_key::AuthorizedKey),
            Arc::new(system::user::User),
            Arc::new(system::group::Group),
            Arc::new(system::sysctl::Sysctl),
            Arc::new(system::supervisorctl::Supervisorctl),
            Arc::new(system::pam_limits::PamLimits),
            Arc::new(system::mount::Mount),
            Arc::new(net::get_url::GetUrl),
            Arc::new(net::git::Git),
            Arc::new(net::unarchive::Unarchive),
            Arc::new(net::wait_for::WaitFor),
            Arc::new(net::wait_for_connection::WaitForConnection),
            Arc::new(net::synchronize::Synchronize),
        ];
        let list = list.into_iter().chain(super::control::all());
        let mut modules = BTreeMap::new();
        for m in list {
            modules.insert(m.name(), m);
        }
        Registry { modules }
    }

    pub fn register(&mut self, m: Arc<dyn Module>) {
        self.modules.insert(m.name(), m);
    }

    /// Strips the collection prefixes Ansible accepts for builtin modules, and those of
    /// the collection modules implemented here natively (`ansible.posix.sysctl` is
    /// `sysctl`). Any other collection's name stays whole, so it is reported unknown
    /// instead of silently running a builtin of the same short name.
    pub fn canonical(name: &str) -> &str {
        if let Some(short) = name
            .strip_prefix("ansible.builtin.")
            .or_else(|| name.strip_prefix("ansible.legacy."))
        {
            return short;
        }
        COLLECTION_MODULES
            .iter()
            .find_map(|(coll, short)| {
                name.strip_prefix(coll)
                    .and_then(|s| s.strip_prefix('.'))
                    .filter(|s| s == short)
            })
            .unwrap_or(name)
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Module>> {
        self.modules.get(Self::canonical(name)).cloned()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.modules.contains_key(Self::canonical(name))
    }

    /// The closest known module name, when one is close enough to be a typo.
    pub fn suggest(&self, name: &str) -> Option<&'static str> {
        let name = Self::canonical(name);
        self.modules
            .keys()
            .map(|k| (strsim::jaro_winkler(name, k), *k))
            .filter(|(score, _)| *score > 0.85)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| k)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.modules.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_modules_resolve_with_prefixes_and_typos_get_suggestions() {
        let r = Registry::builtin();
        for name in [
            "command",
            "shell",
            "copy",
            "template",
            "file",
            "lineinfile",
            "setup",
            "synchronize",
        ] {
            assert!(r.contains(name), "{name}");
        }
        assert_eq!(
            r.get("ansible.builtin.copy").map(|m| m.name()),
            Some("copy")
        );
        assert_eq!(r.suggest("lineinfle"), Some("lineinfile"));
        assert_eq!(
            Registry::canonical("ansible.posix.synchronize"),
            "synchronize"
        );
        assert_eq!(
            Registry::canonical("ansible.posix.copy"),
            "ansible.posix.copy"
        );
        assert_eq!(r.suggest("zzzz"), None);
    }
}
