//! Limits and privileges of the child (issue #13): [`Command::rlimit`],
//! [`Command::capabilities`] and [`Command::no_new_privs`], checked here in the parent,
//! taken on by the child after it changed directory (`sys/child.rs`, `restrict`), and
//! what a refusal there means.

use std::io;

use super::Command;
use crate::capabilities::{Capabilities, Capability};
use crate::error::{Error, Step};
use crate::rlimit::{Resource, describe_limit};
use crate::sys::{RlimitPlan, split_item};

impl Command {
    /// Sets the child's `soft` and `hard` limit of `resource` (setrlimit(2)) before it
    /// runs anything of its own; [`RLIM_INFINITY`](crate::RLIM_INFINITY) for no limit.
    /// Repeatable: a later call for the same resource replaces the earlier one. A program
    /// the child executes, and every process it starts, inherits the limits.
    ///
    /// The child sets them after it changed to its working directory, so its descriptors
    /// are in place before [`Resource::NoFile`] applies; with its capabilities still whole,
    /// and before it gives any up ([`capabilities`](Self::capabilities)).
    ///
    /// A soft limit above the hard one makes `spawn` fail with [`Error::InvalidInput`]
    /// before any child exists. Lowering a limit, and raising a soft limit up to the hard
    /// one, needs no privilege; raising a hard limit above the one the child inherits
    /// needs `CAP_SYS_RESOURCE` in the initial user namespace (never there in a new user
    /// namespace), and the child's refusal comes back as [`Error::Refused`] with
    /// [`Step::SetResourceLimit`], naming the limit.
    ///
    /// ```no_run
    /// use reexec::{Command, Resource};
    ///
    /// #[reexec::entry("limited")]
    /// fn limited() {
    ///     // Max open files  64  128  files
    ///     print!("{}", std::fs::read_to_string("/proc/self/limits").unwrap());
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         Command::new("limited")
    ///             .rlimit(Resource::NoFile, 64, 128)
    ///             .rlimit(Resource::Core, 0, 0)
    ///             .status()?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn rlimit(&mut self, resource: Resource, soft: u64, hard: u64) -> &mut Command {
        match self
            .rlimits
            .iter_mut()
            .find(|(given, ..)| *given == resource)
        {
            Some(limit) => *limit = (resource, soft, hard),
            None => self.rlimits.push((resource, soft, hard)),
        }
        self
    }

    /// The capabilities the child keeps, and with them what the program it executes has:
    /// see [`Capabilities`] for the sets, what `execve` makes of them for root and for
    /// other uids, and [`Capabilities::only`]. Replaces what was given before; `None`, the
    /// default, leaves the child's capabilities as it got them.
    ///
    /// The child gives them up with raw system calls after its
    /// [resource limits](Self::rlimit) are set: the bounding set first, then the
    /// effective, permitted and inheritable sets (`capset(2)`), then the ambient set.
    /// Sets the kernel could never take on together (effective beyond permitted, …) make
    /// `spawn` fail with [`Error::InvalidInput`] before any child exists. Dropping from
    /// the bounding set needs `CAP_SETPCAP`: a child in a new user namespace has it, one
    /// in an unprivileged caller's own does not, and that refusal comes back as
    /// [`Error::Refused`] with [`Step::DropBoundingCapabilities`], naming the
    /// capability (keep the bounding set whole with
    /// [`CapabilitySet::ALL`](crate::CapabilitySet::ALL) to drop the rest without it).
    ///
    /// ```no_run
    /// use reexec::{Capabilities, Capability, Command, Namespaces};
    ///
    /// #[reexec::entry("binds-low-ports-only")]
    /// fn binds_low_ports_only() {
    ///     // CapEff: 0000000000000400, the same in CapPrm, CapBnd, CapInh and CapAmb.
    ///     print!("{}", std::fs::read_to_string("/proc/self/status").unwrap());
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         Command::new("binds-low-ports-only")
    ///             .namespaces(Namespaces::USER | Namespaces::NET)
    ///             .map_root_to_caller()
    ///             .capabilities(Some(Capabilities::only([Capability::NetBindService])))
    ///             .no_new_privs(true)
    ///             .status()?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn capabilities(&mut self, capabilities: Option<Capabilities>) -> &mut Command {
        self.capabilities = capabilities;
        self
    }

    /// Sets `no_new_privs` in the child (`prctl(PR_SET_NO_NEW_PRIVS)`, `NoNewPrivs: 1` in
    /// `/proc/PID/status`), after its [capabilities](Self::capabilities) are cut: neither
    /// the program it executes nor any process that one starts can gain privilege at
    /// exec again — set-user-ID and set-group-ID bits and file capabilities are ignored —
    /// and none can turn it off. Off by default; a filter given with
    /// [`seccomp`](Self::seccomp) sets it anyway, just before it is installed.
    ///
    /// ```no_run
    /// #[reexec::entry("no-new-privileges")]
    /// fn no_new_privileges() {
    ///     // `sudo`, `su`, `ping` with file capabilities: no privilege gained here.
    /// }
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         reexec::Command::new("no-new-privileges").no_new_privs(true).status()?;
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn no_new_privs(&mut self, no_new_privs: bool) -> &mut Command {
        self.no_new_privs = no_new_privs;
        self
    }

    /// The limits for the child's plan, in the order given; a soft limit above its hard
    /// one is refused here, before any child exists.
    pub(super) fn rlimit_plan(&self) -> Result<Vec<RlimitPlan>, Error> {
        self.rlimits
            .iter()
            .map(|&(resource, soft, hard)| {
                if soft > hard {
                    return Err(Error::InvalidInput {
                        what: "resource limit (Command::rlimit)",
                        value: describe(resource, soft, hard).into(),
                        why: "the soft limit is above the hard one; the soft limit is the one \
                              in force and may only be raised up to the hard one: give a soft \
                              limit no higher than the hard one"
                            .into(),
                    });
                }
                Ok(RlimitPlan {
                    resource: resource.raw(),
                    soft,
                    hard,
                })
            })
            .collect()
    }

    /// Refuses capability sets the kernel would never take on together.
    pub(super) fn check_capabilities(&self) -> Result<(), Error> {
        match self
            .capabilities
            .as_ref()
            .and_then(Capabilities::contradiction)
        {
            None => Ok(()),
            Some(why) => Err(Error::InvalidInput {
                what: "capabilities (Command::capabilities)",
                value: self
                    .capabilities
                    .map(|caps| caps.to_string())
                    .unwrap_or_default()
                    .into(),
                why,
            }),
        }
    }

    /// The error of a step of [`restrict`](crate::sys) that failed in the child, with the
    /// errno `word` that also says which limit or capability it was working on.
    pub(super) fn restriction_error(&self, step: Step, word: i32) -> Error {
        let (errno, item) = split_item(word);
        let source = io::Error::from_raw_os_error(errno);
        let (what, hint) = match step {
            Step::SetResourceLimit => match item.and_then(|index| self.rlimits.get(index)) {
                Some(&(resource, soft, hard)) => (
                    describe(resource, soft, hard),
                    rlimit_hint(resource, hard, errno),
                ),
                None => (
                    "a resource limit".into(),
                    rlimit_hint(Resource::Core, 0, errno),
                ),
            },
            Step::DropBoundingCapabilities => (
                capability_name(item),
                match errno {
                    libc::EPERM => "dropping from the bounding set needs CAP_SETPCAP, which the \
                                    child lacks: spawn it in a new user namespace \
                                    (Namespaces::USER, e.g. with map_root_to_caller), where it \
                                    has every capability, or keep the bounding set whole \
                                    (bounding = CapabilitySet::ALL)"
                        .into(),
                    _ => "the kernel refused to drop it".into(),
                },
            ),
            Step::SetCapabilities => (
                "the effective, permitted and inheritable sets".into(),
                "the kernel refused the new sets: locked securebits or a security module \
                 (SELinux, AppArmor) may forbid the change"
                    .into(),
            ),
            Step::SetAmbientCapabilities => (
                match item {
                    Some(_) => capability_name(item),
                    None => "clearing the ambient set".into(),
                },
                match errno {
                    libc::EINVAL => "this kernel has no ambient capabilities (Linux 4.3 and \
                                     later have): leave the ambient set empty"
                        .into(),
                    libc::EPERM => "SECBIT_NO_CAP_AMBIENT_RAISE is set, or a security module \
                                    refuses: leave the ambient set empty"
                        .into(),
                    _ => "the kernel refused".into(),
                },
            ),
            _ => (
                "no_new_privs".into(),
                match errno {
                    libc::EINVAL => "this kernel has no no_new_privs (Linux 3.5 and later \
                                     have)"
                        .into(),
                    _ => "the kernel refused".into(),
                },
            ),
        };
        Error::Refused {
            step,
            source,
            hint: format!("{what}: {hint}"),
        }
    }
}

