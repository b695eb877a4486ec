//! The unsafe core: `clone(2)` and everything the child does before `execve(2)`, cut by
//! which process runs the code.
//!
//! | file | runs in |
//! |---|---|
//! | `spawn.rs` | the parent: the thread that calls `Command::spawn`, around the clone |
//! | `child.rs` | the child, from clone(2) to execve(2), on the parent's memory: the one file to audit for async-signal safety |
//! | `raw.rs` | the child: the system calls it makes, without libc |
//! | `clone3.rs` | both: the clone3 system call, whose child leaves it on its own stack and calls `child.rs` |
//! | `cstring_array.rs` | built by the parent; the child hands it to execve |
//! | `fork.rs` | a process with one thread — the fork server, or a caller of `Command::without_exec` — around its fork-style clone, and the child after its setup |
//! | `message.rs` | the fork server and its caller: their messages, sent and received without allocation |
//! | this file | both: the plan the parent writes and the child reads — data, and pure functions of it |
//!
//! # How the child is started
//!
//! The child shares the parent's memory (`CLONE_VM`) instead of getting a copy of it. A
//! fork-style clone copies the page tables of the whole parent — a cost that grows with
//! the parent's resident memory, 50 ms and more per spawn from a parent of 2 GiB against
//! about 1 ms now (BENCHMARKS.md, item 3) — and then makes both processes fault on every
//! page they write until the child execs. As glibc's and musl's `posix_spawn` do:
//!
//! - When the parent has nothing to do before the child execs, the clone also takes
//!   `CLONE_VFORK`: the calling thread sleeps inside clone(2) until the child has called
//!   execve or ended, so the two never run at once.
//! - When the parent must act while the child waits — writing the id maps of a new user
//!   namespace, running a `parent_setup` hook — `CLONE_VFORK` would deadlock: the parent
//!   would wait for an exec that waits for the parent. The clone then takes `CLONE_VM`
//!   alone; the child waits on a pipe, the parent does its part and lets it go, and
//!   [`spawn()`] returns only once the child has exec'd or ended (end-of-file on a
//!   close-on-exec pipe). Go's `syscall` package gives up its vfork path here and copies
//!   the page tables; we don't.
//!
//! `spawn.rs`'s `Handshake` makes that choice, from whether the parent has a part to play,
//! and owns every pipe of it, from its creation to the end-of-file.
//!
//! A child given a cgroup whose one directory is on a cgroup v2 hierarchy is made by
//! clone3 with `CLONE_INTO_CGROUP` instead (`clone3.rs`; x86_64): it starts in the
//! cgroup, so the parent has no pid to write into `cgroup.procs`, and the clone keeps
//! `CLONE_VFORK` if nothing else is to be done. Where the kernel (before 5.7) or a
//! seccomp filter refuses clone3, or on a v1 or hybrid cgroup, it is clone(2), and the
//! parent writes the pid while the child waits.
//!
//! # What sharing memory asks of the child
//!
//! - It writes no memory the parent uses: only its own stack — a mapping of its own, kept
//!   by the calling thread for its next spawn, with a guard page below it so that an
//!   overflow faults instead of writing over the parent's data — and the one report word
//!   the parent reads after the child is done.
//! - It makes raw system calls only (`raw.rs`), never libc's wrappers: those store
//!   an error in `errno`, which lives in the thread-local storage of the thread that
//!   called clone. The child runs on that thread's TLS (clone gives it no other), and in
//!   the `CLONE_VM`-alone case that thread runs at the same time and may be reading its
//!   own `errno` after a failed call of its own. The raw calls return `-errno` instead and
//!   touch no TLS; nothing else in the child does either.
//! - As after any clone of a process that may have threads, it allocates nothing, takes
//!   no lock, formats nothing and cannot panic: another thread may have held the
//!   allocator's lock at the moment of the clone.
//! - No handler of the parent's may run in it: every signal is blocked in the calling
//!   thread around the clone, so the child starts with all of them blocked, and every
//!   handled signal is back to its default before it unblocks any — by the clone itself
//!   where clone3 takes `CLONE_CLEAR_SIGHAND`, else by the child. A handler running in
//!   the child would run on the parent's memory.
//! - Everything it reads — the [`ChildPlan`], the strings the plan points into, its stack —
//!   stays alive until it has exec'd or ended: [`spawn()`] returns only then, and when it must
//!   leave early (the parent's part failed or panicked) it kills and reaps the child first.
//!   execve(2) drops the shared memory before it closes close-on-exec descriptors, and
//!   exit(2) before it closes any, so end-of-file on a pipe whose write end only the child
//!   holds means the child is done with our memory.

