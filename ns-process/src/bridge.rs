//! The parent's side of `--net bridge`: who may do it, and cleaning up.

use std::io;

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

/// The parent's setup hook of the spawn: the child's end of a new pair is born in its
/// namespace, and the lease taken for it goes to `lease`.
pub(crate) fn attach<'a>(
    options: &'a Options,
    lease: &'a mut Option<Lease>,
) -> impl FnOnce(u32) -> io::Result<()> + 'a {
    move |pid| {
        *lease = Some(net::attach(&options.bridge, options.subnet, pid).map_err(io::Error::other)?);
        Ok(())
    }
}

/// Once the child is gone, its host-side link goes too. The kernel removes the pair when
/// the child's network namespace dies, but asynchronously; deleting it here means it is
/// gone by the time ns-process exits.
pub(crate) fn release(lease: Option<Lease>) {
    if let Some(lease) = lease {
        if let Err(error) = net::release(&lease) {
            eprintln!("ns-process: removing {}: {error}", lease.host_side);
        }
    }
}
