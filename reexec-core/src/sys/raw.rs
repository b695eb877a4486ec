//! The system calls of the child, made directly, without libc's wrappers.
//!
//! Runs in the child between clone(2) and execve(2) (and in this crate's tests). The calls
//! return `-errno` and never touch `errno` or anything else in thread-local storage, which
//! the child shares with the thread that cloned it (see the `sys` module's docs).
//!
//! A wrapper is safe when nothing but its argument types rests on the caller: it passes
//! numbers, or pointers taken from references that live as long as the call. `close`,
//! `dup_onto` and `execve` are `unsafe fn`s: their soundness depends on which descriptor
//! or which pointers they get, as their `# Safety` sections say.

use std::ffi::{CStr, c_char, c_int, c_long};

/// A raw system call with up to four arguments; the kernel's return value as is. The
/// fifth argument is 0: prctl(2) refuses some options whose unused arguments are not.
///
/// # Safety
/// `number` and its arguments must form a valid system call whose pointers are valid
/// for what that call reads and writes.
#[cfg(target_arch = "x86_64")]
unsafe fn syscall4(number: c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 Linux system-call convention: number in rax, arguments in
    // rdi, rsi, rdx, r10, r8, result in rax; the kernel clobbers rcx and r11 and nothing
    // else, and uses no stack of ours. The caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") number as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            in("r10") d,
            in("r8") 0usize,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// See the x86_64 version.
///
/// # Safety
/// As for the x86_64 version.
#[cfg(target_arch = "aarch64")]
unsafe fn syscall4(number: c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 Linux system-call convention: number in x8, arguments in
    // x0 to x4, result in x0; `svc 0` clobbers nothing else and uses no stack of
    // ours. The caller vouches for the arguments.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") number,
            inlateout("x0") a => ret,
            in("x1") b,
            in("x2") c,
            in("x3") d,
            in("x4") 0usize,
            options(nostack),
        );
    }
    ret
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!(
    "reexec supports x86_64 and aarch64: its child makes raw system calls (see sys/raw.rs); \
     another architecture needs its own `syscall4` there"
);

/// The kernel's `-errno` convention: -4095..=-1 are errors.
fn result(ret: isize) -> Result<usize, i32> {
    if (-4095..0).contains(&ret) {
        Err(-ret as i32)
    } else {
        Ok(ret as usize)
    }
}

/// [`syscall4`] with the result decoded.
///
/// # Safety
/// As for [`syscall4`].
unsafe fn call(number: c_long, a: usize, b: usize, c: usize, d: usize) -> Result<usize, i32> {
    // SAFETY: passed on to our caller.
    result(unsafe { syscall4(number, a, b, c, d) })
}

/// The kernel's `struct sigaction`, the same on x86_64 and aarch64 (not libc's).
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The size of the kernel's signal set: 64 signals.
const SIGSET_SIZE: usize = 8;

pub(super) fn signal_handler(signal: c_int) -> Result<usize, i32> {
    let mut old = KernelSigaction::default();
    let old_ptr = &mut old as *mut KernelSigaction as usize;
    // SAFETY: rt_sigaction(2) querying only: the kernel writes one kernel-layout
    // sigaction into `old`, a live local of that layout.
    unsafe {
        call(
            libc::SYS_rt_sigaction,
            signal as usize,
            0,
            old_ptr,
            SIGSET_SIZE,
        )
    }?;
    Ok(old.handler)
}

pub(super) fn set_default_action(signal: c_int) -> Result<(), i32> {
    // All zero: SIG_DFL, no flags, empty mask.
    let default = KernelSigaction::default();
    let new_ptr = &default as *const KernelSigaction as usize;
    // SAFETY: rt_sigaction(2) reads one kernel-layout sigaction from a live local.
    unsafe {
        call(
            libc::SYS_rt_sigaction,
            signal as usize,
            new_ptr,
            0,
            SIGSET_SIZE,
        )
    }
    .map(drop)
}