/// Whether `step` is one of the child's limit and privilege steps, whose errno word says
/// which item failed.
pub(super) fn is_restriction(step: Step) -> bool {
    matches!(
        step,
        Step::SetResourceLimit
            | Step::DropBoundingCapabilities
            | Step::SetCapabilities
            | Step::SetAmbientCapabilities
            | Step::SetNoNewPrivs
    )
}

/// `nofile (RLIMIT_NOFILE) soft 64 hard unlimited`.
fn describe(resource: Resource, soft: u64, hard: u64) -> String {
    format!(
        "{resource} soft {} hard {}",
        describe_limit(soft),
        describe_limit(hard)
    )
}

/// `CAP_NET_ADMIN`, or the number of one this crate has no name for.
fn capability_name(number: Option<usize>) -> String {
    match number {
        Some(number) => match Capability::from_number(number as u8) {
            Some(capability) => capability.to_string(),
            None => format!("capability {number}"),
        },
        None => "a capability".into(),
    }
}

/// Why setting a limit with hard limit `hard` failed with `errno`. The child had the
/// limits this process has (nothing changed them before), so the one it inherited is ours.
fn rlimit_hint(resource: Resource, hard: u64, errno: i32) -> String {
    let inherited = resource.current().map(|(_, hard)| hard);
    match errno {
        libc::EPERM if resource == Resource::NoFile && nr_open().is_some_and(|max| hard > max) => {
            format!(
                "the kernel's ceiling for open files, fs.nr_open, is {}: give a hard limit \
                 no higher",
                nr_open().unwrap_or_default()
            )
        }
        libc::EPERM => format!(
            "the hard limit is above the one the child inherited ({}), and raising a hard \
             limit needs CAP_SYS_RESOURCE in the initial user namespace, which a process in a \
             new user namespace never has: give a hard limit no higher, or spawn from a \
             process with that capability",
            inherited.map_or("unknown".into(), describe_limit)
        ),
        libc::EINVAL => "the kernel refused the values for this resource".into(),
        _ => "the kernel refused".into(),
    }
}

