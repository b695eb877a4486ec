//! The fork server: spawns without an execve, with re-exec's guarantees.
//!
//! Runs in two processes. The caller's side ([`ForkServer`], [`spawn`]) starts the server
//! once — by an ordinary re-exec, so that it is as clean as any child: one thread, no
//! lock held, none of the caller's state — and then hands it each spawn over a socket:
//! the plan as bytes, the descriptors with `SCM_RIGHTS`. The server's side ([`serve`],
//! the entry `reexec-fork-server`) clones a child per request with `CLONE_PARENT`
//! (`sys/fork.rs`), which makes it the caller's child, and answers with its pid and
//! pidfd; the kernel also writes the pid into a word both processes map (`SpawnSlot`),
//! where the caller finds a child whose server died before the answer. The child sets
//! itself up as a re-executed child would between clone and execve (`sys/child.rs`, the
//! same code), writes its arguments and environment where std reads them, and runs its
//! entry. The caller then plays its part (id maps, hooks, the cgroup) and waits for the
//! child's report, as for any spawn.

use std::ffi::{CStr, OsStr, c_char};
use std::io::{self, IoSlice, Read, Write};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::error::{Error, Step};
use crate::registry::Entry;
use crate::sys::{
    self, ArgvArea, CStringArray, CallerFds, ChildPlan, Cloned, GivenFd, Join, RlimitPlan,
    SpawnError, Spawned,
};

/// The entry name the server runs under.
const SERVER_ENTRY: &CStr = c"reexec-fork-server";

/// The descriptor the server finds its socket at.
const SERVER_SOCKET_FD: RawFd = 3;

/// The descriptor the server finds its spawn slot at (`sys::SpawnSlot`).
const SERVER_SLOT_FD: RawFd = 4;

/// How many arguments a child of the server may have, its entry name included: the
/// server starts with this many, whose pointers a child overwrites (see `ArgvArea`).
pub(crate) const ARGUMENT_SLOTS: usize = 256;

/// How many bytes those arguments may take, with a NUL after each.
pub(crate) const ARGUMENT_BYTES: usize = 32 * 1024;

/// At most this many descriptors travel with one request: `SCM_RIGHTS` carries 253.
const MAX_FDS: usize = 250;

/// The server's answer when it is ready, and when it could not find its arguments.
const READY: u8 = b'+';
const UNABLE: u8 = b'-';

/// A program's fork server: a helper process, started once, that starts children
/// without an execve.
///
/// A child of the server runs the same entry, with the same arguments, environment,
/// working directory, stdio, descriptors, namespaces, id maps, parent-death signal,
/// limits and seccomp filter, and the same exit status, as one that [`Command`] starts by
/// re-executing the binary — and it is the caller's child, which the caller waits for and
/// reaps, and whose death signal follows the caller. What it saves is the execve and
/// everything after it: loading the binary and its libraries, relocations, std's
/// start-up, faulting in the pages the start touches. BENCHMARKS.md measures what that
/// is worth (items 12 and 13).
///
/// ```
/// #[reexec::entry("fork-server-greeting")]
/// fn greeting() {
///     println!("hello {}", std::env::args().nth(1).unwrap_or_default());
/// }
///
/// reexec::main! {
///     fn main() -> Result<(), reexec::Error> {
///         // First thing in main, on the main thread.
///         reexec::ForkServer::start()?;
///         let output = reexec::Command::new("fork-server-greeting")
///             .arg("from a fork")
///             .fork_server(true)
///             .output()?;
///         assert_eq!(output.stdout, b"hello from a fork\n");
///         Ok(())
///     }
/// }
/// ```
///
/// # When to use it
///
/// For many short children of one program: a pool of workers, a test suite, a build
/// tool. A child then costs a clone of a small process instead of an execve of the whole
/// binary. Plain re-exec stays the default and remains right:
///
/// - **when the binary on disk was replaced and children must run the new one**: a
///   server runs the binary it was started from, as `/proc/self/exe` does;
/// - **when the caller changed its credentials, capabilities, resource limits, umask,
///   scheduling, cgroup, namespaces, ignored signals, seccomp filters or `no_new_privs`
///   since the server started**: a child of the server takes those from the server,
///   which took them from the caller at its start, not from the caller now (arguments,
///   environment, working directory, stdio and descriptors are the caller's at each
///   spawn);
/// - **when the program starts few children**: the server is a process of its own,
///   started by one re-exec, and idle between spawns;
/// - **when an entry relies on `atexit` handlers or library destructors** (a C library's
///   cleanup, a coverage tool's output): when the entry returns, a child of the server
///   flushes std's stdout and C's stdio and ends there, without the rest of libc's exit
///   path, whose handlers are the server's, registered at its start — Python's
///   `forkserver` children end with `os._exit` for that reason. An entry that calls
///   [`std::process::exit`] itself takes the whole path.
///
/// # Threads and the death signal
///
/// The kernel ties a parent-death signal to the thread that started the process, and a
/// child of the server counts as started by the thread that started the server. So the
/// server is started from a thread that lives as long as the program: the main thread
/// when [`start`](Self::start) is called there — first thing in `main`, inside
/// [`main!`](crate::main), is best — and otherwise a thread the crate keeps for that
/// alone, started once. Either way a child of the server gets its death signal when the
/// program ends (a plain re-exec's child, when the thread that spawned it ends). The
/// server itself ends with the program: it reads end-of-file on its socket, and gets
/// `SIGKILL` as its own death signal.
///
/// A program that must stay single-threaded — one that will enter a user namespace with
/// `unshare` or `setns` — calls `start` on its main thread, which starts no thread.
///
/// A copy of the program made by `fork(2)` without an execve does not use the program's
/// server — the children would be the program's, not its own — and sees none running; it
/// may start one of its own.
///
/// # What goes the plain way
///
/// A child of the server gets the result a re-executed child would, down to a
/// [`seccomp`](crate::Command::seccomp) filter that refuses execve: it asks the filter,
/// and the spawn fails at [`Step::Exec`] as a re-exec's would. A [`Command`] asked to use
/// the server still re-executes when the server cannot give the same result: with
/// [`capabilities`](crate::Command::capabilities) (execve recomputes them), a new time
/// namespace (entered only by execve), more than 256 arguments or 32 KiB of them, or
/// more than 250 descriptors to pass. A server killed from outside is
/// noticed at the next spawn and started again; a server that cannot be started makes
/// that spawn fail with [`Step::ForkServer`]. A server killed in the middle of a spawn
/// fails it the same way if it had not cloned the child yet; once it has, the spawn
/// goes on as if it had answered: the kernel writes the child's pid where the caller
/// reads it during the clone itself, and the child needs nothing more of the server.
///
/// [`Command`]: crate::Command
#[derive(Debug)]
pub struct ForkServer {
    socket: UnixStream,
    /// Where the kernel writes the pid of each child the server clones, seen by us too:
    /// how a child of a server that died before its answer is found.
    slot: sys::SpawnSlot,
    /// The working directory the last request that sent one moved the server to, where
    /// it stays: a spawn from the same directory sends none.
    cwd_sent: Option<sys::WorkingDirectory>,
    /// Where its answers are read, kept from spawn to spawn.
    inbox: Inbox,
    process: crate::Child,
    /// The process that started it: a fork of the program has a copy of this value and
    /// must not use it, since the server's children would be the program's, not its own.
    owner: u32,
}

