//! The capabilities the command keeps: Docker's default set unless `--cap-add`,
//! `--cap-drop` or `--privileged` say otherwise, the same for root and unprivileged callers.
//!
//! Root inside a user namespace has every capability there; mapped to host root (ns-process
//! run by root) it also passes every file-permission check on host-owned files. What keeps
//! such a root from undoing the init's masks on `/proc` (unmount, remount, mount a fresh
//! `proc`) is the missing `CAP_SYS_ADMIN`, and from reading the init's memory the missing
//! `CAP_SYS_PTRACE`: capabilities(7), "Capabilities and execution of programs by root".
//!
//! The sets are cut in the command's forked child, just before it execs (`sys`). A root
//! program that execs gets back exactly what is left in its bounding set, and no more.

use std::fmt;

/// Every capability the kernel knows today, by number (linux/capability.h).
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

/// Docker's and podman's default: what ordinary programs, package managers and servers
/// need, without `SYS_ADMIN`, `SYS_PTRACE`, `NET_ADMIN`, `SYS_MODULE` and the rest.
const DOCKER_DEFAULT: [&str; 14] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "MKNOD",
    "NET_RAW",
    "SETGID",
    "SETUID",
    "SETFCAP",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// A `--cap-add` or `--cap-drop` argument: one capability, or `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CapArg {
    All,
    One(u8),
}

impl CapArg {
    /// Takes `SYS_ADMIN`, `CAP_SYS_ADMIN`, `sys_admin` or `ALL`, as Docker does.
    pub(crate) fn parse(text: &str) -> Result<CapArg, String> {
        let upper = text.to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if name == "ALL" {
            return Ok(CapArg::All);
        }
        NAMES
            .iter()
            .position(|&known| known == name)
            .map(|number| CapArg::One(number as u8))
            .ok_or_else(|| {
                format!(
                    "unknown capability {text:?}; use ALL or one of: {}",
                    NAMES.join(", ")
                )
            })
    }
}

/// A set of capabilities, one bit each, numbered as the kernel does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CapSet(u64);

impl CapSet {
    const ALL: CapSet = CapSet((1 << NAMES.len()) - 1);

    fn named(names: &[&str]) -> CapSet {
        CapSet(
            names
                .iter()
                .fold(0, |bits, name| match CapArg::parse(name) {
                    Ok(CapArg::One(number)) => bits | 1 << number,
                    _ => unreachable!("{name} is in NAMES"),
                }),
        )
    }

    fn with(self, arg: CapArg) -> CapSet {
        match arg {
            CapArg::All => CapSet::ALL,
            CapArg::One(number) => CapSet(self.0 | 1 << number),
        }
    }

    fn without(self, arg: CapArg) -> CapSet {
        match arg {
            CapArg::All => CapSet(0),
            CapArg::One(number) => CapSet(self.0 & !(1 << number)),
        }
    }

    /// What the command keeps: Docker's rule, so that its users get what they expect.
    /// `--cap-drop ALL --cap-add X` keeps only X; `--cap-add ALL --cap-drop X` keeps all
    /// but X; otherwise the base (Docker's 14, or all with `--privileged`) less the drops,
    /// plus the adds.
    pub(crate) fn for_command(privileged: bool, add: &[CapArg], drop: &[CapArg]) -> CapSet {
        let base = if privileged {
            CapSet::ALL
        } else {
            CapSet::named(&DOCKER_DEFAULT)
        };
        let adds = |set: CapSet| add.iter().fold(set, |set, &arg| set.with(arg));
        let drops = |set: CapSet| drop.iter().fold(set, |set, &arg| set.without(arg));
        if add.contains(&CapArg::All) {
            drops(CapSet::ALL)
        } else if drop.contains(&CapArg::All) {
            adds(CapSet(0))
        } else {
            adds(drops(base))
        }
    }

    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    /// The bits to keep, those of capabilities newer than [`NAMES`] included when every
    /// named one is kept (`--privileged`, `--cap-add ALL`): all means all on a newer
    /// kernel too, and anything less keeps only what it names.
    fn with_unnamed_when_all(self) -> u64 {
        if self.bits() & CapSet::ALL.bits() == CapSet::ALL.bits() {
            u64::MAX
        } else {
            self.bits()
        }
    }

