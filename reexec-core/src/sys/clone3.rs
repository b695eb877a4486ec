//! clone3(2), for three things clone(2) can't do. One: start the child in a cgroup v2
//! directory (`CLONE_INTO_CGROUP`, Linux 5.7), so that the cgroup binds it from its first
//! instruction with no write to `cgroup.procs` — and so no waiting handshake for that
//! write: the clone can take `CLONE_VFORK` when the parent has nothing else to do. Two:
//! put the child's signal handlers back to their defaults in the clone itself
//! (`CLONE_CLEAR_SIGHAND`, Linux 5.5), where the child would otherwise ask for each of
//! the 64 signals before its execve (`child.rs`, `reset_signals`). Three: give the fork
//! server both the child's pidfd and its pid written where the caller sees it
//! ([`fork_style`], which also clears a copy of the caller's handlers as two does).
//!
//! Runs in the parent; the child leaves the system call on the stack `spawn.rs` mapped for
//! it, in the assembly below, which calls `child.rs`'s `child_entry` there. No libc
//! wrapper does that: glibc's clone3 is internal, and libc's `syscall` returns in both
//! processes into the Rust frame that called it, which the child must never do (that
//! frame is on the parent's stack).
//!
//! The first two are x86_64 only, for now: elsewhere [`AVAILABLE`] is false and
//! `spawn.rs` takes clone(2) (and the write), as on a kernel without clone3. The third
//! returns in both processes, as fork(2) does, and needs no assembly.

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;

/// Whether this build has the assembly below.
pub(super) const AVAILABLE: bool = cfg!(target_arch = "x86_64");

/// `CLONE_INTO_CGROUP` of `<linux/sched.h>`, a flag of clone3 only (hence 64 bits).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `CLONE_CLEAR_SIGHAND` of `<linux/sched.h>` (Linux 5.5), clone3 only: every handled
/// signal is back to its default in the child, ignored ones stay ignored.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// `struct clone_args` of `<linux/sched.h>` up to `cgroup`: `CLONE_ARGS_SIZE_VER2`, 88
/// bytes. A kernel that knows a shorter struct (5.3 to 5.6) refuses a non-zero `cgroup`
/// beyond it with `E2BIG`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// What one clone3 is to do.
pub(super) struct Clone3 {
    /// clone(2)'s flags (`CLONE_VM`, `CLONE_VFORK`, `CLONE_PIDFD`, `CLONE_NEW*`), without
    /// the exit signal.
    pub(super) flags: c_int,
    /// The signal the parent gets when the child ends.
    pub(super) exit_signal: c_int,
    /// The lowest address of the child's stack, and its size: the child starts with its
    /// stack pointer at `stack + stack_size`.
    pub(super) stack: *mut c_void,
    pub(super) stack_size: usize,
    /// The cgroup v2 directory to start the child in; `None` for none.
    pub(super) cgroup: Option<RawFd>,
    /// Where the kernel writes the pidfd, with `CLONE_PIDFD` in `flags`.
    pub(super) pidfd: *mut c_int,
}

/// Makes the clone3 system call of `clone`, with `CLONE_CLEAR_SIGHAND`; the child calls
/// `entry(arg)` and ends there. Returns the child's pid, or the errno clone3 failed with.
///
/// # Safety
/// - `clone.stack .. clone.stack + clone.stack_size` is a writable mapping that nothing
///   else uses until the child has exec'd or ended, and its top is 16-byte aligned (the
///   ABI's alignment at a call; a page-aligned top is).
/// - `entry(arg)` ends the child with exit or execve and does not return: were it to, the
///   child exits with its value instead (see below).
/// - With `CLONE_VM` in the flags the child runs on our memory: what `arg` points to must
///   stay valid until the child has exec'd or ended, and the child may write nothing of
///   ours but what the caller allows (see the `sys` module's docs).
/// - `clone.pidfd`, with `CLONE_PIDFD`, points to a live `c_int`.
/// - Every signal is blocked in the calling thread: no handler of ours may run in the
///   child on its first instructions.
#[cfg(target_arch = "x86_64")]
pub(super) unsafe fn clone3(
    clone: &Clone3,
    entry: extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
) -> Result<libc::pid_t, i32> {
    let args = CloneArgs {
        flags: clone.flags as u32 as u64
            | CLONE_CLEAR_SIGHAND
            | clone.cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        pidfd: clone.pidfd as u64,
        exit_signal: clone.exit_signal as u64,
        stack: clone.stack as u64,
        stack_size: clone.stack_size as u64,
        cgroup: clone.cgroup.map_or(0, |fd| fd as u64),
        ..CloneArgs::default()
    };
    let result: i64;
    // SAFETY: the caller keeps the invariants above; what the block itself relies on:
    // - The kernel reads `args` during the call, a live local; with `CLONE_PIDFD` it
    //   writes the pidfd through `args.pidfd`, which the caller vouches for. Nothing else
    //   of ours is written in the parent: its path is `syscall` and the test, and
    //   `syscall` changes rax, rcx and r11 only (declared: rax is the output, rcx and r11
    //   are `out`, not `lateout`, so no input is given them — the child reads `entry`
    //   and `arg` in r9 and r8 after the call, which the kernel leaves as they were).
    // - The child (rax 0) starts with the parent's registers, the stack pointer at the
    //   top of its own stack. It clears rbp, the frame pointer, so no unwinder or
    //   debugger walks from its frames into the parent's; moves `arg` to the first
    //   argument register; and calls `entry` with the stack pointer 16-byte aligned, as
    //   the top is. It never reaches the end of this block, nor any frame of the
    //   parent's: `entry` ends in exit or execve, and if it returned, the child exits
    //   (SYS_exit, this thread only — it is its own thread group) with its value; `ud2`
    //   after that is unreachable.
    // - Writing rdi and rbp in the child is invisible to the parent: they are the
    //   child's own registers.
    unsafe {
        core::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r8",
            "call r9",
            "mov edi, eax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const libc::SYS_exit,
            inlateout("rax") libc::SYS_clone3 => result,
            in("rdi") &args as *const CloneArgs,
            in("rsi") size_of::<CloneArgs>(),
            in("r8") arg,
            in("r9") entry,
            out("rcx") _,
            out("r11") _,
        );
    }
    match result {
        pid if pid > 0 => Ok(pid as libc::pid_t),
        // The child's path never gets here: anything else is -errno.
        errno => Err(-errno as i32),
    }
}

