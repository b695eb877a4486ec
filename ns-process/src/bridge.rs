//! The parent's side of `--net bridge`: who may do it, the lock that runs sharing a
//! bridge take, and taking back what a start that failed added to the host.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use crate::cli::{self, Options};
use crate::net::{self, Added, Lease, TakenBack};
use crate::started;

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

/// How long a run waits for another to finish with the bridge; the lock is held only
/// for a few netlink calls and a clone.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// One bridge's lock among the ns-process runs of one network namespace: held from
/// making the bridge ready until the child's pair is attached to it, and while a failed
/// start decides whether to take its changes back. So a run that finds no port on the
/// bridge knows no other run is between seeing the bridge ready and attaching to it.
///
/// It is an abstract unix socket name, which belongs to the network namespace, needs
/// no file anyone must be allowed to write, and is let go by the kernel when its holder
/// dies however it dies.
struct BridgeLock {
    _socket: UnixDatagram,
}

impl BridgeLock {
    fn take(bridge: &str) -> Result<BridgeLock, String> {
        let name = format!("ns-process/bridge/{bridge}");
        let address = SocketAddr::from_abstract_name(name.as_bytes())
            .map_err(|error| format!("the lock's name @{name}: {error}"))?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match UnixDatagram::bind_addr(&address) {
                Ok(socket) => return Ok(BridgeLock { _socket: socket }),
                Err(error)
                    if error.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
                    return Err(format!(
                        "waited {}s for the lock @{name} of this network namespace, which \
                         ns-process runs on bridge {bridge} take while they change it; find \
                         its holder with `ss -xap | grep {name}`, or try again",
                        LOCK_WAIT.as_secs()
                    ));
                }
                Err(error) => return Err(format!("binding the lock @{name}: {error}")),
            }
        }
    }
}

/// `--net bridge` for one run: the bridge made ready, the child's lease on it, and what
/// to take back if the command never starts. Dropped once the init has ended (or before
/// it ever started), it releases the lease and, unless the command started, takes back
/// what this run added.
pub(crate) struct Network {
    added: Added,
    lock: Option<BridgeLock>,
    lease: Option<Lease>,
    started: started::Pipe,
    verbose: bool,
}

/// Before the child exists: may we, and make the bridge ready, holding its lock.
pub(crate) fn prepare(options: &Options) -> Result<Network, String> {
    let fail = |error: String| format!("--net bridge: {error}");
    if !has_net_admin() {
        return Err(format!(
            "--net bridge needs root or CAP_NET_ADMIN in this network namespace: it creates \
             the bridge {} and a veth pair there; run it as root, or use --net none",
            options.bridge
        ));
    }
    // The first number after the descriptors --preserve-fds passes on.
    let started = started::Pipe::new(cli::preserved_fds(options.preserve_fds).end).map_err(fail)?;
    let lock = BridgeLock::take(&options.bridge).map_err(fail)?;
    let added = net::ensure_bridge(&options.bridge, options.subnet).map_err(fail)?;
    if options.verbose && !added.is_nothing() {
        eprintln!("ns-process: added {added}");
    }
    Ok(Network {
        added,
        lock: Some(lock),
        lease: None,
        started,
        verbose: options.verbose,
    })
}

impl Network {
    /// The init's internal arguments, to go before the user's.
    pub(crate) fn init_setting(&self) -> crate::cli::InitSetting {
        self.started.init_setting()
    }

    /// Sets the child up to report its start.
    pub(crate) fn give_to(&mut self, command: &mut reexec::Command) {
        self.started.give_to(command);
    }

    /// The spawn's parent setup: while the child waits, its end of a new pair is born in
    /// its network namespace; the bridge's lock goes once the pair is there.
    pub(crate) fn attach<'a>(
        &'a mut self,
        options: &'a Options,
    ) -> impl FnOnce(u32) -> io::Result<()> + 'a {
        move |pid| {
            let taken = net::attach(&options.bridge, options.subnet, pid);
            self.lock = None;
            self.lease = Some(taken.map_err(io::Error::other)?);
            Ok(())
        }
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // The host side of the pair goes first: the kernel removes it with the child's
        // network namespace, but asynchronously, and it must not count as a port below.
        let taken = self.lease.take();
        if let Some(lease) = taken {
            if let Err(error) = net::release(&lease) {
                eprintln!("ns-process: removing {}: {error}", lease.host_side);
            }
        }
        if self.added.is_nothing() || self.started.command_started() {
            return;
        }
        let held = self.lock.take();
        let lock = match held.map_or_else(|| BridgeLock::take(self.added.bridge()), Ok) {
            Ok(lock) => lock,
            Err(error) => {
                eprintln!(
                    "ns-process: the command never started, and {} stays: {error}",
                    self.added
                );
                return;
            }
        };
        match net::take_back(&self.added) {
            Ok(TakenBack::All) if self.verbose => {
                eprintln!(
                    "ns-process: the command never started; took back {}",
                    self.added
                );
            }
            Ok(TakenBack::KeptInUse(port)) if self.verbose => eprintln!(
                "ns-process: the command never started; {} stays, {port} is on {} now",
                self.added,
                self.added.bridge()
            ),
            Ok(_) => {}
            Err(error) => eprintln!(
                "ns-process: the command never started, and taking back {} failed: {error}",
                self.added
            ),
        }
        drop(lock);
    }
}