use std::ffi::{CStr, c_int};
use std::os::fd::RawFd;

use crate::capabilities::Capabilities;
use crate::error::Step;

mod child;
mod clone3;
mod cstring_array;
mod fork;
mod message;
pub(crate) mod pidfd;
mod raw;
mod spawn;

pub(crate) use child::keep_capabilities;
pub(crate) use cstring_array::CStringArray;
pub(crate) use fork::{
    ArgvArea, CallerFds, Cloned, SpawnSlot, StartStrings, WorkingDirectory, adopt_received,
    adopt_server_socket, clone_for_caller, clone_here, end_forked_child, finish_setup,
    flush_c_stdio, hide_arguments, ignore_broken_pipes, one_thread_and_start_strings,
    set_environment, show_environment,
};
pub(crate) use message::{Control, receive as receive_message, send as send_message};
pub(crate) use spawn::{
    IntoCgroup, ReapOnDrop, SpawnError, Spawned, cloexec_pipe, clone3_may_run, dup_above,
    parent_in_proc, reap, release, retry_interrupted, spawn, wait,
};

/// What the child is to do, prepared by the parent before the clone.
pub(crate) struct ChildPlan<'a> {
    pub(crate) exe: &'a CStr,
    pub(crate) argv: &'a CStringArray,
    pub(crate) envp: &'a CStringArray,
    pub(crate) cwd: Option<&'a CStr>,
    /// The descriptor to install as fd 0, 1 and 2; `None` keeps the parent's.
    pub(crate) stdio: [Option<RawFd>; 3],
    /// The descriptors the child gets at chosen numbers, sorted by `target`, each target 3
    /// or above and given once. No `source` is below 3 or the target of another: then
    /// installing stdio or one descriptor never overwrites a source still to be installed,
    /// whatever cycles the numbers asked for make (`Command` moves the sources that were).
    /// Every other descriptor from 3 up is closed at execve.
    pub(crate) fds: &'a [GivenFd],
    /// The signal the child gets when its parent dies; 0 for none.
    pub(crate) death_signal: c_int,
    /// The parent's pid, to catch a parent that died before the death signal was armed.
    pub(crate) parent_pid: libc::pid_t,
    /// `CLONE_NEW*` flags for clone(2).
    pub(crate) clone_flags: c_int,
    /// Enter a new time namespace with unshare(2) before execve: clone(2) can't.
    pub(crate) unshare_time: bool,
    /// A signal left blocked across execve; see the dispatch's `death_signal.rs`. 0 for
    /// none.
    pub(crate) keep_blocked: c_int,
    // Limits and privileges (issue #13), applied after chdir in this order.
    /// Resource limits the child sets on itself with prlimit64, in order, one per resource.
    pub(crate) rlimits: &'a [RlimitPlan],
    /// The capabilities the child keeps; `None` leaves them as they are.
    pub(crate) capabilities: Option<Capabilities>,
    /// `PR_SET_NO_NEW_PRIVS` before execve.
    pub(crate) no_new_privs: bool,
    /// The seccomp filter installed last, with `no_new_privs`, just before execve.
    pub(crate) seccomp: Option<&'a [libc::sock_filter]>,

    // Joining existing namespaces (`Command::join`).
    /// The namespaces to enter with setns(2) once the parent let the child go, in this
    /// order: the one with the user namespace first. Each descriptor stays open in the
    /// child until then, and closes at execve.
    pub(crate) joins: &'a [Join],
    /// `CLONE_NEW*` flags the child creates with unshare(2) right after the joins, instead
    /// of clone(2) creating them: with a joined user namespace, so that the joined one owns
    /// them.
    pub(crate) unshare_after_join: c_int,

    /// Take gid 0, then uid 0, of the new user namespace once the maps are written: the
    /// caller's own id is not mapped there (`0:100000:65536`), so the child would run as
    /// the overflow id and lose every capability at execve.
    pub(crate) take_root_gid: bool,
    pub(crate) take_root_uid: bool,
}

/// One setns(2) of the child: `fd`, a namespace file or a pidfd, and the `CLONE_NEW*`
/// flags to join of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Join {
    pub(crate) fd: RawFd,
    pub(crate) nstype: c_int,
    /// The step named when this join fails.
    pub(crate) step: Step,
}

/// A resource limit the child sets: the kernel's resource number and the values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RlimitPlan {
    pub(crate) resource: c_int,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

