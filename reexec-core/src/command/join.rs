//! `Command::join`'s checks, made in the parent before the clone, and what the child's
//! refusals usually mean.
//!
//! Runs in the parent. The child enters the namespaces (`sys/child.rs`) once its parent
//! let it go, before anything else of its own: this file decides what it enters, in which
//! order, and what it creates itself afterwards.

use std::ffi::c_int;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use crate::error::{Error, Step};
use crate::namespaces::Namespaces;
use crate::sys::Join;
use crate::sys::pidfd::{JoinFd, classify};

/// What the child does about the namespaces given with `Command::join`.
#[derive(Debug, Default)]
pub(super) struct JoinPlan {
    /// The setns(2) calls, the one with the user namespace first.
    pub(super) joins: Vec<Join>,
    /// The namespaces to create that move from clone(2) to unshare(2) after the joins.
    pub(super) unshare_after_join: Namespaces,
}

/// The namespaces that unshare(2) puts the caller itself in, and so can be created after
/// a join instead of by clone(2): not a PID namespace (only children enter one) nor a
/// time namespace (the child already enters it with unshare, before execve), nor a user
/// namespace (refused with a joined one).
const CREATED_AFTER_JOIN: Namespaces = Namespaces::MOUNT
    .union(Namespaces::UTS)
    .union(Namespaces::IPC)
    .union(Namespaces::NET)
    .union(Namespaces::CGROUP);

/// Checks the joins asked for against each other, against the namespaces to create, and
/// against what each descriptor is; then orders them.
pub(super) fn plan(create: Namespaces, given: &[(Namespaces, OwnedFd)]) -> Result<JoinPlan, Error> {
    let mut plan = JoinPlan::default();
    if given.is_empty() {
        // The common spawn: not even a look at our own user namespace.
        return Ok(plan);
    }
    let mut joined = Namespaces::NONE;
    let own_user_namespace = std::fs::metadata("/proc/self/ns/user")
        .ok()
        .map(|metadata| (metadata.dev(), metadata.ino()));
    for (namespaces, fd) in given {
        let mut namespaces = *namespaces;
        let invalid = |why: String| Error::InvalidInput {
            what: "namespace to join (Command::join)",
            value: format!("{namespaces} from descriptor {}", fd.as_raw_fd()).into(),
            why,
        };
        check_kinds(namespaces, create, joined).map_err(invalid)?;
        joined |= namespaces;
        let step = match classify(fd.as_fd()) {
            JoinFd::Namespace(nstype) => {
                let of_file = Namespaces::from_bits_retain(nstype as u32);
                if of_file != namespaces {
                    return Err(invalid(format!(
                        "the descriptor is a namespace file of the {of_file} namespace; a \
                         namespace file holds one namespace: give the file of the one to \
                         join, or a pidfd to join several of one process"
                    )));
                }
                if namespaces == Namespaces::USER && identity(fd) == own_user_namespace {
                    // setns(2) refuses (EINVAL) to enter the user namespace one is in, and
                    // there is nothing to enter: as nsenter does, leave it out.
                    continue;
                }
                step_of(namespaces)
            }
            JoinFd::Pidfd => {
                if namespaces.contains(Namespaces::USER)
                    && user_namespace_of_pidfd(fd) == own_user_namespace
                {
                    // As for a namespace file: setns(2) refuses (EINVAL) the user
                    // namespace one is in, so join the others of the process only.
                    namespaces.remove(Namespaces::USER);
                    if namespaces.is_empty() {
                        continue;
                    }
                }
                Step::JoinNamespacesOfPidfd
            }
            JoinFd::Other => {
                return Err(invalid(
                    "the descriptor is neither a namespace file (open /proc/PID/ns/NAME) nor \
                     a pidfd"
                        .into(),
                ));
            }
        };
        plan.joins.push(Join {
            fd: fd.as_raw_fd(),
            nstype: namespaces.bits() as c_int,
            step,
        });
    }
    // The user namespace first: the capabilities it gives are what the other joins need.
    // A stable sort keeps the others in the order they were given.
    plan.joins
        .sort_by_key(|join| join.nstype & libc::CLONE_NEWUSER == 0);
    let joins_user = plan
        .joins
        .iter()
        .any(|join| join.nstype & libc::CLONE_NEWUSER != 0);
    if joins_user {
        plan.unshare_after_join = create.intersection(CREATED_AFTER_JOIN);
    }
    Ok(plan)
}

