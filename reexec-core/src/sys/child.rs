//! The child's whole life between clone(2) and execve(2).
//!
//! Runs in the child, on the parent's memory and on the stack `spawn.rs` mapped for it:
//! the one file to audit for async-signal safety. Everything here makes raw system calls
//! (`raw.rs`) on data the parent prepared (the plan, in `sys.rs`) and nothing else: no
//! allocation, no lock, no formatting, no panic, no libc call that could touch `errno` —
//! see the `sys` module's docs for why. What it calls outside this file and `raw.rs` is
//! pure: `sys.rs`'s lookups in the plan and report encoding (`with_item` too), `Step::code`,
//! and `CapabilitySet::bits`.

use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    ChildPlan, GivenFd, Join, SETUP_FAILED, encode_report, is_given_target, raw, with_item,
};
use crate::capabilities::Capabilities;
use crate::error::Step;

/// What `child_entry` receives: the plan, and the word the child reports a failed step
/// in. Both live in `spawn`'s frame, which outlasts the child's use of them.
pub(super) struct Shared<'p> {
    pub(super) plan: &'p ChildPlan<'p>,
    /// 0 while nothing failed; else `encode_report(step, errno)`.
    pub(super) report: AtomicU64,
    /// The handshake's pipes when the child waits for its parent; `None` under
    /// `CLONE_VFORK`.
    pub(super) wait: Option<WaitFds>,
    /// The parent's pid as /proc numbers it, for a child in a new PID namespace to find
    /// its parent there (see `parent_is_gone`); 0 when not needed or unknown.
    pub(super) parent_in_proc: libc::pid_t,
    /// Whether the clone put every handled signal back to its default already
    /// (`CLONE_CLEAR_SIGHAND`, `clone3.rs`).
    pub(super) signal_handlers_cleared: bool,
    /// Set for a fork-style child (`fork.rs`), which runs its entry instead of calling
    /// execve.
    pub(super) forked: Option<Forked>,
}

/// What a fork-style child does differently: it has memory of its own (a copy of the
/// fork server's, or of the caller's), and after its setup it returns to run its entry
/// instead of calling execve — so what execve would do, it does itself.
#[derive(Clone, Copy)]
pub(super) struct Forked {
    /// The write end of the pipe the caller reads: a failed step's report word, 8 bytes,
    /// or end-of-file once the setup is done. Its number is above every target.
    pub(super) report: RawFd,
    /// Whose copy the child is.
    pub(super) copy_of: CopyOf,
}

/// The process a fork-style child is a copy of.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum CopyOf {
    /// The fork server: a fresh start of the binary, whose signal handlers are std's
    /// own, and which was sent the caller's stdio, inherited or not.
    ForkServer,
    /// The caller itself (`Command::without_exec`): its handlers are its own, and its
    /// stdio is where an inherited one is meant to be.
    Caller,
}

/// The child's copies of the pipes of a child that waits for its parent (`spawn.rs`,
/// `WaitPipes`).
#[derive(Clone, Copy)]
pub(super) struct WaitFds {
    /// Where the byte that lets the child go on arrives.
    pub(super) go_read: RawFd,
    /// The child's copy of the end that byte is written to, which it closes.
    pub(super) go_write: RawFd,
    /// The end the child keeps open until execve, whose end-of-file tells the parent it is
    /// done with the parent's memory.
    pub(super) done_write: RawFd,
}

