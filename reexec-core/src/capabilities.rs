//! The capabilities a child keeps: [`Capability`], [`CapabilitySet`] and
//! [`Capabilities`], for [`Command::capabilities`](crate::Command::capabilities).

use std::fmt;
use std::io;
use std::str::FromStr;

/// One Linux capability (capabilities(7)), numbered as the kernel numbers it.
///
/// [`FromStr`] takes the kernel's name with or without `CAP_`, in any case:
/// `CAP_NET_ADMIN`, `net_admin`.
///
/// ```
/// use reexec::Capability;
///
/// assert_eq!("cap_sys_admin".parse(), Ok(Capability::SysAdmin));
/// assert_eq!(Capability::NetBindService.number(), 10);
/// assert_eq!(Capability::NetBindService.to_string(), "CAP_NET_BIND_SERVICE");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[repr(u8)]
#[allow(missing_docs)] // Each variant is the capability of its name: see capabilities(7).
pub enum Capability {
    Chown = 0,
    DacOverride = 1,
    DacReadSearch = 2,
    Fowner = 3,
    Fsetid = 4,
    Kill = 5,
    Setgid = 6,
    Setuid = 7,
    Setpcap = 8,
    LinuxImmutable = 9,
    NetBindService = 10,
    NetBroadcast = 11,
    NetAdmin = 12,
    NetRaw = 13,
    IpcLock = 14,
    IpcOwner = 15,
    SysModule = 16,
    SysRawio = 17,
    SysChroot = 18,
    SysPtrace = 19,
    SysPacct = 20,
    SysAdmin = 21,
    SysBoot = 22,
    SysNice = 23,
    SysResource = 24,
    SysTime = 25,
    SysTtyConfig = 26,
    Mknod = 27,
    Lease = 28,
    AuditWrite = 29,
    AuditControl = 30,
    Setfcap = 31,
    MacOverride = 32,
    MacAdmin = 33,
    Syslog = 34,
    WakeAlarm = 35,
    BlockSuspend = 36,
    AuditRead = 37,
    Perfmon = 38,
    Bpf = 39,
    CheckpointRestore = 40,
}

/// The kernel's names without `CAP_`, by number (linux/capability.h).
const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

impl Capability {
    /// Every capability this crate knows, by number: those of Linux 5.9 to at least 6.18.
    pub const ALL: [Capability; 41] = [
        Capability::Chown,
        Capability::DacOverride,
        Capability::DacReadSearch,
        Capability::Fowner,
        Capability::Fsetid,
        Capability::Kill,
        Capability::Setgid,
        Capability::Setuid,
        Capability::Setpcap,
        Capability::LinuxImmutable,
        Capability::NetBindService,
        Capability::NetBroadcast,
        Capability::NetAdmin,
        Capability::NetRaw,
        Capability::IpcLock,
        Capability::IpcOwner,
        Capability::SysModule,
        Capability::SysRawio,
        Capability::SysChroot,
        Capability::SysPtrace,
        Capability::SysPacct,
        Capability::SysAdmin,
        Capability::SysBoot,
        Capability::SysNice,
        Capability::SysResource,
        Capability::SysTime,
        Capability::SysTtyConfig,
        Capability::Mknod,
        Capability::Lease,
        Capability::AuditWrite,
        Capability::AuditControl,
        Capability::Setfcap,
        Capability::MacOverride,
        Capability::MacAdmin,
        Capability::Syslog,
        Capability::WakeAlarm,
        Capability::BlockSuspend,
        Capability::AuditRead,
        Capability::Perfmon,
        Capability::Bpf,
        Capability::CheckpointRestore,
    ];

    /// The kernel's number for it: its bit in the sets `/proc/PID/status` shows.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The capability numbered `number`, if this crate knows it.
    pub fn from_number(number: u8) -> Option<Capability> {
        Capability::ALL.get(usize::from(number)).copied()
    }