/// The program's one server, once started.
static SERVER: Mutex<Option<ForkServer>> = Mutex::new(None);

/// Whether a [`Command`](crate::Command) that was not told uses the server.
static BY_DEFAULT: AtomicBool = AtomicBool::new(false);

impl ForkServer {
    /// Starts the program's fork server, if it is not running yet.
    ///
    /// From the main thread it starts no thread (see
    /// [Threads and the death signal](Self#threads-and-the-death-signal)). Fails with
    /// [`Step::ForkServer`] when the server cannot be started: its re-exec failed, or it
    /// could not find its own arguments to lend its children (see
    /// [`Command::fork_server`](crate::Command::fork_server)).
    pub fn start() -> Result<(), Error> {
        let mut server = lock();
        if server.as_mut().is_some_and(ForkServer::is_alive) {
            return Ok(());
        }
        *server = Some(ForkServer::launch()?);
        Ok(())
    }

    /// Starts the server as [`start`](Self::start) does, and makes every
    /// [`Command`](crate::Command) of the program use it unless told otherwise with
    /// [`Command::fork_server`](crate::Command::fork_server).
    ///
    /// ```
    /// #[reexec::entry("fork-server-by-default")]
    /// fn by_default() {}
    ///
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         reexec::ForkServer::start_for_every_command()?;
    ///         assert!(reexec::Command::new("fork-server-by-default").status()?.success());
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn start_for_every_command() -> Result<(), Error> {
        ForkServer::start()?;
        BY_DEFAULT.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Ends the server, once the spawns in flight are answered, and waits for it. A spawn
    /// is in flight from the moment it chose the server: it holds it until the answer.
    /// Later spawns re-execute (or, asked with `fork_server(true)`, are refused), unless
    /// the server is started again. Children it started live on: they are the caller's.
    pub fn stop() {
        BY_DEFAULT.store(false, Ordering::Relaxed);
        if let Some(mut server) = lock().take() {
            // End-of-file on its socket ends it.
            drop(server.socket);
            let _ = server.process.wait();
        }
    }

    /// The server's process id, while it runs.
    ///
    /// ```
    /// reexec::main! {
    ///     fn main() -> Result<(), reexec::Error> {
    ///         reexec::ForkServer::start()?;
    ///         assert!(reexec::ForkServer::pid().is_some());
    ///         reexec::ForkServer::stop();
    ///         assert_eq!(reexec::ForkServer::pid(), None);
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn pid() -> Option<u32> {
        let mut server = lock();
        let server = server.as_mut()?;
        server.is_alive().then(|| server.process.id())
    }

    /// Starts a server from a thread that lives as long as the program: the main thread,
    /// when it is the caller, else a thread kept for that alone (see
    /// [Threads and the death signal](Self#threads-and-the-death-signal)).
    fn launch() -> Result<ForkServer, Error> {
        if nix::unistd::gettid() == nix::unistd::getpid() {
            return ForkServer::launch_here();
        }
        type Launched = std::sync::mpsc::Sender<Result<ForkServer, Error>>;
        static KEEPER: Mutex<Option<std::sync::mpsc::Sender<Launched>>> = Mutex::new(None);
        let mut keeper = KEEPER.lock().unwrap_or_else(PoisonError::into_inner);
        let requests = match &*keeper {
            Some(requests) => requests.clone(),
            None => {
                let (requests, jobs) = std::sync::mpsc::channel::<Launched>();
                std::thread::Builder::new()
                    .name("reexec-fork-server-keeper".into())
                    .spawn(move || {
                        for answer in jobs {
                            let _ = answer.send(ForkServer::launch_here());
                        }
                    })
                    .map_err(|error| Error::os(Step::ForkServer, error))?;
                keeper.insert(requests).clone()
            }
        };
        drop(keeper);
        let (answer, launched) = std::sync::mpsc::channel();
        let gone = || {
            Error::os(
                Step::ForkServer,
                io::Error::other("the keeper thread ended"),
            )
        };
        requests.send(answer).map_err(|_| gone())?;
        launched.recv().map_err(|_| gone())?
    }

    /// Starts a server: re-executes the binary as `reexec-fork-server` with its socket at
    /// 3 and the room for its children's arguments, and waits for it to say it is ready.
    fn launch_here() -> Result<ForkServer, Error> {
        let failed = |error: io::Error| Error::os(Step::ForkServer, error);
        let (mut socket, theirs) = UnixStream::pair().map_err(failed)?;
        let (slot, slot_file) = sys::SpawnSlot::new().map_err(failed)?;
        let mut command = crate::Command::new(OsStr::from_bytes(SERVER_ENTRY.to_bytes()));
        command
            .args(server_arguments())
            .fd(SERVER_SOCKET_FD, theirs)
            .fd(SERVER_SLOT_FD, slot_file)
            .stdin(crate::Stdio::null())
            .stdout(crate::Stdio::null())
            .death_signal(Some(libc::SIGKILL))
            .fork_server(false);
        let mut process = command.spawn()?;
        let mut answer = [0u8];
        let ready = socket.read(&mut answer);
        if !matches!(ready, Ok(1)) || answer[0] != READY {
            let _ = process.kill();
            let _ = process.wait();
            let why = match ready {
                Ok(1) => {
                    "it could not find its own arguments on its stack (/proc/self/stat), \
                     or std did not read them there, or it could not map its spawn slot"
                }
                _ => "it ended before it was ready",
            };
            return Err(failed(io::Error::other(format!(
                "the fork server did not start: {why}"
            ))));
        }
        Ok(ForkServer {
            socket,
            slot,
            cwd_sent: None,
            inbox: Inbox::default(),
            process,
            owner: std::process::id(),
        })
    }

    fn is_alive(&mut self) -> bool {
        matches!(self.process.try_wait(), Ok(None))
    }

    /// Sends one request and reads the answer.
    fn exchange(&mut self, request: &[u8], fds: &[RawFd]) -> io::Result<Answer> {
        self.slot.clear();
        send_message(&self.socket, request, fds, &mut self.inbox.control)?;
        let mut fds = Vec::new();
        if !receive_message(&self.socket, &mut self.inbox, &mut fds)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the fork server ended while it handled this spawn",
            ));
        }
        Answer::decode(&self.inbox.body, fds)
    }
}

