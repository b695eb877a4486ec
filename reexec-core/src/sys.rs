//! The unsafe core: `clone(2)` and everything the child does before `execve(2)`.
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
//!   [`spawn`] returns only once the child has exec'd or ended (end-of-file on a
//!   close-on-exec pipe). Go's `syscall` package gives up its vfork path here and copies
//!   the page tables; we don't.
//!
//! # What sharing memory asks of the child
//!
//! - It writes no memory the parent uses: only its own stack — a mapping of its own, kept
//!   by the calling thread for its next spawn, with a guard page below it so that an
//!   overflow faults instead of writing over the parent's data — and the one report word
//!   the parent reads after the child is done.
//! - It makes raw system calls only (module `raw`), never libc's wrappers: those store
//!   an error in `errno`, which lives in the thread-local storage of the thread that
//!   called clone. The child runs on that thread's TLS (clone gives it no other), and in
//!   the `CLONE_VM`-alone case that thread runs at the same time and may be reading its
//!   own `errno` after a failed call of its own. The raw calls return `-errno` instead and
//!   touch no TLS; nothing else in the child does either.
//! - As after any clone of a process that may have threads, it allocates nothing, takes
//!   no lock, formats nothing and cannot panic: another thread may have held the
//!   allocator's lock at the moment of the clone.
//! - No handler of the parent's may run in it: every signal is blocked in the calling
//!   thread around the clone, so the child starts with all of them blocked, and it puts
//!   every handled signal back to its default before it unblocks any. A handler running
//!   in the child would run on the parent's memory.
//! - Everything it reads — the [`ChildPlan`], the strings the plan points into, its stack —
//!   stays alive until it has exec'd or ended: [`spawn`] returns only then, and when it must
//!   leave early (the parent's part failed or panicked) it kills and reaps the child first.
//!   execve(2) drops the shared memory before it closes close-on-exec descriptors, and
//!   exit(2) before it closes any, so end-of-file on a pipe whose write end only the child
//!   holds means the child is done with our memory.

use std::cell::Cell;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Step;

/// What the child is to do, prepared by the parent before the clone.
pub(crate) struct ChildPlan<'a> {
    pub(crate) exe: &'a CStr,
    /// NULL-terminated `argv`, pointing into strings the parent keeps alive.
    pub(crate) argv: &'a [*const c_char],
    /// NULL-terminated `envp`, likewise.
    pub(crate) envp: &'a [*const c_char],
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
    /// What passes between parent and child before the child goes on.
    pub(crate) handshake: Handshake,
    /// Enter a new time namespace with unshare(2) before execve: clone(2) can't.
    pub(crate) unshare_time: bool,
    /// A signal left blocked across execve; see `arm_death_signal_as_pid1`. 0 for none.
    pub(crate) keep_blocked: c_int,
}

/// What passes between parent and child between the clone and the child's own setup.
#[derive(Clone, Copy)]
pub(crate) enum Handshake {
    /// Nothing: the child starts with `CLONE_VFORK`, and, when it has a death signal,
    /// checks with getppid(2) that its parent did not die before the signal was armed.
    None,
    /// The child starts with `CLONE_VFORK` in a new PID namespace, where getppid(2) is
    /// always 0: it checks instead that the parent still holds the write end of this
    /// pipe, whose read end must be non-blocking (end-of-file: the parent is gone).
    ParentAlive(SyncPipe),
    /// The parent has a part to play while the child waits (id maps): the child starts
    /// with `CLONE_VM` alone and waits for one byte on this pipe; end-of-file means the
    /// parent died or gave up on it.
    WaitForParent(SyncPipe),
}

/// A descriptor of the parent that the child gets as `target`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GivenFd {
    pub(crate) source: RawFd,
    pub(crate) target: RawFd,
}

/// Both ends of a parent-to-child pipe, as the child sees them.
#[derive(Clone, Copy)]
pub(crate) struct SyncPipe {
    pub(crate) read: RawFd,
    pub(crate) write: RawFd,
}

/// Why [`spawn`] failed. In every case no child is left running or unreaped.
#[derive(Debug)]
pub(crate) enum SpawnError<E> {
    /// clone(2) failed: there never was a child.
    Clone(io::Error),
    /// The parent's part failed; the child was killed and reaped.
    Parent(E),
    /// A step of the child's setup failed with this errno; the child was reaped.
    Child(Step, i32),
    /// Waiting for the child failed.
    Os(Step, io::Error),
}

/// The exit status of a child whose setup failed; the parent learns the real cause from
/// the report and never shows this number to users.
const SETUP_FAILED: c_int = 127;

/// Room for the child's stack. It runs a few dozen raw system calls and no formatting;
/// a debug build's frames take a few KiB of this. The guard page comes on top.
const CHILD_STACK_SIZE: usize = 64 * 1024;

/// What `child_entry` receives: the plan, and the word the child reports a failed step
/// in. Both live in `spawn`'s frame, which outlasts the child's use of them.
struct Shared<'p> {
    plan: &'p ChildPlan<'p>,
    /// 0 while nothing failed; else `encode_report(step, errno)`.
    report: AtomicU64,
    /// The write end of the pipe whose end-of-file tells the parent we are done with its
    /// memory, which a waiting child must keep; -1 without one.
    done_write: RawFd,
    /// The parent's pid as /proc numbers it, for a child in a new PID namespace to find
    /// its parent there (see `parent_is_gone`); 0 when not needed or unknown.
    parent_in_proc: libc::pid_t,
}

