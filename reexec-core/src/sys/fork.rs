//! The fork-style clones — the fork server's (`fork_server.rs`) and a single-threaded
//! caller's own (`without_exec.rs`) — and what their child does in place of execve.
//!
//! Runs in a process with one thread: the fork server, re-executed for that alone and
//! never starting a second, or a caller that has one ([`one_thread_and_environment_area`]
//! said so). At the clone no lock is then held and no other thread's state is
//! half-changed — the guarantee a fresh execve gives, which is what lets the child run
//! Rust code without one. The clone is fork-style (no `CLONE_VM`: the child gets a copy
//! of the memory and keeps it). The server's takes `CLONE_PARENT`, so that the child is
//! the caller's, not the server's: the caller waits for it, reaps it, and its death
//! signal follows the caller. A server may die between its clone and its answer: the
//! clone itself writes the pid where the caller sees it ([`SpawnSlot`]), and the caller
//! takes the child on from there.

use std::ffi::{CStr, c_char, c_int, c_long, c_void};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use nix::sys::memfd::{self, MFdFlags};
use nix::sys::mman::{self, MapFlags, MmapAdvise, ProtFlags};

use super::child::{CopyOf, Forked, Shared, WaitFds, set_up};
use super::spawn::SignalsBlocked;
use super::{CStringArray, ChildPlan, raw};
use crate::error::Step;

/// Which side of a fork-style clone returned.
pub(crate) enum Cloned {
    /// The process that cloned: the child's pid, and its pidfd (`None` before Linux 5.2).
    Parent {
        pid: libc::pid_t,
        pidfd: Option<OwnedFd>,
    },
    /// The child, set up as `plan` asked (descriptors, namespaces, ids, limits, seccomp),
    /// left to place its arguments and run its entry. A failed step never returns: the
    /// child reported it on `report` and ended.
    Child,
}

/// The descriptors a fork-style child uses of its caller's: the report pipe and the go
/// pipe (received by the fork server for one request, or the caller's own).
pub(crate) struct CallerFds {
    /// The write end of the caller's report pipe (see `child.rs`'s [`Forked`]).
    pub(crate) report: RawFd,
    /// Where the byte that lets the child go on arrives, when the caller acts first.
    pub(crate) go: Option<RawFd>,
    /// The caller's pid as /proc numbers it (see `child.rs`'s `parent_is_gone`).
    pub(crate) caller_in_proc: libc::pid_t,
}

/// Clones the child `plan` describes for the process that started this server, which
/// becomes its parent (`CLONE_PARENT`). Returns twice, as fork(2) does. The kernel writes
/// the child's pid into `slot` before the clone returns.
///
/// `plan.exe`, `argv` and `envp` are not used: the child returns [`Cloned::Child`]
/// instead of calling execve.
///
/// # Safety
/// Only the fork server calls this, which has one thread: the child then continues on a
/// copy of a process in which no other thread held a lock or was changing anything.
pub(crate) unsafe fn clone_for_caller(
    plan: &ChildPlan<'_>,
    caller: &CallerFds,
    slot: &SpawnSlot,
) -> Result<Cloned, i32> {
    // SAFETY: passed on from our caller. The server never had the go pipe's write end.
    unsafe { clone_forked(plan, caller, -1, CopyOf::ForkServer, Some(slot)) }
}

/// Clones the child `plan` describes as a copy of this process, its parent
/// (`Command::without_exec`). Returns twice, as fork(2) does; `go_write` is this
/// process's end of the go pipe, which the child closes.
///
/// # Safety
/// This process must have one thread: the child then continues on a copy of a process in
/// which no other thread held a lock or was changing anything.
pub(crate) unsafe fn clone_here(
    plan: &ChildPlan<'_>,
    fds: &CallerFds,
    go_write: RawFd,
) -> Result<Cloned, i32> {
    // SAFETY: passed on from our caller.
    unsafe { clone_forked(plan, fds, go_write, CopyOf::Caller, None) }
}