pub(super) fn set_signal_mask(mask: u64) -> Result<(), i32> {
    let mask_ptr = &mask as *const u64 as usize;
    let how = libc::SIG_SETMASK as usize;
    // SAFETY: rt_sigprocmask(2) reads an 8-byte set from a live local.
    unsafe { call(libc::SYS_rt_sigprocmask, how, mask_ptr, 0, SIGSET_SIZE) }.map(drop)
}

pub(super) fn set_death_signal(signal: c_int) -> Result<(), i32> {
    let option = libc::PR_SET_PDEATHSIG as usize;
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a number and touches no memory of ours.
    unsafe { call(libc::SYS_prctl, option, signal as usize, 0, 0) }.map(drop)
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`: execve grants no privilege from now on (setuid bits,
/// file capabilities), and a seccomp filter may be installed without `CAP_SYS_ADMIN`.
pub(super) fn set_no_new_privs() -> Result<(), i32> {
    let option = libc::PR_SET_NO_NEW_PRIVS as usize;
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes numbers and touches no memory of ours; the
    // kernel wants arguments 3 to 5 zero, which they are (see `syscall4`).
    unsafe { call(libc::SYS_prctl, option, 1, 0, 0) }.map(drop)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, {filter})`: binds this thread, and whatever it
/// executes, to `filter`.
pub(super) fn install_seccomp_filter(filter: &[libc::sock_filter]) -> Result<(), i32> {
    // The length was checked by `SeccompProgram`: 1 to 4096 instructions.
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    let program_ptr = &program as *const libc::sock_fprog as usize;
    let operation = libc::SECCOMP_SET_MODE_FILTER as usize;
    // SAFETY: seccomp(2) reads a sock_fprog from a live local, and the `len` instructions
    // it points to from `filter`, a live slice; it copies them and keeps no pointer.
    unsafe { call(libc::SYS_seccomp, operation, 0, program_ptr, 0) }.map(drop)
}

pub(super) fn getppid() -> libc::pid_t {
    // SAFETY: getppid(2) takes nothing and touches no memory of ours.
    unsafe { call(libc::SYS_getppid, 0, 0, 0, 0) }.map_or(-1, |pid| pid as libc::pid_t)
}

/// Closes `fd`, ignoring errors (the descriptor is gone either way on Linux).
///
/// # Safety
/// Nothing may use `fd` afterwards as the descriptor it was: it is one the caller opened
/// itself, or the caller is the child, whose descriptor table is a copy of the parent's
/// that nothing else uses. Closing an `OwnedFd`'s number elsewhere would let its owner
/// read, write or close whatever file next gets that number.
pub(super) unsafe fn close(fd: c_int) {
    // SAFETY: close(2) takes a number and touches no memory of ours; the caller vouches
    // that nothing else uses the descriptor.
    let _ = unsafe { call(libc::SYS_close, fd as usize, 0, 0, 0) };
}

/// `openat(AT_FDCWD, path, flags)`.
pub(super) fn open(path: &CStr, flags: c_int) -> Result<c_int, i32> {
    let (at_cwd, path) = (libc::AT_FDCWD as usize, path.as_ptr() as usize);
    // SAFETY: openat(2) reads a NUL-terminated string that `path` keeps alive.
    unsafe { call(libc::SYS_openat, at_cwd, path, flags as usize, 0) }.map(|fd| fd as c_int)
}

/// Fills `buffer` with directory records of `fd`; 0 at the end of the directory.
pub(super) fn getdents64(fd: c_int, buffer: &mut [u8]) -> Result<usize, i32> {
    let (pointer, length) = (buffer.as_mut_ptr() as usize, buffer.len());
    // SAFETY: getdents64(2) writes at most `length` bytes into `buffer`, a live
    // exclusive slice.
    unsafe { call(libc::SYS_getdents64, fd as usize, pointer, length, 0) }
}

/// `fcntl(fd, F_GETFD)`: the descriptor's flags.
pub(super) fn fd_flags(fd: c_int) -> Result<c_int, i32> {
    let command = libc::F_GETFD as usize;
    // SAFETY: fcntl(F_GETFD) takes numbers and touches no memory of ours.
    unsafe { call(libc::SYS_fcntl, fd as usize, command, 0, 0) }.map(|flags| flags as c_int)
}

/// `fcntl(fd, F_SETFD, flags)`: `FD_CLOEXEC` or 0, the only descriptor flag there is.
pub(super) fn set_fd_flags(fd: c_int, flags: c_int) -> Result<(), i32> {
    let (command, flags) = (libc::F_SETFD as usize, flags as usize);
    // SAFETY: fcntl(F_SETFD) takes numbers and touches no memory of ours.
    unsafe { call(libc::SYS_fcntl, fd as usize, command, flags, 0) }.map(drop)
}

/// `close_range(first, last, CLOSE_RANGE_CLOEXEC)`: marks, closes nothing.
pub(super) fn close_range_cloexec(first: u32, last: u32) -> Result<(), i32> {
    let flags = libc::CLOSE_RANGE_CLOEXEC as usize;
    // SAFETY: close_range(2) takes numbers and touches no memory of ours.
    unsafe {
        call(
            libc::SYS_close_range,
            first as usize,
            last as usize,
            flags,
            0,
        )
    }
    .map(drop)
}

/// `close_range(first, last, 0)`: closes them all.
pub(super) fn close_range(first: u32, last: u32) -> Result<(), i32> {
    // SAFETY: close_range(2) takes numbers and touches no memory of ours; only the child
    // of the fork server calls it, whose descriptor table is its own.
    unsafe { call(libc::SYS_close_range, first as usize, last as usize, 0, 0) }.map(drop)
}

/// Writes all of `bytes` (at most `PIPE_BUF` to a pipe, which the kernel writes whole).
pub(super) fn write_all(fd: c_int, bytes: &[u8]) -> Result<(), i32> {
    let (pointer, length) = (bytes.as_ptr() as usize, bytes.len());
    loop {
        // SAFETY: write(2) reads `length` bytes from `bytes`, a live slice.
        match unsafe { call(libc::SYS_write, fd as usize, pointer, length, 0) } {
            Err(libc::EINTR) => {}
            Ok(written) if written == length => return Ok(()),
            Ok(_) => return Err(libc::EIO),
            Err(errno) => return Err(errno),
        }
    }
}

/// Reads at most `buffer.len()` bytes.
pub(super) fn read_into(fd: c_int, buffer: &mut [u8]) -> Result<usize, i32> {
    let (pointer, length) = (buffer.as_mut_ptr() as usize, buffer.len());
    // SAFETY: read(2) writes at most `length` bytes into `buffer`, a live exclusive
    // slice.
    unsafe { call(libc::SYS_read, fd as usize, pointer, length, 0) }
}

pub(super) fn unshare(flags: c_int) -> Result<(), i32> {
    // SAFETY: unshare(2) takes flags and touches no memory of ours.
    unsafe { call(libc::SYS_unshare, flags as usize, 0, 0, 0) }.map(drop)
}

/// setresuid(2) to `id` for the real, effective and saved uid.
pub(super) fn set_all_uids(id: libc::uid_t) -> Result<(), i32> {
    let id = id as usize;
    // SAFETY: setresuid(2) takes three ids and touches no memory of ours.
    unsafe { call(libc::SYS_setresuid, id, id, id, 0) }.map(drop)
}

/// setresgid(2) to `id` for the real, effective and saved gid.
pub(super) fn set_all_gids(id: libc::gid_t) -> Result<(), i32> {
    let id = id as usize;
    // SAFETY: setresgid(2) takes three ids and touches no memory of ours.
    unsafe { call(libc::SYS_setresgid, id, id, id, 0) }.map(drop)
}

/// `fcntl(fd, F_DUPFD_CLOEXEC, lowest)`.
pub(super) fn dup_above(fd: c_int, lowest: c_int) -> Result<c_int, i32> {
    let command = libc::F_DUPFD_CLOEXEC as usize;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes numbers and touches no memory of ours.
    unsafe { call(libc::SYS_fcntl, fd as usize, command, lowest as usize, 0) }.map(|fd| fd as c_int)
}

/// `dup3(source, target, 0)`: aarch64 has no dup2. `source` must differ from `target`
/// (dup3 refuses EINVAL otherwise).
///
/// # Safety
/// Whatever `target` was, it is closed and replaced: as for [`close`], nothing may go on
/// using `target` as the descriptor it was.
pub(super) unsafe fn dup_onto(source: c_int, target: c_int) -> Result<(), i32> {
    // SAFETY: dup3(2) takes numbers and touches no memory of ours; the caller vouches
    // for `target`.
    unsafe { call(libc::SYS_dup3, source as usize, target as usize, 0, 0) }.map(drop)
}

pub(super) fn chdir(dir: &CStr) -> Result<(), i32> {
    // SAFETY: chdir(2) reads a NUL-terminated string that `dir` keeps alive.
    unsafe { call(libc::SYS_chdir, dir.as_ptr() as usize, 0, 0, 0) }.map(drop)
}

/// `execve(exe, argv, envp)`; returns only on failure, with the errno.
///
/// # Safety
/// `argv` and `envp` each point to an array of pointers to NUL-terminated strings, ended
/// by a NULL pointer, all valid until the call returns: a [`CStringArray`]'s
/// [`as_ptr`](super::CStringArray::as_ptr) while the array lives.
///
/// [`CStringArray`]: super::CStringArray
pub(super) unsafe fn execve(
    exe: &CStr,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> i32 {
    let exe = exe.as_ptr();
    // SAFETY: execve(2) reads a NUL-terminated path, which `exe` keeps alive, and two
    // NULL-terminated arrays of NUL-terminated strings, which the caller vouches for.
    match unsafe {
        call(
            libc::SYS_execve,
            exe as usize,
            argv as usize,
            envp as usize,
            0,
        )
    } {
        Err(errno) => errno,
        Ok(_) => 0,
    }
}

/// `setns(fd, nstype)`: enters the namespace of a namespace file, or those of `nstype`
/// of the process behind a pidfd.
pub(super) fn setns(fd: c_int, nstype: c_int) -> Result<(), i32> {
    // SAFETY: setns(2) takes numbers and touches no memory of ours.
    unsafe { call(libc::SYS_setns, fd as usize, nstype as usize, 0, 0) }.map(drop)
}

/// execve(2) without a path: asks an installed seccomp filter about execve without
/// exec'ing anything. Returns the errno the call fails with — EFAULT when the filter lets
/// execve through, since the kernel then reads the path from address 0, else the
/// filter's own answer.
pub(super) fn execve_without_path() -> i32 {
    // SAFETY: with a NULL path execve(2) fails before it reads or changes anything else.
    unsafe { call(libc::SYS_execve, 0, 0, 0, 0) }
        .err()
        .unwrap_or(libc::EFAULT)
}

/// Ends the process at once, running nothing of Rust's or libc's exit path.
///
/// exit_group(2) returns only when a seccomp filter (`Command::seccomp`, installed just
/// before execve) refuses it; the process then dies of an illegal instruction, whose
/// SIGILL the kernel delivers even blocked, rather than spin forever.
pub(super) fn exit(status: c_int) -> ! {
    // SAFETY: exit_group(2) takes a number and does not return unless refused.
    let _ = unsafe { call(libc::SYS_exit_group, status as usize, 0, 0, 0) };
    loop {
        // SAFETY: an undefined instruction: the kernel ends the process with SIGILL, and
        // the child has put every handler back to its default by the time a filter is in.
        unsafe {
            #[cfg(target_arch = "x86_64")]
            std::arch::asm!("ud2", options(nomem, nostack));
            #[cfg(target_arch = "aarch64")]
            std::arch::asm!("udf #0", options(nomem, nostack));
        }
    }
}

// --- Limits and privileges (issue #13: resource limits, capabilities, no_new_privs) ---

/// `prctl(option, arg2, arg3, 0, 0)` for the options below, which take numbers only and
/// refuse unused arguments that are not 0 (`syscall4` passes 0 as the fifth).
fn prctl(option: c_int, arg2: usize, arg3: usize) -> Result<usize, i32> {
    // SAFETY: every option passed here (PR_CAPBSET_*, PR_CAP_AMBIENT, PR_SET_DUMPABLE)
    // takes numbers and touches no memory of ours.
    unsafe { call(libc::SYS_prctl, option as usize, arg2, arg3, 0) }
}

/// The kernel's `struct rlimit64`.
#[repr(C)]
struct Rlimit64 {
    soft: u64,
    hard: u64,
}

/// `prlimit64(0, resource, {soft, hard}, NULL)`: sets this process's limit.
pub(super) fn set_rlimit(resource: c_int, soft: u64, hard: u64) -> Result<(), i32> {
    let limit = Rlimit64 { soft, hard };
    let limit_ptr = &limit as *const Rlimit64 as usize;
    // SAFETY: prlimit64(2) reads one rlimit64 from a live local and, with a NULL old
    // limit, writes nothing.
    unsafe { call(libc::SYS_prlimit64, 0, resource as usize, limit_ptr, 0) }.map(drop)
}

/// Whether `capability` is in this thread's bounding set; EINVAL past the highest
/// capability the kernel knows.
pub(super) fn bounding_set_has(capability: u8) -> Result<bool, i32> {
    prctl(libc::PR_CAPBSET_READ, capability.into(), 0).map(|has| has == 1)
}

/// Takes `capability` out of this thread's bounding set (needs `CAP_SETPCAP`).
pub(super) fn drop_from_bounding_set(capability: u8) -> Result<(), i32> {
    prctl(libc::PR_CAPBSET_DROP, capability.into(), 0).map(drop)
}

/// Empties this thread's ambient set.
pub(super) fn clear_ambient() -> Result<(), i32> {
    let clear = libc::PR_CAP_AMBIENT_CLEAR_ALL as usize;
    prctl(libc::PR_CAP_AMBIENT, clear, 0).map(drop)
}

/// Raises `capability` into this thread's ambient set (it must be permitted and
/// inheritable).
pub(super) fn raise_ambient(capability: u8) -> Result<(), i32> {
    let raise = libc::PR_CAP_AMBIENT_RAISE as usize;
    prctl(libc::PR_CAP_AMBIENT, raise, capability.into()).map(drop)
}

/// Whether `capability` is in the ambient set; `EINVAL` past the last one.
pub(super) fn ambient_has(capability: u8) -> Result<bool, i32> {
    let is_set = libc::PR_CAP_AMBIENT_IS_SET as usize;
    prctl(libc::PR_CAP_AMBIENT, is_set, capability.into()).map(|set| set == 1)
}

/// `prctl(PR_SET_DUMPABLE, 1)`, as execve leaves a process whose ids changed before it.
pub(super) fn set_dumpable() -> Result<(), i32> {
    prctl(libc::PR_SET_DUMPABLE, 1, 0).map(drop)
}

pub(super) fn getuid() -> libc::uid_t {
    // SAFETY: getuid(2) takes nothing, touches no memory of ours and cannot fail.
    unsafe { call(libc::SYS_getuid, 0, 0, 0, 0) }.map_or(u32::MAX, |id| id as libc::uid_t)
}

pub(super) fn geteuid() -> libc::uid_t {
    // SAFETY: geteuid(2) takes nothing, touches no memory of ours and cannot fail.
    unsafe { call(libc::SYS_geteuid, 0, 0, 0, 0) }.map_or(u32::MAX, |id| id as libc::uid_t)
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, as two 32-bit halves.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The kernel's `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

/// The kernel's `struct __user_cap_data_struct`: one 32-bit half of each set.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// A thread's effective, permitted and inheritable capability sets, a bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CapabilitySets {
    pub(super) effective: u64,
    pub(super) permitted: u64,
    pub(super) inheritable: u64,
}

/// `capget(2)` of this thread.
pub(super) fn capabilities() -> Result<CapabilitySets, i32> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    let (header_ptr, data_ptr) = (
        &mut header as *mut CapHeader as usize,
        data.as_mut_ptr() as usize,
    );
    // SAFETY: capget(2) with a version-3 header reads (and may rewrite) the header and
    // writes two CapData, the live local array it gets.
    unsafe { call(libc::SYS_capget, header_ptr, data_ptr, 0, 0) }?;
    let join =
        |half: fn(&CapData) -> u32| u64::from(half(&data[0])) | u64::from(half(&data[1])) << 32;
    Ok(CapabilitySets {
        effective: join(|data| data.effective),
        permitted: join(|data| data.permitted),
        inheritable: join(|data| data.inheritable),
    })
}

/// `capset(2)` of this thread: permitted may only shrink, effective stay within it, and
/// inheritable within the bounding set.
pub(super) fn set_capabilities(sets: CapabilitySets) -> Result<(), i32> {
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let half = |bits: u64, high: bool| (if high { bits >> 32 } else { bits }) as u32;
    let data = [false, true].map(|high| CapData {
        effective: half(sets.effective, high),
        permitted: half(sets.permitted, high),
        inheritable: half(sets.inheritable, high),
    });
    let (header_ptr, data_ptr) = (&header as *const CapHeader as usize, data.as_ptr() as usize);
    // SAFETY: capset(2) with a version-3 header reads the header and two CapData, live
    // locals.
    unsafe { call(libc::SYS_capset, header_ptr, data_ptr, 0, 0) }.map(drop)
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;
    use std::ptr;

    use super::super::testing::{errno, set_errno};
    use super::*;

    #[test]
    fn raw_calls_report_errno_without_touching_it() {
        set_errno(0);
        assert_eq!(dup_above(-1, 3), Err(libc::EBADF));
        assert_eq!(chdir(c"/nonexistent/reexec"), Err(libc::ENOENT));
        assert_eq!(errno(), 0);
    }

    #[test]
    fn raw_capability_and_limit_calls_see_what_libc_sees() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let field = |name: &str| {
            let line = status.lines().find(|line| line.starts_with(name)).unwrap();
            u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
        };
        let sets = capabilities().unwrap();
        assert_eq!(sets.effective, field("CapEff:"));
        assert_eq!(sets.permitted, field("CapPrm:"));
        assert_eq!(sets.inheritable, field("CapInh:"));
        let bounding = field("CapBnd:");
        for number in 0..64u8 {
            match bounding_set_has(number) {
                Ok(has) => assert_eq!(has, bounding & 1 << number != 0, "capability {number}"),
                Err(errno) => {
                    assert_eq!(errno, libc::EINVAL, "past the last capability");
                    break;
                }
            }
        }
        // Setting the limit it has changes nothing and needs no privilege.
        let (soft, hard) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_CORE).unwrap();
        assert_eq!(set_rlimit(libc::RLIMIT_CORE as c_int, soft, hard), Ok(()));
        assert_eq!(
            set_rlimit(libc::RLIMIT_CORE as c_int, 2, 1),
            Err(libc::EINVAL)
        );
    }

    #[test]
    fn raw_signal_calls_see_what_libc_sees() {
        for signal in [libc::SIGPIPE, libc::SIGSEGV, libc::SIGTERM, libc::SIGKILL] {
            let mut action = MaybeUninit::<libc::sigaction>::zeroed();
            // SAFETY: queries the disposition into a zeroed local.
            let queried = unsafe { libc::sigaction(signal, ptr::null(), action.as_mut_ptr()) };
            assert_eq!(queried, 0);
            // SAFETY: sigaction filled it.
            let handler = unsafe { action.assume_init() }.sa_sigaction;
            assert_eq!(signal_handler(signal), Ok(handler), "signal {signal}");
        }
    }
}