    pub(crate) fn contains(self, number: u8) -> bool {
        self.0 & 1 << number != 0
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = (0..NAMES.len() as u8)
            .filter(|&number| self.contains(number))
            .map(|number| NAMES[usize::from(number)])
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// Everything the forked child needs to cut its capabilities, computed before the fork
/// so that the child only makes system calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cut {
    keep: u64,
    /// The highest capability this kernel knows; the bounding set is dropped up to it.
    last: u8,
}

impl Cut {
    /// Asks the kernel which capabilities it knows. Not from
    /// `/proc/sys/kernel/cap_last_cap`: after the pivot that path is the rootfs owner's to
    /// swap, and a planted "0" would leave the bounding set whole.
    pub(crate) fn prepare(keep: CapSet) -> Result<Cut, String> {
        let last = crate::sys::last_capability()
            .map_err(|error| format!("prctl(PR_CAPBSET_READ): {error}"))?;
        Ok(Cut {
            keep: keep.with_unnamed_when_all(),
            last,
        })
    }

    /// Makes `command` start with the kept capabilities only, as `user` (uid, gid) when
    /// given: a user other than root then keeps none.
    pub(crate) fn apply_to(self, command: &mut std::process::Command, user: Option<(u32, u32)>) {
        crate::sys::cut_capabilities_at_exec(command, self.keep, self.last, user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> CapSet {
        CapSet::named(names)
    }

    fn args(names: &[&str]) -> Vec<CapArg> {
        names
            .iter()
            .map(|name| CapArg::parse(name).unwrap())
            .collect()
    }

    #[test]
    fn names_parse_as_docker_writes_them() {
        assert_eq!(CapArg::parse("SYS_ADMIN"), Ok(CapArg::One(21)));
        assert_eq!(CapArg::parse("cap_sys_admin"), Ok(CapArg::One(21)));
        assert_eq!(CapArg::parse("all"), Ok(CapArg::All));
        assert_eq!(CapArg::parse("CHECKPOINT_RESTORE"), Ok(CapArg::One(40)));
        let error = CapArg::parse("SYS_ADMINN").unwrap_err();
        assert!(
            error.contains("SYS_ADMINN") && error.contains("NET_ADMIN"),
            "{error}"
        );
    }

    #[test]
    fn the_default_is_dockers_fourteen() {
        let default = CapSet::for_command(false, &[], &[]);
        assert_eq!(default.bits().count_ones(), 14);
        assert!(!default.contains(21) && !default.contains(19), "{default}");
        assert_eq!(
            default.to_string(),
            "CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETGID,SETUID,SETPCAP,NET_BIND_SERVICE,\
             NET_RAW,SYS_CHROOT,MKNOD,AUDIT_WRITE,SETFCAP"
        );
    }

    #[test]
    fn adds_and_drops_follow_dockers_rule() {
        let default = CapSet::for_command(false, &[], &[]);
        assert_eq!(
            CapSet::for_command(false, &args(&["NET_ADMIN"]), &args(&["CHOWN"])),
            default.with(CapArg::One(12)).without(CapArg::One(0))
        );
        assert_eq!(
            CapSet::for_command(false, &args(&["NET_BIND_SERVICE"]), &args(&["ALL"])),
            set(&["NET_BIND_SERVICE"])
        );
        assert_eq!(
            CapSet::for_command(false, &args(&["ALL"]), &args(&["SYS_ADMIN"])),
            CapSet::ALL.without(CapArg::One(21))
        );
        assert_eq!(CapSet::for_command(true, &[], &[]), CapSet::ALL);
        assert_eq!(
            CapSet::for_command(true, &[], &args(&["SYS_ADMIN"])),
            CapSet::ALL.without(CapArg::One(21))
        );
        assert_eq!(
            CapSet::for_command(false, &[], &args(&["ALL"])).to_string(),
            "none"
        );
        assert_eq!(
            CapSet::for_command(true, &[], &[]).with_unnamed_when_all(),
            u64::MAX
        );
        let all_but_one = CapSet::for_command(true, &[], &args(&["SYS_ADMIN"]));
        assert_eq!(all_but_one.with_unnamed_when_all(), all_but_one.bits());
    }
}