/// The clone of [`clone_for_caller`] and [`clone_here`].
///
/// # Safety
/// As for those: this process has one thread.
unsafe fn clone_forked(
    plan: &ChildPlan<'_>,
    fds: &CallerFds,
    go_write: RawFd,
    copy_of: CopyOf,
    slot: Option<&SpawnSlot>,
) -> Result<Cloned, i32> {
    let mut pidfd: c_int = -1;
    // The server's child is its caller's, and ends with the signal the server itself
    // ends with (the kernel takes it for CLONE_PARENT): SIGCHLD, as the caller started
    // it. A copy of the caller names SIGCHLD itself: a child ending with none is one
    // that waitpid(2) finds only with __WALL.
    let (parent, exit_signal) = match copy_of {
        CopyOf::ForkServer => (libc::CLONE_PARENT, 0),
        CopyOf::Caller => (0, libc::SIGCHLD),
    };
    let flags = plan.clone_flags | parent | libc::CLONE_PIDFD;
    // A copy of the caller has the kernel put the caller's handlers back to their defaults
    // in the clone, where its setup would otherwise ask for each of the 64 signals. (A
    // child of the server keeps the server's: `child.rs`, `set_up`.)
    let clear_signal_handlers = copy_of == CopyOf::Caller && super::spawn::clone3_may_run();
    // No handler of ours may run in the child before its setup chose its mask.
    let blocked = SignalsBlocked::all().map_err(|error| error.raw_os_error().unwrap_or(0))?;
    let by_clone3 = match slot {
        // SAFETY: no CLONE_VM, CLONE_VFORK or CLONE_THREAD in `flags`; `pidfd` is a live
        // local and `slot.word()` the word of a `SpawnSlot` borrowed for this whole call;
        // this process is single-threaded (see the function's safety section).
        Some(slot) => Some(unsafe {
            super::clone3::fork_style(
                flags | libc::CLONE_PARENT_SETTID,
                false,
                exit_signal,
                &mut pidfd,
                slot.word(),
            )
        }),
        // SAFETY: as above; no CLONE_PARENT_SETTID, so no `parent_tid`.
        None if clear_signal_handlers => Some(unsafe {
            super::clone3::fork_style(flags, true, exit_signal, &mut pidfd, std::ptr::null_mut())
        }),
        None => None,
    };
    // Which refusals of clone3 send the clone to clone(2), which repeats the error if it
    // was the kernel's refusal of the namespaces.
    let clone_instead = |errno: i32| match slot {
        // The server's: ENOSYS before Linux 5.3, or a seccomp filter's answer, as EPERM
        // may be.
        Some(_) => matches!(errno, libc::ENOSYS | libc::EPERM),
        // A copy's: any that says clone3 or CLONE_CLEAR_SIGHAND is not to be had.
        None => super::clone3::is_unavailable(errno),
    };
    let cloned = match by_clone3 {
        Some(Ok(pid)) => Ok(pid),
        Some(Err(errno)) if !clone_instead(errno) => Err(errno),
        Some(Err(_)) | None => {
            // SAFETY: clone(2) without CLONE_VM and without a stack is fork(2) with flags:
            // the child goes on from here on a copy of our memory and stack. The kernel
            // writes one int into `pidfd`, a live local (CLONE_PIDFD takes the parent_tid
            // argument). This process is single-threaded (see the function's safety
            // section). Namespace flags the kernel refuses fail the call and make no child.
            let pid = unsafe {
                libc::syscall(
                    libc::SYS_clone,
                    c_long::from(flags | exit_signal),
                    0 as c_long,
                    &mut pidfd as *mut c_int,
                    0 as c_long,
                    0 as c_long,
                )
            };
            if let (Some(slot), 1..) = (slot, pid) {
                // Without clone3 the pid goes in by hand: a server killed between the
                // clone and this store leaves its caller a child it can't find.
                slot.put(pid as libc::pid_t);
            }
            let cloned = match pid {
                0.. => Ok(pid as libc::pid_t),
                _ => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
            };
            // A copy's clone3 was refused: what clone(2) did says whether later clones of
            // this process try clone3 again (the parent's to note, not the child's).
            if let (Some(Err(errno)), None, false) = (by_clone3, slot, pid == 0) {
                super::spawn::after_clone3_refused(errno, pid > 0);
            }
            cloned
        }
    };
    let pid = match cloned {
        Ok(pid) => pid,
        Err(errno) => {
            drop(blocked);
            return Err(errno);
        }
    };
    if pid > 0 {
        drop(blocked);
        // SAFETY: when set, the descriptor the kernel just made for us; nothing else owns
        // it.
        let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
        return Ok(Cloned::Parent { pid, pidfd });
    }
    // The child: `blocked` is our copy of the guard; its mask is set by the setup, not by
    // restoring the parent's.
    std::mem::forget(blocked);
    let forked = Forked {
        report: fds.report,
        copy_of,
    };
    let shared = Shared {
        plan,
        report: AtomicU64::new(0),
        wait: fds.go.map(|go_read| WaitFds {
            go_read,
            go_write,
            done_write: fds.report,
        }),
        parent_in_proc: fds.caller_in_proc,
        signal_handlers_cleared: clear_signal_handlers && matches!(by_clone3, Some(Ok(_))),
        forked: Some(forked),
    };
    // SAFETY: we are the child just cloned, whose descriptor table is its own copy.
    unsafe { set_up(&shared) };
    Ok(Cloned::Child)
}