/// Elsewhere: as a kernel without clone3 answers, so that `spawn.rs` takes clone(2).
///
/// # Safety
/// None needed: it makes no call. Unsafe to match the x86_64 function.
#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn clone3(
    _clone: &Clone3,
    _entry: extern "C" fn(*mut c_void) -> c_int,
    _arg: *mut c_void,
) -> Result<libc::pid_t, i32> {
    Err(libc::ENOSYS)
}

/// `CLONE_ARGS_SIZE_VER0`: the struct up to `tls`, which every kernel with clone3 knows.
const CLONE_ARGS_SIZE_VER0: usize = 64;

/// clone3 as fork(2) makes a process: no stack of its own, no `CLONE_VM`, so that it
/// returns in both processes (0 in the child) on copies of the same frame. clone(2) can
/// do the same, but not with `CLONE_PIDFD` and `CLONE_PARENT_SETTID` together, which share
/// an argument there. The kernel writes the child's pid at `parent_tid` before the call
/// returns: a process killed right after its clone has written it all the same.
///
/// With `clear_signal_handlers`, also `CLONE_CLEAR_SIGHAND`: the child starts with every
/// handled signal back to its default (ignored ones stay ignored), which a copy of the
/// caller would otherwise do itself, one signal at a time.
///
/// Fails with `ENOSYS` before Linux 5.3, or under a seccomp filter that refuses clone3
/// that way (container runtimes' default profiles do); with `clear_signal_handlers`,
/// with `EINVAL` before Linux 5.5.
///
/// # Safety
/// - `flags` holds neither `CLONE_VM` nor `CLONE_VFORK` nor `CLONE_THREAD`: the child gets
///   a copy of our memory and goes on from here on it.
/// - With `CLONE_PIDFD` in `flags`, `pidfd` points to a live `c_int`; with
///   `CLONE_PARENT_SETTID`, `parent_tid` points to a live `pid_t`.
/// - The process has one thread: the child continues on a copy of it in which no other
///   thread held a lock (see `fork.rs`).
pub(super) unsafe fn fork_style(
    flags: c_int,
    clear_signal_handlers: bool,
    exit_signal: c_int,
    pidfd: *mut c_int,
    parent_tid: *mut libc::pid_t,
) -> Result<libc::pid_t, i32> {
    let clear = if clear_signal_handlers {
        CLONE_CLEAR_SIGHAND
    } else {
        0
    };
    let args = CloneArgs {
        flags: flags as u32 as u64 | clear,
        pidfd: pidfd as u64,
        parent_tid: parent_tid as u64,
        exit_signal: exit_signal as u64,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 reads `args`, a live local of at least CLONE_ARGS_SIZE_VER0 bytes,
    // and writes the pidfd and the pid where the caller vouches for. Without a stack and
    // without CLONE_VM it is fork(2) with flags: the child returns here on its own copy of
    // our memory and stack, which the caller's safety section allows.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            CLONE_ARGS_SIZE_VER0,
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::ENOSYS));
    }
    Ok(pid as libc::pid_t)
}

/// Whether an errno of clone3 says that clone3, or one of its flags (`CLONE_INTO_CGROUP`,
/// `CLONE_CLEAR_SIGHAND`), is not to be had here, rather than that the child can't be in
/// the cgroup or can't be made: then clone(2) (and the write to `cgroup.procs`) start it
/// instead, and give their own error if it fails again.
///
/// - `ENOSYS`: a kernel before 5.3, or a seccomp filter that refuses clone3 this way — as
///   container runtimes' default profiles do (ns-process's among them), for their
///   filters can't read clone3's flags in memory.
/// - `E2BIG`: a kernel of 5.3 to 5.6, which knows a shorter `struct clone_args`.
/// - `EINVAL`: a kernel that does not know the `CLONE_INTO_CGROUP` flag (before 5.7) or
///   `CLONE_CLEAR_SIGHAND` (before 5.5) — or flags that clone(2) will refuse too, with a
///   diagnosis.
/// - `EPERM`: a seccomp filter's refusal — or namespaces we may not create, which
///   clone(2) will refuse too.
///
/// Every other errno is the cgroup's answer, or a limit's (`EAGAIN` at the cgroup's
/// `pids.max`, or the caller's own process limit): clone(2) and the write would go around
/// the first and meet the second again, so it is reported, not retried.
pub(super) fn is_unavailable(errno: i32) -> bool {
    matches!(
        errno,
        libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EPERM
    )
}

/// Whether `errno` says clone3 will fail the same way in this process for good: the
/// kernel's answer, or a seccomp filter's, which nothing removes. Spawns then no longer
/// try it.
pub(super) fn is_unavailable_for_good(errno: i32) -> bool {
    matches!(errno, libc::ENOSYS | libc::E2BIG)
}
