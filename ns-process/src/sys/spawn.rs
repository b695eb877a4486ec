//! The command's start from the init: a child that shares the init's memory until it
//! execs — clone(2) with `CLONE_VM | CLONE_VFORK` on a stack of its own, as glibc's
//! posix_spawn(3) does — so that no page table of the init is copied and neither process
//! faults the init's pages back copy-on-write afterwards. std's `Command` forks instead
//! whenever a hook must run before exec, and the command needs three: its session, its
//! capabilities and user, its seccomp filter (#14: about 0.2 ms and 36 page faults a run,
//! BENCHMARKS.md item 6). `ns-runtime exec` starts its process the same way.
//!
//! Sharing the init's memory, the child allocates nothing, takes no lock, can't panic,
//! and writes nothing of the init's but its own stack, the script slot of [`Exec`] and the
//! errno it reports; and it runs no handler of the init's: every signal is blocked across
//! the clone, and each one with a handler reset to its default before the child unblocks
//! them. The init sleeps in clone(2) until the child has exec'd or ended.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::libc;

use super::check;

/// Room for the child's stack: a few dozen system calls, no formatting; debug builds
/// take several times the stack of release ones.
const STACK_SIZE: usize = 256 * 1024;

/// The status of a child that could not exec; the init reaps it and reports the errno.
const EXEC_FAILED: libc::c_int = 127;

/// The command to start and everything its child does before exec, all of it built
/// before the clone.
pub(crate) struct CommandStart {
    exec: Exec,
    cwd: Option<CString>,
    /// One descriptor for stdin, stdout and stderr (the console's pty); `None` keeps the
    /// init's.
    stdio: Option<OwnedFd>,
    take_terminal: bool,
    identity: Option<Identity>,
    seccomp: Option<reexec::SeccompProgram>,
    /// The errno of the step that failed in the child; 0 while none did.
    failure: AtomicI32,
}

/// What execve is given, and where execvp(3) would look for the program.
struct Exec {
    /// The paths tried in turn: the program itself when its name has a `/`, else the
    /// program in each directory of the command's own `PATH`.
    paths: Vec<CString>,
    argv_pointers: Vec<*const libc::c_char>,
    /// `/bin/sh`, the path (slot 1, set by the child), then the arguments: how execvp
    /// runs a file execve refuses as no executable format (ENOEXEC), a script without
    /// `#!`.
    script_pointers: Vec<*const libc::c_char>,
    envp_pointers: Vec<*const libc::c_char>,
    /// The arguments and the environment's pairs, which the pointers point into: kept
    /// for them, never read.
    _strings: [Vec<CString>; 2],
}

/// The command's capabilities, and the user it becomes on the way (see
/// [`cut_capabilities`](super::cut_capabilities)).
struct Identity {
    keep: reexec::Capabilities,
    user: Option<(u32, u32)>,
    groups: Vec<libc::gid_t>,
}

fn c_string(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} holds a NUL byte"),
        )
    })
}