/// What execve does that a fork-style child, which never calls it, must do itself: give
/// up capabilities as below. A child of the server also becomes dumpable again (execve
/// makes a process whose ids changed before it dumpable; the setup may have changed
/// them). A copy of the caller keeps what the kernel left it, as after fork(2): it holds
/// the caller's memory, which an id change made non-dumpable stays out of reach of the
/// namespace it entered.
pub(super) fn act_as_execve_would(copy_of: CopyOf) -> Result<(), (Step, i32)> {
    drop_capabilities_as_execve_would().map_err(|errno| (Step::SetCapabilities, errno))?;
    if copy_of == CopyOf::ForkServer {
        // Refused by nothing but a seccomp filter of the server's, which it has none of.
        let _ = raw::set_dumpable();
    }
    Ok(())
}

/// What execve of a program without file capabilities does to a process that is not
/// root, which a child of the server that changed its ids or entered a user namespace
/// (where it holds every capability until execve) must do itself: keep only its ambient
/// capabilities, permitted and effective. Root keeps what it has, as execve gives it.
fn drop_capabilities_as_execve_would() -> Result<(), i32> {
    if raw::geteuid() == 0 || raw::getuid() == 0 {
        return Ok(());
    }
    let sets = raw::capabilities()?;
    if sets.permitted == 0 {
        return Ok(());
    }
    let mut ambient = 0u64;
    for number in 0..64u8 {
        match raw::ambient_has(number) {
            Ok(true) => ambient |= 1 << number,
            Ok(false) => {}
            // Past the last capability, or no ambient set before Linux 4.3.
            Err(_) => break,
        }
    }
    raw::set_capabilities(raw::CapabilitySets {
        effective: ambient,
        permitted: ambient,
        inheritable: sets.inheritable,
    })
}

/// The fork server's own `argv`: the array of pointers, and the strings, that the kernel
/// laid out on its stack at execve. std's `env::args()` reads that very array, up to
/// its first NULL, whenever it is called — so a child of the server that writes its own
/// arguments there is seen with them, by `args()` and in `/proc/PID/cmdline` alike.
///
/// The server is started with many empty arguments and a long one, which is all the
/// room a child has: at most `slots` arguments, of `text_len` bytes with their NULs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ArgvArea {
    slots: *mut *const c_char,
    slot_count: usize,
    text: *mut u8,
    text_len: usize,
}

