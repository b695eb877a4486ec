//! Every `unsafe` of ns-process, here and in the submodules: the system calls nix does
//! not wrap — descriptors it hands on, the command's start from the init (`spawn`), its
//! capabilities cut, its user (`--user`) taken on and its seccomp filter installed in its
//! child before exec, where only async-signal-safe calls may run, the new mount API
//! (`mount_api`), terminal ioctls and the command's own session (`tty`). The rest of the
//! crate denies `unsafe_code`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::libc;

pub(crate) mod mount_api;
// ns-runtime (#16): signals to a container's init by pidfd.
pub(crate) mod pidfd;
// The command's start from the init, sharing its memory until exec (#14).
pub(crate) mod spawn;
pub(crate) mod tty;

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether descriptor `fd` is open in this process.
pub(crate) fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only asks about the number: nothing is read, written or closed.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// Takes ownership of `fd`, a descriptor this process was handed by number — the
/// caller's `--preserve-fds`, the init's start report — or `None` if it is not open.
///
/// Only for such numbers, each claimed once, before anything else could have taken the
/// number: ns-process claims the preserved ones with validate() having found them open
/// before it opened anything of its own, the init its report before its setup.
pub(crate) fn claim_handed_fd(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: per the above, the descriptor is open (checked here) and owned by nothing
    // else in this process, so the OwnedFd is its one owner.
    is_open(fd).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Marks every descriptor from `first` up close-on-exec, so that only those below it
/// reach the command. Where close_range(2) is missing (before Linux 5.11) there is
/// nothing to do: the init opens every descriptor of its own close-on-exec.
pub(crate) fn close_on_exec_from(first: RawFd) -> io::Result<()> {
    // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors
    // from `first` up, none of which this process relies on across exec.
    let result = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    match result {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            error if matches!(error.raw_os_error(), Some(libc::ENOSYS | libc::EINVAL)) => Ok(()),
            error => Err(error),
        },
    }
}

/// Drops every supplementary group, where this user namespace lets us: with a
/// single-id map written by an unprivileged parent `setgroups` is denied (EPERM), and the
/// groups stay what the kernel shows as the overflow group.
fn drop_supplementary_groups() -> io::Result<()> {
    // SAFETY: setgroups(2) with a count of 0 reads no memory; the pointer is null.
    let result = unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>()) };
    match check(result as libc::c_int) {
        Err(error) if error.raw_os_error() == Some(libc::EPERM) => Ok(()),
        other => other,
    }
}

/// Makes `gid` and then `uid` this thread's real, effective and saved ids. Leaving uid
/// 0 this way clears the permitted, effective and ambient sets (capabilities(7): no
/// `SECBIT_KEEP_CAPS` is set), so a user other than root keeps no capability. Raw system
/// calls: glibc's wrappers have every thread of the process switch too (its setxid
/// broadcast), and the only thread to switch is this one, about to exec.
fn switch_ids(uid: u32, gid: u32, groups: &[libc::gid_t]) -> io::Result<()> {
    if groups.is_empty() {
        drop_supplementary_groups()?;
    } else {
        // --group-add (#16): the init checked that setgroups is allowed and each gid mapped.
        // SAFETY: setgroups(2) reads `groups.len()` gids from the slice, which lives for
        // the call.
        let result = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
        check(result as libc::c_int)?;
    }
    // SAFETY: setresgid(2) and setresuid(2) take numbers and touch no memory of ours.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) } as libc::c_int)?;
    // SAFETY: as above.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) } as libc::c_int)
}

/// Leaves this thread, a child about to exec the command, the capabilities `keep` keeps
/// and no more, running as `user` (uid, gid) with the supplementary `groups` when given.
/// reexec's
/// [`Capabilities::apply_to_current_thread`](reexec::Capabilities::apply_to_current_thread)
/// cuts the sets; a user is taken on in between: the bounding set first (dropping from it
/// needs `CAP_SETPCAP`, which the later steps may remove), inheritable and ambient
/// emptied, then the ids (which needs `CAP_SETUID` and `CAP_SETGID`, whatever the command
/// keeps, and empties the sets of a user other than root), then effective and permitted.
/// `keep`'s inheritable and ambient sets are empty, as Docker's since CVE-2022-24769: a
/// program that switched to another user would otherwise regain the kept capabilities
/// on exec of a file with inheritable file capabilities.
///
/// Raw system calls only, allocation-free: it runs in a child that shares the init's
/// memory (`spawn`).
pub(crate) fn cut_capabilities(
    keep: reexec::Capabilities,
    user: Option<(u32, u32)>,
    groups: &[libc::gid_t],
) -> io::Result<()> {
    if let Some((uid, gid)) = user {
        // The first cut when a user is taken on: effective and permitted as they are,
        // for the switch.
        let mut before_switch = keep;
        before_switch.permitted = reexec::CapabilitySet::ALL;
        before_switch.effective = reexec::CapabilitySet::ALL;
        before_switch.apply_to_current_thread()?;
        switch_ids(uid, gid, groups)?;
    }
    keep.apply_to_current_thread()
}

/// Whether this kernel takes the filters `--seccomp` compiles, which kill the calls of
/// other architectures with `SECCOMP_RET_KILL_PROCESS` (Linux 4.14): `Err` with EINVAL or
/// ENOSYS on a kernel without seccomp filters (`CONFIG_SECCOMP_FILTER`) or older.
pub(crate) fn seccomp_filters_available() -> io::Result<()> {
    let action: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    // SAFETY: seccomp(SECCOMP_GET_ACTION_AVAIL) reads one u32 from a live local and
    // changes nothing.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0,
            &action as *const u32,
        )
    } as libc::c_int)
}

/// Binds this thread, and what it execs, to `program`: the last step of the command's
/// child before exec (`spawn`), after its capabilities are cut and its user taken on,
/// whose calls the filter may refuse. `no_new_privs` is set first (the init set it already;
/// the kernel wants it of a filter installed without `CAP_SYS_ADMIN`, which the command
/// has lost by then). Allocation-free.
pub(crate) fn install_seccomp(program: &reexec::SeccompProgram) -> io::Result<()> {
    let instructions = program.instructions();
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes numbers and touches no memory of ours.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    // `SeccompProgram` holds 1 to 4096 instructions: the length fits.
    let fprog = libc::sock_fprog {
        len: instructions.len() as u16,
        filter: instructions.as_ptr().cast_mut(),
    };
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) reads the sock_fprog, a live local, and
    // the instructions it points to, which `program` owns for the call; the kernel copies
    // them and keeps no pointer.
    check(unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        )
    } as libc::c_int)
}
