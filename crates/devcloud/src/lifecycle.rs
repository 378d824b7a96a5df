//! Timed server transitions (boot, stop, start, reboot), run as background tasks that call
//! the [`ServerBackend`](super::backend::ServerBackend) and then record the outcome.
//!
//! The target time of a transition is stored in the server record (`pending_until`), so a
//! restarted devcloud resumes unfinished transitions instead of leaving servers stuck.

use chrono::Utc;

use super::backend::{BackendFault, MachineSpec, Nic};
use super::server::AppState;
use super::state::{Server, ServerFault, State, s as field};

/// Builds what the backend needs from the server's record, ports and keypair.
pub fn machine_spec(st: &State, srv: &Server) -> MachineSpec {
    let flavor = st.flavors.iter().find(|f| f.id == srv.flavor_id);
    let image = st.images.iter().find(|i| field(i, "id") == srv.image_id);
    let image_name = image
        .map(|i| field(i, "name").to_string())
        .unwrap_or_default();
    let login_user = ["os_admin_user", "os_distro"]
        .iter()
        .find_map(|k| image.map(|i| field(i, k)).filter(|u| !u.is_empty()))
        .unwrap_or("cloud-user")
        .to_string();
    let mut nics = Vec::new();
    for port in st
        .ports
        .iter()
        .filter(|p| srv.port_ids.iter().any(|id| id == field(p, "id")))
    {
        let fixed = port
            .get("fixed_ips")
            .and_then(|v| v.as_array())
            .and_then(|a| a.first());
        let ip = fixed
            .and_then(|f| f.get("ip_address"))
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let subnet_id = fixed
            .and_then(|f| f.get("subnet_id"))
            .and_then(|v| v.as_str())
            .unwrap_or("");
        let subnet = st.subnets.iter().find(|s| field(s, "id") == subnet_id);
        let prefix_len = subnet
            .and_then(|s| field(s, "cidr").parse::<ipnet::IpNet>().ok())
            .map(|n| n.prefix_len())
            .unwrap_or(24);
        let net_id = field(port, "network_id");
        nics.push(Nic {
            mac: field(port, "mac_address").to_string(),
            ip: ip.to_string(),
            prefix_len,
            gateway: subnet
                .map(|s| field(s, "gateway_ip").to_string())
                .filter(|g| !g.is_empty()),
            network_name: st
                .networks
                .iter()
                .find(|n| field(n, "id") == net_id)
                .map(|n| field(n, "name").to_string())
                .unwrap_or_default(),
        });
    }
    let public_key = srv.key_name.as_ref().and_then(|k| {
        st.keypairs
            .iter()
            .find(|kp| &kp.name == k && kp.user_id == srv.user_id)
            .map(|kp| kp.public_key.clone())
    });
    MachineSpec {
        id: srv.id.clone(),
        name: srv.name.clone(),
        image_name,
        vcpus: flavor.map(|f| f.vcpus).unwrap_or(1),
        ram_mb: flavor.map(|f| f.ram).unwrap_or(512),
        nics,
        public_key,
        login_user,
        user_data: srv.user_data.clone(),
        floating_ip: floating_of(st, srv),
        firewall: super::firewall::firewall_of(st, srv),
        ephemeral_gb: flavor.map(|f| f.ephemeral).unwrap_or(0),
        volumes: srv
            .volumes
            .iter()
            .map(|a| volume_ref(st, &a.volume_id))
            .collect(),
    }
}

/// A volume as a backend needs it: its id and size (1 GB when the record lacks one).
pub fn volume_ref(st: &State, volume_id: &str) -> super::netns::VolumeRef {
    let size_gb = st
        .volumes
        .iter()
        .find(|v| field(v, "id") == volume_id)
        .and_then(|v| v.get("size").and_then(|s| s.as_u64()))
        .unwrap_or(1);
    super::netns::VolumeRef {
        id: volume_id.to_string(),
        size_gb,
    }
}

/// The address of the floating IP bound to one of the server's ports, if any.
pub fn floating_of(st: &State, srv: &Server) -> Option<String> {
    st.floatingips
        .iter()
        .find(|f| srv.port_ids.iter().any(|p| p == field(f, "port_id")))
        .map(|f| field(f, "floating_ip_address").to_string())
        .filter(|a| !a.is_empty())
}