impl ArgvArea {
    /// This process's argv as the kernel laid it out, found through /proc/self/stat
    /// (see [`laid_out`](Self::laid_out)) and checked against what the server knows it
    /// was started with: `argc` arguments, the first `argv0`. `None` when anything
    /// disagrees.
    pub(crate) fn find(argc: usize, argv0: &CStr) -> Option<ArgvArea> {
        let [start_stack, arg_start, arg_end] = stat_numbers([28, 48, 49])?;
        let area = ArgvArea::laid_out(start_stack, arg_start, arg_end)?;
        if area.slot_count != argc {
            return None;
        }
        // SAFETY: the first argument, at `arg_start` (`laid_out` checked the pointer): a
        // NUL-terminated string the kernel copied there.
        if unsafe { CStr::from_ptr(area.text.cast()) } != argv0 {
            return None;
        }
        Some(area)
    }

    /// The argv at `start_stack`, with its strings from `arg_start` to `arg_end`: the
    /// fields 28, 48 and 49 of this process's /proc/self/stat (`startstack` points at
    /// `argc`, which `argv` follows). `None` unless the array is still the kernel's: as
    /// many pointers as `argc` says, then NULL, the first at `arg_start`.
    fn laid_out(start_stack: usize, arg_start: usize, arg_end: usize) -> Option<ArgvArea> {
        if start_stack == 0 || arg_end <= arg_start {
            return None;
        }
        let argc_at = start_stack as *const usize;
        // SAFETY: the kernel's word at the start of our stack, which is mapped for the
        // whole life of the process.
        let argc = unsafe { argc_at.read() };
        // The kernel put argc, the pointers, their NULL and the environment's below the
        // strings, and each string has its NUL at least: a count beyond either bound is
        // not the kernel's, and nothing it would point past is read.
        let room_for_pointers =
            (arg_start.saturating_sub(start_stack) / size_of::<usize>()).saturating_sub(2);
        if argc == 0 || argc > room_for_pointers || argc > arg_end - arg_start {
            return None;
        }
        // SAFETY: argv follows argc on the stack: `argc` pointers and a NULL, all below
        // `arg_start` (checked just above), within the stack's mapping.
        let slots = unsafe { argc_at.add(1) } as *mut *const c_char;
        // SAFETY: as above; reading the first pointer and the NULL after the last.
        let (first, last) = unsafe { (slots.read(), slots.add(argc).read()) };
        if first as usize != arg_start || !last.is_null() {
            return None;
        }
        Some(ArgvArea {
            slots,
            slot_count: argc,
            text: arg_start as *mut u8,
            text_len: arg_end - arg_start,
        })
    }

    /// Whether `argv` fits: as many strings as slots, their bytes and NULs within the
    /// text.
    pub(crate) fn fits(slot_count: usize, text_len: usize, argv: &[&[u8]]) -> bool {
        argv.len() <= slot_count && argv.iter().map(|arg| arg.len() + 1).sum::<usize>() <= text_len
    }

    /// Writes `argv` over this process's own arguments: the strings into the text, one
    /// after the other, each with its NUL; a pointer to each into the slots, then NULL.
    /// Returns how many bytes of the text it wrote.
    ///
    /// # Safety
    /// Only in a process with one thread and nothing borrowing its arguments — the
    /// server, or a child of it or of [`clone_here`] — on the area found in it or in
    /// the process it is a copy of. `argv` must [`fit`](Self::fits).
    pub(crate) unsafe fn place(&self, argv: &[&[u8]]) -> usize {
        assert!(ArgvArea::fits(self.slot_count, self.text_len, argv));
        // SAFETY: the text is `text_len` bytes of our stack, ours alone (see above).
        let text = unsafe { std::slice::from_raw_parts_mut(self.text, self.text_len) };
        // Only the bytes of the new arguments are written, and what is left of the
        // string they end in: zeroing the rest would fault in its 8 pages, in every child
        // (BENCHMARKS.md, item 12). A server's child finds the rest zeroed already, the
        // server's name its one string there (`fork_server::std_reads_the_area`).
        let mut at = 0;
        for (index, arg) in argv.iter().enumerate() {
            text[at..at + arg.len()].copy_from_slice(arg);
            text[at + arg.len()] = 0;
            // SAFETY: `index` < `slot_count` (`fits`), within the array of pointers.
            unsafe { self.slots.add(index).write(self.text.add(at).cast()) };
            at += arg.len() + 1;
        }
        // SAFETY: `argv.len()` ≤ `slot_count`, and the slot at `slot_count` is the NULL
        // the kernel put there.
        unsafe { self.slots.add(argv.len()).write(std::ptr::null()) };
        for byte in text[at..].iter_mut().take_while(|byte| **byte != 0) {
            *byte = 0;
        }
        at
    }