    /// The kernel's name without `CAP_`, as Docker's `--cap-add` and `--cap-drop` write
    /// it: `NET_ADMIN`. [`Display`](fmt::Display) gives the full name, `CAP_NET_ADMIN`;
    /// [`FromStr`] takes either.
    ///
    /// ```
    /// use reexec::Capability;
    ///
    /// assert_eq!(Capability::NetAdmin.name(), "NET_ADMIN");
    /// assert_eq!(Capability::NetAdmin.name().parse(), Ok(Capability::NetAdmin));
    /// let names: Vec<&str> = Capability::ALL.iter().map(|cap| cap.name()).collect();
    /// assert_eq!(names[..2], ["CHOWN", "DAC_OVERRIDE"]);
    /// ```
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.number())]
    }
}

impl fmt::Display for Capability {
    /// The kernel's name: `CAP_NET_ADMIN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAP_{}", self.name())
    }
}

/// A name that no [`Capability`] has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCapability(String);

impl fmt::Display for UnknownCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown capability {:?}; use one of: {}",
            self.0,
            NAMES.join(", ")
        )
    }
}

impl std::error::Error for UnknownCapability {}

impl FromStr for Capability {
    type Err = UnknownCapability;

    fn from_str(text: &str) -> Result<Capability, UnknownCapability> {
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        NAMES
            .iter()
            .position(|&known| known == name)
            .and_then(|number| Capability::from_number(number as u8))
            .ok_or_else(|| UnknownCapability(text.to_owned()))
    }
}

/// A set of capabilities, one bit each as the kernel numbers them: the form
/// `/proc/PID/status` shows (`CapEff: 0000000000000400` holds
/// [`Capability::NetBindService`]).
///
/// [`CapabilitySet::ALL`] holds every bit, so also capabilities of a kernel newer than
/// this crate: keeping all keeps those too.
///
/// ```
/// use reexec::{Capability, CapabilitySet};
///
/// let set: CapabilitySet = [Capability::Chown, Capability::NetBindService].into_iter().collect();
/// assert_eq!(set.bits(), 1 << 0 | 1 << 10);
/// assert!(set.contains(Capability::Chown));
/// assert_eq!(set.to_string(), "CAP_CHOWN,CAP_NET_BIND_SERVICE");
/// assert!(CapabilitySet::ALL.contains(Capability::SysAdmin));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapabilitySet(u64);

impl CapabilitySet {
    /// No capability.
    pub const EMPTY: CapabilitySet = CapabilitySet(0);

    /// Every capability, those this crate does not know included.
    pub const ALL: CapabilitySet = CapabilitySet(u64::MAX);

    /// The set whose bits are `bits`, as `/proc/PID/status` shows them in hexadecimal.
    pub const fn from_bits(bits: u64) -> CapabilitySet {
        CapabilitySet(bits)
    }

    /// The bits of the set.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether it holds `capability`.
    pub const fn contains(self, capability: Capability) -> bool {
        self.0 & 1 << capability as u8 != 0
    }

    /// Adds `capability`.
    pub fn insert(&mut self, capability: Capability) {
        self.0 |= 1 << capability.number();
    }

    /// Takes `capability` out.
    pub fn remove(&mut self, capability: Capability) {
        self.0 &= !(1 << capability.number());
    }

    /// Whether every capability of `self` is in `other`.
    pub const fn is_subset(self, other: CapabilitySet) -> bool {
        self.0 & !other.0 == 0
    }

    /// The capabilities this crate knows that the set holds, by number.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL
            .into_iter()
            .filter(move |&capability| self.contains(capability))
    }
}

impl FromIterator<Capability> for CapabilitySet {
    fn from_iter<I: IntoIterator<Item = Capability>>(capabilities: I) -> CapabilitySet {
        let mut set = CapabilitySet::EMPTY;
        for capability in capabilities {
            set.insert(capability);
        }
        set
    }
}