/// The program's server, if this process started it. In a process forked from the
/// program (without an execve) the inherited copy is forgotten: that server belongs to
/// the program, and this process starts its own if it wants one.
fn lock() -> std::sync::MutexGuard<'static, Option<ForkServer>> {
    // A panic while the lock was held left no half-changed state behind: at worst a
    // server whose socket is in the middle of an exchange, which the next one detects.
    let mut server = SERVER.lock().unwrap_or_else(PoisonError::into_inner);
    if server
        .as_ref()
        .is_some_and(|server| server.owner != std::process::id())
    {
        // Neither killed nor waited for, not ours to: dropping closes our copies of its
        // socket and pidfd, nothing else.
        drop(server.take());
    }
    server
}

/// The server's arguments after its name: one long one and many empty ones, the room its
/// children write their own arguments into.
fn server_arguments() -> Vec<&'static OsStr> {
    let name = SERVER_ENTRY.to_bytes().len() + 1;
    let empties = ARGUMENT_SLOTS - 2;
    let long = ARGUMENT_BYTES - name - empties - 1;
    static LONG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let long = LONG.get_or_init(|| vec![b' '; long]);
    let mut arguments = vec![OsStr::from_bytes(long)];
    arguments.extend(std::iter::repeat_n(OsStr::new(""), empties));
    arguments
}

/// Whether a spawn with these arguments and this many descriptors can go through the
/// server (see [What goes the plain way](ForkServer#what-goes-the-plain-way)).
pub(crate) fn can_serve(argv: &[&[u8]], fd_count: usize) -> bool {
    ArgvArea::fits(ARGUMENT_SLOTS, ARGUMENT_BYTES, argv) && fd_count <= MAX_FDS
}

/// Whether `Command::fork_server` left unset means the server.
pub(crate) fn used_by_default() -> bool {
    BY_DEFAULT.load(Ordering::Relaxed)
}

