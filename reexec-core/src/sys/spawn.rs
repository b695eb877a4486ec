//! The parent's side of a spawn: the child's stack, the signal mask around the clone,
//! the clone itself, and the handshake with the child until it has exec'd.
//!
//! Runs in the parent, on the thread that calls `Command::spawn`; ordinary Rust, which may
//! allocate and lock, but never while the child might be using what it frees.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nix::sys::mman::{self, MapFlags, ProtFlags};
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::unistd::{Pid, SysconfVar, sysconf};

use super::child::{Shared, WaitFds, child_entry};
use super::clone3;
use super::{ChildPlan, GivenFd, decode_report, follows_the_rules, is_given_target};
use crate::error::Step;

/// Why [`spawn`] failed. In every case no child is left running or unreaped.
#[derive(Debug)]
pub(crate) enum SpawnError<E> {
    /// clone(2) failed: there never was a child.
    Clone(io::Error),
    /// clone3 could not create the child in its cgroup v2 directory, for a reason of the
    /// cgroup's (its `pids.max` reached, no delegation, processes not allowed there):
    /// there never was a child. A clone3 the kernel or a seccomp filter refuses is no
    /// such error: clone(2) and the write start the child instead.
    IntoCgroup(io::Error),
    /// The parent's part failed; the child was killed and reaped.
    Parent(E),
    /// A step of the child's setup failed with this errno; the child was reaped.
    Child(Step, i32),
    /// A call of the parent's failed: preparing the clone (its stack, the signal mask, the
    /// pipes), or waiting for the child.
    Os(Step, io::Error),
}

/// Room for the child's stack. It runs a few dozen raw system calls and no formatting;
/// a debug build's frames take a few KiB of this. The guard page comes on top.
const CHILD_STACK_SIZE: usize = 64 * 1024;

/// A child that has exec'd (or ended, which its status tells).
#[derive(Debug)]
pub(crate) struct Spawned {
    pub(crate) pid: libc::pid_t,
    /// Its pidfd, from `CLONE_PIDFD`; `None` on a kernel before 5.2, which ignores the flag.
    pub(crate) pidfd: Option<OwnedFd>,
}

/// How the child of [`spawn`] gets into the cgroup of `Command::cgroup`.
pub(crate) struct IntoCgroup<'a, J> {
    /// The cgroup's one directory, on a cgroup v2 hierarchy, open (`O_PATH`): clone3
    /// creates the child in it (`CLONE_INTO_CGROUP`). `None` for a cgroup with
    /// directories on v1 hierarchies, which only the write can join.
    pub(crate) v2_dir: Option<BorrowedFd<'a>>,
    /// Writes the child's pid into each `cgroup.procs` while it waits: the way in without
    /// clone3 — on v1, or where the kernel or a seccomp filter refuses clone3.
    pub(crate) join: J,
}

/// Set once clone3 failed in a way that every later call in this process would too
/// (`clone3::is_unavailable_for_good`): spawns then go straight to clone(2).
static CLONE3_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// Whether a spawn may still try clone3: built for this architecture, and not yet found
/// unavailable in this process.
pub(crate) fn clone3_may_run() -> bool {
    clone3::AVAILABLE && !CLONE3_UNAVAILABLE.load(Ordering::Relaxed)
}