    /// Leaves the first argument alone, for std's `args()` and in /proc/PID/cmdline
    /// alike: NULL after its pointer, zeros after its NUL.
    ///
    /// # Safety
    /// As for [`place`](Self::place).
    unsafe fn keep_only_first(&self) {
        // SAFETY: the text is `text_len` bytes of our stack, ours alone (see above).
        let text = unsafe { std::slice::from_raw_parts_mut(self.text, self.text_len) };
        let first_end = text
            .iter()
            .position(|&byte| byte == 0)
            .map_or(self.text_len, |nul| nul + 1);
        // SAFETY: `laid_out` found at least one slot, so the second is within the array
        // or is the NULL after it.
        unsafe { self.slots.add(1).write(std::ptr::null()) };
        text[first_end..].fill(0);
    }

    /// Makes `name` this process's only argument, for std's `args()` and in
    /// /proc/PID/cmdline alike, cut short where the text is shorter, and zeroes the
    /// rest of the text: a copy of the caller (`Command::without_exec`) would otherwise
    /// show the caller's command line to whoever may read its cmdline — any process in
    /// its PID namespace — where a re-executed child shows its own.
    ///
    /// # Safety
    /// As for [`place`](Self::place).
    pub(crate) unsafe fn show_only(&self, name: &[u8]) {
        let shown = &name[..name.len().min(self.text_len - 1)];
        // SAFETY: the caller's promise; one argument of at most `text_len` bytes with
        // its NUL fits any area `laid_out` accepts (one slot at least).
        let written = unsafe { self.place(&[shown]) };
        // SAFETY: the text is `text_len` bytes of our stack, ours alone (see above).
        let text = unsafe { std::slice::from_raw_parts_mut(self.text, self.text_len) };
        text[written..].fill(0);
    }
}

/// The fields of /proc/self/stat numbered as proc_pid_stat(5) numbers them, as numbers;
/// `None` when /proc can't be read or a field is missing or not a number.
fn stat_numbers<const N: usize>(numbers: [usize; N]) -> Option<[usize; N]> {
    let stat = std::fs::read("/proc/self/stat").ok()?;
    // The command name, in parentheses, may hold spaces: count from the last ')'.
    let close = stat.iter().rposition(|&byte| byte == b')')?;
    let fields: Vec<&[u8]> = stat[close + 1..]
        .split(|&byte| byte == b' ')
        .filter(|field| !field.is_empty())
        .collect();
    let mut values = [0; N];
    for (value, number) in values.iter_mut().zip(numbers) {
        // Counted from field 3 (the state).
        let field = fields.get(number.checked_sub(3)?)?;
        *value = std::str::from_utf8(field).ok()?.trim().parse().ok()?;
    }
    Some(values)
}

/// Leaves this process's first argument alone, in std's `args()` and /proc/PID/cmdline
/// alike ([`reexec::hide_arguments`](crate::hide_arguments)); whether it did — not with
/// more than one thread, nor when the arguments' array is no longer the kernel's or
/// /proc can't say where it is.
pub(crate) fn hide_arguments() -> bool {
    let Some(StartStrings {
        arguments: Some(arguments),
        ..
    }) = one_thread_and_start_strings()
    else {
        return false;
    };
    // SAFETY: the process has one thread, this one, which starts none here; std's
    // `args()` reads the array afresh at each call and hands out copies of the strings,
    // so nothing borrows what changes.
    unsafe { arguments.keep_only_first() };
    true
}

