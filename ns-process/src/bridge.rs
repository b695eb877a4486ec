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

/// Sets up the bridge and claims an address, or says why not.
pub(crate) fn claim(options: &Options) -> Result<Lease, String> {
    if !has_net_admin() {
        return Err(format!(
            "--net bridge needs root or CAP_NET_ADMIN in this network namespace: it creates \
             the bridge {} and a veth pair there; run it as root, or use --net none",
            options.bridge
        ));
    }
    net::claim(&options.bridge, options.subnet).map_err(|error| format!("--net bridge: {error}"))
}

/// The parent_setup hook: the child's end goes into its network namespace.
pub(crate) fn hand_over(lease: &Lease, pid: u32) -> io::Result<()> {
    net::hand_over(lease, pid).map_err(io::Error::other)
}

/// Once the child is gone, its host-side link goes too. The kernel removes the pair when
/// the child's network namespace dies, but it does so asynchronously; deleting it here
/// means it is gone when ns-process exits. A pair that never reached the child is
/// removed the same way.
pub(crate) fn release(lease: &Lease) {
    if let Err(error) = net::release(lease) {
        eprintln!("ns-process: removing {}: {error}", lease.host_side);
    }
}