/// The null-terminated array of pointers execve takes, into `strings`.
fn pointers<'a>(strings: impl Iterator<Item = &'a CString>) -> Vec<*const libc::c_char> {
    strings
        .map(|string| string.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

impl CommandStart {
    /// `program` with `args` and exactly the environment `env`; a program without a `/`
    /// is looked for in the `PATH` of `env` (execvp's default `/bin:/usr/bin` without
    /// one, an empty entry meaning the working directory).
    pub(crate) fn new(
        program: &OsStr,
        args: &[OsString],
        env: &BTreeMap<OsString, OsString>,
    ) -> io::Result<CommandStart> {
        let name = program.as_bytes();
        let paths = if name.contains(&b'/') || name.is_empty() {
            vec![c_string(name, "the program's name")?]
        } else {
            let search = env
                .get(OsStr::new("PATH"))
                .map_or(&b"/bin:/usr/bin"[..], |path| path.as_bytes());
            search
                .split(|&byte| byte == b':')
                .map(|dir| match dir {
                    b"" => c_string(name, "the program's name"),
                    dir => {
                        let mut path = dir.to_vec();
                        if !dir.ends_with(b"/") {
                            path.push(b'/');
                        }
                        path.extend_from_slice(name);
                        c_string(&path, "PATH")
                    }
                })
                .collect::<io::Result<_>>()?
        };
        let argv = std::iter::once(program)
            .chain(args.iter().map(OsString::as_os_str))
            .map(|arg| c_string(arg.as_bytes(), "an argument"))
            .collect::<io::Result<Vec<_>>>()?;
        let envp = env
            .iter()
            .map(|(key, value)| {
                let mut pair = key.as_bytes().to_vec();
                pair.push(b'=');
                pair.extend_from_slice(value.as_bytes());
                c_string(&pair, "the environment")
            })
            .collect::<io::Result<Vec<_>>>()?;
        let argv_pointers = pointers(argv.iter());
        let script_pointers = [c"/bin/sh".as_ptr(), std::ptr::null()]
            .into_iter()
            .chain(argv_pointers.iter().skip(1).copied())
            .collect();
        let envp_pointers = pointers(envp.iter());
        Ok(CommandStart {
            exec: Exec {
                paths,
                argv_pointers,
                script_pointers,
                envp_pointers,
                _strings: [argv, envp],
            },
            cwd: None,
            stdio: None,
            take_terminal: false,
            identity: None,
            seccomp: None,
            failure: AtomicI32::new(0),
        })
    }

    /// Starts the command in `dir`.
    pub(crate) fn current_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.cwd = Some(c_string(
            dir.as_os_str().as_bytes(),
            "the working directory",
        )?);
        Ok(())
    }

    /// `fd` as the command's stdin, stdout and stderr.
    pub(crate) fn stdio(&mut self, fd: OwnedFd) {
        self.stdio = Some(fd);
    }

    /// With `take`, the terminal on its stdin becomes the controlling terminal of the
    /// command's session (which it always gets).
    pub(crate) fn take_terminal(&mut self, take: bool) {
        self.take_terminal = take;
    }

    /// The command keeps the capability sets `keep` and no more, having become `user`
    /// (uid, gid) with the supplementary `groups` on the way when given.
    pub(crate) fn identity(
        &mut self,
        keep: reexec::Capabilities,
        user: Option<(u32, u32)>,
        groups: Vec<u32>,
    ) {
        self.identity = Some(Identity { keep, user, groups });
    }

    /// Binds the command to `program`, after every other step.
    pub(crate) fn seccomp(&mut self, program: reexec::SeccompProgram) {
        self.seccomp = Some(program);
    }

    /// Starts the command; its pid once it has exec'd, or what failed before. A child
    /// that failed is reaped here; one that exec'd is the caller's to reap.
    pub(crate) fn spawn(mut self) -> io::Result<libc::pid_t> {
        let stack = ChildStack::new()?;
        let blocked = BlockedAll::now()?;
        // SAFETY: `child_main` is the child's whole life: it runs on `stack`, a mapping
        // of its own, and treats `self` as its own, which it is: this thread sleeps in
        // clone(2) (CLONE_VFORK) and touches neither until the child has exec'd or
        // ended; both outlive the call. Every signal is blocked, so no handler of ours
        // runs in the child (see the module's docs for the rest it keeps to).
        let pid = unsafe {
            libc::clone(
                child_main,
                stack.top(),
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (&mut self as *mut CommandStart).cast(),
            )
        };
        let clone_error = io::Error::last_os_error();
        drop(blocked);
        drop(stack);
        if pid < 0 {
            return Err(clone_error);
        }
        match self.failure.load(Ordering::Acquire) {
            0 => Ok(pid),
            errno => {
                reap(pid);
                Err(io::Error::from_raw_os_error(errno))
            }
        }
    }

    /// Every step of the child before exec, in std's order: signals, stdio, working
    /// directory, then the hooks — session, capabilities and user, seccomp filter.
    fn before_exec(&self) -> io::Result<()> {
        reset_handled_signals();
        if let Some(fd) = &self.stdio {
            for target in 0..3 {
                install_as(fd.as_raw_fd(), target)?;
            }
        }
        if let Some(dir) = &self.cwd {
            // SAFETY: chdir(2) reads a NUL-terminated string that `self` owns.
            check(unsafe { libc::chdir(dir.as_ptr()) })?;
        }
        unblock_all()?;
        // SAFETY: setsid(2) takes no argument.
        check(unsafe { libc::setsid() })?;
        if self.take_terminal {
            // SAFETY: TIOCSCTTY takes an int by value (0: do not steal), no pointer.
            check(unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY, 0) })?;
        }
        if let Some(identity) = &self.identity {
            super::cut_capabilities(identity.keep, identity.user, &identity.groups)?;
        }
        if let Some(program) = &self.seccomp {
            super::install_seccomp(program)?;
        }
        Ok(())
    }
}

/// The child: every step, then execve; on a failure its errno in `failure`, and the
/// status [`EXEC_FAILED`].
extern "C" fn child_main(start: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `spawn` passed its own CommandStart, which it leaves to this child until
    // the child has exec'd or ended (CLONE_VFORK).
    let start = unsafe { &mut *start.cast::<CommandStart>() };
    let errno = match start.before_exec() {
        Ok(()) => start.exec.run(),
        Err(error) => error.raw_os_error().unwrap_or(libc::EINVAL),
    };
    start.failure.store(errno, Ordering::Release);
    EXEC_FAILED
}