/// How many children clone3 started in their cgroup, in this process: what the tests
/// check the path a spawn took with.
#[cfg(test)]
static STARTED_IN_CGROUP: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Starts the child described by `plan` and returns its pid (and pidfd) once the child has
/// called execve — or ended, which the caller learns from its status.
///
/// With a `cgroup`, the child is in it before it runs anything of its own: created there
/// by clone3 on a cgroup v2 directory, or else written into it by `cgroup.join` while it
/// waits, before `parent_part`. With a `parent_part`, or the write, the child waits while
/// the parent acts, and goes on once that returned `Ok`; see [`Handshake`].
pub(crate) fn spawn<E, J, P>(
    plan: &ChildPlan<'_>,
    cgroup: Option<IntoCgroup<'_, J>>,
    parent_part: Option<P>,
) -> Result<Spawned, SpawnError<E>>
where
    J: FnOnce(libc::pid_t) -> Result<(), E>,
    P: FnOnce(libc::pid_t) -> Result<(), E>,
{
    assert!(
        follows_the_rules(plan.fds),
        "the given descriptors break ChildPlan::fds's rules: {:?}",
        plan.fds
    );
    let (v2_dir, join) = match cgroup {
        Some(IntoCgroup { v2_dir, join }) => (v2_dir, Some(join)),
        None => (None, None),
    };
    let mut parent_part = parent_part;
    if let Some(dir) = v2_dir.filter(|_| clone3_may_run()) {
        let via = Via::Clone3 {
            cgroup: Some(dir.as_raw_fd()),
        };
        match spawn_once(plan, via, &mut parent_part) {
            Err(SpawnError::Clone(error)) => {
                let errno = error.raw_os_error().unwrap_or(0);
                if !clone3::is_unavailable(errno) {
                    return Err(SpawnError::IntoCgroup(error));
                }
                stop_clone3_if_for_good(errno);
                // No child was made: on to the write.
            }
            result => {
                #[cfg(test)]
                STARTED_IN_CGROUP.fetch_add(1, Ordering::Relaxed);
                return result;
            }
        }
    }
    // The write first, so that whatever the rest makes the child do is accounted to the
    // cgroup.
    let acts = join.is_some() || parent_part.is_some();
    let mut parts = acts.then_some(move |pid| {
        if let Some(join) = join {
            join(pid)?;
        }
        parent_part.map_or(Ok(()), |part| part(pid))
    });
    // clone3 still, where it runs, for its CLONE_CLEAR_SIGHAND: 64 fewer system calls in
    // the child before its execve (BENCHMARKS.md, "The spawner"). If it refuses this spawn
    // for want of clone3 or of that flag and clone(2) then makes the child, clone3 is what
    // fails here, and later spawns go straight to clone(2).
    let mut clone3_refused = None;
    if clone3_may_run() {
        match spawn_once(plan, Via::Clone3 { cgroup: None }, &mut parts) {
            Err(SpawnError::Clone(error)) => {
                let errno = error.raw_os_error().unwrap_or(0);
                if !clone3::is_unavailable(errno) {
                    return Err(SpawnError::Clone(error));
                }
                clone3_refused = Some(errno);
            }
            result => return result,
        }
    }
    let result = spawn_once(plan, Via::Clone, &mut parts);
    if let Some(errno) = clone3_refused {
        after_clone3_refused(errno, !matches!(result, Err(SpawnError::Clone(_))));
    }
    result
}

/// What a clone3 refused for want of clone3, or of `CLONE_CLEAR_SIGHAND`, says of later
/// clones of this process, once clone(2) was tried in its place: none tries clone3 again
/// when its errno says so for good, or when clone(2) made the child it refused.
pub(super) fn after_clone3_refused(errno: i32, clone_made_the_child: bool) {
    if clone_made_the_child {
        CLONE3_UNAVAILABLE.store(true, Ordering::Relaxed);
    } else {
        stop_clone3_if_for_good(errno);
    }
}

/// Stops later spawns from trying clone3 when `errno`, its refusal, says it fails so for
/// good.
fn stop_clone3_if_for_good(errno: i32) {
    if clone3::is_unavailable_for_good(errno) {
        CLONE3_UNAVAILABLE.store(true, Ordering::Relaxed);
    }
}

/// The system call that makes the child.
#[derive(Clone, Copy)]
enum Via {
    /// clone(2), through libc.
    Clone,
    /// clone3(2), through `clone3.rs`, into `cgroup` when given.
    Clone3 { cgroup: Option<RawFd> },
}

