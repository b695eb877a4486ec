//! The spawner: a `std::process::Command`-shaped builder whose program is always the
//! running binary and whose `argv[0]` is an entry's name.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr, OsString, c_char};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus, Output};
use std::ptr;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::dispatch::ENTRY_ENV;
use crate::error::{Error, Step};
use crate::sys::{self, ChildPlan, REPORT_LEN};

/// The program every child runs: this binary, as the kernel still knows it even after the
/// file on disk was replaced or deleted.
const SELF_EXE: &CStr = c"/proc/self/exe";

/// Where a child's stdin, stdout or stderr comes from or goes to.
///
/// ```
/// use reexec::Stdio;
///
/// let log = std::fs::File::create(std::env::temp_dir().join("reexec-doc.log"))?;
/// let _ = (Stdio::inherit(), Stdio::null(), Stdio::piped(), Stdio::from(log));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Stdio(StdioKind);

#[derive(Debug)]
enum StdioKind {
    Inherit,
    Null,
    Piped,
    Fd(OwnedFd),
}

impl Stdio {
    /// The child uses the parent's descriptor.
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// The child reads nothing and its writes go nowhere (`/dev/null`).
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// A new pipe, whose other end appears in [`Child::stdin`], [`Child::stdout`] or
    /// [`Child::stderr`].
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(StdioKind::Fd(fd))
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Stdio {
        Stdio::from(OwnedFd::from(file))
    }
}

impl From<ChildStdin> for Stdio {
    fn from(pipe: ChildStdin) -> Stdio {
        Stdio::from(OwnedFd::from(pipe))
    }
}

impl From<ChildStdout> for Stdio {
    fn from(pipe: ChildStdout) -> Stdio {
        Stdio::from(OwnedFd::from(pipe))
    }
}

impl From<ChildStderr> for Stdio {
    fn from(pipe: ChildStderr) -> Stdio {
        Stdio::from(OwnedFd::from(pipe))
    }
}

/// Starts this same binary as a child that runs the entry `name`.
///
/// Shaped like [`std::process::Command`]: the program is fixed (the running executable)
/// and `argv[0]` is the entry's name; the rest — arguments, environment, working
/// directory, stdio — is yours to set. The child gets a parent-death signal, `SIGTERM`
/// unless you choose otherwise with [`death_signal`](Self::death_signal).
///
/// ```no_run
/// use std::io::Read;
///
/// #[reexec::entry("shout")]
/// fn shout() {
///     let words: Vec<String> = std::env::args().skip(1).collect();
///     println!("{}", words.join(" ").to_uppercase());
/// }
///
/// reexec::main! {
///     fn main() -> Result<(), reexec::Error> {
///         let output = reexec::Command::new("shout").args(["hello", "world"]).output()?;
///         assert_eq!(output.stdout, b"HELLO WORLD\n");
///
///         let mut child = reexec::Command::new("shout")
///             .arg("piped")
///             .stdout(reexec::Stdio::piped())
///             .spawn()?;
///         let mut text = String::new();
///         child.stdout.take().unwrap().read_to_string(&mut text).unwrap();
///         assert!(child.wait()?.success());
///         Ok(())
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Command {
    name: OsString,
    args: Vec<OsString>,
    env: BTreeMap<OsString, Option<OsString>>,
    env_clear: bool,
    cwd: Option<PathBuf>,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    death_signal: Option<i32>,
}

/// What a method of [`Command`] uses for stdio the caller left unset.
#[derive(Clone, Copy)]
enum StdioDefault {
    Inherit,
    /// `output()`: stdin from `/dev/null`, stdout and stderr captured.
    Capture,
}

impl Command {
    /// A command that will start the entry `name` of this binary.
    pub fn new(name: impl AsRef<OsStr>) -> Command {
        Command {
            name: name.as_ref().to_owned(),
            args: Vec::new(),
            env: BTreeMap::new(),
            env_clear: false,
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            death_signal: Some(libc::SIGTERM),
        }
    }