/// The program's server, held by one spawn from its choice of the server to the
/// server's answer: a [`ForkServer::stop`] meanwhile waits for that answer, as for any
/// spawn in flight, instead of leaving a spawn that chose the server without one.
pub(crate) struct Lease(std::sync::MutexGuard<'static, Option<ForkServer>>);

/// The program's server for one spawn, if it runs.
pub(crate) fn lease() -> Option<Lease> {
    let server = lock();
    server.is_some().then_some(Lease(server))
}

/// Starts the child of `plan` through `server`: the counterpart of `sys::spawn`, with
/// the same meaning of its arguments and errors.
pub(crate) fn spawn<E, J, P>(
    server: Lease,
    plan: &ChildPlan<'_>,
    cgroup_join: Option<J>,
    parent_part: Option<P>,
) -> Result<Spawned, SpawnError<E>>
where
    J: FnOnce(libc::pid_t) -> Result<(), E>,
    P: FnOnce(libc::pid_t) -> Result<(), E>,
{
    let parent_acts = cgroup_join.is_some() || parent_part.is_some();
    let pipes = ForkedPipes::new(plan, parent_acts)
        .map_err(|error| SpawnError::Os(Step::CreatePipe, error))?;
    let child_fds = pipes.child_fds(plan);
    let answer = {
        let Lease(mut server) = server;
        let server = server
            .as_mut()
            .expect("a lease is only made of a running server");
        if !server.is_alive() {
            *server = ForkServer::launch().map_err(|error| {
                SpawnError::Os(Step::ForkServer, io::Error::other(error.to_string()))
            })?;
        }
        // The caller's working directory now, which a relative `current_dir` starts from
        // too: sent when the server is not there already (a descriptor passed, a fchdir
        // in the server: 8 % of a round trip, BENCHMARKS.md item 12).
        let here = sys::WorkingDirectory::now();
        let cwd = (here.is_none() || here != server.cwd_sent)
            .then(|| {
                nix::fcntl::open(
                    ".",
                    nix::fcntl::OFlag::O_PATH
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .ok()
            })
            .flatten();
        let request = Request::encode(
            plan,
            child_fds.caller_in_proc,
            child_fds.report,
            cwd.as_ref().map(AsRawFd::as_raw_fd),
            child_fds.go,
        );
        let exchanged = server.exchange(&request.bytes, &request.fds);
        if cwd.is_some() && exchanged.is_ok() {
            server.cwd_sent = here;
        }
        match exchanged {
            Ok(answer) => answer,
            Err(error) => {
                // Whatever it did with this request, this server is done: the next spawn
                // starts another.
                let _ = server.process.kill();
                let _ = server.process.wait();
                // A child it cloned before it ended is ours (CLONE_PARENT) and whole: its
                // setup needs nothing more of the server. The clone itself wrote its pid,
                // and the spawn goes on with it as if the answer had come — else the
                // child would run unseen and end a zombie nobody waits for.
                match server.slot.take() {
                    Some(pid) => Answer::Cloned {
                        pid,
                        pidfd: sys::pidfd::open(pid).ok(),
                    },
                    None => return Err(SpawnError::Os(Step::ForkServer, error)),
                }
            }
        }
    };
    match answer {
        Answer::Cloned { pid, pidfd } => {
            pipes.after_clone(Spawned { pid, pidfd }, cgroup_join, parent_part)
        }
        Answer::CloneFailed(errno) => Err(SpawnError::Clone(io::Error::from_raw_os_error(errno))),
    }
}

/// The pipes between a caller and its fork-style child, cloned by the fork server or by
/// the caller itself (`without_exec.rs`): the report, whose write end the child keeps
/// until its setup is done, and the go pipe when the caller acts while the child waits.
pub(crate) struct ForkedPipes {
    report_read: OwnedFd,
    /// Above every number the child installs: the child closes every other descriptor
    /// but those (`sys/child.rs`, `close_others_now`).
    report_write: OwnedFd,
    go: Option<(OwnedFd, OwnedFd)>,
}

impl ForkedPipes {
    /// The pipes for the child of `plan`; the go pipe if `parent_acts`.
    pub(crate) fn new(plan: &ChildPlan<'_>, parent_acts: bool) -> io::Result<ForkedPipes> {
        let (report_read, mut report_write) = sys::cloexec_pipe()?;
        let highest_target = plan.fds.last().map_or(2, |fd| fd.target).max(2);
        if report_write.as_raw_fd() <= highest_target {
            report_write = sys::dup_above(report_write.as_fd(), highest_target + 1)?;
        }
        let go = parent_acts.then(sys::cloexec_pipe).transpose()?;
        Ok(ForkedPipes {
            report_read,
            report_write,
            go,
        })
    }

    /// The child's ends by number, and the caller's pid as the child may need it.
    pub(crate) fn child_fds(&self, plan: &ChildPlan<'_>) -> CallerFds {
        CallerFds {
            report: self.report_write.as_raw_fd(),
            go: self.go.as_ref().map(|(read, _)| read.as_raw_fd()),
            caller_in_proc: sys::parent_in_proc(plan),
        }
    }

    /// The caller's end of the go pipe, which a copy of the caller closes; -1 for none.
    pub(crate) fn go_write(&self) -> RawFd {
        self.go.as_ref().map_or(-1, |(_, write)| write.as_raw_fd())
    }

    /// The caller's side once the child exists: its ends of the child's pipes closed,
    /// the cgroup and the parent's part while the child waits, if it does, then the
    /// child's report. A failed step's child is reaped; one the caller gives up on early
    /// is killed and reaped.
    pub(crate) fn after_clone<E, J, P>(
        self,
        cloned: Spawned,
        cgroup_join: Option<J>,
        parent_part: Option<P>,
    ) -> Result<Spawned, SpawnError<E>>
    where
        J: FnOnce(libc::pid_t) -> Result<(), E>,
        P: FnOnce(libc::pid_t) -> Result<(), E>,
    {
        let os = |step: Step| move |error: io::Error| SpawnError::Os(step, error);
        let ForkedPipes {
            report_read,
            report_write,
            go,
        } = self;
        // Only the child holds the write end now, and the go pipe's read end.
        drop(report_write);
        let go_write = go.map(|(read, write)| {
            drop(read);
            write
        });
        let pid = cloned.pid;
        let mut reaper = sys::ReapOnDrop { pid: Some(pid) };
        if let Some(go_write) = go_write {
            if let Some(join) = cgroup_join {
                join(pid).map_err(SpawnError::Parent)?;
            }
            if let Some(part) = parent_part {
                part(pid).map_err(SpawnError::Parent)?;
            }
            sys::release(go_write).map_err(os(Step::ReleaseChild))?;
        }
        let report = read_report(&report_read).map_err(os(Step::ReadSetupReport))?;
        reaper.pid = None;
        match report {
            None => Ok(cloned),
            Some(report) => {
                sys::reap(pid).map_err(os(Step::Wait))?;
                let (step, errno) = sys::decode_report(report);
                Err(SpawnError::Child(
                    step.unwrap_or(Step::ReadSetupReport),
                    errno,
                ))
            }
        }
    }
}

/// The child's report: `None` at end-of-file (the setup is done), else its failed step.
fn read_report(pipe: &OwnedFd) -> io::Result<Option<u64>> {
    let mut word = [0u8; 8];
    let mut filled = 0;
    while filled < word.len() {
        match sys::retry_interrupted(|| Ok(nix::unistd::read(pipe, &mut word[filled..])?))? {
            0 => break,
            read => filled += read,
        }
    }
    Ok((filled == word.len()).then(|| u64::from_ne_bytes(word)))
}

/// A request on the wire: the plan's bytes, and the descriptors that go with them.
struct Request {
    bytes: Vec<u8>,
    fds: Vec<RawFd>,
}

impl Request {
    /// Lowers `plan` into bytes; the descriptors travel in this order: report, working
    /// directory, go, stdio, given, joins.
    fn encode(
        plan: &ChildPlan<'_>,
        caller_in_proc: libc::pid_t,
        report: RawFd,
        cwd: Option<RawFd>,
        go: Option<RawFd>,
    ) -> Request {
        let mut out = Writer::default();
        let mut fds = vec![report];
        fds.extend(cwd);
        fds.extend(go);
        out.flag(cwd.is_some());
        out.flag(go.is_some());
        out.strings(plan.argv.strings());
        out.strings(plan.envp.strings());
        out.strings(plan.cwd.into_iter());
        for number in [
            plan.death_signal,
            plan.parent_pid,
            plan.clone_flags,
            plan.keep_blocked,
            plan.unshare_after_join,
            caller_in_proc,
        ] {
            out.i32(number);
        }
        out.flag(plan.no_new_privs);
        out.flag(plan.take_root_gid);
        out.flag(plan.take_root_uid);
        // Inherited stdio is the caller's 0, 1 and 2 as they are now, not the server's.
        for (number, source) in (0..).zip(plan.stdio) {
            let source = source.or_else(|| sys::is_open(number).then_some(number));
            out.flag(source.is_some());
            fds.extend(source);
        }
        out.u32(plan.fds.len() as u32);
        for given in plan.fds {
            out.i32(given.target);
            fds.push(given.source);
        }
        out.u32(plan.joins.len() as u32);
        for join in plan.joins {
            out.i32(join.nstype);
            out.u32(join.step.code());
            fds.push(join.fd);
        }
        out.u32(plan.rlimits.len() as u32);
        for limit in plan.rlimits {
            out.i32(limit.resource);
            out.u64(limit.soft);
            out.u64(limit.hard);
        }
        let filter = plan.seccomp.unwrap_or_default();
        out.flag(plan.seccomp.is_some());
        out.u32(filter.len() as u32);
        for instruction in filter {
            out.u32(u32::from(instruction.code));
            out.u32(u32::from(instruction.jt) << 8 | u32::from(instruction.jf));
            out.u32(instruction.k);
        }
        Request { bytes: out.0, fds }
    }
}

/// A request as the server decoded it, over the bytes that carried it: its strings are
/// used where they arrived, each ended by the NUL it came with, so that the server
/// writes as few pages as it can between clones — every page it writes then is copied
/// for it or for the child (BENCHMARKS.md, item 12). Its vectors are those [`Kept`]
/// from the request before, given back by [`keep`](Self::keep).
struct Received<'a> {
    vectors: Vectors<'a>,
    cwd: Option<&'a CStr>,
    numbers: [i32; 6],
    no_new_privs: bool,
    take_root_gid: bool,
    take_root_uid: bool,
    stdio: [Option<RawFd>; 3],
    has_seccomp: bool,
    report: RawFd,
    cwd_fd: Option<RawFd>,
    go: Option<RawFd>,
}

/// The vectors a request is decoded into, emptied and kept from one request to the next
/// with their room ([`Kept`]): a server that neither allocates nor frees between clones
/// writes no heap page that its last child still shares, beyond the few these lie in (a
/// free writes the freed block and the allocator's lists: BENCHMARKS.md, item 12).
struct Vectors<'a> {
    /// Every descriptor that came with the request, closed once the child is cloned;
    /// between requests, those of the next, which [`receive_message`] puts there.
    fds: Vec<OwnedFd>,
    /// The arguments, as the child places them: made before the clone, so that the child
    /// does not allocate.
    argv: Vec<&'a [u8]>,
    /// A pointer to each variable in the request, then NULL: the child's `environ`.
    envp: Vec<*const c_char>,
    /// What `ChildPlan` holds for execve, which a child of the server never calls.
    nothing_to_exec: CStringArray,
    given: Vec<GivenFd>,
    joins: Vec<Join>,
    rlimits: Vec<RlimitPlan>,
    filter: Vec<libc::sock_filter>,
    /// Room for the decoding: the numbers recvmsg gave, and where strings lie.
    scratch: (Vec<RawFd>, Vec<Range<usize>>),
}