/// One attempt of [`spawn`]: the clone, then the handshake. A failed clone leaves
/// `parent_part` where it was, for another attempt.
fn spawn_once<E>(
    plan: &ChildPlan<'_>,
    via: Via,
    parent_part: &mut Option<impl FnOnce(libc::pid_t) -> Result<(), E>>,
) -> Result<Spawned, SpawnError<E>> {
    // Failures before clone(2) itself are not the namespaces' doing: no clone diagnosis.
    let stack = ChildStack::take().map_err(|error| SpawnError::Os(Step::Clone, error))?;
    let handshake = Handshake::new(parent_part.is_some(), plan.fds)
        .map_err(|error| SpawnError::Os(Step::CreatePipe, error))?;
    let shared = Shared {
        plan,
        report: AtomicU64::new(0),
        wait: handshake.child_side(),
        parent_in_proc: parent_in_proc(plan),
        signal_handlers_cleared: matches!(via, Via::Clone3 { .. }),
        forked: None,
    };
    let blocked = SignalsBlocked::all().map_err(|error| SpawnError::Os(Step::Clone, error))?;
    // Where the kernel puts the child's pidfd (CLONE_PIDFD, Linux 5.2): the legacy clone
    // takes it in the parent_tid argument, clone3 in its `pidfd` field. It is written,
    // close-on-exec, into our own descriptor table only, after the child's copy of the
    // table was made, and before the child runs. It composes with CLONE_VM and
    // CLONE_VFORK (only CLONE_THREAD, CLONE_DETACHED and CLONE_PARENT_SETTID are refused
    // with it); older kernels ignore the flag, and the number stays -1.
    let mut pidfd: c_int = -1;
    let flags = plan.clone_flags | handshake.share_memory() | libc::CLONE_PIDFD;
    let arg = &shared as *const Shared<'_> as *mut c_void;
    let pid = match via {
        Via::Clone => {
            // SAFETY: `child_entry` gets a pointer to `shared`, which lives in this frame;
            // this function returns only after the child has exec'd or ended (see the
            // module docs), and the child only reads the plan and stores to the atomic
            // report. The stack is a fresh mapping, clone gets its top as the ABI wants,
            // and nothing else uses it. The kernel writes one int into `pidfd`, a live
            // local.
            let pid = unsafe {
                libc::clone(
                    child_entry,
                    stack.top(),
                    flags | libc::SIGCHLD,
                    arg,
                    &mut pidfd as *mut c_int,
                )
            };
            // Read errno only when clone(2) failed: then no child ever ran, and errno is
            // ours.
            if pid < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(pid)
            }
        }
        Via::Clone3 { cgroup } => {
            let clone = clone3::Clone3 {
                flags,
                exit_signal: libc::SIGCHLD,
                stack: stack.lowest(),
                stack_size: stack.usable(),
                cgroup,
                pidfd: &mut pidfd,
            };
            // SAFETY: as for clone(2) above: `shared` outlives the child's use of it, the
            // stack is ours alone and page-aligned at its top, `child_entry` ends in exit
            // or execve, `pidfd` is a live local, and every signal is blocked (`blocked`).
            unsafe { clone3::clone3(&clone, child_entry, arg) }
                .map_err(io::Error::from_raw_os_error)
        }
    };
    drop(blocked);
    let pid = match pid {
        Ok(pid) => pid,
        Err(error) => {
            // No child ran on the stack: keep it for the next attempt.
            stack.keep();
            return Err(SpawnError::Clone(error));
        }
    };
    // SAFETY: when set, the descriptor the kernel just made for us; nothing else owns it.
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });

    // From here until the child is known to be done, leaving this frame early — an error
    // below, a panic in `parent_part` — must first make sure it is.
    let mut reaper = ReapOnDrop { pid: Some(pid) };
    if let (Handshake::WaitForParent(pipes), Some(parent_part)) = (handshake, parent_part.take()) {
        pipes.see_through(pid, parent_part)?;
    }
    // The child has exec'd or ended: CLONE_VFORK returned, or the pipe said so.
    let report = shared.report.load(Ordering::Acquire);
    reaper.pid = None;
    stack.keep();
    if report == 0 {
        return Ok(Spawned { pid, pidfd });
    }
    // The child reported a failed step and exits right after: reap it.
    reap(pid).map_err(|error| SpawnError::Os(Step::Wait, error))?;
    let (step, errno) = decode_report(report);
    Err(SpawnError::Child(
        step.unwrap_or(Step::ReadSetupReport),
        errno,
    ))
}

/// How parent and child wait for each other between the clone and the child's execve:
/// chosen, created and ended here, every pipe of it included.
///
/// The parent's liveness is not part of it. A child with a death signal checks once it has
/// armed the signal that its parent did not die before (`child.rs`, `parent_is_gone`),
/// whichever handshake it has.
enum Handshake {
    /// The parent has nothing to do before the child execs: the clone takes
    /// `CLONE_VFORK`, so the calling thread sleeps inside clone(2) until the child has
    /// exec'd or ended. No pipe.
    Vfork,
    /// The parent acts while the child waits — id maps, a hook — which under
    /// `CLONE_VFORK` would deadlock: the clone takes `CLONE_VM` alone, and the two pipes
    /// say when each may go on.
    WaitForParent(WaitPipes),
}