impl fmt::Display for CapabilitySet {
    /// `CAP_CHOWN,CAP_KILL`; `none`; `all` for [`CapabilitySet::ALL`]; a number for a bit
    /// this crate has no name for.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == CapabilitySet::ALL {
            return f.write_str("all");
        }
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut separator = "";
        for number in 0..64u8 {
            if self.0 & 1 << number == 0 {
                continue;
            }
            f.write_str(separator)?;
            match Capability::from_number(number) {
                Some(capability) => write!(f, "{capability}")?,
                None => write!(f, "{number}")?,
            }
            separator = ",";
        }
        Ok(())
    }
}

/// The capabilities a child keeps, set by [`Command::capabilities`]: one
/// [`CapabilitySet`] for each of the five sets of a Linux thread (capabilities(7)).
///
/// Capabilities are only ever given up, never gained: each of the bounding, permitted,
/// effective and inheritable sets becomes the one asked for intersected with what the
/// child had (a child in a new user namespace has every capability there; one in the
/// caller's has the caller's), so that asking to keep one the child lacks is no error.
/// Then each capability of `ambient` that ended in both the permitted and the
/// inheritable set is raised into the ambient set, which is emptied first.
///
/// # What the exec'd program has
///
/// `execve(2)` recomputes the sets (for a program file without file capabilities and
/// not set-user-ID; `P` are the sets before, `P'` after):
///
/// - bounding, inheritable: kept as they are.
/// - ambient: kept as it is.
/// - a child whose uid is 0 in its user namespace (root, or root mapped to you):
///   `P'(permitted) = P'(effective) = P(bounding) | P(inheritable) | P(ambient)`. Root
///   gets back everything in its bounding set, whatever its permitted set was: the
///   bounding set is what limits root.
/// - any other uid: `P'(permitted) = P'(effective) = P(ambient)`. Only ambient
///   capabilities survive.
///
/// So [`Capabilities::only`], which sets all five sets alike, leaves the exec'd program
/// with exactly those capabilities (of what the child had) in `CapEff`, `CapPrm`,
/// `CapBnd`, `CapInh` and `CapAmb`, for root and for any other uid alike, and any program
/// it runs in turn can have no others (with [`Command::no_new_privs`] not even through
/// set-user-ID or file capabilities). [`Capabilities::none`] leaves it with none.
///
/// For a root child, keep `permitted` equal to `bounding`, as `only` does: a program
/// whose permitted set grows at exec loses its parent-death signal
/// ([`Command::death_signal`]) and is no longer dumpable, the kernel's rule for a
/// program that gains privilege.
///
/// ```
/// use reexec::{Capabilities, Capability, CapabilitySet};
///
/// // Only binding to ports below 1024, for root inside and for any other uid.
/// let caps = Capabilities::only([Capability::NetBindService]);
/// assert_eq!(caps.bounding.bits(), 1 << 10);
/// assert_eq!(caps.ambient, caps.permitted);
///
/// // The same, but the exec'd program's children that switch to another uid keep
/// // nothing: no ambient and no inheritable capability.
/// let mut root_only = Capabilities::only([Capability::NetBindService]);
/// root_only.ambient = CapabilitySet::EMPTY;
/// root_only.inheritable = CapabilitySet::EMPTY;
/// assert_eq!(root_only.permitted.bits(), 1 << 10);
/// ```
///
/// [`Command::capabilities`]: crate::Command::capabilities
/// [`Command::no_new_privs`]: crate::Command::no_new_privs
/// [`Command::death_signal`]: crate::Command::death_signal
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Capabilities {
    /// What the child, and every program it execs, can ever have; dropping from it needs
    /// `CAP_SETPCAP` (a child in a new user namespace has it). [`CapabilitySet::ALL`]
    /// leaves it as it is.
    pub bounding: CapabilitySet,
    /// What the child may make effective; a subset of it must hold `effective` and
    /// `ambient`.
    pub permitted: CapabilitySet,
    /// What the kernel checks now.
    pub effective: CapabilitySet,
    /// What a program keeps across exec if the file's inheritable capabilities name it,
    /// and the ceiling of `ambient`; within `bounding`.
    pub inheritable: CapabilitySet,
    /// What a program whose uid is not 0 keeps across exec; within both `permitted` and
    /// `inheritable`.
    pub ambient: CapabilitySet,
}