/// Starts the child described by `plan` and returns its pid once the child has called
/// execve — or ended, which the caller learns from its status.
///
/// With [`Handshake::WaitForParent`], `parent_part` runs while the child waits, and must
/// end by writing the byte that lets it go; with any other handshake it is not called.
pub(crate) fn spawn<E>(
    plan: &ChildPlan<'_>,
    parent_part: impl FnOnce(libc::pid_t) -> Result<(), E>,
) -> Result<libc::pid_t, SpawnError<E>> {
    debug_assert_eq!(plan.argv.last(), Some(&ptr::null()));
    debug_assert_eq!(plan.envp.last(), Some(&ptr::null()));
    assert!(
        follows_the_rules(plan.fds),
        "the given descriptors break ChildPlan::fds's rules: {:?}",
        plan.fds
    );
    let stack = ChildStack::take().map_err(SpawnError::Clone)?;
    let waits = matches!(plan.handshake, Handshake::WaitForParent(_));
    // Without CLONE_VFORK we learn that the child is done with our memory from the
    // end-of-file of this pipe; the child only ever holds its (close-on-exec) write end.
    let done = if waits {
        Some(done_pipe(plan.fds).map_err(|error| SpawnError::Os(Step::CreatePipe, error))?)
    } else {
        None
    };
    let shared = Shared {
        plan,
        report: AtomicU64::new(0),
        done_write: done
            .as_ref()
            .map_or(-1, |(_, write)| std::os::fd::AsRawFd::as_raw_fd(write)),
        parent_in_proc: if plan.death_signal != 0 && plan.clone_flags & libc::CLONE_NEWPID != 0 {
            pid_in_proc()
        } else {
            0
        },
    };
    let share_memory = if waits {
        libc::CLONE_VM
    } else {
        libc::CLONE_VM | libc::CLONE_VFORK
    };
    let blocked = SignalsBlocked::all().map_err(SpawnError::Clone)?;
    // SAFETY: `child_entry` gets a pointer to `shared`, which lives in this frame; this
    // function returns only after the child has exec'd or ended (see the module docs),
    // and the child only reads the plan and stores to the atomic report. The stack is a
    // fresh mapping, clone gets its top as the ABI wants, and nothing else uses it.
    let pid = unsafe {
        libc::clone(
            child_entry,
            stack.top(),
            plan.clone_flags | share_memory | libc::SIGCHLD,
            &shared as *const Shared<'_> as *mut c_void,
        )
    };
    // Read errno only when clone(2) failed: then no child ever ran, and errno is ours.
    let clone_error = (pid < 0).then(io::Error::last_os_error);
    drop(blocked);
    if let Some(error) = clone_error {
        return Err(SpawnError::Clone(error));
    }

    // From here until the child is known to be done, leaving this frame early — an error
    // below, a panic in `parent_part` — must first make sure it is.
    let mut reaper = ReapOnDrop { pid: Some(pid) };
    if let Some((done_read, done_write)) = done {
        drop(done_write);
        parent_part(pid).map_err(SpawnError::Parent)?;
        wait_for_eof(&done_read).map_err(|error| SpawnError::Os(Step::ReadSetupReport, error))?;
    }
    // The child has exec'd or ended: CLONE_VFORK returned, or the pipe said so.
    let report = shared.report.load(Ordering::Acquire);
    reaper.pid = None;
    stack.keep();
    if report == 0 {
        return Ok(pid);
    }
    // The child reported a failed step and exits right after: reap it.
    reap(pid).map_err(|error| SpawnError::Os(Step::Wait, error))?;
    let (step, errno) = decode_report(report);
    Err(SpawnError::Child(
        step.unwrap_or(Step::ReadSetupReport),
        errno,
    ))
}

/// Kills and reaps the child when dropped with `pid` still set: the way out of `spawn`
/// for errors and panics while the child may still be using the parent's memory.
struct ReapOnDrop {
    pid: Option<libc::pid_t>,
}

impl Drop for ReapOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: kill(2) on our own child, which is not reaped yet, so the pid can't
            // have been reused.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            // Once waitpid has reaped it (or found it auto-reaped, ECHILD), the child's
            // task is gone and with it any use of our memory.
            let _ = reap(pid);
        }
    }
}