/// [`Vectors`] between two requests: empty, over no request's bytes.
type Kept = Vectors<'static>;

impl Kept {
    fn new() -> Kept {
        Vectors {
            fds: Vec::new(),
            argv: Vec::new(),
            envp: Vec::new(),
            nothing_to_exec: CStringArray::with_capacity(0),
            given: Vec::new(),
            joins: Vec::new(),
            rlimits: Vec::new(),
            filter: Vec::new(),
            scratch: (Vec::new(), Vec::new()),
        }
    }
}

impl Vectors<'_> {
    /// Closes the descriptors and empties every vector, keeping its room.
    fn emptied(self) -> Kept {
        let Vectors {
            mut fds,
            argv,
            mut envp,
            nothing_to_exec,
            mut given,
            mut joins,
            mut rlimits,
            mut filter,
            scratch: (mut received, mut strings),
        } = self;
        fds.clear();
        envp.clear();
        given.clear();
        joins.clear();
        rlimits.clear();
        filter.clear();
        received.clear();
        strings.clear();
        Vectors {
            fds,
            argv: emptied(argv),
            envp,
            nothing_to_exec,
            given,
            joins,
            rlimits,
            filter,
            scratch: (received, strings),
        }
    }
}

/// `vec`'s room, emptied, for references of another lifetime: std collects a vector's
/// `into_iter` mapped to items of the same layout into the same allocation.
fn emptied<'b, T: ?Sized>(mut vec: Vec<&T>) -> Vec<&'b T> {
    vec.clear();
    vec.into_iter().map(|_| unreachable!("emptied")).collect()
}

impl<'a> Received<'a> {
    /// Decodes `bytes`, which came with `kept.fds`, into `kept`'s vectors.
    fn decode(bytes: &'a [u8], kept: Kept) -> io::Result<Received<'a>> {
        let mut vectors: Vectors<'a> = kept;
        let (received, strings) = &mut vectors.scratch;
        let mut input = Reader::new(bytes);
        // The numbers recvmsg gave; placed above the targets once those are read.
        let mut next_fd = vectors.fds.iter().map(AsRawFd::as_raw_fd);
        let mut take_fd = || {
            next_fd
                .next()
                .ok_or_else(|| malformed("too few descriptors"))
        };
        let report = take_fd()?;
        let has_cwd_fd = input.flag()?;
        let has_go = input.flag()?;
        let cwd_fd = if has_cwd_fd { Some(take_fd()?) } else { None };
        let go = if has_go { Some(take_fd()?) } else { None };
        input.strings(strings)?;
        vectors
            .argv
            .extend(strings.iter().map(|at| &bytes[at.clone()]));
        // The marker that tells a re-executed child it is one: the dispatch of a fresh
        // start takes it out before the entry runs, and there is no such dispatch here.
        let marker = crate::dispatch::ENTRY_ENV.as_bytes();
        let is_marker =
            |pair: &[u8]| pair.starts_with(marker) && pair.get(marker.len()) == Some(&b'=');
        input.strings(strings)?;
        vectors.envp.extend(
            strings
                .iter()
                .filter(|pair| !is_marker(&bytes[(*pair).clone()]))
                .map(|pair| bytes[pair.start..].as_ptr().cast()),
        );
        vectors.envp.push(std::ptr::null());
        input.strings(strings)?;
        let cwd = match strings.as_slice() {
            [] => None,
            [cwd] => Some(
                CStr::from_bytes_with_nul(&bytes[cwd.start..=cwd.end])
                    .map_err(|_| malformed("the working directory"))?,
            ),
            _ => return Err(malformed("two working directories")),
        };
        let mut numbers = [0; 6];
        for number in &mut numbers {
            *number = input.i32()?;
        }
        let (no_new_privs, take_root_gid, take_root_uid) =
            (input.flag()?, input.flag()?, input.flag()?);
        let mut stdio = [None; 3];
        for slot in &mut stdio {
            if input.flag()? {
                *slot = Some(take_fd()?);
            }
        }
        for _ in 0..input.u32()? {
            let target = input.i32()?;
            vectors.given.push(GivenFd {
                source: take_fd()?,
                target,
            });
        }
        for _ in 0..input.u32()? {
            let nstype = input.i32()?;
            let step = Step::from_code(input.u32()?).ok_or_else(|| malformed("a step"))?;
            vectors.joins.push(Join {
                fd: take_fd()?,
                nstype,
                step,
            });
        }
        for _ in 0..input.u32()? {
            vectors.rlimits.push(RlimitPlan {
                resource: input.i32()?,
                soft: input.u64()?,
                hard: input.u64()?,
            });
        }
        let has_seccomp = input.flag()?;
        for _ in 0..input.u32()? {
            let code = input.u32()? as u16;
            let jumps = input.u32()?;
            vectors.filter.push(libc::sock_filter {
                code,
                jt: (jumps >> 8) as u8,
                jf: jumps as u8,
                k: input.u32()?,
            });
        }
        // Every descriptor is above the numbers the child installs, so that no source is
        // a target (the rules of `ChildPlan::fds`), whatever numbers recvmsg gave: one
        // that is not moves up (most are already, above the server's socket).
        let given = &mut vectors.given;
        let highest_target = given.iter().map(|fd| fd.target).max().unwrap_or(2).max(2);
        let fds = &mut vectors.fds;
        received.extend(fds.iter().map(AsRawFd::as_raw_fd));
        for fd in fds.iter_mut() {
            if fd.as_raw_fd() <= highest_target {
                *fd = sys::dup_above(fd.as_fd(), highest_target + 1)?;
            }
        }
        let place = |number: RawFd| -> RawFd {
            let index = received.iter().position(|&fd| fd == number);
            index.map_or(-1, |index| fds[index].as_raw_fd())
        };
        let (report, cwd_fd, go) = (place(report), cwd_fd.map(place), go.map(place));
        let stdio = stdio.map(|source| source.map(place));
        for fd in given.iter_mut() {
            fd.source = place(fd.source);
        }
        for join in &mut vectors.joins {
            join.fd = place(join.fd);
        }
        if !sys::follows_the_rules(given) {
            return Err(malformed("the given descriptors"));
        }
        Ok(Received {
            vectors,
            cwd,
            numbers,
            no_new_privs,
            take_root_gid,
            take_root_uid,
            stdio,
            has_seccomp,
            report,
            cwd_fd,
            go,
        })
    }

    /// Closes the request's descriptors, and gives its vectors back, emptied, for the
    /// next one.
    fn keep(self) -> Kept {
        self.vectors.emptied()
    }

    fn plan(&self) -> ChildPlan<'_> {
        let [
            death_signal,
            parent_pid,
            clone_flags,
            keep_blocked,
            unshare_after_join,
            _,
        ] = self.numbers;
        ChildPlan {
            exe: SERVER_ENTRY,
            argv: &self.vectors.nothing_to_exec,
            envp: &self.vectors.nothing_to_exec,
            cwd: self.cwd,
            stdio: self.stdio,
            fds: &self.vectors.given,
            death_signal,
            parent_pid,
            clone_flags,
            unshare_time: false,
            keep_blocked,
            rlimits: &self.vectors.rlimits,
            capabilities: None,
            no_new_privs: self.no_new_privs,
            seccomp: self.has_seccomp.then_some(self.vectors.filter.as_slice()),
            joins: &self.vectors.joins,
            unshare_after_join,
            take_root_gid: self.take_root_gid,
            take_root_uid: self.take_root_uid,
        }
    }
}