/// Writes `envp` over the environment strings the kernel laid out at this process's
/// start (`area`) — what /proc/PID/environ shows — as many of them as fit, and zeros the
/// rest. A copy of the caller (`Command::without_exec`) would otherwise show the caller's
/// environment there, where a re-executed child shows the command's.
///
/// # Safety
/// Only in a copy of the caller, single-threaded, once `environ` points elsewhere
/// ([`set_environment`]), with the area the caller found: nothing reads the strings
/// while they change, and nothing reads them after — std and libc find the environment
/// through `environ`.
pub(crate) unsafe fn show_environment(area: EnvironmentArea, envp: &CStringArray) {
    if area.start == 0 || area.end <= area.start {
        return;
    }
    // SAFETY: the kernel's own account of where this process's environment strings
    // are: mapped for the whole life of the process (the top of the main stack), and
    // ours alone (see above).
    let area =
        unsafe { std::slice::from_raw_parts_mut(area.start as *mut u8, area.end - area.start) };
    let mut at = 0;
    for pair in envp.strings().map(CStr::to_bytes_with_nul) {
        if at + pair.len() > area.len() {
            break;
        }
        area[at..at + pair.len()].copy_from_slice(pair);
        at += pair.len();
    }
    area[at..].fill(0);
}

unsafe extern "C" {
    /// libc's environment, which `getenv`, `setenv` and std's `env` read.
    static mut environ: *const *const c_char;
}

/// Makes `envp` the process's environment. The array, and the strings it points to, must
/// live for as long as the process: the caller never frees them.
///
/// # Safety
/// Only in a fork-style child, which has one thread: nothing reads the environment
/// while it changes.
pub(crate) unsafe fn set_environment(envp: *const *const c_char) {
    // SAFETY: a plain store to libc's variable, with no other thread to race it.
    unsafe { environ = envp };
}

/// The last of a fork-style child's setup: it closes its end of the report pipe, the
/// caller's sign that the setup is done.
///
/// # Safety
/// Only in a fork-style child, on the report descriptor it was given.
pub(crate) unsafe fn finish_setup(report: RawFd) {
    // SAFETY: the child's own copy of the report pipe, which nothing else uses.
    unsafe { raw::close(report) };
}

/// Ends a fork-style child once its entry (or body) has returned: std's stdout and C's
/// stdio buffers (a C library's `printf`) are written out, and nothing else of libc's
/// exit path runs. The atexit handlers and library destructors a fresh process would run
/// are the fork server's, or the caller's, registered at their start: running them in
/// every child would redo their cleanup (Python's `forkserver` children end with
/// `os._exit` for the same reason) and cost 17 of the 58 page faults of a round trip
/// (BENCHMARKS.md, item 12).
pub(crate) fn end_forked_child(status: c_int) -> ! {
    let _ = std::io::Write::flush(&mut std::io::stdout());
    flush_c_stdio();
    raw::exit(status)
}

/// Writes out C's stdio buffers (a C library's `printf`): `fflush(NULL)`.
pub(crate) fn flush_c_stdio() {
    // SAFETY: fflush(NULL) only writes out the open output streams' buffers, under
    // their own locks; nothing of ours is borrowed across it.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

/// Where the kernel laid out this process's environment strings at its start: what
/// /proc/PID/environ shows, whatever `environ` points to since.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EnvironmentArea {
    start: usize,
    end: usize,
}

/// What a process's /proc/PID/cmdline and environ show: the strings the kernel laid out
/// at its start, the arguments when their array is still the kernel's.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StartStrings {
    pub(crate) arguments: Option<ArgvArea>,
    pub(crate) environment: EnvironmentArea,
}