impl Exec {
    /// execvp(3)'s search, which returns only on a failure, with its errno: a path that
    /// is missing or not a directory is skipped, one refused (EACCES) too but reported if
    /// no other path exec'd, and any other error ends the search; a file of no executable
    /// format is run by `/bin/sh`.
    fn run(&mut self) -> libc::c_int {
        let mut refused = false;
        let mut last = libc::ENOENT;
        for path in &self.paths {
            // SAFETY: execve(2) reads NUL-terminated strings and null-terminated arrays of
            // pointers to them, all owned by `self`.
            unsafe {
                libc::execve(
                    path.as_ptr(),
                    self.argv_pointers.as_ptr(),
                    self.envp_pointers.as_ptr(),
                )
            };
            last = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL);
            match last {
                libc::ENOEXEC => {
                    if let Some(slot) = self.script_pointers.get_mut(1) {
                        *slot = path.as_ptr();
                    }
                    // SAFETY: as above; the script's array points into `self.argv` and
                    // `path`, both alive.
                    unsafe {
                        libc::execve(
                            c"/bin/sh".as_ptr(),
                            self.script_pointers.as_ptr(),
                            self.envp_pointers.as_ptr(),
                        )
                    };
                    return io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(libc::EINVAL);
                }
                libc::EACCES => refused = true,
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                _ => return last,
            }
        }
        if refused { libc::EACCES } else { last }
    }
}

/// `fd` at number `target`, open across exec.
fn install_as(fd: libc::c_int, target: libc::c_int) -> io::Result<()> {
    if fd == target {
        // SAFETY: F_SETFD takes a number and changes only the flag of `fd`.
        return check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) });
    }
    // SAFETY: dup2(2) on two numbers; `target` is one of the standard three, which the
    // command is to have.
    check(unsafe { libc::dup2(fd, target) })
}

/// Each signal with a handler back to its default: the handler is the init's, in the
/// memory the child shares. Ignored ones stay ignored, as across execve, but SIGPIPE,
/// which std's start ignores and std's spawn restores.
fn reset_handled_signals() {
    for signal in 1..libc::SIGRTMAX() + 1 {
        // SAFETY: a zeroed sigaction is a valid value to be written over.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: sigaction(2) writes the current action into `action`, a live local;
        // for SIGKILL, SIGSTOP and glibc's own it fails and writes nothing.
        let asked = unsafe { libc::sigaction(signal, std::ptr::null(), &mut action) };
        let handled = asked == 0
            && action.sa_sigaction != libc::SIG_DFL
            && action.sa_sigaction != libc::SIG_IGN;
        if handled || signal == libc::SIGPIPE {
            // SAFETY: signal(2) on a number with SIG_DFL touches no memory of ours.
            unsafe { libc::signal(signal, libc::SIG_DFL) };
        }
    }
}

/// No signal blocked: the init blocks the ones it waits for, and the mask is kept
/// across execve.
fn unblock_all() -> io::Result<()> {
    // SAFETY: an emptied sigset_t is read by pthread_sigmask, which writes no old mask.
    let result = unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut())
    };
    match result {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Waits for a child that failed before exec, which has ended or is ending.
fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waitpid(2) writes the status into a live local.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

/// Every signal blocked on this thread until dropped, the mask then restored.
struct BlockedAll(libc::sigset_t);

impl BlockedAll {
    fn now() -> io::Result<BlockedAll> {
        // SAFETY: pthread_sigmask reads a filled sigset_t and writes the old mask into
        // another, both live locals.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            match libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) {
                0 => Ok(BlockedAll(old)),
                errno => Err(io::Error::from_raw_os_error(errno)),
            }
        }
    }
}

impl Drop for BlockedAll {
    fn drop(&mut self) {
        // SAFETY: restores the mask read by `now`, a valid sigset_t.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// A private mapping for the child's stack with an inaccessible page below it: a child
/// that overflowed would fault there instead of writing over the init's memory.
struct ChildStack {
    base: *mut libc::c_void,
    length: usize,
}

impl ChildStack {
    fn new() -> io::Result<ChildStack> {
        let guard = page_size();
        let length = STACK_SIZE + guard;
        // SAFETY: a new private anonymous mapping, placed by the kernel, overlaps nothing.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                length,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, length };
        // SAFETY: the lowest page of the mapping just made, which nothing uses.
        check(unsafe { libc::mprotect(base, guard, libc::PROT_NONE) })?;
        Ok(stack)
    }

    /// The highest address, where a stack growing down starts.
    fn top(&self) -> *mut libc::c_void {
        self.base.wrapping_byte_add(self.length)
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping `new` made, used by no child any more: clone(2) returned
        // after the child exec'd or ended.
        unsafe { libc::munmap(self.base, self.length) };
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf takes a number.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => 4096,
    }
}