/// The server's answer to one request.
enum Answer {
    Cloned {
        pid: libc::pid_t,
        pidfd: Option<OwnedFd>,
    },
    CloneFailed(i32),
}

impl Answer {
    /// On the server's stack: it is sent after the clone, when an allocation would
    /// write heap pages the child shares.
    fn encode(&self) -> ([u8; 5], Option<RawFd>) {
        let (kind, number, fd) = match self {
            Answer::Cloned { pid, pidfd } => (0, *pid, pidfd.as_ref().map(AsRawFd::as_raw_fd)),
            Answer::CloneFailed(errno) => (1, *errno, None),
        };
        let mut bytes = [kind, 0, 0, 0, 0];
        bytes[1..].copy_from_slice(&number.to_ne_bytes());
        (bytes, fd)
    }

    fn decode(bytes: &[u8], mut fds: Vec<OwnedFd>) -> io::Result<Answer> {
        let number = bytes
            .get(1..5)
            .and_then(|number| number.try_into().ok())
            .map(i32::from_ne_bytes)
            .ok_or_else(|| malformed("a short answer"))?;
        match bytes.first() {
            Some(0) => Ok(Answer::Cloned {
                pid: number,
                pidfd: fds.pop(),
            }),
            Some(1) => Ok(Answer::CloneFailed(number)),
            _ => Err(malformed("an unknown answer")),
        }
    }
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("fork server message: {what}"),
    )
}

/// Little-endian numbers and length-prefixed byte strings.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u32(&mut self, value: u32) {
        self.0.extend(value.to_le_bytes());
    }
    fn i32(&mut self, value: i32) {
        self.0.extend(value.to_le_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.0.extend(value.to_le_bytes());
    }
    fn flag(&mut self, value: bool) {
        self.0.push(u8::from(value));
    }
    fn bytes(&mut self, value: &[u8]) {
        self.u32(value.len() as u32);
        self.0.extend_from_slice(value);
    }
    /// Each string with its length first and its NUL after, so that the server can use
    /// it where it arrives.
    fn strings<'a>(&mut self, strings: impl ExactSizeIterator<Item = &'a CStr>) {
        self.u32(strings.len() as u32);
        for string in strings {
            self.bytes(string.to_bytes_with_nul());
        }
    }
}

/// What [`Writer`] wrote, read back.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }
    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let head = self.bytes[self.at..]
            .first_chunk::<N>()
            .ok_or_else(|| malformed("cut short"))?;
        self.at += N;
        Ok(*head)
    }
    fn u32(&mut self) -> io::Result<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn i32(&mut self) -> io::Result<i32> {
        self.take().map(i32::from_le_bytes)
    }
    fn u64(&mut self) -> io::Result<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn flag(&mut self) -> io::Result<bool> {
        self.take::<1>().map(|[byte]| byte != 0)
    }
    /// Where each of [`Writer::strings`]'s strings lies, without its NUL, into `at`
    /// (emptied first): checked to end with one and to hold no other.
    fn strings(&mut self, at: &mut Vec<Range<usize>>) -> io::Result<()> {
        at.clear();
        for _ in 0..self.u32()? {
            let length = self.u32()? as usize;
            let string = self.bytes[self.at..]
                .get(..length)
                .ok_or_else(|| malformed("cut short"))?;
            if string.iter().position(|&byte| byte == 0) != Some(length.wrapping_sub(1)) {
                return Err(malformed("a string not ended by its one NUL"));
            }
            at.push(self.at..self.at + length - 1);
            self.at += length;
        }
        Ok(())
    }
}

/// Sends `body`, prefixed with its length, with `fds` attached to its first bytes;
/// `control` is room for them.
fn send_message(
    socket: &UnixStream,
    body: &[u8],
    fds: &[RawFd],
    control: &mut sys::Control,
) -> io::Result<()> {
    let length = (body.len() as u32).to_le_bytes();
    let iov = [IoSlice::new(&length), IoSlice::new(body)];
    let sent = sys::send_message(socket.as_raw_fd(), &iov, fds, control)?;
    // A stream socket may take part of it; the rest follows without descriptors. (No
    // copy of the message for that: it is rarely needed, and every spawn would pay it.)
    let mut socket = socket;
    if sent < length.len() {
        socket.write_all(&length[sent..])?;
        socket.write_all(body)
    } else {
        socket.write_all(&body[(sent - length.len()).min(body.len())..])
    }
}

/// Where a message is read: the server keeps one from request to request, so that each
/// is read into memory it has written before (and wipes `body` once it has served it),
/// and the caller one from spawn to spawn, which spares it the allocations.
#[derive(Debug, Default)]
struct Inbox {
    body: Vec<u8>,
    /// Room for the descriptors that come with a message, and go with one.
    control: sys::Control,
}

/// Receives one message from [`send_message`] into `inbox`, its descriptors into `fds`
/// (whose earlier ones are closed); `false` at end-of-file before it.
fn receive_message(
    socket: &UnixStream,
    inbox: &mut Inbox,
    fds: &mut Vec<OwnedFd>,
) -> io::Result<bool> {
    // The length alone first: the descriptors come with it, and the body is read into a
    // buffer of its size. SCM_RIGHTS carries at most 253.
    let mut length = [0u8; 4];
    let read = sys::receive_message(
        socket.as_raw_fd(),
        &mut length,
        253,
        &mut inbox.control,
        fds,
    )?;
    if read == 0 {
        return Ok(false);
    }
    let mut socket = socket;
    socket.read_exact(&mut length[read..])?;
    let body = &mut inbox.body;
    body.clear();
    body.resize(u32::from_le_bytes(length) as usize, 0);
    socket.read_exact(body)?;
    Ok(true)
}