/// This process's [`StartStrings`] when it has one thread, as /proc/self/stat counts
/// them (its 20th field; the strings are bounded by fields 28 and 48 to 51); `None` with
/// more, or when /proc can't say. A thread can only be started by a thread of the
/// process, so the answer holds for as long as the one thread that asked starts none.
/// One read of /proc serves both, in the caller, so that a copy of it reads nothing
/// there.
pub(crate) fn one_thread_and_start_strings() -> Option<StartStrings> {
    match stat_numbers([20, 28, 48, 49, 50, 51]) {
        Some([1, start_stack, arg_start, arg_end, start, end]) => Some(StartStrings {
            arguments: ArgvArea::laid_out(start_stack, arg_start, arg_end),
            environment: EnvironmentArea { start, end },
        }),
        _ => None,
    }
}

/// What std's start does before `main` that a copy of the caller made by [`clone_here`]
/// lost to its setup, which put every handled signal back to its default: `SIGPIPE`
/// ignored, so that a write to a closed pipe fails with `EPIPE` instead of killing.
pub(crate) fn ignore_broken_pipes() {
    // SAFETY: sets the disposition of one signal to SIG_IGN; no handler of ours is
    // involved, and the child has one thread.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Takes ownership of descriptors that recvmsg(2) just installed from `SCM_RIGHTS`.
pub(crate) fn adopt_received(fds: impl IntoIterator<Item = RawFd>) -> Vec<OwnedFd> {
    fds.into_iter()
        // SAFETY: the kernel made each of these for this process as the message arrived;
        // nothing else knows their numbers, so each gets exactly one owner here.
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
        .collect()
}

/// One word of memory the fork server and its caller both map (`MAP_SHARED`, from a
/// memfd), where the kernel writes the pid of the server's child during the clone itself
/// (`CLONE_PARENT_SETTID`). The caller clears it before each request; a server that ends
/// without answering may have left a pid there, of a child that is the caller's
/// (`CLONE_PARENT`), whole, and that nobody else knows of: the caller takes it on as if
/// the answer had come.
pub(crate) struct SpawnSlot {
    word: NonNull<c_void>,
}

// SAFETY: the mapping belongs to the slot alone, and every access to the word goes
// through an atomic: any thread may hold, use and drop it.
unsafe impl Send for SpawnSlot {}

/// The slot's size, one pid; its mapping takes a page.
const SLOT_LENGTH: NonZeroUsize = NonZeroUsize::new(size_of::<libc::pid_t>()).unwrap();

impl SpawnSlot {
    /// A new slot, cleared, and the descriptor to give the server (close-on-exec: a
    /// spawn gives it at a chosen number).
    pub(crate) fn new() -> io::Result<(SpawnSlot, OwnedFd)> {
        let file = memfd::memfd_create(c"reexec-fork-server-slot", MFdFlags::MFD_CLOEXEC)?;
        nix::unistd::ftruncate(&file, SLOT_LENGTH.get() as libc::off_t)?;
        Ok((SpawnSlot::map(&file)?, file))
    }

    /// The server's side of the slot its starter gave it at `fd`, which is closed once
    /// mapped; `None` when that is no file of the slot's size (then it is left alone).
    /// The server's children don't get the mapping.
    pub(crate) fn adopt(fd: RawFd) -> Option<SpawnSlot> {
        let file = adopt_inherited(fd, |stat| {
            stat.st_mode & libc::S_IFMT == libc::S_IFREG
                && usize::try_from(stat.st_size).ok() == Some(SLOT_LENGTH.get())
        })?;
        let slot = SpawnSlot::map(&file).ok()?;
        // SAFETY: our own mapping of one page, which nothing borrows; a child of the
        // server has no use for it, and a fork-style clone then copies nothing of it.
        let _ = unsafe { mman::madvise(slot.word, SLOT_LENGTH.get(), MmapAdvise::MADV_DONTFORK) };
        Some(slot)
    }

    fn map(file: &OwnedFd) -> io::Result<SpawnSlot> {
        // SAFETY: a fresh shared mapping of our own memfd; no existing memory is touched.
        let word = unsafe {
            mman::mmap(
                None,
                SLOT_LENGTH,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                file,
                0,
            )
        }?;
        Ok(SpawnSlot { word })
    }

    /// The word, for the kernel to write the pid into.
    fn word(&self) -> *mut libc::pid_t {
        self.word.as_ptr().cast()
    }

    fn atomic(&self) -> &AtomicI32 {
        // SAFETY: the start of a live page-aligned mapping, which outlives `self`'s
        // borrow; the other process writes it through atomics or the kernel only.
        unsafe { AtomicI32::from_ptr(self.word()) }
    }

    /// Empties the slot, before a request.
    pub(crate) fn clear(&self) {
        self.put(0);
    }

    /// Writes `pid` where the kernel's clone3 would have.
    fn put(&self, pid: libc::pid_t) {
        self.atomic().store(pid, Ordering::Release);
    }

    /// The pid the server's last clone wrote, if any, and empties the slot.
    pub(crate) fn take(&self) -> Option<libc::pid_t> {
        Some(self.atomic().swap(0, Ordering::AcqRel)).filter(|&pid| pid > 0)
    }
}

impl Drop for SpawnSlot {
    fn drop(&mut self) {
        // SAFETY: our own mapping, made in `map`; nothing borrows it once we are dropped.
        let _ = unsafe { mman::munmap(self.word, SLOT_LENGTH.get()) };
    }
}

impl std::fmt::Debug for SpawnSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnSlot")
            .field("pid", &self.atomic().load(Ordering::Acquire))
            .finish()
    }
}

