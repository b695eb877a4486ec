//! The parent's side of `--net bridge`: who may do it, and cleaning up.

use std::io;
use std::sync::{Arc, Mutex};

use crate::cli::Options;
use crate::net::{self, Lease};

/// CAP_NET_ADMIN's bit in the capability sets of /proc/self/status.
const CAP_NET_ADMIN: u32 = 12;

/// Whether this process may create links in its network namespace.
fn has_net_admin() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// Before anything is created: may we, and is the bridge there.
pub(crate) fn prepare(options: &Options) -> Result<(), String> {
    if !has_net_admin() {
        return Err(format!(
            "--net bridge needs root or CAP_NET_ADMIN in this network namespace: it creates \
             the bridge {} and a veth pair there; run it as root, or use --net none",
            options.bridge
        ));
    }
    net::ensure_bridge(&options.bridge, options.subnet)
        .map_err(|error| format!("--net bridge: {error}"))
}

/// The lease taken for the child, once the parent_setup hook has run.
pub(crate) type Shared = Arc<Mutex<Option<Lease>>>;

/// The parent_setup hook: the child's end of a new pair is born in its namespace.
pub(crate) fn attach(
    options: &Options,
    lease: &Shared,
) -> impl FnMut(u32) -> io::Result<()> + Send + 'static {
    let (bridge, subnet, lease) = (options.bridge.clone(), options.subnet, Arc::clone(lease));
    move |pid| {
        let taken = net::attach(&bridge, subnet, pid).map_err(io::Error::other)?;
        *lease
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(taken);
        Ok(())
    }
}

/// Once the child is gone, its host-side link goes too. The kernel removes the pair when
/// the child's network namespace dies, but asynchronously; deleting it here means it is
/// gone by the time ns-process exits.
pub(crate) fn release(lease: &Shared) {
    let taken = lease
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    if let Some(lease) = taken {
        if let Err(error) = net::release(&lease) {
            eprintln!("ns-process: removing {}: {error}", lease.host_side);
        }
    }
}