/// Why `namespaces` can't be joined, with `create` to be created and `joined` joined
/// already.
fn check_kinds(
    namespaces: Namespaces,
    create: Namespaces,
    joined: Namespaces,
) -> Result<(), String> {
    if namespaces.is_empty() {
        return Err("name at least one namespace to join".into());
    }
    if !Namespaces::all().contains(namespaces) {
        return Err("bits that name no namespace".into());
    }
    if namespaces.contains(Namespaces::PID) {
        return Err(
            "joining a PID namespace puts only the later children of the process that joins \
             in it, never that process: the entry would run outside it. Join it from an \
             entry that then starts a child of its own, or create a PID namespace"
                .into(),
        );
    }
    if namespaces.contains(Namespaces::TIME) {
        return Err(
            "the kernel lets only a process that shares its memory with no other enter a \
             time namespace (setns: EUSERS), and the child shares its parent's memory until \
             execve; create one with Command::namespaces instead"
                .into(),
        );
    }
    let both = namespaces.intersection(create);
    if !both.is_empty() {
        return Err(format!(
            "the {both} namespace is also to be created (Command::namespaces): a process is \
             in one namespace of each kind; drop it from one of the two"
        ));
    }
    if create.contains(Namespaces::USER) && !namespaces.without(Namespaces::USER).is_empty() {
        return Err(format!(
            "a user namespace created for the child (Namespaces::USER) owns no existing \
             namespace, and gives the child capabilities only over those it owns, so the \
             kernel would refuse to join the {} namespace (EPERM): join the user namespace \
             that owns it too, instead of creating one, or create none",
            namespaces.without(Namespaces::USER)
        ));
    }
    let twice = namespaces.intersection(joined);
    if !twice.is_empty() {
        return Err(format!(
            "the {twice} namespace is joined twice: give each kind once"
        ));
    }
    Ok(())
}

/// The step of a namespace file's join.
fn step_of(namespace: Namespaces) -> Step {
    match namespace {
        Namespaces::USER => Step::JoinUserNamespace,
        Namespaces::MOUNT => Step::JoinMountNamespace,
        Namespaces::UTS => Step::JoinUtsNamespace,
        Namespaces::IPC => Step::JoinIpcNamespace,
        Namespaces::NET => Step::JoinNetNamespace,
        Namespaces::CGROUP => Step::JoinCgroupNamespace,
        // Refused by check_kinds: PID and time, and more than one.
        _ => Step::JoinNamespacesOfPidfd,
    }
}

/// The (device, inode) of the file behind `fd`.
fn identity(fd: &OwnedFd) -> Option<(u64, u64)> {
    nix::sys::stat::fstat(fd)
        .ok()
        .map(|stat| (stat.st_dev, stat.st_ino))
}

/// The (device, inode) of the user namespace of the process behind a pidfd, found through
/// the pid /proc/self/fdinfo gives; `None` once the process has ended.
fn user_namespace_of_pidfd(fd: &OwnedFd) -> Option<(u64, u64)> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
    let pid: i32 = info
        .lines()
        .find_map(|line| line.strip_prefix("Pid:"))?
        .trim()
        .parse()
        .ok()?;
    if pid <= 0 {
        return None;
    }
    let metadata = std::fs::metadata(format!("/proc/{pid}/ns/user")).ok()?;
    Some((metadata.dev(), metadata.ino()))
}