/// `fs.nr_open`, the most descriptors a process may ever have.
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::CapabilitySet;

    #[test]
    fn a_later_limit_for_a_resource_replaces_the_earlier_one() {
        let mut command = Command::new("limited");
        command
            .rlimit(Resource::NoFile, 10, 20)
            .rlimit(Resource::Core, 0, 0)
            .rlimit(Resource::NoFile, 30, 40);
        let plan = command.rlimit_plan().unwrap();
        assert_eq!(
            plan,
            [
                RlimitPlan {
                    resource: libc::RLIMIT_NOFILE as _,
                    soft: 30,
                    hard: 40
                },
                RlimitPlan {
                    resource: libc::RLIMIT_CORE as _,
                    soft: 0,
                    hard: 0
                },
            ]
        );
    }

    #[test]
    fn a_soft_limit_above_the_hard_one_is_refused_before_any_child_exists() {
        let error = Command::new("limited")
            .rlimit(Resource::Stack, 2, 1)
            .spawn()
            .unwrap_err();
        assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
        let text = error.to_string();
        assert!(
            text.contains("stack (RLIMIT_STACK) soft 2 hard 1")
                && text.contains("the soft limit is above the hard one"),
            "{text}"
        );
        // Unlimited is the highest of all.
        let mut command = Command::new("limited");
        command.rlimit(Resource::Cpu, crate::RLIM_INFINITY, 5);
        assert!(command.rlimit_plan().is_err());
        command.rlimit(Resource::Cpu, 5, crate::RLIM_INFINITY);
        assert!(command.rlimit_plan().is_ok());
    }

    #[test]
    fn contradictory_capabilities_are_refused_before_any_child_exists() {
        let mut caps = Capabilities::none();
        caps.effective = CapabilitySet::from_bits(1 << 12);
        let error = Command::new("capable")
            .capabilities(Some(caps))
            .spawn()
            .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
        assert!(
            text.contains("effective holds CAP_NET_ADMIN that permitted does not"),
            "{text}"
        );
    }

    #[test]
    fn child_refusals_name_the_limit_or_capability_and_the_cause() {
        let mut command = Command::new("limited");
        command
            .rlimit(Resource::Core, 0, 0)
            .rlimit(Resource::MsgQueue, 1, crate::RLIM_INFINITY);
        let word = crate::sys::with_item(libc::EPERM, Some(1));
        let error = command.restriction_error(Step::SetResourceLimit, word);
        assert_eq!(error.raw_os_error(), Some(libc::EPERM));
        assert_eq!(error.step(), Some(Step::SetResourceLimit));
        let text = error.to_string();
        assert!(
            text.contains("msgqueue (RLIMIT_MSGQUEUE) soft 1 hard unlimited")
                && text.contains("CAP_SYS_RESOURCE"),
            "{text}"
        );

        let word = crate::sys::with_item(libc::EPERM, Some(21));
        let text = command
            .restriction_error(Step::DropBoundingCapabilities, word)
            .to_string();
        assert!(
            text.contains("; CAP_SYS_ADMIN: dropping") && text.contains("needs CAP_SETPCAP"),
            "{text}"
        );
        let text = command
            .restriction_error(Step::SetAmbientCapabilities, libc::EINVAL)
            .to_string();
        assert!(
            text.contains("clearing the ambient set") && text.contains("Linux 4.3"),
            "{text}"
        );
    }
}