/// Overwrites `bytes` with zeros: what a request carried (another child's environment,
/// say) must not linger in the server's freed memory, of which every later child gets a
/// copy.
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    // Keeps the compiler from dropping the stores to memory about to be freed.
    std::hint::black_box(bytes);
}

/// The server: answers requests until its socket reads end-of-file. Its children return
/// from here only into their entry.
#[reexec::entry("reexec-fork-server")]
fn serve() -> ExitCode {
    let Some(socket) = sys::adopt_server_socket(SERVER_SOCKET_FD) else {
        eprintln!(
            "reexec: reexec-fork-server is started by reexec::ForkServer::start, with its \
             socket at descriptor {SERVER_SOCKET_FD}; it does nothing on its own"
        );
        return ExitCode::from(2);
    };
    let mut socket = UnixStream::from(socket);
    let slot = sys::SpawnSlot::adopt(SERVER_SLOT_FD);
    let area = ArgvArea::find(ARGUMENT_SLOTS, SERVER_ENTRY).filter(std_reads_the_area);
    let ready = if area.is_some() && slot.is_some() {
        READY
    } else {
        UNABLE
    };
    if socket.write_all(&[ready]).is_err() {
        return ExitCode::FAILURE;
    }
    let (Some(area), Some(slot)) = (area, slot) else {
        return ExitCode::FAILURE;
    };
    // std's stdout is set up here, once, empty: each child flushes it at its end, and
    // would otherwise set it up (a lock, a buffer allocated) only to flush nothing.
    drop(io::stdout());
    let mut inbox = Inbox::default();
    let mut kept = Kept::new();
    loop {
        match receive_message(&socket, &mut inbox, &mut kept.fds) {
            Ok(true) => {}
            // The program ended, or stopped us.
            Ok(false) => return ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("reexec: the fork server stops: {error}");
                return ExitCode::FAILURE;
            }
        };
        let request = match Received::decode(&inbox.body, kept) {
            Ok(request) => request,
            Err(error) => {
                eprintln!("reexec: the fork server stops: {error}");
                return ExitCode::FAILURE;
            }
        };
        let answer = serve_one(&request, &area, &slot);
        // Before the answer: once `spawn` returns, no copy of what the caller gave is
        // left anywhere, the server's included.
        kept = request.keep();
        wipe(&mut inbox.body);
        let (reply, pidfd) = answer.encode();
        if send_message(&socket, &reply, pidfd.as_slice(), &mut inbox.control).is_err() {
            return ExitCode::FAILURE;
        }
    }
}

/// Whether std's `args()` sees what is written into `area`: checked once, by the server
/// on itself, so that its children need not check (and allocate) before their entry.
/// The server's padding is zeroed on the way, once for all its children, which write
/// their arguments over its name: what follows theirs in /proc/PID/cmdline is then
/// zeros, which ps(1) and pgrep(1) leave out.
fn std_reads_the_area(area: &ArgvArea) -> bool {
    let name = SERVER_ENTRY.to_bytes();
    // SAFETY: the server, single-threaded, on its own argv, which nothing borrows.
    unsafe { area.show_only(name) };
    std::env::args_os().eq([OsStr::from_bytes(name)])
}

/// Clones the child of one request; returns the answer in the server, and never in the
/// child, which runs its entry and exits.
fn serve_one(request: &Received, area: &ArgvArea, slot: &sys::SpawnSlot) -> Answer {
    let plan = request.plan();
    // Found here, before the clone: the child then runs none of the lookup's code.
    let name = OsStr::from_bytes(request.vectors.argv.first().copied().unwrap_or_default());
    let entry = crate::dispatch::forked_entry(name);
    // A new PID namespace is the one way the child can be its PID 1.
    let may_be_pid1 = plan.clone_flags & libc::CLONE_NEWPID != 0;
    // The child starts where the caller is now: the server moves there first, and the
    // clone copies it, before any new mount namespace — entered after, the directory
    // would still be the caller's mount's, outside the child's.
    if let Some(cwd) = request
        .cwd_fd
        .and_then(|cwd| request.vectors.fds.iter().find(|fd| fd.as_raw_fd() == cwd))
    {
        let _ = nix::unistd::fchdir(cwd);
    }
    let caller = CallerFds {
        report: request.report,
        go: request.go,
        caller_in_proc: request.numbers[5],
    };
    // SAFETY: this is the fork server, which never starts a second thread.
    match unsafe { sys::clone_for_caller(&plan, &caller, slot) } {
        Ok(Cloned::Parent { pid, pidfd }) => Answer::Cloned { pid, pidfd },
        Err(errno) => Answer::CloneFailed(errno),
        Ok(Cloned::Child) => run_child(request, (entry, may_be_pid1), area),
    }
}