/// Waits for `pid` to end and reaps it, retrying when interrupted.
fn reap(pid: libc::pid_t) -> io::Result<c_int> {
    loop {
        match wait(pid, false) {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
}

/// Reads `fd` until end-of-file, which comes when every write end is closed.
fn wait_for_eof(fd: &std::os::fd::OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a local, from a descriptor we own.
        let read = unsafe { libc::read(fd.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
        match read {
            0 => return Ok(()),
            // The child never writes here; a byte would be a stray writer's: ignore it.
            1 => {}
            _ => {
                let error = io::Error::last_os_error();
                if error.kind() != io::ErrorKind::Interrupted {
                    return Err(error);
                }
            }
        }
    }
}

fn cloexec_pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
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

/// The pipe whose end-of-file tells the parent that a waiting child is done with its
/// memory. The child installs descriptors at 0 to 2 and at each given target: were the
/// write end at one of those numbers, the child would close it by installing one there,
/// and the end-of-file would come while it still runs on our memory. (A parent that
/// closed its stdin gets a pipe at 0.) Then the write end moves above them all.
fn done_pipe(given: &[GivenFd]) -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::{AsFd, AsRawFd};
    let (read, write) = cloexec_pipe()?;
    let at = write.as_raw_fd();
    if at > 2 && !is_given_target(given, at) {
        return Ok((read, write));
    }
    let highest = given.last().map_or(2, |fd| fd.target);
    Ok((read, dup_above(write.as_fd(), highest + 1)?))
}

/// A close-on-exec copy of `fd` at the lowest free number from `lowest` up
/// (`F_DUPFD_CLOEXEC`).
pub(crate) fn dup_above(
    fd: std::os::fd::BorrowedFd<'_>,
    lowest: RawFd,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(lowest))?;
    // SAFETY: fcntl just made this descriptor; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(copy) })
}

extern "C" fn child_entry(shared: *mut c_void) -> c_int {
    // SAFETY: `spawn` passes a pointer to its live `Shared`, which stays valid until this
    // child has exec'd or ended; the child only reads it and stores to the atomic.
    let shared = unsafe { &*(shared as *const Shared<'_>) };
    child_main(shared)
}

/// The child's whole life before `execve`: raw system calls on data prepared by the
/// parent (see the module docs for why nothing else).
fn child_main(shared: &Shared<'_>) -> ! {
    let plan = shared.plan;
    let fail = |step: Step, errno: i32| -> ! {
        shared
            .report
            .store(encode_report(step, errno), Ordering::Release);
        raw::exit(SETUP_FAILED)
    };

    if plan.death_signal != 0 {
        if let Err(errno) = raw::set_death_signal(plan.death_signal) {
            fail(Step::SetDeathSignal, errno);
        }
        // The parent may have died before the signal was armed; then nobody sends it.
        // Whatever the handshake: a parent may let a waiting child go and die before the
        // child got here, leaving the byte that releases it in the pipe.
        match parent_is_gone(shared) {
            Ok(false) => {}
            Ok(true) => raw::exit(SETUP_FAILED),
            Err(errno) => fail(Step::SetDeathSignal, errno),
        }
    }

    match plan.handshake {
        Handshake::None => {}
        Handshake::ParentAlive(sync) => {
            // Our copy of the write end must go, or it would answer for the parent. (So
            // could a copy in a child another thread spawned meanwhile: `parent_is_gone`,
            // above, is the check that can't be fooled; this one is older and cheap.)
            raw::close(sync.write);
            let mut byte = 0u8;
            loop {
                match raw::read(sync.read, &mut byte) {
                    // The parent still holds the write end (the read end is non-blocking).
                    Err(libc::EAGAIN) => break,
                    Err(libc::EINTR) => {}
                    // End-of-file: the parent is gone. A byte: nobody writes one.
                    Ok(_) => raw::exit(SETUP_FAILED),
                    Err(errno) => fail(Step::SetDeathSignal, errno),
                }
            }
        }
        Handshake::WaitForParent(sync) => {
            // Our copy of the write end must go, or a dead parent would never give us EOF.
            raw::close(sync.write);
            // And so must everything else of the parent's that we don't need.
            let [stdin, stdout, stderr] = plan.stdio.map(|fd| fd.unwrap_or(-1));
            close_unneeded(
                &[sync.read, shared.done_write, stdin, stdout, stderr],
                plan.fds,
            );
            let mut go = 0u8;
            loop {
                match raw::read(sync.read, &mut go) {
                    Ok(1) => break,
                    // Signals are blocked, but a stop and continue can interrupt the read.
                    Err(libc::EINTR) => {}
                    // End-of-file: the parent died or gave up on us; it reports on its side.
                    _ => raw::exit(SETUP_FAILED),
                }
            }
        }
    }

    if plan.unshare_time {
        if let Err(errno) = raw::unshare(libc::CLONE_NEWTIME) {
            fail(Step::EnterTimeNamespace, errno);
        }
    }

    if let Err(errno) = reset_signals(plan.keep_blocked) {
        fail(Step::ResetSignals, errno);
    }

    if let Err(errno) = install_stdio(&plan.stdio) {
        fail(Step::InstallStdio, errno);
    }

    // Stdio is in place, so no given descriptor can land on a stdio source still needed.
    if let Err(errno) = install_given_fds(plan.fds) {
        fail(Step::InstallFds, errno);
    }

    if let Err(errno) = close_others_on_exec(plan.fds) {
        fail(Step::CloseOtherFds, errno);
    }

    if let Some(cwd) = plan.cwd {
        if let Err(errno) = raw::chdir(cwd) {
            fail(Step::ChangeDirectory, errno);
        }
    }

    let errno = raw::execve(plan.exe, plan.argv, plan.envp);
    fail(Step::Exec, errno)
}

/// Whether the process that spawned this child has died, asked once the death signal is
/// armed: a parent that died before can no longer send it.
///
/// getppid(2) answers, except in a new PID namespace, where it is always 0. There /proc
/// answers: the child's /proc is still the parent's (a new mount namespace starts as a
/// copy, with the same proc mount), where the parent looked up its own number before the
/// clone. Either way the child's parent changes when the parent dies: the child is handed
/// to a reaper.
fn parent_is_gone(shared: &Shared<'_>) -> Result<bool, i32> {
    let plan = shared.plan;
    if plan.clone_flags & libc::CLONE_NEWPID == 0 {
        return Ok(raw::getppid() != plan.parent_pid);
    }
    if shared.parent_in_proc <= 0 {
        // /proc did not list the parent: execve of /proc/self/exe fails on its own.
        return Ok(false);
    }
    Ok(parent_in_proc()? != shared.parent_in_proc)
}

/// Our parent's pid as /proc numbers it: the fourth field of /proc/self/stat.
fn parent_in_proc() -> Result<libc::pid_t, i32> {
    let fd = raw::open(c"/proc/self/stat", libc::O_RDONLY | libc::O_CLOEXEC)?;
    let mut stat = [0u8; 512];
    let read = raw::read_into(fd, &mut stat);
    raw::close(fd);
    let stat = stat.get(..read?).unwrap_or_default();
    // "PID (NAME) STATE PPID …", where NAME may hold anything, ')' too: it ends at the last.
    let after_name = match stat.iter().rposition(|&byte| byte == b')') {
        Some(close) => stat.get(close + 1..).unwrap_or_default(),
        None => return Err(libc::EINVAL),
    };
    let mut fields = after_name
        .split(|&byte| byte == b' ')
        .filter(|field| !field.is_empty());
    let _state = fields.next();
    fields.next().and_then(parse_decimal).ok_or(libc::EINVAL)
}

/// This process's pid as its /proc numbers it; 0 when /proc does not list it.
fn pid_in_proc() -> libc::pid_t {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|link| link.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// Closes every descriptor but those in `keep` and the sources of `given`: what a child
/// does before it waits for its parent. 0, 1 and 2 stay unless close-on-exec: the child
/// keeps the parent's stdio where it was not given another.
///
/// The clone gave the child a copy of every descriptor the parent had, those of spawns
/// that other threads have in flight included. execve would close them all (see
/// `close_others_on_exec`), but a waiting child would keep them open for as long as its
/// parent takes. Then another spawn sees no end-of-file on its child's stdout, nor on the
/// pipe that says its child has exec'd — a hook that needs a lock held by a thread in such
/// a spawn deadlocks the two — and two children started at once can each hold the write
/// end of the pipe the other waits on, so that when their parent dies neither sees
/// end-of-file and both wait forever, every signal blocked.
///
/// Without a readable /proc/self/fd it closes nothing: execve of /proc/self/exe, through
/// the same /proc, would fail anyway, and `close_others_on_exec` still runs before it.
fn close_unneeded(keep: &[RawFd], given: &[GivenFd]) {
    let _ = for_each_open_fd(|fd| {
        let kept = keep.contains(&fd) || given.iter().any(|given| given.source == fd);
        if !kept && (fd > 2 || closes_on_exec(fd)) {
            raw::close(fd);
        }
    });
}

/// Whether `fd` is open and close-on-exec.
fn closes_on_exec(fd: RawFd) -> bool {
    raw::fd_flags(fd).is_ok_and(|flags| flags & libc::FD_CLOEXEC != 0)
}

/// Calls `each` with every descriptor /proc/self/fd lists, but the one that lists them;
/// `each` may close the descriptor it is given. Fails with the errno of the open or of
/// reading the directory.
fn for_each_open_fd(mut each: impl FnMut(RawFd)) -> Result<(), i32> {
    let dir = raw::open(
        c"/proc/self/fd",
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )?;
    let mut records = [0u8; 1024];
    // getdents64 goes on from where it stopped; closing entries already listed is fine.
    let listed = loop {
        let length = match raw::getdents64(dir, &mut records) {
            Ok(0) => break Ok(()),
            Ok(length) => length,
            Err(errno) => break Err(errno),
        };
        let mut offset = 0;
        // Each record: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1), d_name.
        while let Some(&[low, high]) = records.get(offset + 16..offset + 18) {
            let record_length = usize::from(u16::from_ne_bytes([low, high]));
            let Some(name) = records.get(offset + 19..offset + record_length) else {
                break;
            };
            if let Some(fd) = parse_decimal(name)
                && fd != dir
            {
                each(fd);
            }
            offset += record_length;
            if offset >= length {
                break;
            }
        }
    };
    raw::close(dir);
    listed
}

/// Puts each given descriptor at its number in the child, without close-on-exec, so the
/// new program has it. No source is another's target (see `ChildPlan::fds`): no `dup3`
/// here overwrites a source still to be installed, whatever the cycles among the numbers
/// asked for (3 to 4 and 4 to 3, say).
fn install_given_fds(given: &[GivenFd]) -> Result<(), i32> {
    for fd in given {
        if fd.source == fd.target {
            // dup3 refuses to copy a descriptor onto itself; only the flag must go.
            raw::set_fd_flags(fd.target, 0)?;
        } else {
            raw::dup_onto(fd.source, fd.target)?;
        }
    }
    Ok(())
}

/// Makes every descriptor from 3 up close at execve, but the given targets: the new
/// program starts with 0, 1, 2 and what it was given, never with what the parent left
/// open without close-on-exec (an open directory of the host would lead out of any new
/// root; runc's CVE-2024-21626 was one such descriptor).
///
/// They are marked, not closed now: the write end of the pipe whose end-of-file tells a
/// parent that the child is done with its memory must stay open until execve, which closes
/// it only after dropping that memory.
///
/// `close_range(CLOSE_RANGE_CLOEXEC)` over the gaps between the targets does it in a few
/// calls. Where it fails — ENOSYS before Linux 5.9 or under a seccomp filter that does not
/// know it, EINVAL for the flag before 5.11, EPERM from filters that refuse unknown calls —
/// each descriptor that /proc/self/fd lists gets `FD_CLOEXEC` instead. Without either the
/// spawn fails rather than let a descriptor through.
fn close_others_on_exec(given: &[GivenFd]) -> Result<(), i32> {
    if mark_gaps_with_close_range(given).is_ok() {
        return Ok(());
    }
    mark_each_listed(given)
}

/// `FD_CLOEXEC` on each descriptor from 3 up that /proc/self/fd lists, but the given
/// targets (sorted): `close_range`'s fallback.
fn mark_each_listed(given: &[GivenFd]) -> Result<(), i32> {
    let mut failed = Ok(());
    for_each_open_fd(|fd| {
        if fd > 2 && !is_given_target(given, fd) {
            if let Err(errno) = raw::set_fd_flags(fd, libc::FD_CLOEXEC) {
                failed = Err(errno);
            }
        }
    })?;
    failed
}

/// `close_range(CLOSE_RANGE_CLOEXEC)` over 3 and up, less the given targets (sorted).
fn mark_gaps_with_close_range(given: &[GivenFd]) -> Result<(), i32> {
    let mut first: u32 = 3;
    for fd in given {
        let target = fd.target as u32;
        if first < target {
            raw::close_range_cloexec(first, target - 1)?;
        }
        first = target + 1;
    }
    raw::close_range_cloexec(first, u32::MAX)
}

/// The number that `text`, up to a NUL if any, writes in decimal: an entry name of
/// /proc/self/fd, a field of /proc/self/stat. `None` for `.`, `..` and anything else.
fn parse_decimal(text: &[u8]) -> Option<c_int> {
    let mut number: c_int = 0;
    let mut digits = 0;
    for &byte in text.iter().take_while(|&&byte| byte != 0) {
        if !byte.is_ascii_digit() {
            return None;
        }
        number = number
            .checked_mul(10)?
            .checked_add(c_int::from(byte - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(number)
}

/// Puts every handled signal back to its default action and unblocks all signals but
/// `keep_blocked`, so the new program starts as a freshly executed one would, and no
/// handler of the parent's runs in the child before `execve`. SIGPIPE goes back to
/// default too, as `std::process::Command` does: Rust programs ignore it.
fn reset_signals(keep_blocked: c_int) -> Result<(), i32> {
    // 1 to 64 are all of Linux's signals; SIGRTMAX() would be a libc call, not a constant.
    for signal in 1..=64 {
        if signal == libc::SIGKILL || signal == libc::SIGSTOP {
            continue;
        }
        let handler = raw::signal_handler(signal)?;
        let must_reset =
            handler != libc::SIG_DFL && (handler != libc::SIG_IGN || signal == libc::SIGPIPE);
        if must_reset {
            raw::set_default_action(signal)?;
        }
    }
    let mask = match keep_blocked {
        1..=64 => 1u64 << (keep_blocked - 1),
        _ => 0,
    };
    raw::set_signal_mask(mask)
}

/// Makes the given descriptors fds 0, 1 and 2.
fn install_stdio(stdio: &[Option<RawFd>; 3]) -> Result<(), i32> {
    // A source that is itself one of 0..2 could be overwritten by an earlier dup: move
    // every such source out of the way first.
    let mut sources = *stdio;
    for source in sources.iter_mut().flatten() {
        if *source <= 2 {
            *source = raw::dup_above(*source, 3)?;
        }
    }
    for (target, source) in (0..).zip(sources) {
        if let Some(source) = source {
            // The copy at `target` is not close-on-exec, which the new program needs.
            // `source` is 3 or above by now, so never equal to `target`.
            raw::dup_onto(source, target)?;
        }
    }
    Ok(())
}

/// System calls made directly, without libc's wrappers: they return `-errno` and never
/// touch `errno` or anything else in thread-local storage (see the module docs). The
/// wrappers are safe: each passes only numbers, or pointers taken from references that
/// live as long as the call.
mod raw {
    use std::ffi::{CStr, c_char, c_int, c_long};

    /// A raw system call with up to four arguments; the kernel's return value as is.
    ///
    /// # Safety
    /// `number` and its arguments must form a valid system call whose pointers are valid
    /// for what that call reads and writes.
    #[cfg(target_arch = "x86_64")]
    unsafe fn syscall4(number: c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
        let ret: isize;
        // SAFETY: the x86_64 Linux system-call convention: number in rax, arguments in
        // rdi, rsi, rdx, r10, result in rax; the kernel clobbers rcx and r11 and nothing
        // else, and uses no stack of ours. The caller vouches for the arguments.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") number as isize => ret,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                in("r10") d,
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
        // x0 to x3, result in x0; `svc 0` clobbers nothing else and uses no stack of
        // ours. The caller vouches for the arguments.
        unsafe {
            std::arch::asm!(
                "svc 0",
                in("x8") number,
                inlateout("x0") a => ret,
                in("x1") b,
                in("x2") c,
                in("x3") d,
                options(nostack),
            );
        }
        ret
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    compile_error!(
        "reexec supports x86_64 and aarch64: its child makes raw system calls (see sys.rs); \
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

    pub(super) fn getppid() -> libc::pid_t {
        // SAFETY: getppid(2) takes nothing and touches no memory of ours.
        unsafe { call(libc::SYS_getppid, 0, 0, 0, 0) }.map_or(-1, |pid| pid as libc::pid_t)
    }

    pub(super) fn close(fd: c_int) {
        // SAFETY: close(2) takes a number and touches no memory of ours.
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

    /// Reads at most `buffer.len()` bytes.
    pub(super) fn read_into(fd: c_int, buffer: &mut [u8]) -> Result<usize, i32> {
        let (pointer, length) = (buffer.as_mut_ptr() as usize, buffer.len());
        // SAFETY: read(2) writes at most `length` bytes into `buffer`, a live exclusive
        // slice.
        unsafe { call(libc::SYS_read, fd as usize, pointer, length, 0) }
    }

    /// Reads at most one byte.
    pub(super) fn read(fd: c_int, byte: &mut u8) -> Result<usize, i32> {
        // SAFETY: read(2) of at most one byte into `byte`, a live exclusive reference.
        unsafe { call(libc::SYS_read, fd as usize, byte as *mut u8 as usize, 1, 0) }
    }

    pub(super) fn unshare(flags: c_int) -> Result<(), i32> {
        // SAFETY: unshare(2) takes flags and touches no memory of ours.
        unsafe { call(libc::SYS_unshare, flags as usize, 0, 0, 0) }.map(drop)
    }

    /// `fcntl(fd, F_DUPFD_CLOEXEC, lowest)`.
    pub(super) fn dup_above(fd: c_int, lowest: c_int) -> Result<c_int, i32> {
        let command = libc::F_DUPFD_CLOEXEC as usize;
        // SAFETY: fcntl(F_DUPFD_CLOEXEC) takes numbers and touches no memory of ours.
        unsafe { call(libc::SYS_fcntl, fd as usize, command, lowest as usize, 0) }
            .map(|fd| fd as c_int)
    }

    /// `dup3(source, target, 0)`: aarch64 has no dup2. `source` must differ from `target`.
    pub(super) fn dup_onto(source: c_int, target: c_int) -> Result<(), i32> {
        // SAFETY: dup3(2) takes numbers and touches no memory of ours.
        unsafe { call(libc::SYS_dup3, source as usize, target as usize, 0, 0) }.map(drop)
    }

    pub(super) fn chdir(dir: &CStr) -> Result<(), i32> {
        // SAFETY: chdir(2) reads a NUL-terminated string that `dir` keeps alive.
        unsafe { call(libc::SYS_chdir, dir.as_ptr() as usize, 0, 0, 0) }.map(drop)
    }

    /// Returns only on failure, with the errno.
    pub(super) fn execve(exe: &CStr, argv: &[*const c_char], envp: &[*const c_char]) -> i32 {
        let (exe, argv, envp) = (exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
        // SAFETY: execve(2) reads a NUL-terminated path and two NULL-terminated arrays of
        // NUL-terminated strings (`spawn` checks the NULLs), all kept alive by the plan.
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

    /// Ends the process at once, running nothing of Rust's or libc's exit path.
    pub(super) fn exit(status: c_int) -> ! {
        loop {
            // SAFETY: exit_group(2) takes a number and does not return.
            let _ = unsafe { call(libc::SYS_exit_group, status as usize, 0, 0, 0) };
        }
    }
}

/// `waitpid(2)` on our own child: its raw status, or `None` if `nohang` and it still runs.
pub(crate) fn wait(pid: libc::pid_t, nohang: bool) -> io::Result<Option<c_int>> {
    let mut status: c_int = 0;
    let flags = if nohang { libc::WNOHANG } else { 0 };
    // SAFETY: waitpid writes one int into a valid local.
    let result = unsafe { libc::waitpid(pid, &mut status, flags) };
    match result {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        _ => Ok(Some(status)),
    }
}

/// The report word of a failed step: never 0, which means "nothing failed".
fn encode_report(step: Step, errno: i32) -> u64 {
    1 << 63 | u64::from(step.code() & 0x7fff_ffff) << 32 | u64::from(errno as u32)
}

fn decode_report(report: u64) -> (Option<Step>, i32) {
    (
        Step::from_code((report >> 32) as u32 & 0x7fff_ffff),
        report as u32 as i32,
    )
}

/// A private anonymous mapping used as the child's stack, with an inaccessible guard
/// page below it, unmapped on drop. Sharing our memory, a child that overflowed its stack
/// would otherwise write over whatever the parent has mapped below.
struct ChildStack {
    base: *mut c_void,
    len: usize,
}

thread_local! {
    /// The calling thread's child stack, kept from one spawn to the next: a spawn then
    /// makes no mmap, mprotect and munmap calls, whose page-table lock and TLB flushes
    /// every thread of the process would feel. A spawn takes it out while its child
    /// runs, so a spawn nested in another on the same thread would map one of its own.
    static SPARE_STACK: Cell<Option<ChildStack>> = const { Cell::new(None) };
}

impl ChildStack {
    /// This thread's spare stack, or a new one.
    fn take() -> io::Result<ChildStack> {
        match SPARE_STACK.try_with(Cell::take) {
            Ok(Some(stack)) => Ok(stack),
            _ => ChildStack::new(CHILD_STACK_SIZE),
        }
    }

    /// Keeps the stack for this thread's next spawn; only once no child runs on it.
    fn keep(self) {
        // A thread that is ending has no spare any more: the stack is then unmapped.
        let _ = SPARE_STACK.try_with(|spare| spare.set(Some(self)));
    }

    fn new(size: usize) -> io::Result<ChildStack> {
        // SAFETY: sysconf only reads a value the C library knows.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            page if page > 0 => page as usize,
            _ => 4096,
        };
        let len = size.next_multiple_of(page) + page;
        // SAFETY: asks for a fresh anonymous mapping; no existing memory is touched.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // SAFETY: makes the lowest page of our own fresh mapping inaccessible.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The highest address: stacks grow down on every platform we support.
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, which `add` allows.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made; `spawn` drops or keeps the
        // stack only once the child that ran on it has exec'd or ended.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Blocks every signal in this thread until dropped, so that no handler runs in the child
/// between clone and the moment it resets the dispositions.
struct SignalsBlocked {
    previous: libc::sigset_t,
}

impl SignalsBlocked {
    fn all() -> io::Result<SignalsBlocked> {
        let mut all = MaybeUninit::<libc::sigset_t>::uninit();
        let mut previous = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigfillset initialises `all`; pthread_sigmask reads it and fills `previous`.
        let result = unsafe {
            libc::sigfillset(all.as_mut_ptr());
            libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), previous.as_mut_ptr())
        };
        if result != 0 {
            return Err(io::Error::from_raw_os_error(result));
        }
        // SAFETY: pthread_sigmask succeeded, so it wrote `previous`.
        let previous = unsafe { previous.assume_init() };
        Ok(SignalsBlocked { previous })
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved by `all` in this same thread.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

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

    fn errno() -> i32 {
        // SAFETY: reads this thread's errno.
        unsafe { *libc::__errno_location() }
    }

    fn set_errno(value: i32) {
        // SAFETY: sets this thread's errno, which nothing else reads now.
        unsafe { *libc::__errno_location() = value };
    }

    /// A plan that execs `exe` with no arguments and an empty environment.
    fn plan<'a>(exe: &'a CStr, argv: &'a [*const c_char], handshake: Handshake) -> ChildPlan<'a> {
        const ENVP: [*const c_char; 1] = [ptr::null()];
        ChildPlan {
            exe,
            argv,
            envp: &ENVP,
            cwd: None,
            stdio: [None; 3],
            fds: &[],
            death_signal: 0,
            parent_pid: std::process::id() as libc::pid_t,
            clone_flags: 0,
            handshake,
            unshare_time: false,
            keep_blocked: 0,
        }
    }

    /// Whether `pid` is gone and reaped: waitpid finds no such child.
    fn reaped(pid: libc::pid_t) -> bool {
        wait(pid, true).is_err_and(|error| error.raw_os_error() == Some(libc::ECHILD))
    }

    #[test]
    fn a_child_that_execs_comes_back_as_its_pid() {
        let argv = [c"true".as_ptr(), ptr::null()];
        let pid = spawn(&plan(c"/bin/true", &argv, Handshake::None), |_| {
            Ok::<(), ()>(())
        })
        .unwrap();
        let status = reap(pid).unwrap();
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }

    #[test]
    fn a_failed_exec_is_reported_and_leaves_the_parents_errno_alone() {
        // The child runs on this thread's TLS: libc's wrappers would store ENOENT there.
        let argv = [c"missing".as_ptr(), ptr::null()];
        set_errno(0);
        let result = spawn(
            &plan(c"/nonexistent/reexec-sys-test", &argv, Handshake::None),
            |_| Ok::<(), ()>(()),
        );
        assert_eq!(errno(), 0);
        assert!(
            matches!(result, Err(SpawnError::Child(Step::Exec, libc::ENOENT))),
            "{result:?}"
        );
    }

    #[test]
    fn a_waiting_child_goes_on_once_released() {
        let (read, write) = cloexec_pipe().unwrap();
        let handshake = Handshake::WaitForParent(SyncPipe {
            read: read.as_raw_fd(),
            write: write.as_raw_fd(),
        });
        let argv = [c"true".as_ptr(), ptr::null()];
        let mut go = Some(std::fs::File::from(write));
        let pid = spawn(&plan(c"/bin/true", &argv, handshake), |_| {
            std::io::Write::write_all(&mut go.take().unwrap(), &[1])
        })
        .unwrap();
        let status = reap(pid).unwrap();
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }

    #[test]
    fn a_failing_or_panicking_parent_part_kills_and_reaps_the_waiting_child() {
        let (read, write) = cloexec_pipe().unwrap();
        let handshake = Handshake::WaitForParent(SyncPipe {
            read: read.as_raw_fd(),
            write: write.as_raw_fd(),
        });
        let argv = [c"true".as_ptr(), ptr::null()];
        let plan = plan(c"/bin/true", &argv, handshake);

        let mut child = 0;
        let result = spawn(&plan, |pid| {
            child = pid;
            Err("no")
        });
        assert!(matches!(result, Err(SpawnError::Parent("no"))));
        assert!(reaped(child), "child {child} left behind");

        let child = std::cell::Cell::new(0);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spawn(&plan, |pid| -> Result<(), ()> {
                child.set(pid);
                panic!("the parent's part panics");
            })
        }));
        assert!(unwound.is_err());
        assert!(reaped(child.get()), "child {} left behind", child.get());
        drop((read, write));
    }

    /// A pipe for [`Handshake::ParentAlive`]: close-on-exec, the read end non-blocking.
    fn liveness_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
        use nix::fcntl::OFlag;
        nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap()
    }

    fn exit_code(status: c_int) -> Option<c_int> {
        libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
    }

    #[test]
    fn a_vfork_child_checks_its_parent_holds_the_liveness_pipe() {
        let argv = [c"true".as_ptr(), ptr::null()];

        // The parent holds the write end: the child goes on and execs.
        let (read, write) = liveness_pipe();
        let handshake = Handshake::ParentAlive(SyncPipe {
            read: read.as_raw_fd(),
            write: write.as_raw_fd(),
        });
        let mut alive = plan(c"/bin/true", &argv, handshake);
        alive.death_signal = libc::SIGTERM;
        let pid = spawn(&alive, |_| Ok::<(), ()>(())).unwrap();
        assert_eq!(exit_code(reap(pid).unwrap()), Some(0));

        // Nobody holds it, as when the parent died before the death signal was armed:
        // the child stops before exec, with the status no exec'd program gives here.
        let (read, write) = liveness_pipe();
        let handshake = Handshake::ParentAlive(SyncPipe {
            read: read.as_raw_fd(),
            write: write.as_raw_fd(),
        });
        drop(write);
        let mut gone = plan(c"/bin/true", &argv, handshake);
        gone.death_signal = libc::SIGTERM;
        let pid = spawn(&gone, |_| Ok::<(), ()>(())).unwrap();
        assert_eq!(exit_code(reap(pid).unwrap()), Some(SETUP_FAILED));
    }

    #[test]
    fn a_vfork_child_in_a_new_pid_namespace_execs() {
        // SAFETY: geteuid only reads this process's credentials.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipped: a PID namespace without a user namespace needs root");
            return;
        }
        let (read, write) = liveness_pipe();
        let handshake = Handshake::ParentAlive(SyncPipe {
            read: read.as_raw_fd(),
            write: write.as_raw_fd(),
        });
        let argv = [c"true".as_ptr(), ptr::null()];
        let mut plan = plan(c"/bin/true", &argv, handshake);
        plan.clone_flags = libc::CLONE_NEWPID;
        plan.death_signal = libc::SIGTERM;
        plan.keep_blocked = libc::SIGTERM;
        let pid = spawn(&plan, |_| Ok::<(), ()>(())).unwrap();
        assert_eq!(exit_code(reap(pid).unwrap()), Some(0));
        drop((read, write));
    }

    #[test]
    fn raw_calls_report_errno_without_touching_it() {
        set_errno(0);
        assert_eq!(raw::dup_above(-1, 3), Err(libc::EBADF));
        assert_eq!(raw::chdir(c"/nonexistent/reexec"), Err(libc::ENOENT));
        assert_eq!(errno(), 0);
    }

    #[test]
    fn decimals_parse() {
        assert_eq!(parse_decimal(b"0\0"), Some(0));
        assert_eq!(parse_decimal(b"1234\0\0\0"), Some(1234));
        assert_eq!(parse_decimal(b"4321"), Some(4321));
        assert_eq!(parse_decimal(b".\0"), None);
        assert_eq!(parse_decimal(b"..\0"), None);
        assert_eq!(parse_decimal(b"\0"), None);
        assert_eq!(
            parse_decimal(b"99999999999\0"),
            None,
            "too large for a descriptor"
        );
    }

    #[test]
    fn the_parent_in_proc_is_the_parent() {
        // Here, in no new PID namespace, /proc and getppid agree.
        assert_eq!(parent_in_proc(), Ok(nix::unistd::getppid().as_raw()));
        assert_eq!(pid_in_proc(), std::process::id() as libc::pid_t);
    }

    /// Runs `check` in a forked child, which must make raw system calls only (as the
    /// spawned child does), so that closing and marking there touch none of the test
    /// harness's descriptors; passes when `check` returns true.
    fn in_forked_child(check: impl FnOnce() -> bool) {
        // SAFETY: the child makes raw system calls only and ends with exit_group.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            raw::exit(if check() { 0 } else { 1 });
        }
        let status = wait(pid, false).unwrap().unwrap();
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    }

    fn is_open(fd: RawFd) -> bool {
        raw::fd_flags(fd).is_ok()
    }

    #[test]
    fn close_unneeded_keeps_only_what_is_kept_and_the_given_sources() {
        let (kept, _kept_write) = cloexec_pipe().unwrap();
        let (given, _given_write) = cloexec_pipe().unwrap();
        let (closed, _closed_write) = cloexec_pipe().unwrap();
        // Without close-on-exec it goes too: the new program will not get it anyway.
        let (inherited, _inherited_write) = nix::unistd::pipe().unwrap();
        let owned = [kept, given, closed, inherited];
        let fds = [0, 1, 2, 3].map(|index| owned[index].as_raw_fd());
        in_forked_child(|| {
            let given = [GivenFd {
                source: fds[1],
                target: 1000,
            }];
            close_unneeded(&[fds[0]], &given);
            // The parent's stdio stays.
            fds.map(is_open) == [true, true, false, false] && (0..3).all(is_open)
        });
    }

    /// Descriptors of every kind `close_others_on_exec` meets: one to be given, without
    /// close-on-exec; and three that are not given, two of them left inheritable.
    fn fds_to_mark() -> ([std::os::fd::OwnedFd; 4], [RawFd; 4]) {
        let (given, other) = nix::unistd::pipe().unwrap();
        let (cloexec, inherited) = (cloexec_pipe().unwrap().0, nix::unistd::pipe().unwrap().0);
        let owned = [given, other, cloexec, inherited];
        let raw = [0, 1, 2, 3].map(|index| owned[index].as_raw_fd());
        (owned, raw)
    }

    /// Whether `mark`, told that the first of `fds` is given, leaves all of them open,
    /// that one without close-on-exec and the others with it, and 0 to 2 as they were.
    fn marks_all_but_the_given(fds: [RawFd; 4], mark: fn(&[GivenFd]) -> Result<(), i32>) -> bool {
        let given = [GivenFd {
            source: fds[0],
            target: fds[0],
        }];
        let stdio_before = [0, 1, 2].map(closes_on_exec);
        let marked = mark(&given).is_ok();
        marked
            && fds
                .iter()
                .all(|&fd| is_open(fd) && closes_on_exec(fd) != (fd == fds[0]))
            && [0, 1, 2].map(closes_on_exec) == stdio_before
    }

    #[test]
    fn close_range_marks_all_but_the_given_descriptors() {
        // Over numbers no descriptor has: marks nothing of the test harness's.
        if let Err(errno) = raw::close_range_cloexec(u32::MAX - 1, u32::MAX) {
            println!("skipped: close_range(CLOSE_RANGE_CLOEXEC) fails here with errno {errno}");
            return;
        }
        let (_owned, fds) = fds_to_mark();
        in_forked_child(|| marks_all_but_the_given(fds, mark_gaps_with_close_range));
    }

    #[test]
    fn the_proc_walk_marks_all_but_the_given_descriptors() {
        let (_owned, fds) = fds_to_mark();
        in_forked_child(|| marks_all_but_the_given(fds, mark_each_listed));
    }

    #[test]
    fn the_done_pipe_is_at_no_number_the_child_installs_at() {
        // The lowest free numbers are below 64 here; the child would install at all of them.
        let given: Vec<GivenFd> = (3..64)
            .map(|target| GivenFd {
                source: 1000,
                target,
            })
            .collect();
        let (read, write) = done_pipe(&given).unwrap();
        assert!(write.as_raw_fd() > 63, "{}", write.as_raw_fd());
        assert!(closes_on_exec(write.as_raw_fd()));
        drop(read);
        // With nothing given, only stdio's numbers are taken.
        let (_read, write) = done_pipe(&[]).unwrap();
        assert!(write.as_raw_fd() > 2);
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

    #[test]
    fn raw_signal_calls_see_what_libc_sees() {
        for signal in [libc::SIGPIPE, libc::SIGSEGV, libc::SIGTERM, libc::SIGKILL] {
            let mut action = MaybeUninit::<libc::sigaction>::zeroed();
            // SAFETY: queries the disposition into a zeroed local.
            let queried = unsafe { libc::sigaction(signal, ptr::null(), action.as_mut_ptr()) };
            assert_eq!(queried, 0);
            // SAFETY: sigaction filled it.
            let handler = unsafe { action.assume_init() }.sa_sigaction;
            assert_eq!(raw::signal_handler(signal), Ok(handler), "signal {signal}");
        }
    }
}