/// The pipes of a child that waits for its parent; all close on exec.
struct WaitPipes {
    /// The child waits for one byte on `go_read`; end-of-file there means the parent died
    /// or gave up on it, so the child closes its copy of `go_write` first. The parent
    /// keeps `go_read` open until the child is done, so that releasing a child that has
    /// already died is no `EPIPE`.
    go_read: OwnedFd,
    go_write: OwnedFd,
    /// End-of-file on `done_read` tells the parent that the child is done with its
    /// memory: once the clone has copied it, the parent closes `done_write`, and only the
    /// child holds it, until execve or exit (see the `sys` module's docs).
    done_read: OwnedFd,
    done_write: OwnedFd,
}

impl Handshake {
    fn new(parent_acts: bool, given: &[GivenFd]) -> io::Result<Handshake> {
        if !parent_acts {
            return Ok(Handshake::Vfork);
        }
        let (go_read, go_write) = cloexec_pipe()?;
        let (done_read, done_write) = done_pipe(given)?;
        Ok(Handshake::WaitForParent(WaitPipes {
            go_read,
            go_write,
            done_read,
            done_write,
        }))
    }

    /// The clone flags that share our memory with the child.
    fn share_memory(&self) -> c_int {
        match self {
            Handshake::Vfork => libc::CLONE_VM | libc::CLONE_VFORK,
            Handshake::WaitForParent(_) => libc::CLONE_VM,
        }
    }

    /// The numbers of the child's copies of the pipes, for the child to use.
    fn child_side(&self) -> Option<WaitFds> {
        match self {
            Handshake::Vfork => None,
            Handshake::WaitForParent(pipes) => Some(WaitFds {
                go_read: pipes.go_read.as_raw_fd(),
                go_write: pipes.go_write.as_raw_fd(),
                done_write: pipes.done_write.as_raw_fd(),
            }),
        }
    }
}

impl WaitPipes {
    /// The parent's side once the child `pid` exists, in order: its part while the child
    /// waits, the byte that lets the child go, and the end-of-file that says it has
    /// exec'd or ended.
    fn see_through<E>(
        self,
        pid: libc::pid_t,
        parent_part: impl FnOnce(libc::pid_t) -> Result<(), E>,
    ) -> Result<(), SpawnError<E>> {
        let WaitPipes {
            go_read,
            go_write,
            done_read,
            done_write,
        } = self;
        drop(done_write);
        parent_part(pid).map_err(SpawnError::Parent)?;
        release(go_write).map_err(|error| SpawnError::Os(Step::ReleaseChild, error))?;
        wait_for_eof(&done_read).map_err(|error| SpawnError::Os(Step::ReadSetupReport, error))?;
        drop(go_read);
        Ok(())
    }
}

/// Writes the one byte that lets a waiting child go on.
pub(crate) fn release(go: OwnedFd) -> io::Result<()> {
    match retry_interrupted(|| Ok(nix::unistd::write(&go, &[1])?))? {
        1 => Ok(()),
        _ => Err(io::ErrorKind::WriteZero.into()),
    }
}

/// Kills and reaps the child when dropped with `pid` still set: the way out of `spawn`
/// for errors and panics while the child may still be using the parent's memory.
pub(crate) struct ReapOnDrop {
    pub(crate) pid: Option<libc::pid_t>,
}

impl Drop for ReapOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // Our own child, not reaped yet: the pid can't have been reused.
            let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
            // Once waitpid has reaped it (or found it auto-reaped, ECHILD), the child's
            // task is gone and with it any use of our memory.
            let _ = reap(pid);
        }
    }
}

/// Runs `call` again for as long as it fails with `EINTR`: the parent's one retry loop.
pub(crate) fn retry_interrupted<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            result => return result,
        }
    }
}

/// Waits for our child `pid` to end and reaps it: its raw status.
pub(crate) fn reap(pid: libc::pid_t) -> io::Result<c_int> {
    loop {
        // Without WNOHANG, waitpid returns only with a status or an error.
        if let Some(status) = wait(pid, false)? {
            return Ok(status);
        }
    }
}