    /// Adds one argument; the entry reads it as `std::env::args().nth(1)` and so on.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args.extend(args.into_iter().map(|arg| arg.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.env.insert(key.as_ref().to_owned(), Some(value.as_ref().to_owned()));
        self
    }

    /// Sets several environment variables.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (key, value) in vars {
            self.env(key, value);
        }
        self
    }

    /// Removes an environment variable from what the child inherits.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.env.insert(key.as_ref().to_owned(), None);
        self
    }

    /// The child inherits no environment; only variables set after this call reach it.
    pub fn env_clear(&mut self) -> &mut Command {
        self.env.clear();
        self.env_clear = true;
        self
    }

    /// The child starts in `dir`; a missing directory makes `spawn` fail with
    /// [`Step::ChangeDirectory`].
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// The child's standard input.
    pub fn stdin(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stdin = Some(stdio.into());
        self
    }

    /// The child's standard output.
    pub fn stdout(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stdout = Some(stdio.into());
        self
    }

    /// The child's standard error.
    pub fn stderr(&mut self, stdio: impl Into<Stdio>) -> &mut Command {
        self.stderr = Some(stdio.into());
        self
    }

    /// The signal the child receives when the thread that spawned it ends (the kernel's
    /// `PR_SET_PDEATHSIG`); `None` turns it off. The default is `SIGTERM`.
    ///
    /// The kernel ties this signal to the spawning *thread*, not the process: spawn from
    /// a thread that lives as long as the child should.
    pub fn death_signal(&mut self, signal: Option<i32>) -> &mut Command {
        self.death_signal = signal;
        self
    }

    /// The entry name this command starts.
    pub fn get_name(&self) -> &OsStr {
        &self.name
    }

    /// Starts the child; stdio not set explicitly is inherited.
    pub fn spawn(&mut self) -> Result<Child, Error> {
        self.spawn_with(StdioDefault::Inherit)
    }

    /// Starts the child and waits for it; stdio not set explicitly is inherited.
    pub fn status(&mut self) -> Result<ExitStatus, Error> {
        self.spawn_with(StdioDefault::Inherit)?.wait()
    }

    /// Starts the child, collects all it writes and waits for it. Unless set explicitly,
    /// stdin is `/dev/null` and stdout and stderr are captured.
    pub fn output(&mut self) -> Result<Output, Error> {
        self.spawn_with(StdioDefault::Capture)?.wait_with_output()
    }

    fn spawn_with(&mut self, default: StdioDefault) -> Result<Child, Error> {
        let name = self.validated_name()?;
        let argv = self.argv(&name)?;
        let envp = self.envp(&name)?;
        let cwd = self
            .cwd
            .as_deref()
            .map(|dir| c_string("working directory", dir.as_os_str()))
            .transpose()?;
        let death_signal = match self.death_signal {
            None => 0,
            Some(signal) if (1..=64).contains(&signal) => signal,
            Some(signal) => {
                return Err(Error::InvalidInput {
                    what: "death signal",
                    value: signal.to_string().into(),
                    why: "signals are numbered 1 to 64; pass None to turn the death signal off",
                });
            }
        };

        let stdin = prepare_stdio(self.stdin.as_ref(), default, Direction::Input)?;
        let stdout = prepare_stdio(self.stdout.as_ref(), default, Direction::Output)?;
        let stderr = prepare_stdio(self.stderr.as_ref(), default, Direction::Output)?;
        let (report_read, report_write) = cloexec_pipe()?;

        let argv_ptrs = null_terminated(&argv);
        let envp_ptrs = null_terminated(&envp);
        let plan = ChildPlan {
            exe: SELF_EXE,
            argv: &argv_ptrs,
            envp: &envp_ptrs,
            cwd: cwd.as_deref(),
            stdio: [stdin.child_fd(), stdout.child_fd(), stderr.child_fd()],
            death_signal,
            parent_pid: std::process::id() as libc::pid_t,
            report_fd: report_write.as_raw_fd(),
        };
        let pid = sys::spawn(&plan).map_err(|error| Error::os(Step::Clone, error))?;
        let pid = Pid::from_raw(pid);
        // The parent's copies of the child's ends must close, or the child's output pipes
        // never report end-of-file and the report pipe never tells us exec happened.
        drop((report_write, stdin.child, stdout.child, stderr.child));

        if let Some(error) = read_setup_report(report_read, pid)? {
            return Err(error);
        }
        Ok(Child {
            pid,
            status: None,
            stdin: stdin.parent.map(ChildStdin::from),
            stdout: stdout.parent.map(ChildStdout::from),
            stderr: stderr.parent.map(ChildStderr::from),
        })
    }

    fn validated_name(&self) -> Result<CString, Error> {
        let invalid = |why| Error::InvalidInput {
            what: "entry name",
            value: self.name.clone(),
            why,
        };
        let bytes = self.name.as_bytes();
        if bytes.is_empty() {
            return Err(invalid("an entry name can't be empty"));
        }
        if bytes.contains(&b'/') {
            return Err(invalid(
                "an entry name can't contain '/': the child finds its entry by the last component of argv[0]",
            ));
        }
        c_string("entry name", &self.name)
    }

    fn argv(&self, name: &CString) -> Result<Vec<CString>, Error> {
        let mut argv = Vec::with_capacity(1 + self.args.len());
        argv.push(name.clone());
        for arg in &self.args {
            argv.push(c_string("argument", arg)?);
        }
        Ok(argv)
    }

    fn envp(&self, name: &CString) -> Result<Vec<CString>, Error> {
        let mut vars: BTreeMap<OsString, OsString> = if self.env_clear {
            BTreeMap::new()
        } else {
            std::env::vars_os().collect()
        };
        for (key, value) in &self.env {
            let key_bytes = key.as_bytes();
            if key_bytes.is_empty() || key_bytes.contains(&b'=') {
                return Err(Error::InvalidInput {
                    what: "environment variable name",
                    value: key.clone(),
                    why: "a variable name must be non-empty and can't contain '='",
                });
            }
            match value {
                Some(value) => vars.insert(key.clone(), value.clone()),
                None => vars.remove(key),
            };
        }
        vars.insert(ENTRY_ENV.into(), OsString::from_vec(name.as_bytes().to_vec()));
        vars.into_iter()
            .map(|(key, value)| {
                let mut pair = key.into_vec();
                pair.push(b'=');
                pair.extend_from_slice(value.as_bytes());
                c_string("environment variable", OsStr::from_bytes(&pair))
            })
            .collect()
    }
}