impl Capabilities {
    /// Keeps `capabilities` in all five sets, and nothing else: the exec'd program has
    /// exactly those (of what the child had), whatever its uid. See the type's docs.
    pub fn only(capabilities: impl IntoIterator<Item = Capability>) -> Capabilities {
        let set: CapabilitySet = capabilities.into_iter().collect();
        Capabilities {
            bounding: set,
            permitted: set,
            effective: set,
            inheritable: set,
            ambient: set,
        }
    }

    /// Keeps no capability at all: the exec'd program, root or not, has none, and can
    /// gain none.
    pub fn none() -> Capabilities {
        Capabilities::only([])
    }

    /// Gives up, in the calling thread, every capability these sets do not keep: what
    /// [`Command::capabilities`] does in its child, for a program that forks and execs by
    /// other means, as in a [`pre_exec`] hook of [`std::process::Command`].
    ///
    /// The same steps as in the child: the bounding set first (each capability present
    /// and not kept dropped, which needs `CAP_SETPCAP`), then effective, permitted and
    /// inheritable (each cut to what the thread had and the kernel allows), then the
    /// ambient set, emptied and raised again. Sets that contradict each other, which
    /// [`Command::capabilities`] refuses, are cut here to what the kernel allows.
    ///
    /// Async-signal-safe and allocation-free: raw system calls only, no lock, not even
    /// `errno` touched, so it may run between fork and exec in a program with threads.
    /// Capabilities belong to a thread: only the calling one's change.
    ///
    /// # Errors
    ///
    /// The errno of the first call that failed; then the thread may have given up part
    /// of what it was to give up, never more. `EPERM` from dropping from the bounding set
    /// means the thread lacks `CAP_SETPCAP`: keep the bounding set whole
    /// ([`CapabilitySet::ALL`]) or run in a new user namespace.
    ///
    /// ```
    /// use std::os::unix::process::CommandExt;
    /// use reexec::{Capabilities, CapabilitySet};
    ///
    /// // No capability in the effective, permitted, inheritable and ambient sets, which
    /// // needs no privilege; the bounding set stays whole.
    /// let mut keep = Capabilities::none();
    /// keep.bounding = CapabilitySet::ALL;
    /// let mut command = std::process::Command::new("true");
    /// // SAFETY: the hook only calls apply_to_current_thread, which is async-signal-safe
    /// // and allocates nothing, as pre_exec requires.
    /// unsafe { command.pre_exec(move || keep.apply_to_current_thread()) };
    /// assert!(command.status()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// [`pre_exec`]: std::os::unix::process::CommandExt::pre_exec
    /// [`Command::capabilities`]: crate::Command::capabilities
    pub fn apply_to_current_thread(&self) -> io::Result<()> {
        crate::sys::keep_capabilities(self)
            .map_err(|(_, word)| io::Error::from_raw_os_error(crate::sys::split_item(word).0))
    }

    /// Why the sets can't be taken on together, if they can't: the kernel's rules, checked
    /// in the parent before any child exists.
    pub(crate) fn contradiction(&self) -> Option<String> {
        let outside = |inner: CapabilitySet, outer: CapabilitySet| {
            CapabilitySet(inner.0 & !outer.0).to_string()
        };
        if !self.effective.is_subset(self.permitted) {
            return Some(format!(
                "effective holds {} that permitted does not; a thread can make effective \
                 only what it is permitted",
                outside(self.effective, self.permitted)
            ));
        }
        if !self.inheritable.is_subset(self.bounding) {
            return Some(format!(
                "inheritable holds {} that bounding does not; the kernel keeps the \
                 inheritable set within the bounding set",
                outside(self.inheritable, self.bounding)
            ));
        }
        let both = CapabilitySet(self.permitted.0 & self.inheritable.0);
        if !self.ambient.is_subset(both) {
            return Some(format!(
                "ambient holds {} that is not in both permitted and inheritable; the \
                 kernel raises an ambient capability only when it is in both",
                outside(self.ambient, both)
            ));
        }
        None
    }
}

