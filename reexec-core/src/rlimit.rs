//! Resource limits a child starts with: [`Resource`], for
//! [`Command::rlimit`](crate::Command::rlimit).
//!
//! Our own enum rather than nix's `Resource`: nix's is re-exported from a 0.x crate (its
//! next release would be a breaking change of ours), lists other systems' resources under
//! `cfg`s, and has no names to parse; this one is Linux's sixteen, named as `ulimit`,
//! podman and docker name them.

use std::ffi::c_int;
use std::fmt;
use std::str::FromStr;

/// The value of a limit that does not limit (`RLIM_INFINITY`): what `ulimit` shows as
/// `unlimited`.
pub const RLIM_INFINITY: u64 = libc::RLIM_INFINITY;

/// A resource whose limit [`Command::rlimit`](crate::Command::rlimit) sets for the child
/// (getrlimit(2)). Each is named as podman's `--ulimit` and docker's name it:
/// [`name`](Resource::name) gives it and [`FromStr`] takes it (or the C name,
/// `RLIMIT_NOFILE`).
///
/// ```
/// use reexec::Resource;
///
/// let nofile: Resource = "nofile".parse().unwrap();
/// assert_eq!(nofile, Resource::NoFile);
/// assert_eq!("RLIMIT_AS".parse::<Resource>(), Ok(Resource::AddressSpace));
/// assert_eq!(Resource::AddressSpace.name(), "as");
/// assert!("files".parse::<Resource>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Resource {
    /// `RLIMIT_CORE` (`core`): the largest core dump, in bytes; 0 for none.
    Core,
    /// `RLIMIT_CPU` (`cpu`): CPU time, in seconds; SIGXCPU at the soft limit, SIGKILL at
    /// the hard one.
    Cpu,
    /// `RLIMIT_DATA` (`data`): the data segment and heap, in bytes.
    Data,
    /// `RLIMIT_FSIZE` (`fsize`): the largest file the process may write, in bytes.
    FileSize,
    /// `RLIMIT_LOCKS` (`locks`): file locks and leases (no longer enforced by Linux).
    Locks,
    /// `RLIMIT_MEMLOCK` (`memlock`): memory locked into RAM, in bytes.
    MemLock,
    /// `RLIMIT_MSGQUEUE` (`msgqueue`): bytes of POSIX message queues of the real user.
    MsgQueue,
    /// `RLIMIT_NICE` (`nice`): the ceiling of the nice value, as 20 - nice.
    Nice,
    /// `RLIMIT_NOFILE` (`nofile`): one more than the highest descriptor number.
    NoFile,
    /// `RLIMIT_NPROC` (`nproc`): processes and threads of the real user (in its user
    /// namespace). fork(2) never enforces it on host root, nor on a process with
    /// `CAP_SYS_RESOURCE` or `CAP_SYS_ADMIN` in the initial user namespace.
    NProc,
    /// `RLIMIT_RSS` (`rss`): resident set size (not enforced by Linux).
    Rss,
    /// `RLIMIT_RTPRIO` (`rtprio`): the ceiling of the real-time priority.
    RtPrio,
    /// `RLIMIT_RTTIME` (`rttime`): CPU time under a real-time policy without a blocking
    /// call, in microseconds.
    RtTime,
    /// `RLIMIT_SIGPENDING` (`sigpending`): signals queued for the real user.
    SigPending,
    /// `RLIMIT_STACK` (`stack`): the main thread's stack, in bytes.
    Stack,
    /// `RLIMIT_AS` (`as`): the virtual address space, in bytes.
    AddressSpace,
}

impl Resource {
    /// Every resource, in the order of podman's list of names.
    pub const ALL: [Resource; 16] = [
        Resource::Core,
        Resource::Cpu,
        Resource::Data,
        Resource::FileSize,
        Resource::Locks,
        Resource::MemLock,
        Resource::MsgQueue,
        Resource::Nice,
        Resource::NoFile,
        Resource::NProc,
        Resource::Rss,
        Resource::RtPrio,
        Resource::RtTime,
        Resource::SigPending,
        Resource::Stack,
        Resource::AddressSpace,
    ];