/// Waits until the server's `pending_until`, runs the backend operation its task_state
/// asks for, and records the result. Does nothing if the server was deleted meanwhile.
pub fn spawn_transition(app: AppState, server_id: String) {
    tokio::spawn(async move {
        let Some(due) = app.store.read(|st| {
            let srv = st.servers.iter().find(|s| s.id == server_id)?;
            Some(srv.pending_until)
        }) else {
            return;
        };
        if let Some(due) = due {
            let wait = (due - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
        }
        // Read the record only now: a floating IP associated during the wait belongs in
        // the spec the backend boots from.
        let Some((spec, task, fails)) = app.store.read(|st| {
            let srv = st.servers.iter().find(|s| s.id == server_id)?;
            let task = srv.task_state.clone().unwrap_or_default();
            Some((machine_spec(st, srv), task, srv.boot_fails))
        }) else {
            return;
        };
        if task == "deleting" {
            // devcloud stopped in the middle of a delete: finish it.
            complete_delete(app, spec).await;
            return;
        }
        let b = &app.backend;
        let result: Result<(), BackendFault> = match task.as_str() {
            "scheduling" if fails => Err(BackendFault {
                code: 500,
                message: "No valid host was found. There are not enough hosts available.".into(),
            }),
            "scheduling" => b.boot(&spec).await,
            "powering-off" => b.stop(&spec).await,
            "powering-on" => b.start(&spec).await,
            "rebooting" => b.reboot(&spec, false).await,
            "rebooting_hard" => b.reboot(&spec, true).await,
            _ => return,
        };
        let _ = app.store.mutate(|st| {
            let Some(srv) = st.servers.iter_mut().find(|s| s.id == server_id) else {
                return Err(());
            };
            if srv.task_state.as_deref() != Some(task.as_str()) {
                return Err(());
            }
            finish(srv, &task, result);
            Ok(())
        });
    });
}

/// Applies the outcome of a transition to the record.
fn finish(srv: &mut Server, task: &str, result: Result<(), BackendFault>) {
    let now = Utc::now();
    srv.task_state = None;
    srv.pending_until = None;
    srv.updated = now;
    match (task, result) {
        (_, Err(f)) => {
            srv.vm_state = "error".into();
            srv.power_state = if task == "scheduling" {
                0
            } else {
                srv.power_state
            };
            srv.fault = Some(ServerFault {
                code: f.code,
                message: f.message,
                created: now,
            });
        }
        ("scheduling", Ok(())) => {
            srv.vm_state = "active".into();
            srv.power_state = 1;
            srv.launched_at = Some(now);
        }
        ("powering-off", Ok(())) => {
            srv.vm_state = "stopped".into();
            srv.power_state = 4;
        }
        (_, Ok(())) => {
            srv.vm_state = "active".into();
            srv.power_state = 1;
        }
    }
}

/// The second half of `DELETE /servers/{id}`: the backend releases the machine, then the
/// record goes with its ports, floating IP associations and volume attachments.
pub async fn complete_delete(app: AppState, spec: MachineSpec) {
    if let Err(f) = app.backend.delete(&spec).await {
        tracing::warn!("backend failed to delete server {}: {}", spec.id, f.message);
    }
    let mut deleted_volumes = Vec::new();
    let _ = app.store.mutate(|st| -> Result<(), ()> {
        let Some(srv) = st.servers.iter().find(|s| s.id == spec.id).cloned() else {
            return Ok(());
        };
        st.servers.retain(|s| s.id != srv.id);
        crate::neutron::release_server_ports(st, &srv.id);
        for a in &srv.volumes {
            if a.delete_on_termination {
                st.volumes.retain(|v| field(v, "id") != a.volume_id);
                deleted_volumes.push(a.volume_id.clone());
            } else if let Some(v) = st
                .volumes
                .iter_mut()
                .find(|v| field(v, "id") == a.volume_id)
            {
                crate::cinder::mark_detached(v);
            }
        }
        Ok(())
    });
    for vol in deleted_volumes {
        if let Err(f) = app.backend.volume_deleted(&vol).await {
            tracing::warn!("volume {vol}: data not removed: {}", f.message);
        }
    }
    // Its addresses leave the groups it was in.
    crate::firewall::sync(&app).await;
}

/// After a restart: restart the timers of every unfinished transition.
pub fn resume_all(app: &AppState) {
    let pending: Vec<String> = app.store.read(|st| {
        st.servers
            .iter()
            .filter(|s| s.task_state.is_some())
            .map(|s| s.id.clone())
            .collect()
    });
    for id in pending {
        spawn_transition(app.clone(), id);
    }
}

/// After a start: make sure every ACTIVE server's machine runs (a backend with real
/// machines rebuilds those that `devcloud down` removed or a host reboot stopped; records
/// have nothing to do). A failure turns the server to ERROR with the fault.
pub fn restore_active(app: &AppState) {
    let specs: Vec<MachineSpec> = app.store.read(|st| {
        st.servers
            .iter()
            .filter(|s| s.task_state.is_none() && s.vm_state == "active")
            .map(|s| machine_spec(st, s))
            .collect()
    });
    for spec in specs {
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(f) = app.backend.start(&spec).await {
                let _ = app.store.mutate(|st| {
                    let srv = st.servers.iter_mut().find(|s| s.id == spec.id).ok_or(())?;
                    finish(srv, "powering-on", Err(f));
                    Ok::<(), ()>(())
                });
            }
        });
    }
}