fn c_string(what: &'static str, value: &OsStr) -> Result<CString, Error> {
    CString::new(value.as_bytes()).map_err(|_| Error::InvalidInput {
        what,
        value: value.to_owned(),
        why: "it contains a NUL byte, which no process argument can carry",
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const c_char> {
    strings.iter().map(|string| string.as_ptr()).chain([ptr::null()]).collect()
}

fn cloexec_pipe() -> Result<(OwnedFd, OwnedFd), Error> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|errno| Error::os(Step::CreatePipe, errno.into()))
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Input,
    Output,
}

/// One stdio slot resolved into descriptors: the child's end, and our end of a pipe.
struct PreparedStdio {
    child: Option<OwnedFd>,
    parent: Option<OwnedFd>,
}

impl PreparedStdio {
    fn child_fd(&self) -> Option<i32> {
        self.child.as_ref().map(AsRawFd::as_raw_fd)
    }
}

fn prepare_stdio(
    stdio: Option<&Stdio>,
    default: StdioDefault,
    direction: Direction,
) -> Result<PreparedStdio, Error> {
    let kind = match (stdio, default, direction) {
        (Some(Stdio(kind)), _, _) => kind,
        (None, StdioDefault::Inherit, _) => &StdioKind::Inherit,
        (None, StdioDefault::Capture, Direction::Input) => &StdioKind::Null,
        (None, StdioDefault::Capture, Direction::Output) => &StdioKind::Piped,
    };
    Ok(match kind {
        StdioKind::Inherit => PreparedStdio { child: None, parent: None },
        StdioKind::Null => {
            let null = File::options()
                .read(true)
                .write(true)
                .open("/dev/null")
                .map_err(|error| Error::os(Step::OpenDevNull, error))?;
            PreparedStdio { child: Some(null.into()), parent: None }
        }
        StdioKind::Piped => {
            let (read, write) = cloexec_pipe()?;
            match direction {
                Direction::Input => PreparedStdio { child: Some(read), parent: Some(write) },
                Direction::Output => PreparedStdio { child: Some(write), parent: Some(read) },
            }
        }
        // A close-on-exec copy: the user's descriptor may lack the flag, and the child
        // must see it only as 0, 1 or 2.
        StdioKind::Fd(fd) => PreparedStdio {
            child: Some(fd.try_clone().map_err(|error| Error::os(Step::DuplicateStdio, error))?),
            parent: None,
        },
    })
}

/// Waits for the child to exec (end-of-file) or to report a failed setup step.
fn read_setup_report(report: OwnedFd, pid: Pid) -> Result<Option<Error>, Error> {
    let mut report = File::from(report);
    let mut buffer = [0u8; REPORT_LEN];
    let mut filled = 0;
    while filled < REPORT_LEN {
        match report.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(Error::os(Step::ReadSetupReport, error)),
        }
    }
    match filled {
        0 => Ok(None),
        REPORT_LEN => {
            // The child exits right after reporting; reap it so no zombie stays behind.
            wait_blocking(pid)?;
            let (step, errno) = sys::decode_report(buffer);
            Ok(Some(Error::os(
                step.unwrap_or(Step::ReadSetupReport),
                io::Error::from_raw_os_error(errno),
            )))
        }
        _ => {
            wait_blocking(pid)?;
            Err(Error::os(
                Step::ReadSetupReport,
                io::Error::new(io::ErrorKind::UnexpectedEof, "the child's setup report was cut short"),
            ))
        }
    }
}