impl fmt::Display for Capabilities {
    /// `bounding=…, permitted=…, effective=…, inheritable=…, ambient=…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bounding={}, permitted={}, effective={}, inheritable={}, ambient={}",
            self.bounding, self.permitted, self.effective, self.inheritable, self.ambient
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_agree() {
        for (number, capability) in Capability::ALL.into_iter().enumerate() {
            assert_eq!(usize::from(capability.number()), number);
            assert_eq!(Capability::from_number(number as u8), Some(capability));
            assert_eq!(capability.to_string().parse(), Ok(capability));
            assert_eq!(capability.name().to_lowercase().parse(), Ok(capability));
        }
        assert_eq!(Capability::from_number(41), None);
        // The numbers of linux/capability.h.
        assert_eq!(Capability::SysAdmin.number(), 21);
        assert_eq!(Capability::CheckpointRestore.number(), 40);
        let error = "SYS_ADMINN".parse::<Capability>().unwrap_err().to_string();
        assert!(
            error.contains("SYS_ADMINN") && error.contains("NET_ADMIN"),
            "{error}"
        );
    }

    #[test]
    fn sets_hold_what_was_put_in_them() {
        let mut set: CapabilitySet = [Capability::Kill, Capability::Chown].into_iter().collect();
        assert_eq!(set.bits(), 0b10_0001);
        set.remove(Capability::Kill);
        set.insert(Capability::Bpf);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Capability::Chown, Capability::Bpf]
        );
        assert_eq!(set.to_string(), "CAP_CHOWN,CAP_BPF");
        assert_eq!(
            CapabilitySet::from_bits(1 << 45 | 1).to_string(),
            "CAP_CHOWN,45"
        );
        assert_eq!(CapabilitySet::EMPTY.to_string(), "none");
        assert_eq!(CapabilitySet::ALL.to_string(), "all");
        assert!(set.is_subset(CapabilitySet::ALL) && !CapabilitySet::ALL.is_subset(set));
    }

    #[test]
    fn only_and_none_set_all_five_sets_alike_and_are_consistent() {
        let only = Capabilities::only([Capability::NetBindService, Capability::Chown]);
        let bits = 1 << 10 | 1;
        for set in [
            only.bounding,
            only.permitted,
            only.effective,
            only.inheritable,
            only.ambient,
        ] {
            assert_eq!(set.bits(), bits);
        }
        assert_eq!(only.contradiction(), None);
        assert_eq!(Capabilities::none().contradiction(), None);
        assert_eq!(Capabilities::none().bounding, CapabilitySet::EMPTY);
    }

    #[test]
    fn sets_the_kernel_would_refuse_are_named() {
        let chown = CapabilitySet::from_bits(1);
        let mut caps = Capabilities::none();
        caps.effective = chown;
        assert!(
            caps.contradiction()
                .unwrap()
                .starts_with("effective holds CAP_CHOWN")
        );
        let mut caps = Capabilities::none();
        caps.inheritable = chown;
        assert!(
            caps.contradiction()
                .unwrap()
                .starts_with("inheritable holds CAP_CHOWN")
        );
        let mut caps = Capabilities::only([Capability::Chown]);
        caps.inheritable = CapabilitySet::EMPTY;
        assert!(
            caps.contradiction()
                .unwrap()
                .starts_with("ambient holds CAP_CHOWN")
        );
        // Keeping the whole bounding set and dropping the rest is fine.
        let mut caps = Capabilities::none();
        caps.bounding = CapabilitySet::ALL;
        assert_eq!(caps.contradiction(), None);
    }
}