/// The errno word of a failed step over a list (the resource limits, the capabilities),
/// which also says which item failed: `errno | (item + 1) << 16`; errnos are below 4096.
/// `None` for a failure of the step as a whole.
pub(crate) fn with_item(errno: i32, item: Option<usize>) -> i32 {
    let item = item.map_or(0, |item| (item as i32).wrapping_add(1) & 0x7fff);
    errno | item << 16
}

/// The errno and item that [`with_item`] put in `word`.
pub(crate) fn split_item(word: i32) -> (i32, Option<usize>) {
    let item = (word >> 16) & 0x7fff;
    (word & 0xffff, (item > 0).then(|| item as usize - 1))
}

/// Whether `fd` is an open descriptor of this process.
pub(crate) fn is_open(fd: RawFd) -> bool {
    raw::fd_flags(fd).is_ok()
}

/// A descriptor of the parent that the child gets as `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GivenFd {
    pub(crate) source: RawFd,
    pub(crate) target: RawFd,
}

/// Whether `given` keeps the rules of [`ChildPlan::fds`].
pub(crate) fn follows_the_rules(given: &[GivenFd]) -> bool {
    given.windows(2).all(|pair| pair[0].target < pair[1].target)
        && given.iter().all(|fd| {
            fd.target > 2
                && fd.source > 2
                && (fd.source == fd.target || !is_given_target(given, fd.source))
        })
}

/// Whether `fd` is the target of one of `given` (sorted by target).
fn is_given_target(given: &[GivenFd], fd: RawFd) -> bool {
    given
        .binary_search_by_key(&fd, |given| given.target)
        .is_ok()
}

/// The exit status of a child whose setup failed; the parent learns the real cause from
/// the report and never shows this number to users.
const SETUP_FAILED: c_int = 127;

/// The report word of a failed step: never 0, which means "nothing failed".
fn encode_report(step: Step, errno: i32) -> u64 {
    1 << 63 | u64::from(step.code() & 0x7fff_ffff) << 32 | u64::from(errno as u32)
}

pub(crate) fn decode_report(report: u64) -> (Option<Step>, i32) {
    (
        Step::from_code((report >> 32) as u32 & 0x7fff_ffff),
        report as u32 as i32,
    )
}

/// What the tests of these modules share.
#[cfg(test)]
mod testing {
    /// This thread's errno.
    pub(super) fn errno() -> i32 {
        // SAFETY: reads this thread's errno.
        unsafe { *libc::__errno_location() }
    }

    /// Sets this thread's errno, which nothing else reads now.
    pub(super) fn set_errno(value: i32) {
        // SAFETY: sets this thread's errno, which nothing else reads now.
        unsafe { *libc::__errno_location() = value };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        for (step, errno) in [
            (Step::ChangeDirectory, libc::ENOENT),
            (Step::ALL[0], 0),
            (Step::Exec, libc::E2BIG),
        ] {
            let report = encode_report(step, errno);
            assert_ne!(report, 0, "0 means no report");
            assert_eq!(decode_report(report), (Some(step), errno));
        }
    }

    #[test]
    fn items_travel_with_the_errno() {
        for (errno, item) in [
            (libc::EPERM, Some(0)),
            (libc::EINVAL, Some(63)),
            (4095, None),
        ] {
            let word = with_item(errno, item);
            assert_eq!(split_item(word), (errno, item));
            let report = encode_report(Step::SetResourceLimit, word);
            assert_eq!(decode_report(report), (Some(Step::SetResourceLimit), word));
        }
        assert_eq!(with_item(libc::EPERM, None), libc::EPERM);
    }

    #[test]
    fn the_rules_of_given_descriptors() {
        let given = |pairs: &[(RawFd, RawFd)]| -> Vec<GivenFd> {
            pairs
                .iter()
                .map(|&(source, target)| GivenFd { source, target })
                .collect()
        };
        // A source at its own number, or at no target: fine.
        assert!(follows_the_rules(&given(&[(3, 3), (10, 4), (11, 5)])));
        // A swap: the source of one is the target of the other.
        assert!(!follows_the_rules(&given(&[(4, 3), (3, 4)])));
        // A source the installing of stdio would overwrite.
        assert!(!follows_the_rules(&given(&[(1, 3)])));
        // Unsorted, twice, or a stdio number.
        assert!(!follows_the_rules(&given(&[(10, 4), (11, 3)])));
        assert!(!follows_the_rules(&given(&[(10, 4), (11, 4)])));
        assert!(!follows_the_rules(&given(&[(10, 2)])));
    }
}