/// The child of the server, set up: takes its arguments and environment, says it is
/// ready, and becomes its entry.
fn run_child(
    request: &Received,
    (entry, may_be_pid1): (Option<&'static Entry>, bool),
    area: &ArgvArea,
) -> ! {
    let argv = &request.vectors.argv;
    // SAFETY: the child of the server, single-threaded; the area is the server's own
    // argv, found and checked at its start (std reads it), and the caller checked that
    // these arguments fit.
    unsafe { area.place(argv) };
    let name = OsStr::from_bytes(argv.first().copied().unwrap_or_default());
    // SAFETY: the child of the server, single-threaded. `request` and the bytes its
    // pointers point into live in the server's loop, which this child never returns to,
    // so the array and its strings outlive every use.
    unsafe { sys::set_environment(request.vectors.envp.as_ptr()) };
    // SAFETY: the report descriptor this child was given.
    unsafe { sys::finish_setup(request.report) };
    let code = crate::dispatch::run_forked(name, entry, may_be_pid1);
    sys::end_forked_child(crate::dispatch::exit_status_number(code))
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;

    /// The environment a child of `received` gets, read as libc reads `environ`.
    fn environment<'a>(received: &'a Received<'_>) -> Vec<&'a CStr> {
        let (variables, end) = received
            .vectors
            .envp
            .split_at(received.vectors.envp.len() - 1);
        assert!(end[0].is_null(), "environ ends with NULL");
        variables
            .iter()
            // SAFETY: each pointer is to a NUL-ended string in `received.bytes`, which
            // `received` borrows for at least 'a.
            .map(|&variable| unsafe { CStr::from_ptr(variable) })
            .collect()
    }

    /// A plan with a value in every field, as a request: the bytes and the descriptors.
    fn encoded(pipe: &(OwnedFd, OwnedFd)) -> Request {
        let argv: CStringArray = [c"entry", c"two words", c""]
            .map(CString::from)
            .into_iter()
            .collect();
        let envp: CStringArray = [c"A=1", c"REEXEC_ENTRY=entry", c"REEXEC_ENTRYX=kept"]
            .map(CString::from)
            .into_iter()
            .collect();
        let filter = [libc::sock_filter {
            code: 6,
            jt: 1,
            jf: 2,
            k: 0x7fff_0000,
        }];
        let plan = ChildPlan {
            exe: SERVER_ENTRY,
            argv: &argv,
            envp: &envp,
            cwd: Some(c"/tmp"),
            stdio: [None, Some(pipe.1.as_raw_fd()), None],
            fds: &[GivenFd {
                source: pipe.0.as_raw_fd(),
                target: 40,
            }],
            death_signal: 15,
            parent_pid: 42,
            clone_flags: libc::CLONE_NEWUSER,
            unshare_time: false,
            keep_blocked: 15,
            rlimits: &[RlimitPlan {
                resource: 7,
                soft: 1,
                hard: 2,
            }],
            capabilities: None,
            no_new_privs: true,
            seccomp: Some(&filter),
            joins: &[],
            unshare_after_join: 0,
            take_root_gid: true,
            take_root_uid: false,
        };
        Request::encode(&plan, 7, pipe.1.as_raw_fd(), None, None)
    }

    /// A server's vectors, with `fds` as the request's descriptors.
    fn kept(fds: Vec<OwnedFd>) -> Kept {
        Kept { fds, ..Kept::new() }
    }

    /// The descriptors as recvmsg would hand them over: copies.
    fn copies(request: &Request) -> Vec<OwnedFd> {
        request
            .fds
            .iter()
            .map(|&fd| {
                let borrowed = std::os::fd::BorrowedFd::borrow_raw;
                // SAFETY: each is a live descriptor of this test, borrowed for the dup.
                sys::dup_above(unsafe { borrowed(fd) }, 3).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_plan_comes_through_the_wire_whole() {
        let pipe = sys::cloexec_pipe().unwrap();
        let request = encoded(&pipe);
        let received = Received::decode(&request.bytes, kept(copies(&request))).unwrap();
        let plan = received.plan();
        assert_eq!(received.vectors.argv, [&b"entry"[..], b"two words", b""]);
        // The dispatch marker stays behind: there is no dispatch to take it out.
        assert_eq!(environment(&received), [c"A=1", c"REEXEC_ENTRYX=kept"]);
        assert_eq!(plan.cwd, Some(c"/tmp"));
        assert_eq!(
            (plan.death_signal, plan.parent_pid, plan.keep_blocked),
            (15, 42, 15)
        );
        assert_eq!(plan.clone_flags, libc::CLONE_NEWUSER);
        assert!(plan.no_new_privs && plan.take_root_gid && !plan.take_root_uid);
        assert_eq!(
            plan.rlimits,
            [RlimitPlan {
                resource: 7,
                soft: 1,
                hard: 2
            }]
        );
        let filter = plan.seccomp.unwrap();
        assert_eq!(
            (filter[0].code, filter[0].jt, filter[0].jf, filter[0].k),
            (6, 1, 2, 0x7fff_0000)
        );
        assert_eq!(received.numbers[5], 7, "the caller's pid in /proc");
        // Every descriptor above the highest target, so that none is overwritten.
        assert_eq!(plan.fds[0].target, 40);
        assert!(plan.fds[0].source > 40);
        assert!(plan.stdio[1].is_some_and(|fd| fd > 40));
        assert!(received.report > 40);
    }

    #[test]
    fn a_second_request_is_decoded_into_the_room_of_the_first() {
        let pipe = sys::cloexec_pipe().unwrap();
        let request = encoded(&pipe);
        let first = Received::decode(&request.bytes, kept(copies(&request))).unwrap();
        let room = |received: &Received<'_>| {
            (
                received.vectors.argv.as_ptr().addr(),
                received.vectors.envp.as_ptr().addr(),
                received.vectors.given.as_ptr().addr(),
                received.vectors.rlimits.as_ptr().addr(),
                received.vectors.filter.as_ptr().addr(),
                received.vectors.fds.as_ptr().addr(),
            )
        };
        let before = room(&first);
        let mut kept = first.keep();
        assert!(kept.fds.is_empty() && kept.argv.is_empty() && kept.envp.is_empty());
        kept.fds.extend(copies(&request));
        let second = Received::decode(&request.bytes, kept).unwrap();
        assert_eq!(room(&second), before);
        assert_eq!(second.vectors.argv, [&b"entry"[..], b"two words", b""]);
    }

    #[test]
    fn a_message_cut_short_is_an_error_not_a_panic() {
        let pipe = sys::cloexec_pipe().unwrap();
        let request = encoded(&pipe);
        for length in 0..request.bytes.len() {
            let cut = &request.bytes[..length];
            assert!(
                Received::decode(cut, kept(copies(&request))).is_err(),
                "{length} bytes"
            );
        }
        assert!(
            Received::decode(&request.bytes, kept(Vec::new())).is_err(),
            "no descriptors"
        );
    }

    #[test]
    fn a_string_is_taken_only_with_its_one_nul_at_its_end() {
        let read = |string: &[u8]| {
            let mut out = Writer::default();
            out.u32(1);
            out.bytes(string);
            // What a request before left there goes.
            let mut at = vec![0..1, 1..2];
            Reader::new(&out.0).strings(&mut at).map(|()| at)
        };
        // After the count and the length: 8 bytes in.
        let only = |string: &[u8]| match read(string).unwrap().as_slice() {
            [at] => at.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(only(b"ab\0"), 8..10);
        assert_eq!(only(b"\0"), 8..8);
        for malformed in [&b"ab"[..], b"", b"a\0b\0", b"\0\0"] {
            assert!(read(malformed).is_err(), "{malformed:?}");
        }
    }

    #[test]
    fn the_servers_arguments_leave_the_room_they_promise() {
        let arguments = server_arguments();
        assert_eq!(arguments.len() + 1, ARGUMENT_SLOTS);
        let bytes: usize = arguments
            .iter()
            .map(|argument| argument.len() + 1)
            .sum::<usize>()
            + SERVER_ENTRY.to_bytes_with_nul().len();
        assert_eq!(bytes, ARGUMENT_BYTES);
        let fits = |count: usize, each: usize| {
            let argument = vec![b'x'; each];
            can_serve(&vec![argument.as_slice(); count], 0)
        };
        assert!(fits(ARGUMENT_SLOTS, 0));
        assert!(!fits(ARGUMENT_SLOTS + 1, 0));
        assert!(fits(1, ARGUMENT_BYTES - 1));
        assert!(!fits(1, ARGUMENT_BYTES));
    }
}