    /// The name podman's `--ulimit` and docker's give it: `nofile`, `as`, …
    pub fn name(self) -> &'static str {
        self.names().0
    }

    /// The C name: `RLIMIT_NOFILE`, `RLIMIT_AS`, …
    pub fn c_name(self) -> &'static str {
        self.names().1
    }

    fn names(self) -> (&'static str, &'static str) {
        match self {
            Resource::Core => ("core", "RLIMIT_CORE"),
            Resource::Cpu => ("cpu", "RLIMIT_CPU"),
            Resource::Data => ("data", "RLIMIT_DATA"),
            Resource::FileSize => ("fsize", "RLIMIT_FSIZE"),
            Resource::Locks => ("locks", "RLIMIT_LOCKS"),
            Resource::MemLock => ("memlock", "RLIMIT_MEMLOCK"),
            Resource::MsgQueue => ("msgqueue", "RLIMIT_MSGQUEUE"),
            Resource::Nice => ("nice", "RLIMIT_NICE"),
            Resource::NoFile => ("nofile", "RLIMIT_NOFILE"),
            Resource::NProc => ("nproc", "RLIMIT_NPROC"),
            Resource::Rss => ("rss", "RLIMIT_RSS"),
            Resource::RtPrio => ("rtprio", "RLIMIT_RTPRIO"),
            Resource::RtTime => ("rttime", "RLIMIT_RTTIME"),
            Resource::SigPending => ("sigpending", "RLIMIT_SIGPENDING"),
            Resource::Stack => ("stack", "RLIMIT_STACK"),
            Resource::AddressSpace => ("as", "RLIMIT_AS"),
        }
    }

    /// The kernel's number for it.
    pub(crate) fn raw(self) -> c_int {
        (match self {
            Resource::Core => libc::RLIMIT_CORE,
            Resource::Cpu => libc::RLIMIT_CPU,
            Resource::Data => libc::RLIMIT_DATA,
            Resource::FileSize => libc::RLIMIT_FSIZE,
            Resource::Locks => libc::RLIMIT_LOCKS,
            Resource::MemLock => libc::RLIMIT_MEMLOCK,
            Resource::MsgQueue => libc::RLIMIT_MSGQUEUE,
            Resource::Nice => libc::RLIMIT_NICE,
            Resource::NoFile => libc::RLIMIT_NOFILE,
            Resource::NProc => libc::RLIMIT_NPROC,
            Resource::Rss => libc::RLIMIT_RSS,
            Resource::RtPrio => libc::RLIMIT_RTPRIO,
            Resource::RtTime => libc::RLIMIT_RTTIME,
            Resource::SigPending => libc::RLIMIT_SIGPENDING,
            Resource::Stack => libc::RLIMIT_STACK,
            Resource::AddressSpace => libc::RLIMIT_AS,
        }) as c_int
    }

    /// This process's (soft, hard) limit of it, which a child inherits; `None` if
    /// getrlimit(2) fails.
    pub(crate) fn current(self) -> Option<(u64, u64)> {
        use nix::sys::resource::{Resource as Nix, getrlimit};
        let nix = match self {
            Resource::Core => Nix::RLIMIT_CORE,
            Resource::Cpu => Nix::RLIMIT_CPU,
            Resource::Data => Nix::RLIMIT_DATA,
            Resource::FileSize => Nix::RLIMIT_FSIZE,
            Resource::Locks => Nix::RLIMIT_LOCKS,
            Resource::MemLock => Nix::RLIMIT_MEMLOCK,
            Resource::MsgQueue => Nix::RLIMIT_MSGQUEUE,
            Resource::Nice => Nix::RLIMIT_NICE,
            Resource::NoFile => Nix::RLIMIT_NOFILE,
            Resource::NProc => Nix::RLIMIT_NPROC,
            Resource::Rss => Nix::RLIMIT_RSS,
            Resource::RtPrio => Nix::RLIMIT_RTPRIO,
            Resource::RtTime => Nix::RLIMIT_RTTIME,
            Resource::SigPending => Nix::RLIMIT_SIGPENDING,
            Resource::Stack => Nix::RLIMIT_STACK,
            Resource::AddressSpace => Nix::RLIMIT_AS,
        };
        getrlimit(nix).ok()
    }
}

impl fmt::Display for Resource {
    /// `nofile (RLIMIT_NOFILE)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.c_name())
    }
}

/// A name that no [`Resource`] has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownResource(String);

impl fmt::Display for UnknownResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Resource::ALL.iter().map(|r| r.name()).collect();
        write!(
            f,
            "unknown resource {:?}; use one of: {}",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownResource {}

impl FromStr for Resource {
    type Err = UnknownResource;

    /// Takes podman's name (`nofile`) or the C name (`RLIMIT_NOFILE`), in any case.
    fn from_str(text: &str) -> Result<Resource, UnknownResource> {
        // Each C name is RLIMIT_ and podman's name in capitals.
        let lower = text.to_ascii_lowercase();
        let name = lower.strip_prefix("rlimit_").unwrap_or(&lower);
        Resource::ALL
            .into_iter()
            .find(|resource| resource.name() == name)
            .ok_or_else(|| UnknownResource(text.to_owned()))
    }
}

/// A limit as `ulimit` writes it: a number, or `unlimited`.
pub(crate) fn describe_limit(value: u64) -> String {
    if value == RLIM_INFINITY {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_has_a_name_that_parses_back_and_its_own_number() {
        let mut numbers: Vec<c_int> = Resource::ALL.iter().map(|r| r.raw()).collect();
        numbers.sort_unstable();
        // Linux numbers its sixteen resources 0 to 15.
        assert_eq!(numbers, (0..16).collect::<Vec<_>>());
        for resource in Resource::ALL {
            assert_eq!(resource.name().parse(), Ok(resource));
            assert_eq!(resource.c_name().parse(), Ok(resource));
            assert_eq!(resource.name().to_uppercase().parse(), Ok(resource));
        }
        assert_eq!("FSIZE".parse(), Ok(Resource::FileSize));
        let error = "nofiles".parse::<Resource>().unwrap_err().to_string();
        assert!(
            error.contains("\"nofiles\"") && error.contains("nofile, nproc"),
            "{error}"
        );
    }

    #[test]
    fn the_current_limits_are_this_process_s() {
        let (soft, hard) = Resource::NoFile.current().unwrap();
        assert!(soft <= hard);
        let nix = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE);
        assert_eq!(nix.unwrap(), (soft, hard));
        assert_eq!(describe_limit(RLIM_INFINITY), "unlimited");
        assert_eq!(describe_limit(1024), "1024");
    }
}