/// Reads `fd` until end-of-file, which comes when every write end is closed.
fn wait_for_eof(fd: &OwnedFd) -> io::Result<()> {
    let mut byte = [0u8];
    // The child never writes here; a byte would be a stray writer's: ignore it.
    while retry_interrupted(|| Ok(nix::unistd::read(fd, &mut byte)?))? != 0 {}
    Ok(())
}

/// A pipe whose both ends close on exec.
pub(crate) fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// The pipe whose end-of-file tells the parent that a waiting child is done with its
/// memory. The child installs descriptors at 0 to 2 and at each given target: were the
/// write end at one of those numbers, the child would close it by installing one there,
/// and the end-of-file would come while it still runs on our memory. (A parent that
/// closed its stdin gets a pipe at 0.) Then the write end moves above them all.
fn done_pipe(given: &[GivenFd]) -> io::Result<(OwnedFd, OwnedFd)> {
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
pub(crate) fn dup_above(fd: BorrowedFd<'_>, lowest: RawFd) -> io::Result<OwnedFd> {
    let copy = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(lowest))?;
    // SAFETY: fcntl just made this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// This process's pid as its /proc numbers it, when the child of `plan` needs it to tell
/// whether its parent is gone (`child.rs`'s `parent_is_gone`: a death signal, in a new
/// PID namespace); else 0.
pub(crate) fn parent_in_proc(plan: &ChildPlan<'_>) -> libc::pid_t {
    if plan.death_signal != 0 && plan.clone_flags & libc::CLONE_NEWPID != 0 {
        pid_in_proc()
    } else {
        0
    }
}

/// This process's pid as its /proc numbers it; 0 when /proc does not list it.
pub(crate) fn pid_in_proc() -> libc::pid_t {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|link| link.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// `waitpid(2)` on our own child, retried when interrupted: its raw status, or `None` if
/// `nohang` and it still runs.
///
/// libc rather than nix: `std::process::ExitStatus` is made from the raw status, which
/// nix's `waitpid` decodes and does not return.
pub(crate) fn wait(pid: libc::pid_t, nohang: bool) -> io::Result<Option<c_int>> {
    let flags = if nohang { libc::WNOHANG } else { 0 };
    retry_interrupted(|| {
        let mut status: c_int = 0;
        // SAFETY: waitpid writes one int into a valid local.
        match unsafe { libc::waitpid(pid, &mut status, flags) } {
            -1 => Err(io::Error::last_os_error()),
            0 => Ok(None),
            _ => Ok(Some(status)),
        }
    })
}

/// A private anonymous mapping used as the child's stack, with an inaccessible guard
/// page below it, unmapped on drop. Sharing our memory, a child that overflowed its stack
/// would otherwise write over whatever the parent has mapped below.
struct ChildStack {
    base: NonNull<c_void>,
    len: usize,
    /// The size of the guard page at `base`.
    guard: usize,
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
        let page = match sysconf(SysconfVar::PAGE_SIZE) {
            Ok(Some(page)) if page > 0 => page as usize,
            _ => 4096,
        };
        let len = size.next_multiple_of(page) + page;
        // Never 0: it holds the guard page at least.
        let length = NonZeroUsize::new(len).ok_or(io::ErrorKind::InvalidInput)?;
        let writable = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
        // SAFETY: asks for a fresh anonymous mapping; no existing memory is touched.
        let base = unsafe {
            mman::mmap_anonymous(
                None,
                length,
                writable,
                MapFlags::MAP_PRIVATE | MapFlags::MAP_STACK,
            )
        }?;
        let stack = ChildStack {
            base,
            len,
            guard: page,
        };
        // SAFETY: makes the lowest page of our own fresh mapping inaccessible.
        unsafe { mman::mprotect(base, page, ProtFlags::PROT_NONE) }?;
        Ok(stack)
    }

    /// The highest address: stacks grow down on every platform we support.
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, which `add` allows.
        unsafe { self.base.as_ptr().cast::<u8>().add(self.len).cast() }
    }

    /// The lowest address above the guard page: where clone3's stack starts.
    fn lowest(&self) -> *mut c_void {
        // SAFETY: within the mapping: `len` is the stack's size plus the guard page.
        unsafe { self.top().cast::<u8>().sub(self.usable()).cast() }
    }

    /// The size of the stack above the guard page.
    fn usable(&self) -> usize {
        self.len - self.guard
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping `new` made; `spawn` drops or keeps the
        // stack only once the child that ran on it has exec'd or ended.
        let _ = unsafe { mman::munmap(self.base, self.len) };
    }
}