/// Whether `step` is one of a join's, done in the child.
pub(super) fn is_join_step(step: Step) -> bool {
    matches!(
        step,
        Step::JoinUserNamespace
            | Step::JoinMountNamespace
            | Step::JoinUtsNamespace
            | Step::JoinIpcNamespace
            | Step::JoinNetNamespace
            | Step::JoinCgroupNamespace
            | Step::JoinNamespacesOfPidfd
            | Step::CreateNamespacesAfterJoin
    )
}

/// The error of a join the child's kernel refused with `errno`, with what it usually
/// means there.
pub(super) fn refusal(step: Step, errno: i32) -> Error {
    let hint = match (step, errno) {
        (Step::CreateNamespacesAfterJoin, libc::EPERM) => {
            "the joined user namespace gives no CAP_SYS_ADMIN to create namespaces here \
             (is the joined process's uid mapped to us?)"
        }
        (Step::JoinUserNamespace, libc::EINVAL) => {
            "the kernel lets only a process alone in its thread group and not sharing its \
             filesystem context enter a user namespace, and not the one it is in already"
        }
        (_, libc::EPERM) => {
            "the child has no CAP_SYS_ADMIN over the user namespace that owns the namespace \
             (nor in its own): join the user namespace that owns this one too"
        }
        (_, libc::EINVAL) => {
            "the descriptor is not a namespace of that kind, or (with a pidfd) the kernel \
             can't join namespaces by pidfd (before Linux 5.8)"
        }
        (_, libc::ESRCH) => "the process of the pidfd has ended",
        (_, libc::EBADF) => "the descriptor is neither a namespace file nor a pidfd",
        (_, libc::EUSERS) => "the kernel wants a process that shares its memory with none",
        _ => "see setns(2)",
    };
    Error::Refused {
        step,
        source: io::Error::from_raw_os_error(errno),
        hint: hint.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &str) -> OwnedFd {
        std::fs::File::open(path).unwrap().into()
    }

    #[test]
    fn kinds_that_cannot_be_joined_are_refused_with_why() {
        let none = Namespaces::NONE;
        assert!(
            check_kinds(Namespaces::PID, none, none)
                .unwrap_err()
                .contains("children")
        );
        assert!(
            check_kinds(Namespaces::TIME, none, none)
                .unwrap_err()
                .contains("EUSERS")
        );
        assert!(check_kinds(none, none, none).is_err());
        let both = check_kinds(Namespaces::NET, Namespaces::NET | Namespaces::UTS, none);
        assert!(both.unwrap_err().contains("also to be created"));
        let twice = check_kinds(Namespaces::NET, none, Namespaces::NET);
        assert!(twice.unwrap_err().contains("twice"));
        assert!(check_kinds(Namespaces::NET, Namespaces::UTS, Namespaces::IPC).is_ok());
        let owned_by_nothing = check_kinds(Namespaces::NET, Namespaces::USER, none);
        assert!(owned_by_nothing.unwrap_err().contains("owns no existing"));
    }

    #[test]
    fn a_file_of_another_kind_or_no_namespace_is_refused() {
        let error = plan(
            Namespaces::NONE,
            &[(Namespaces::UTS, open("/proc/self/ns/net"))],
        )
        .unwrap_err();
        assert!(error.to_string().contains("net namespace"), "{error}");
        let error = plan(
            Namespaces::NONE,
            &[(Namespaces::NET, open("/proc/self/stat"))],
        )
        .unwrap_err();
        assert!(error.to_string().contains("neither"), "{error}");
    }

    #[test]
    fn our_own_user_namespace_is_left_out() {
        let plan = plan(
            Namespaces::MOUNT | Namespaces::PID,
            &[
                (Namespaces::NET, open("/proc/self/ns/net")),
                (Namespaces::USER, open("/proc/self/ns/user")),
            ],
        )
        .unwrap();
        // Our own user namespace: nothing to enter, so nothing moves after the joins.
        assert_eq!(plan.joins.len(), 1);
        assert_eq!(plan.joins[0].step, Step::JoinNetNamespace);
        assert_eq!(plan.unshare_after_join, Namespaces::NONE);
    }
}