/// Which directory this process works in, told apart from every other one: the device
/// and inode, and the mount it is reached through — the same directory seen through a
/// bind mount elsewhere resolves `..` and mount points differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WorkingDirectory {
    device: (u32, u32),
    inode: u64,
    mount: u64,
}

impl WorkingDirectory {
    /// This process's, by `statx(".")`; `None` where the kernel can't name the mount
    /// (`STATX_MNT_ID`, Linux 5.8) or the call fails.
    pub(crate) fn now() -> Option<WorkingDirectory> {
        let wanted = libc::STATX_INO | libc::STATX_MNT_ID;
        let mut found = std::mem::MaybeUninit::<libc::statx>::zeroed();
        // SAFETY: statx writes one struct statx into `found`, a zeroed local of that type,
        // and reads the path, a NUL-terminated literal.
        let result =
            unsafe { libc::statx(libc::AT_FDCWD, c".".as_ptr(), 0, wanted, found.as_mut_ptr()) };
        if result != 0 {
            return None;
        }
        // SAFETY: zeroed, then filled in by statx.
        let found = unsafe { found.assume_init() };
        (found.stx_mask & wanted == wanted).then_some(WorkingDirectory {
            device: (found.stx_dev_major, found.stx_dev_minor),
            inode: found.stx_ino,
            mount: found.stx_mnt_id,
        })
    }
}

/// The fork server's end of its socket, at the number its starter gave it; `None` when
/// that descriptor is no socket (the binary was started by hand under the server's name).
pub(crate) fn adopt_server_socket(fd: RawFd) -> Option<OwnedFd> {
    adopt_inherited(fd, |stat| stat.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}

/// The descriptor the fork server's starter gave it at `fd`, owned from now on, when
/// `fstat` finds it open and `expected` holds of it; `None`, and left alone, otherwise.
fn adopt_inherited(
    fd: RawFd,
    expected: impl FnOnce(&nix::sys::stat::FileStat) -> bool,
) -> Option<OwnedFd> {
    let stat = nix::sys::stat::fstat(
        // SAFETY: borrowed only for this fstat, which fails harmlessly on a closed number.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
    )
    .ok()?;
    if !expected(&stat) {
        return None;
    }
    // SAFETY: `ForkServer` starts the server with this descriptor at this number and
    // nothing else in the server opens or owns it; `expected` rules out a stray one.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}
