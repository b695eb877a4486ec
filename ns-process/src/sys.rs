//! Every `unsafe` of ns-process, here and in the submodules: the system calls nix does
//! not wrap — descriptors it hands on, the command's capabilities cut, its user
//! (`--user`) taken on and its seccomp filter installed in its forked child, where only async-signal-safe calls may run,
//! the new mount API (`mount_api`), terminal ioctls and the command's own session
//! (`tty`). The rest of the crate denies `unsafe_code`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::libc;

pub(crate) mod mount_api;
pub(crate) mod tty;
use std::os::unix::process::CommandExt;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, as two 32-bit halves.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn check(result: libc::c_int) -> io::Result<()> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Removes `capability` from this thread's bounding set: no program it execs can get it
/// back (needs `CAP_SETPCAP`).
fn drop_from_bounding_set(capability: u8) -> io::Result<()> {
    // SAFETY: prctl(PR_CAPBSET_DROP) takes a number and touches no memory of ours.
    check(unsafe {
        libc::prctl(
            libc::PR_CAPBSET_DROP,
            libc::c_ulong::from(capability),
            0,
            0,
            0,
        )
    })
}

/// Empties this thread's ambient set, which would otherwise pass capabilities to a
/// program run by a non-root user.
fn clear_ambient_capabilities() -> io::Result<()> {
    // SAFETY: prctl(PR_CAP_AMBIENT, CLEAR_ALL) takes numbers and touches no memory of ours.
    check(unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    })
}

/// The highest capability number this kernel knows: PR_CAPBSET_READ answers EINVAL
/// past it.
pub(crate) fn last_capability() -> io::Result<u8> {
    let mut last = None;
    for number in 0..64u8 {
        // SAFETY: prctl(PR_CAPBSET_READ) takes a number and touches no memory of ours.
        let known =
            unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(number), 0, 0, 0) };
        if known < 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(error);
        }
        last = Some(number);
    }
    last.ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
}

/// This thread's permitted set.
fn permitted_capabilities() -> io::Result<u64> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) with a version-3 header reads the header and writes two CapData
    // structs, which is the array we pass; both live across the call.
    check(unsafe {
        libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) as libc::c_int
    })?;
    Ok(u64::from(data[0].permitted) | u64::from(data[1].permitted) << 32)
}

/// Sets this thread's effective, permitted and inheritable sets; each may only shrink
/// (permitted), or stay within what the kernel allows.
fn set_capabilities(effective: u64, permitted: u64, inheritable: u64) -> io::Result<()> {
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |bits: u64, high: bool| (if high { bits >> 32 } else { bits }) as u32;
    let data = [false, true].map(|high| CapData {
        effective: half(effective, high),
        permitted: half(permitted, high),
        inheritable: half(inheritable, high),
    });
    // SAFETY: capset(2) with a version-3 header reads the header and two CapData structs,
    // which is the array we pass; both live across the call.
    check(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) as libc::c_int })
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
    match check(unsafe { libc::setgroups(0, std::ptr::null()) }) {
        Err(error) if error.raw_os_error() == Some(libc::EPERM) => Ok(()),
        other => other,
    }
}

/// Makes `gid` and then `uid` this thread's real, effective and saved ids. Leaving uid
/// 0 this way clears the permitted, effective and ambient sets (capabilities(7): no
/// `SECBIT_KEEP_CAPS` is set), so a user other than root keeps no capability.
fn switch_ids(uid: u32, gid: u32) -> io::Result<()> {
    drop_supplementary_groups()?;
    // SAFETY: setresgid(2) and setresuid(2) take numbers and touch no memory of ours.
    check(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: as above.
    check(unsafe { libc::setresuid(uid, uid, uid) })
}

/// Leaves the command with the capabilities in `keep` and no more, from its forked child
/// just before it execs, running as `user` (uid, gid) when given: the bounding set first
/// (dropping from it needs `CAP_SETPCAP`, which the later steps may remove), then the
/// ambient set, then the ids (which needs `CAP_SETUID` and `CAP_SETGID`, whatever the
/// command keeps, and empties the sets of a user other than root), then effective and
/// permitted; inheritable stays empty, as Docker's since CVE-2022-24769: a program that
/// switched to another user would otherwise regain the kept capabilities on exec of a
/// file with inheritable file capabilities. `last` is the kernel's highest capability
/// number.
pub(crate) fn cut_capabilities_at_exec(
    command: &mut std::process::Command,
    keep: u64,
    last: u8,
    user: Option<(u32, u32)>,
) {
    let cut = move || {
        for number in 0..=last {
            if keep & 1 << number == 0 {
                drop_from_bounding_set(number)?;
            }
        }
        clear_ambient_capabilities()?;
        if let Some((uid, gid)) = user {
            switch_ids(uid, gid)?;
        }
        let kept = keep & permitted_capabilities()?;
        set_capabilities(kept, kept, 0)
    };
    // SAFETY: the hook runs in the forked child, which may have inherited a lock held by
    // another thread; it only makes prctl, capget, capset, setgroups, setresgid and
    // setresuid system calls on values it owns and allocates nothing, as pre_exec
    // requires.
    unsafe {
        command.pre_exec(cut);
    }
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

/// Binds the command to `program` from its forked child, just before it execs: after the
/// hooks registered before this one — the capability cut, the switch to `--user` — whose
/// calls the filter may refuse. `no_new_privs` is set first (the init set it already; the
/// kernel wants it of a filter installed without `CAP_SYS_ADMIN`, which the command has
/// lost by then).
pub(crate) fn install_seccomp_at_exec(
    command: &mut std::process::Command,
    program: reexec::SeccompProgram,
) {
    let install = move || {
        let instructions = program.instructions();
        // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes numbers and touches no memory of ours.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
        // `SeccompProgram` holds 1 to 4096 instructions: the length fits.
        let fprog = libc::sock_fprog {
            len: instructions.len() as u16,
            filter: instructions.as_ptr().cast_mut(),
        };
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) reads the sock_fprog, a live local, and
        // the instructions it points to, which `program` owns for the closure's life; the
        // kernel copies them and keeps no pointer.
        check(unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            )
        } as libc::c_int)
    };
    // SAFETY: the hook runs in the forked child, which may have inherited a lock held by
    // another thread; it makes a prctl and a seccomp system call on memory built before
    // the fork and allocates nothing, as pre_exec requires.
    unsafe {
        command.pre_exec(install);
    }
}