/// The function clone(2) starts the child in — and clone3, from `clone3.rs`'s assembly —
/// with a pointer to `spawn`'s [`Shared`].
pub(super) extern "C" fn child_entry(shared: *mut c_void) -> c_int {
    // SAFETY: `spawn` passes a pointer to its live `Shared`, which stays valid until this
    // child has exec'd or ended; the child only reads it and stores to the atomic.
    let shared = unsafe { &*(shared as *const Shared<'_>) };
    // SAFETY: this is the child clone(2) just made: its descriptor table is its own copy,
    // which nothing else uses.
    unsafe { child_main(shared) }
}

/// The child's whole life before `execve`: raw system calls on data prepared by the
/// parent (see the module docs for why nothing else).
///
/// # Safety
/// Only the child of `spawn` calls this: it closes and replaces descriptors, which is
/// sound only in a process whose descriptor table nothing else uses.
unsafe fn child_main(shared: &Shared<'_>) -> ! {
    let plan = shared.plan;
    // SAFETY: passed on from our caller.
    unsafe { set_up(shared) };
    // SAFETY: a `CStringArray` ends in NULL and owns the strings it points to, and the
    // plan keeps both arrays alive until we have exec'd or ended.
    let errno = unsafe { raw::execve(plan.exe, plan.argv.as_ptr(), plan.envp.as_ptr()) };
    report_failure(shared, Step::Exec, errno)
}

/// Reports the failed `step` to the parent and ends the child.
fn report_failure(shared: &Shared<'_>, step: Step, errno: i32) -> ! {
    let report = encode_report(step, errno);
    match shared.forked {
        // A pipe write of 8 bytes is atomic: the caller reads all of it or nothing.
        Some(forked) => {
            let _ = raw::write_all(forked.report, &report.to_ne_bytes());
        }
        None => shared.report.store(report, Ordering::Release),
    }
    raw::exit(SETUP_FAILED)
}

/// Every step of the child's setup, in order, up to execve; returns once all are done,
/// and ends the child when one fails.
///
/// # Safety
/// As for [`child_main`].
pub(super) unsafe fn set_up(shared: &Shared<'_>) {
    let plan = shared.plan;
    let fail = |step: Step, errno: i32| -> ! { report_failure(shared, step, errno) };

    let arm_death_signal = || {
        if plan.death_signal != 0 {
            if let Err(errno) = raw::set_death_signal(plan.death_signal) {
                fail(Step::SetDeathSignal, errno);
            }
            // The parent may have died before the signal was armed; then nobody sends it.
            // Whatever the handshake: a parent may let a waiting child go and die before the
            // child got here, leaving the byte that releases it in the pipe.
            let new_pid_namespace = plan.clone_flags & libc::CLONE_NEWPID != 0;
            match parent_is_gone(new_pid_namespace, plan.parent_pid, shared.parent_in_proc) {
                Ok(false) => {}
                Ok(true) => raw::exit(SETUP_FAILED),
                Err(errno) => fail(Step::SetDeathSignal, errno),
            }
        }
    };
    arm_death_signal();

    if let Some(wait) = shared.wait {
        // Our copy of the write end must go, or a dead parent would never give us EOF.
        // SAFETY: our own copy, in our own descriptor table (see `child_main`).
        unsafe { raw::close(wait.go_write) };
        // And so must everything else of the parent's that we don't need.
        let [stdin, stdout, stderr] = plan.stdio.map(|fd| fd.unwrap_or(-1));
        // SAFETY: we are the child (see `child_main`).
        unsafe {
            close_unneeded(
                &[wait.go_read, wait.done_write, stdin, stdout, stderr],
                plan.fds,
                plan.joins,
            );
        }
        let mut go = 0u8;
        loop {
            match raw::read_into(wait.go_read, std::slice::from_mut(&mut go)) {
                Ok(1) => break,
                // Signals are blocked, but a stop and continue can interrupt the read.
                Err(libc::EINTR) => {}
                // End-of-file: the parent died or gave up on us; it reports on its side.
                _ => raw::exit(SETUP_FAILED),
            }
        }
    }

    // After the wait: the maps are written, so that 0 is an id of the namespace. The gid
    // first, while the uid still carries the capability to change it.
    if plan.take_root_gid {
        if let Err(errno) = raw::set_all_gids(0) {
            fail(Step::TakeRootInside, errno);
        }
    }
    if plan.take_root_uid {
        if let Err(errno) = raw::set_all_uids(0) {
            fail(Step::TakeRootInside, errno);
        }
    }

    // Joining existing namespaces (`Command::join`): the user namespace first, whose
    // capabilities the other joins need. setns(CLONE_NEWUSER) wants a caller alone in its
    // thread group and not sharing its fs_struct: this child is its own thread group, made
    // without CLONE_FS; sharing memory (CLONE_VM) is no obstacle.
    for join in plan.joins {
        if let Err(errno) = raw::setns(join.fd, join.nstype) {
            fail(join.step, errno);
        }
    }
    if !plan.joins.is_empty() || plan.take_root_gid || plan.take_root_uid {
        // Entering a user namespace whose creator was not us, or taking other ids,
        // changes our credentials, which clears the death signal (commit_creds).
        arm_death_signal();
    }
    if plan.unshare_after_join != 0 {
        if let Err(errno) = raw::unshare(plan.unshare_after_join) {
            fail(Step::CreateNamespacesAfterJoin, errno);
        }
    }

    if plan.unshare_time {
        if let Err(errno) = raw::unshare(libc::CLONE_NEWTIME) {
            fail(Step::EnterTimeNamespace, errno);
        }
    }

    // A child of the fork server keeps the server's handlers: they are std's, those a
    // fresh start of the binary installs; the caller's were never there. A copy of the
    // caller must not run the caller's.
    let reset = match shared.forked {
        Some(Forked {
            copy_of: CopyOf::ForkServer,
            ..
        }) => set_mask(plan.keep_blocked),
        _ => reset_signals(plan.keep_blocked, shared.signal_handlers_cleared),
    };
    if let Err(errno) = reset {
        fail(Step::ResetSignals, errno);
    }

    // SAFETY: we are the child (see `child_main`).
    if let Err(errno) = unsafe { install_stdio(&plan.stdio) } {
        fail(Step::InstallStdio, errno);
    }

    // Stdio is in place, so no given descriptor can land on a stdio source still needed.
    // SAFETY: we are the child (see `child_main`).
    if let Err(errno) = unsafe { install_given_fds(plan.fds) } {
        fail(Step::InstallFds, errno);
    }

    let closed = match shared.forked {
        None => close_others_on_exec(plan.fds),
        // No execve will close them: they go now, all but the report's pipe. Every stdio
        // the caller had open was sent to the server; one it had closed is closed here
        // too. A copy of the caller has its inherited stdio in place already, and loses
        // only one execve would have closed.
        Some(forked) => {
            for (fd, source) in (0..).zip(plan.stdio) {
                let gone = match forked.copy_of {
                    CopyOf::ForkServer => true,
                    CopyOf::Caller => closes_on_exec(fd),
                };
                if source.is_none() && gone {
                    // SAFETY: we are the child (see `child_main`).
                    unsafe { raw::close(fd) };
                }
            }
            close_others_now(plan.fds, forked.report)
        }
    };
    if let Err(errno) = closed {
        fail(Step::CloseOtherFds, errno);
    }

    if let Some(cwd) = plan.cwd {
        if let Err(errno) = raw::chdir(cwd) {
            fail(Step::ChangeDirectory, errno);
        }
    }

    // Limits and privileges (issue #13): resource limits, then capabilities (bounding
    // set, sets, ambient), then no_new_privs.
    if let Err((step, errno)) = restrict(plan) {
        fail(step, errno);
    }

    // What execve would do, for a fork-style child, which never calls it; before
    // the seccomp filter, which binds the entry, not the setup.
    if let Some(forked) = shared.forked {
        if let Err((step, errno)) = super::fork::act_as_execve_would(forked.copy_of) {
            fail(step, errno);
        }
    }

    // Last: every step before may make calls the filter refuses; only execve runs under
    // it (and exit_group, should execve fail). no_new_privs first, which the kernel asks
    // of a filter installed without CAP_SYS_ADMIN, and which keeps a setuid program from
    // escaping it.
    if let Some(filter) = plan.seccomp {
        if let Err(errno) = raw::set_no_new_privs() {
            fail(Step::InstallSeccomp, errno);
        }
        if let Err(errno) = raw::install_seccomp_filter(filter) {
            fail(Step::InstallSeccomp, errno);
        }
        // A fork-style child never calls execve, and still ends as a re-executed one
        // would: a filter that refuses execve fails the spawn at `Step::Exec`, so that a
        // spawn does the same with an exec and without one.
        if shared.forked.is_some() {
            let errno = raw::execve_without_path();
            if errno != libc::EFAULT {
                fail(Step::Exec, errno);
            }
        }
    }
}

/// Whether the process that spawned this child has died, asked once the death signal is
/// armed: a parent that died before can no longer send it. `parent_pid` is the parent's
/// pid, `parent_in_proc` its number in /proc (0 if /proc did not list it).
///
/// getppid(2) answers, except in a new PID namespace, where it is always 0. There /proc
/// answers: the child's /proc is still the parent's (a new mount namespace starts as a
/// copy, with the same proc mount), where the parent looked up its own number before the
/// clone. Either way the child's parent changes when the parent dies: the child is handed
/// to a reaper, whose number differs. Nothing another process holds can make a dead
/// parent look alive here, as a copy of a pipe's write end could.
fn parent_is_gone(
    new_pid_namespace: bool,
    parent_pid: libc::pid_t,
    parent_in_proc: libc::pid_t,
) -> Result<bool, i32> {
    if !new_pid_namespace {
        return Ok(raw::getppid() != parent_pid);
    }
    if parent_in_proc <= 0 {
        // /proc did not list the parent: execve of /proc/self/exe fails on its own.
        return Ok(false);
    }
    Ok(self::parent_in_proc()? != parent_in_proc)
}

/// Our parent's pid as /proc numbers it: the fourth field of /proc/self/stat.
fn parent_in_proc() -> Result<libc::pid_t, i32> {
    let fd = raw::open(c"/proc/self/stat", libc::O_RDONLY | libc::O_CLOEXEC)?;
    let mut stat = [0u8; 512];
    let read = raw::read_into(fd, &mut stat);
    // SAFETY: the descriptor opened above, used by nothing else.
    unsafe { raw::close(fd) };
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

/// Closes every descriptor but those in `keep`, the sources of `given` and the namespaces
/// to join: what a child does before it waits for its parent. 0, 1 and 2 stay unless
/// close-on-exec: the child keeps the parent's stdio where it was not given another.
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
///
/// # Safety
/// Only in a process whose descriptor table nothing else uses: the child after clone(2),
/// or a forked one in a test.
unsafe fn close_unneeded(keep: &[RawFd], given: &[GivenFd], joins: &[Join]) {
    let _ = for_each_open_fd(|fd| {
        let kept = keep.contains(&fd)
            || given.iter().any(|given| given.source == fd)
            || joins.iter().any(|join| join.fd == fd);
        if !kept && (fd > 2 || closes_on_exec(fd)) {
            // SAFETY: the caller vouches that nothing else uses our descriptors.
            unsafe { raw::close(fd) };
        }
    });
}

/// Whether `fd` is open and close-on-exec.
pub(super) fn closes_on_exec(fd: RawFd) -> bool {
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
    // SAFETY: the descriptor opened above, used by nothing else.
    unsafe { raw::close(dir) };
    listed
}

/// Puts each given descriptor at its number in the child, without close-on-exec, so the
/// new program has it. No source is another's target (see `ChildPlan::fds`): no `dup3`
/// here overwrites a source still to be installed, whatever the cycles among the numbers
/// asked for (3 to 4 and 4 to 3, say).
///
/// # Safety
/// As for [`close_unneeded`]: each target is replaced.
unsafe fn install_given_fds(given: &[GivenFd]) -> Result<(), i32> {
    for fd in given {
        if fd.source == fd.target {
            // dup3 refuses to copy a descriptor onto itself; only the flag must go.
            raw::set_fd_flags(fd.target, 0)?;
        } else {
            // SAFETY: the caller vouches that nothing else uses our descriptors.
            unsafe { raw::dup_onto(fd.source, fd.target) }?;
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

/// Closes every descriptor from 3 up but the given targets and `report`, which is above
/// them all: what a child of the fork server does where execve would close them.
/// `close_range` over the gaps, else each one /proc/self/fd lists.
fn close_others_now(given: &[GivenFd], report: RawFd) -> Result<(), i32> {
    let kept = given.iter().map(|fd| fd.target).chain([report]);
    if for_each_gap(kept, raw::close_range).is_ok() {
        return Ok(());
    }
    for_each_open_fd(|fd| {
        if fd > 2 && fd != report && !is_given_target(given, fd) {
            // SAFETY: the child of the fork server, whose descriptor table is its own.
            unsafe { raw::close(fd) };
        }
    })
}

/// Calls `each` with the first and last number of every range of descriptors from 3 up
/// that lies between those `kept` (ascending), up to the highest possible; stops at the
/// first failure. What `close_range` is given, to mark or to close all but the kept.
fn for_each_gap(
    kept: impl Iterator<Item = RawFd>,
    mut each: impl FnMut(u32, u32) -> Result<(), i32>,
) -> Result<(), i32> {
    let mut first: u32 = 3;
    for kept in kept {
        let kept = kept as u32;
        if first < kept {
            each(first, kept - 1)?;
        }
        first = kept + 1;
    }
    each(first, u32::MAX)
}

/// Unblocks every signal but `keep_blocked`.
fn set_mask(keep_blocked: c_int) -> Result<(), i32> {
    let mask = match keep_blocked {
        1..=64 => 1u64 << (keep_blocked - 1),
        _ => 0,
    };
    raw::set_signal_mask(mask)
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
    for_each_gap(given.iter().map(|fd| fd.target), raw::close_range_cloexec)
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
/// default too, as `std::process::Command` does: Rust programs ignore it. When the clone
/// `already_cleared` the handlers, SIGPIPE, which it left ignored, is all there is to do.
fn reset_signals(keep_blocked: c_int, already_cleared: bool) -> Result<(), i32> {
    if already_cleared {
        raw::set_default_action(libc::SIGPIPE)?;
        return set_mask(keep_blocked);
    }
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
    set_mask(keep_blocked)
}

/// Makes the given descriptors fds 0, 1 and 2.
///
/// # Safety
/// As for [`close_unneeded`]: 0, 1 and 2 are replaced.
unsafe fn install_stdio(stdio: &[Option<RawFd>; 3]) -> Result<(), i32> {
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
            // SAFETY: the caller vouches that nothing else uses our descriptors.
            unsafe { raw::dup_onto(source, target) }?;
        }
    }
    Ok(())
}

/// The resource limits, the capabilities and no_new_privs of the plan, in that order:
/// the child's last steps before execve (issue #13; a seccomp filter would come after).
/// Limits first: raising a hard one needs `CAP_SYS_RESOURCE`, which cutting the
/// capabilities may take away.
fn restrict(plan: &ChildPlan<'_>) -> Result<(), (Step, i32)> {
    for (index, limit) in plan.rlimits.iter().enumerate() {
        raw::set_rlimit(limit.resource, limit.soft, limit.hard)
            .map_err(|errno| (Step::SetResourceLimit, with_item(errno, Some(index))))?;
    }
    if let Some(keep) = &plan.capabilities {
        keep_capabilities(keep)?;
    }
    if plan.no_new_privs {
        raw::set_no_new_privs().map_err(|errno| (Step::SetNoNewPrivs, errno))?;
    }
    Ok(())
}

/// Gives up every capability `keep` does not name (see `Capabilities`'s docs): the
/// bounding set first, since dropping from it needs `CAP_SETPCAP`, which cutting the
/// other sets may take away; then effective, permitted and inheritable; then the ambient
/// set, whose capabilities must be in both the permitted and inheritable sets as they
/// are now. Also `Capabilities::apply_to_current_thread`'s, for other programs' hooks
/// between fork and exec: async-signal-safe as all of this file.
pub(crate) fn keep_capabilities(keep: &Capabilities) -> Result<(), (Step, i32)> {
    let bounding_failed = |number: u8, errno| {
        (
            Step::DropBoundingCapabilities,
            with_item(errno, Some(number.into())),
        )
    };
    let mut bounding = 0u64;
    for number in 0..64u8 {
        let bit = 1u64 << number;
        match raw::bounding_set_has(number) {
            // Only those present are dropped: dropping one already gone needs
            // CAP_SETPCAP all the same, which would fail a child that has nothing to drop.
            Ok(false) => {}
            Ok(true) if keep.bounding.bits() & bit != 0 => bounding |= bit,
            Ok(true) => raw::drop_from_bounding_set(number)
                .map_err(|errno| bounding_failed(number, errno))?,
            // Past the highest capability this kernel knows.
            Err(libc::EINVAL) => break,
            Err(errno) => return Err(bounding_failed(number, errno)),
        }
    }

    let had = raw::capabilities().map_err(|errno| (Step::SetCapabilities, errno))?;
    let permitted = keep.permitted.bits() & had.permitted;
    let effective = keep.effective.bits() & permitted;
    // capset(2) lets a thread without CAP_SETPCAP add to its inheritable set only what it
    // has or is permitted, and nobody what its bounding set lacks.
    let inheritable = keep.inheritable.bits() & (had.inheritable | had.permitted) & bounding;
    raw::set_capabilities(raw::CapabilitySets {
        effective,
        permitted,
        inheritable,
    })
    .map_err(|errno| (Step::SetCapabilities, errno))?;

    let ambient = keep.ambient.bits() & permitted & inheritable;
    let ambient_failed = |number: Option<u8>, errno| {
        (
            Step::SetAmbientCapabilities,
            with_item(errno, number.map(usize::from)),
        )
    };
    match raw::clear_ambient() {
        Ok(()) => {}
        // Before Linux 4.3 there is no ambient set: nothing to clear, nor to raise.
        Err(libc::EINVAL) if ambient == 0 => return Ok(()),
        Err(errno) => return Err(ambient_failed(None, errno)),
    }
    for number in 0..64u8 {
        if ambient & 1 << number != 0 {
            raw::raise_ambient(number).map_err(|errno| ambient_failed(Some(number), errno))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, OwnedFd};

    use super::super::spawn::{pid_in_proc, wait};
    use super::super::{cloexec_pipe, is_open};
    use super::*;

    #[test]
    fn capabilities_applied_in_a_pre_exec_hook_reach_the_program_or_fail_with_a_plain_errno() {
        use std::os::unix::process::CommandExt;

        use crate::capabilities::Capability;

        let keep = Capabilities::only([Capability::NetBindService]);
        let mut command = std::process::Command::new("grep");
        command.args(["^Cap", "/proc/self/status"]);
        // SAFETY: the hook only calls apply_to_current_thread, which makes raw system
        // calls and allocates nothing, as pre_exec requires.
        unsafe { command.pre_exec(move || keep.apply_to_current_thread()) };
        let bounding = raw::bounding_set_has(Capability::Chown.number());
        match command.output() {
            Ok(output) => {
                let text = String::from_utf8_lossy(&output.stdout);
                for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
                    assert!(
                        text.contains(&format!("{set}:\t0000000000000400")),
                        "{set}: {text}"
                    );
                }
            }
            // Without CAP_SETPCAP (not root): the errno alone, not the word with the
            // capability's number in it that the child of `spawn` reports.
            Err(error) => {
                assert_eq!(error.raw_os_error(), Some(libc::EPERM), "{error}");
                assert_eq!(bounding, Ok(true), "refused only with something to drop");
            }
        }
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
    fn a_changed_parent_is_seen_by_getppid_and_in_proc() {
        // Asked about this test process's own parent, which lives.
        let parent = nix::unistd::getppid().as_raw();
        assert_eq!(parent_is_gone(false, parent, 0), Ok(false));
        assert_eq!(parent_is_gone(false, parent + 1, 0), Ok(true));
        let in_proc = parent_in_proc().unwrap();
        assert_eq!(parent_is_gone(true, 0, in_proc), Ok(false));
        assert_eq!(parent_is_gone(true, 0, in_proc + 1), Ok(true));
        // /proc did not list the parent: left to execve of /proc/self/exe.
        assert_eq!(parent_is_gone(true, 0, 0), Ok(false));
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
            // SAFETY: a forked child, whose descriptor table is its own.
            unsafe { close_unneeded(&[fds[0]], &given, &[]) };
            // The parent's stdio stays.
            fds.map(is_open) == [true, true, false, false] && (0..3).all(is_open)
        });
    }

    /// Descriptors of every kind `close_others_on_exec` meets: one to be given, without
    /// close-on-exec; and three that are not given, two of them left inheritable.
    fn fds_to_mark() -> ([OwnedFd; 4], [RawFd; 4]) {
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
}