/// Blocks every signal in this thread until dropped, so that no handler runs in the child
/// between clone and the moment it resets the dispositions.
pub(super) struct SignalsBlocked {
    previous: SigSet,
}

impl SignalsBlocked {
    pub(super) fn all() -> io::Result<SignalsBlocked> {
        let previous = SigSet::all().thread_swap_mask(SigmaskHow::SIG_SETMASK)?;
        Ok(SignalsBlocked { previous })
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // Restores the mask `all` saved, in this same thread.
        let _ = self.previous.thread_set_mask();
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::{CStr, CString};

    use super::super::child::closes_on_exec;
    use super::super::testing::{errno, set_errno};
    use super::super::{CStringArray, SETUP_FAILED};
    use super::*;

    /// The argv `[arg0]` and an empty envp.
    fn exec_args(arg0: &CStr) -> (CStringArray, CStringArray) {
        let argv = [CString::from(arg0)].into_iter().collect();
        (argv, CStringArray::with_capacity(0))
    }

    /// A plan that execs `exe` with the `args` of [`exec_args`].
    fn plan<'a>(exe: &'a CStr, args: &'a (CStringArray, CStringArray)) -> ChildPlan<'a> {
        ChildPlan {
            exe,
            argv: &args.0,
            envp: &args.1,
            cwd: None,
            stdio: [None; 3],
            fds: &[],
            death_signal: 0,
            parent_pid: std::process::id() as libc::pid_t,
            clone_flags: 0,
            unshare_time: false,
            keep_blocked: 0,
            rlimits: &[],
            capabilities: None,
            no_new_privs: false,
            seccomp: None,
            joins: &[],
            unshare_after_join: 0,
            take_root_gid: false,
            take_root_uid: false,
        }
    }

    /// No part for the parent: the child starts under `CLONE_VFORK`.
    const VFORK: Option<fn(libc::pid_t) -> Result<(), ()>> = None;

    /// [`super::spawn`] without a cgroup.
    fn spawn<E>(
        plan: &ChildPlan<'_>,
        parent_part: Option<impl FnOnce(libc::pid_t) -> Result<(), E>>,
    ) -> Result<Spawned, SpawnError<E>> {
        type NoJoin<E> = fn(libc::pid_t) -> Result<(), E>;
        super::spawn(plan, None::<IntoCgroup<'_, NoJoin<E>>>, parent_part)
    }

    /// Skips a test of clone3 where this build or kernel has none.
    fn clone3_runs_here() -> bool {
        if !clone3::AVAILABLE {
            println!("skipped: no clone3 assembly for this architecture");
            return false;
        }
        // SAFETY: a raw clone3 with a null struct of size 0 only checks its arguments.
        let result = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
        if result < 0 && errno() == libc::ENOSYS {
            println!("skipped: this kernel, or a seccomp filter, has no clone3");
            return false;
        }
        true
    }

    /// Whether `pid` is gone and reaped: waitpid finds no such child.
    fn reaped(pid: libc::pid_t) -> bool {
        wait(pid, true).is_err_and(|error| error.raw_os_error() == Some(libc::ECHILD))
    }

    fn exit_code(status: c_int) -> Option<c_int> {
        libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
    }

    #[test]
    fn a_child_that_execs_comes_back_as_its_pid() {
        let argv = exec_args(c"true");
        let pid = spawn(&plan(c"/bin/true", &argv), VFORK).unwrap().pid;
        assert_eq!(exit_code(reap(pid).unwrap()), Some(0));
    }

    #[test]
    fn both_handshakes_hand_back_a_pidfd_that_waits_for_the_child() {
        let argv = exec_args(c"true");
        let plan = plan(c"/bin/true", &argv);
        let waiting = spawn(&plan, Some(|_| Ok::<(), ()>(()))).unwrap();
        for spawned in [spawn(&plan, VFORK).unwrap(), waiting] {
            let Some(pidfd) = spawned.pidfd else {
                println!("skipped: this kernel ignores CLONE_PIDFD (before 5.2)");
                return;
            };
            assert!(closes_on_exec(pidfd.as_raw_fd()));
            match super::super::pidfd::wait(pidfd.as_fd(), false) {
                Ok(status) => assert_eq!(status.and_then(exit_code), Some(0)),
                Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
                    println!("skipped the wait: no P_PIDFD before Linux 5.4");
                    assert_eq!(exit_code(reap(spawned.pid).unwrap()), Some(0));
                }
                Err(error) => panic!("waitid(P_PIDFD): {error}"),
            }
            assert!(reaped(spawned.pid), "the pidfd's wait reaped the child");
        }
    }

    #[test]
    fn a_failed_exec_is_reported_and_leaves_the_parents_errno_alone() {
        // The child runs on this thread's TLS: libc's wrappers would store ENOENT there.
        let argv = exec_args(c"missing");
        set_errno(0);
        let result = spawn(&plan(c"/nonexistent/reexec-sys-test", &argv), VFORK);
        assert_eq!(errno(), 0);
        assert!(
            matches!(result, Err(SpawnError::Child(Step::Exec, libc::ENOENT))),
            "{result:?}"
        );
    }

    #[test]
    fn a_waiting_child_goes_on_once_released() {
        let argv = exec_args(c"true");
        let mut before_exec = None;
        let pid = spawn(
            &plan(c"/bin/true", &argv),
            Some(|pid| {
                // The child waits, not yet /bin/true: it still runs this test binary.
                before_exec = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
                Ok::<(), ()>(())
            }),
        )
        .unwrap()
        .pid;
        assert_eq!(exit_code(reap(pid).unwrap()), Some(0));
        assert_eq!(before_exec, std::env::current_exe().ok());
    }

    #[test]
    fn a_failing_or_panicking_parent_part_kills_and_reaps_the_waiting_child() {
        let argv = exec_args(c"true");
        let plan = plan(c"/bin/true", &argv);

        let mut child = 0;
        let result = spawn(
            &plan,
            Some(|pid| {
                child = pid;
                Err("no")
            }),
        );
        assert!(matches!(result, Err(SpawnError::Parent("no"))));
        assert!(reaped(child), "child {child} left behind");

        let child = std::cell::Cell::new(0);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            spawn(
                &plan,
                Some(|pid| -> Result<(), ()> {
                    child.set(pid);
                    panic!("the parent's part panics");
                }),
            )
        }));
        assert!(unwound.is_err());
        assert!(reaped(child.get()), "child {} left behind", child.get());
    }

    #[test]
    fn a_child_whose_parent_is_gone_stops_before_exec() {
        let argv = exec_args(c"true");
        let mut plan = plan(c"/bin/true", &argv);
        plan.death_signal = libc::SIGTERM;
        // The parent it was spawned by: the child goes on and execs.
        let pid = spawn(&plan, VFORK).unwrap().pid;
        assert_eq!(exit_code(reap(pid).unwrap()), Some(0));

        // Told of another parent, the child sees its own parent as one that took over
        // from a dead one, and stops before exec, with the status no exec'd program
        // gives here. So does a child that waits for its parent, before it waits.
        plan.parent_pid += 1;
        let pid = spawn(&plan, VFORK).unwrap().pid;
        assert_eq!(exit_code(reap(pid).unwrap()), Some(SETUP_FAILED));
        let pid = spawn(&plan, Some(|_| Ok::<(), ()>(()))).unwrap().pid;
        assert_eq!(exit_code(reap(pid).unwrap()), Some(SETUP_FAILED));
    }

    #[test]
    fn a_vfork_child_in_a_new_pid_namespace_execs() {
        // SAFETY: geteuid only reads this process's credentials.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipped: a PID namespace without a user namespace needs root");
            return;
        }
        let argv = exec_args(c"true");
        let mut plan = plan(c"/bin/true", &argv);
        plan.clone_flags = libc::CLONE_NEWPID;
        plan.death_signal = libc::SIGTERM;
        plan.keep_blocked = libc::SIGTERM;
        let pid = spawn(&plan, VFORK).unwrap().pid;
        assert_eq!(exit_code(reap(pid).unwrap()), Some(0));
    }

    #[test]
    fn clone3_children_exec_and_report_under_both_handshakes() {
        if !clone3_runs_here() {
            return;
        }
        let via = Via::Clone3 { cgroup: None };
        let argv = exec_args(c"true");
        let plan = plan(c"/bin/true", &argv);
        let mut part_ran = None;
        let mut waiting = Some(|pid| {
            part_ran = Some(pid);
            Ok::<(), ()>(())
        });
        let spawned = spawn_once(&plan, via, &mut waiting).unwrap();
        assert_eq!(
            part_ran,
            Some(spawned.pid),
            "the parent's part ran for the child"
        );
        let vfork = spawn_once(&plan, via, &mut VFORK.clone()).unwrap();
        for spawned in [spawned, vfork] {
            let pidfd = spawned.pidfd.expect("CLONE_PIDFD is older than clone3");
            assert!(closes_on_exec(pidfd.as_raw_fd()));
            let status = super::super::pidfd::wait(pidfd.as_fd(), false).unwrap();
            assert_eq!(status.and_then(exit_code), Some(0));
        }
        // A failed step comes back as with clone(2), and the child's raw calls left this
        // thread's errno alone.
        let argv = exec_args(c"missing");
        set_errno(0);
        let result = spawn_once(&plan_for_missing(&argv), via, &mut VFORK.clone());
        assert_eq!(errno(), 0);
        assert!(
            matches!(result, Err(SpawnError::Child(Step::Exec, libc::ENOENT))),
            "{result:?}"
        );
    }

    fn plan_for_missing(args: &(CStringArray, CStringArray)) -> ChildPlan<'_> {
        plan(c"/nonexistent/reexec-sys-test", args)
    }

    #[test]
    fn a_v2_cgroup_takes_the_child_at_its_creation_without_the_write() {
        // SAFETY: geteuid only reads this process's credentials.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipped: creating a cgroup needs root here (no delegation)");
            return;
        }
        if !clone3_runs_here() {
            return;
        }
        let name = format!("reexec-unit-clone3-{}", std::process::id());
        let cgroup = match crate::cgroup::Cgroup::create(&name, &[]) {
            Ok(cgroup) => cgroup,
            Err(error) => {
                println!("skipped: no cgroup v2 directory to make here: {error}");
                return;
            }
        };
        let dir = cgroup.v2_only_dir().unwrap().to_owned();
        let open = std::fs::File::open(&dir).unwrap();
        let argv = [c"sleep", c"10"].map(CString::from).into_iter().collect();
        let args = (argv, CStringArray::with_capacity(0));
        let plan = plan(c"/bin/sleep", &args);
        let before = STARTED_IN_CGROUP.load(Ordering::Relaxed);
        let mut written = false;
        let into = IntoCgroup {
            v2_dir: Some(open.as_fd()),
            join: |_| {
                written = true;
                Ok::<(), ()>(())
            },
        };
        let pid = super::spawn(&plan, Some(into), VFORK).unwrap().pid;
        let seen = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        reap(pid).unwrap();
        assert!(
            !written,
            "the parent wrote the pid: clone3 did not take the child in"
        );
        assert!(STARTED_IN_CGROUP.load(Ordering::Relaxed) > before);
        assert!(
            seen.lines().any(|line| line == format!("0::/{name}")
                || (line.starts_with("0::/") && line.ends_with(&format!("/{name}")))),
            "{seen}"
        );
        cgroup.remove().unwrap();
    }

    #[test]
    fn a_refusal_of_the_cgroups_own_is_reported_not_written_around() {
        if !clone3_runs_here() {
            return;
        }
        // Not a cgroup v2 directory: clone3 answers EBADF, which is no refusal of clone3
        // itself, so there is no retry with the write (which, for a full pids.max, would
        // go around the limit).
        let not_a_cgroup = std::fs::File::open("/").unwrap();
        let argv = exec_args(c"true");
        let plan = plan(c"/bin/true", &argv);
        let mut written = false;
        let into = IntoCgroup {
            v2_dir: Some(not_a_cgroup.as_fd()),
            join: |_| {
                written = true;
                Ok::<(), ()>(())
            },
        };
        let result = super::spawn(&plan, Some(into), VFORK);
        assert!(
            matches!(&result, Err(SpawnError::IntoCgroup(error)) if error.raw_os_error() == Some(libc::EBADF)),
            "{result:?}"
        );
        assert!(!written);
        assert!(!CLONE3_UNAVAILABLE.load(Ordering::Relaxed));
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
}