fn wait_blocking(pid: Pid) -> Result<ExitStatus, Error> {
    loop {
        match sys::wait(pid.as_raw(), false) {
            Ok(Some(status)) => return Ok(ExitStatus::from_raw(status)),
            Ok(None) => continue,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(Error::os(Step::Wait, error)),
        }
    }
}

/// A running or exited child started by [`Command`].
///
/// As with [`std::process::Child`], dropping it neither kills nor reaps the child: call
/// [`wait`](Self::wait) so that no zombie stays behind.
#[derive(Debug)]
pub struct Child {
    pid: Pid,
    status: Option<ExitStatus>,
    /// Our end of the child's stdin, when it was [`Stdio::piped`].
    pub stdin: Option<ChildStdin>,
    /// Our end of the child's stdout, when it was [`Stdio::piped`].
    pub stdout: Option<ChildStdout>,
    /// Our end of the child's stderr, when it was [`Stdio::piped`].
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// The child's process id, as seen from the parent's PID namespace.
    pub fn id(&self) -> u32 {
        self.pid.as_raw() as u32
    }

    /// Waits for the child to exit. Closes our end of its stdin first, so a child that
    /// reads to end-of-file can finish.
    pub fn wait(&mut self) -> Result<ExitStatus, Error> {
        drop(self.stdin.take());
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = wait_blocking(self.pid)?;
        self.status = Some(status);
        Ok(status)
    }

    /// The exit status if the child has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        loop {
            match sys::wait(self.pid.as_raw(), true) {
                Ok(Some(status)) => {
                    let status = ExitStatus::from_raw(status);
                    self.status = Some(status);
                    return Ok(Some(status));
                }
                Ok(None) => return Ok(None),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(Error::os(Step::Wait, error)),
            }
        }
    }

    /// Sends `SIGKILL` to the child. Succeeds without doing anything if the child was
    /// already waited for.
    pub fn kill(&mut self) -> Result<(), Error> {
        self.signal(libc::SIGKILL)
    }

    /// Sends `signal` to the child, unless it was already waited for.
    pub fn signal(&mut self, signal: i32) -> Result<(), Error> {
        if self.status.is_some() {
            return Ok(());
        }
        let signal = Signal::try_from(signal).map_err(|errno| Error::os(Step::Kill, errno.into()))?;
        signal::kill(self.pid, signal).map_err(|errno| Error::os(Step::Kill, errno.into()))
    }

    /// Waits for the child and collects everything it writes to piped stdout and stderr.
    pub fn wait_with_output(mut self) -> Result<Output, Error> {
        drop(self.stdin.take());
        let (stdout, stderr) = read_both(self.stdout.take(), self.stderr.take())
            .map_err(|error| Error::os(Step::ReadOutput, error))?;
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }
}

/// Reads two pipes to their ends at once, so that a child filling one while we block on
/// the other cannot deadlock us.
fn read_both(
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
) -> io::Result<(Vec<u8>, Vec<u8>)> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut stdout = stdout.map(|pipe| File::from(OwnedFd::from(pipe)));
    let mut stderr = stderr.map(|pipe| File::from(OwnedFd::from(pipe)));
    let mut chunk = [0u8; 16 * 1024];
    while stdout.is_some() || stderr.is_some() {
        let (out_ready, err_ready) = {
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2);
            for file in [&stdout, &stderr].into_iter().flatten() {
                fds.push(PollFd::new(file.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
            }
            let mut ready = fds.iter().map(|fd| fd.any().unwrap_or(true));
            let out_ready = stdout.is_some() && ready.next().unwrap_or(false);
            let err_ready = stderr.is_some() && ready.next().unwrap_or(false);
            (out_ready, err_ready)
        };
        for (ready, source, sink) in [(out_ready, &mut stdout, &mut out), (err_ready, &mut stderr, &mut err)] {
            if !ready {
                continue;
            }
            if let Some(file) = source {
                match file.read(&mut chunk) {
                    Ok(0) => *source = None,
                    Ok(read) => sink.extend_from_slice(&chunk[..read]),
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => return Err(error),
                }
            }
        }
    }
    Ok((out, err))
}
