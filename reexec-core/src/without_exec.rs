//! Spawns that copy the caller instead of re-executing the binary
//! ([`Command::without_exec`](crate::Command::without_exec)).
//!
//! When the caller has one thread, its child can be a fork-style clone of it (no
//! `CLONE_VM`): a copy in which no other thread held a lock or was half-way through a
//! change, as clean as a fresh start of the binary but for what the caller itself holds.
//! The child sets itself up exactly as a re-executed one (`sys/child.rs`, the fork
//! server's path through it) and then runs the command's body on its copy of the
//! caller's memory, instead of calling execve. It saves what the fork server saves —
//! the execve, the loader, std's start — and the server too: no request, no second
//! process in between, and nothing to parse again, since the body holds what the caller
//! already made. The pipes to the child, and the caller's side after the clone, are the
//! fork server's (`fork_server::ForkedPipes`).

use std::ffi::OsString;
use std::io::{self, Write};
use std::process::ExitCode;

use crate::error::Step;
use crate::sys::{self, ChildPlan, Cloned, SpawnError, Spawned};

/// What a copy of the caller runs in place of the entry: the command's arguments in,
/// an exit status out.
pub(crate) type Body = dyn FnMut(&[OsString]) -> ExitCode + Send;

/// The body of [`Command::without_exec`](crate::Command::without_exec).
pub(crate) struct WithoutExec(pub(crate) Box<Body>);

impl std::fmt::Debug for WithoutExec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WithoutExec(..)")
    }
}

/// Whether a spawn can copy the caller now — it has one thread, and the child needs
/// nothing only an execve gives: capabilities computed from the program (execve
/// recomputes them) or entering a new time namespace (effective only after one) — and
/// if so, what the copy needs of the caller's start. Every other spawn of the command
/// re-executes the binary into its entry.
pub(crate) fn possible(capabilities_asked: bool, time_namespace: bool) -> Option<CallerStart> {
    if capabilities_asked || time_namespace {
        return None;
    }
    sys::one_thread_and_start_strings().map(CallerStart)
}

/// What a copy of the caller needs to know of the caller's start, found before the
/// clone: where its arguments and environment strings are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallerStart(sys::StartStrings);

/// Starts the child of `plan` as a copy of this process that runs `body` with `args`:
/// the counterpart of `sys::spawn`, with the same meaning of its arguments and errors.
/// `start` is what [`possible`] found, on this thread, which has started no thread since.
pub(crate) fn spawn<E, J, P>(
    plan: &ChildPlan<'_>,
    (body, args, start): (&mut Body, &[OsString], CallerStart),
    cgroup_join: Option<J>,
    parent_part: Option<P>,
) -> Result<Spawned, SpawnError<E>>
where
    J: FnOnce(libc::pid_t) -> Result<(), E>,
    P: FnOnce(libc::pid_t) -> Result<(), E>,
{
    let parent_acts = cgroup_join.is_some() || parent_part.is_some();
    let pipes = crate::fork_server::ForkedPipes::new(plan, parent_acts)
        .map_err(|error| SpawnError::Os(Step::CreatePipe, error))?;
    let fds = pipes.child_fds(plan);
    // What is buffered now would be written twice: by us, and by the copy as it ends.
    let _ = io::stdout().flush();
    sys::flush_c_stdio();
    // SAFETY: `possible` found one thread, on this very thread, which has started none
    // since (the caller's contract).
    match unsafe { sys::clone_here(plan, &fds, pipes.go_write()) } {
        Err(errno) => Err(SpawnError::Clone(io::Error::from_raw_os_error(errno))),
        Ok(Cloned::Parent { pid, pidfd }) => {
            pipes.after_clone(Spawned { pid, pidfd }, cgroup_join, parent_part)
        }
        Ok(Cloned::Child) => run_copy(plan, (body, args), start, fds.report),
    }
}

/// The copy, set up: takes the command's environment and name, says it is ready, and
/// runs the body, ending as a child of the fork server ends.
fn run_copy(
    plan: &ChildPlan<'_>,
    (body, args): (&mut Body, &[OsString]),
    CallerStart(start): CallerStart,
    report: i32,
) -> ! {
    // SAFETY: a fork-style child, single-threaded. `plan.envp` lives in the frame of
    // `Command::spawn` on this copy's stack, which it never returns to: the array and
    // its strings outlive every use.
    unsafe { sys::set_environment(plan.envp.as_ptr()) };
    // SAFETY: as above; `environ` no longer points into the caller's strings.
    unsafe { sys::show_environment(start.environment, plan.envp) };
    let name = plan.argv.strings().next().unwrap_or_default();
    if let Some(arguments) = start.arguments {
        // SAFETY: as above. std's `args()` hands out copies of the strings, and the
        // body's arguments are the command's own: nothing holds a borrow of the text.
        unsafe { arguments.show_only(name.to_bytes()) };
    }
    // SAFETY: the report descriptor this child was given.
    unsafe { sys::finish_setup(report) };
    sys::ignore_broken_pipes();
    // Named as the caller's copy, `ps` and /proc/PID/comm would show the caller's name
    // (a re-executed child shows "exe"); the entry's says what it runs. Refused by
    // nothing but a seccomp filter, and then only the name is the caller's.
    let _ = nix::sys::prctl::set_name(name);
    let may_be_pid1 = plan.clone_flags & libc::CLONE_NEWPID != 0;
    let code = crate::dispatch::run_body(|| body(args), may_be_pid1);
    sys::end_forked_child(crate::dispatch::exit_status_number(code))
}
