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

use reexec::{Capabilities, Capability, CapabilitySet};

/// Docker's and podman's default: what ordinary programs, package managers and servers
/// need, without `SYS_ADMIN`, `SYS_PTRACE`, `NET_ADMIN`, `SYS_MODULE` and the rest.
const DOCKER_DEFAULT: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// A `--cap-add` or `--cap-drop` argument: one capability, or `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CapArg {
    All,
    One(Capability),
}

impl CapArg {
    /// Takes `SYS_ADMIN`, `CAP_SYS_ADMIN`, `sys_admin` or `ALL`, as Docker does.
    pub(crate) fn parse(text: &str) -> Result<CapArg, String> {
        let upper = text.to_ascii_uppercase();
        if upper.strip_prefix("CAP_").unwrap_or(&upper) == "ALL" {
            return Ok(CapArg::All);
        }
        text.parse().map(CapArg::One).map_err(|_| {
            let names: Vec<&str> = Capability::ALL.iter().map(|cap| cap.name()).collect();
            format!(
                "unknown capability {text:?}; use ALL or one of: {}",
                names.join(", ")
            )
        })
    }
}

/// Every capability reexec names: what `ALL` adds. Not [`CapabilitySet::ALL`], whose
/// bits beyond them only [`at_exec`] keeps, and only when every named one is kept.
fn named() -> CapabilitySet {
    Capability::ALL.into_iter().collect()
}

fn with(set: CapabilitySet, arg: CapArg) -> CapabilitySet {
    match arg {
        CapArg::All => named(),
        CapArg::One(capability) => {
            let mut set = set;
            set.insert(capability);
            set
        }
    }
}

fn without(set: CapabilitySet, arg: CapArg) -> CapabilitySet {
    match arg {
        CapArg::All => CapabilitySet::EMPTY,
        CapArg::One(capability) => {
            let mut set = set;
            set.remove(capability);
            set
        }
    }
}

/// What the command keeps: Docker's rule, so that its users get what they expect.
/// `--cap-drop ALL --cap-add X` keeps only X; `--cap-add ALL --cap-drop X` keeps all
/// but X; otherwise the base (Docker's 14, or all with `--privileged`) less the drops,
/// plus the adds.
pub(crate) fn for_command(privileged: bool, add: &[CapArg], drop: &[CapArg]) -> CapabilitySet {
    let base = if privileged {
        named()
    } else {
        DOCKER_DEFAULT.into_iter().collect()
    };
    let adds = |set| add.iter().fold(set, |set, &arg| with(set, arg));
    let drops = |set| drop.iter().fold(set, |set, &arg| without(set, arg));
    if add.contains(&CapArg::All) {
        drops(named())
    } else if drop.contains(&CapArg::All) {
        adds(CapabilitySet::EMPTY)
    } else {
        adds(drops(base))
    }
}

/// The names of `kept` without `CAP_`, as `--cap-add` takes them, or `none`: what
/// `--verbose` says the command keeps.
pub(crate) fn names(kept: CapabilitySet) -> String {
    let names: Vec<&str> = kept.iter().map(Capability::name).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(",")
    }
}

/// The sets the command is left with, `kept` in bounding, permitted and effective,
/// inheritable and ambient empty. Capabilities newer than reexec's names are kept when
/// every named one is (`--privileged`, `--cap-add ALL`): all means all on a newer
/// kernel too, and anything less keeps only what it names.
pub(crate) fn at_exec(kept: CapabilitySet) -> Capabilities {
    let keep = if named().is_subset(kept) {
        CapabilitySet::ALL
    } else {
        kept
    };
    let mut sets = Capabilities::none();
    sets.bounding = keep;
    sets.permitted = keep;
    sets.effective = keep;
    sets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> CapabilitySet {
        names
            .iter()
            .map(|name| name.parse::<Capability>().unwrap())
            .collect()
    }

    fn args(names: &[&str]) -> Vec<CapArg> {
        names
            .iter()
            .map(|name| CapArg::parse(name).unwrap())
            .collect()
    }

    #[test]
    fn names_parse_as_docker_writes_them() {
        assert_eq!(
            CapArg::parse("SYS_ADMIN"),
            Ok(CapArg::One(Capability::SysAdmin))
        );
        assert_eq!(
            CapArg::parse("cap_sys_admin"),
            Ok(CapArg::One(Capability::SysAdmin))
        );
        assert_eq!(CapArg::parse("all"), Ok(CapArg::All));
        assert_eq!(CapArg::parse("CAP_ALL"), Ok(CapArg::All));
        assert_eq!(
            CapArg::parse("CHECKPOINT_RESTORE"),
            Ok(CapArg::One(Capability::CheckpointRestore))
        );
        let error = CapArg::parse("SYS_ADMINN").unwrap_err();
        assert!(
            error.starts_with("unknown capability \"SYS_ADMINN\"; use ALL or one of: CHOWN, ")
                && error.contains("NET_ADMIN")
                && error.ends_with(", CHECKPOINT_RESTORE"),
            "{error}"
        );
    }

    #[test]
    fn the_default_is_dockers_fourteen() {
        let default = for_command(false, &[], &[]);
        assert_eq!(default.bits().count_ones(), 14);
        assert!(
            !default.contains(Capability::SysAdmin) && !default.contains(Capability::SysPtrace),
            "{default}"
        );
        assert_eq!(
            names(default),
            "CHOWN,DAC_OVERRIDE,FOWNER,FSETID,KILL,SETGID,SETUID,SETPCAP,NET_BIND_SERVICE,\
             NET_RAW,SYS_CHROOT,MKNOD,AUDIT_WRITE,SETFCAP"
        );
    }

    #[test]
    fn adds_and_drops_follow_dockers_rule() {
        let default = for_command(false, &[], &[]);
        assert_eq!(
            for_command(false, &args(&["NET_ADMIN"]), &args(&["CHOWN"])),
            without(
                with(default, CapArg::One(Capability::NetAdmin)),
                CapArg::One(Capability::Chown)
            )
        );
        assert_eq!(
            for_command(false, &args(&["NET_BIND_SERVICE"]), &args(&["ALL"])),
            set(&["NET_BIND_SERVICE"])
        );
        let all_but_admin = without(named(), CapArg::One(Capability::SysAdmin));
        assert_eq!(
            for_command(false, &args(&["ALL"]), &args(&["SYS_ADMIN"])),
            all_but_admin
        );
        assert_eq!(for_command(true, &[], &[]), named());
        assert_eq!(named().bits(), (1 << 41) - 1);
        assert_eq!(for_command(true, &[], &args(&["SYS_ADMIN"])), all_but_admin);
        assert_eq!(names(for_command(false, &[], &args(&["ALL"]))), "none");
    }

    #[test]
    fn all_keeps_capabilities_newer_than_the_names_and_less_keeps_only_names() {
        let all = at_exec(for_command(true, &[], &[]));
        assert_eq!(all.bounding, CapabilitySet::ALL);
        assert_eq!(all.permitted, CapabilitySet::ALL);
        assert_eq!(all.effective, CapabilitySet::ALL);
        let all_but_one = for_command(true, &[], &args(&["SYS_ADMIN"]));
        let sets = at_exec(all_but_one);
        for set in [sets.bounding, sets.permitted, sets.effective] {
            assert_eq!(set, all_but_one);
        }
        // Nothing for a program that switches to another uid, or execs a file with
        // inheritable file capabilities, to take back (CVE-2022-24769).
        assert_eq!(sets.inheritable, CapabilitySet::EMPTY);
        assert_eq!(sets.ambient, CapabilitySet::EMPTY);
    }
}
