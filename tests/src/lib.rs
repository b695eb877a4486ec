//! Test support for the reexec workspace: the binaries in `src/bin` re-execute themselves
//! for real, and the tests in `tests/` run those binaries.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A directory under the system's temporary directory, removed with its content on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// A new, empty directory whose name contains `label`, this process's pid and a counter.
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let unique = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("reexec-{label}-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Like [`TempDir::new`], but anyone may create files in it: for what a test runs as
    /// uid 65534.
    pub fn world_writable(label: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new(label);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        dir
    }

    /// Where the directory is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The value of the first `key=value` line of a probe's stdout.
pub fn field<'a>(output: &'a Output, key: &str) -> Option<&'a str> {
    let stdout = std::str::from_utf8(&output.stdout).ok()?;
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
}

/// Every value of `key=value` lines of a probe's stdout, in order.
pub fn fields<'a>(output: &'a Output, key: &str) -> Vec<&'a str> {
    let stdout = std::str::from_utf8(&output.stdout).unwrap_or("");
    stdout
        .lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

/// Stdout and stderr of a probe run, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// This process's open descriptors, sorted, without the one that lists them; with
/// `inheritable_only`, only those without close-on-exec.
pub fn open_fds(inheritable_only: bool) -> Vec<String> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::os::fd::BorrowedFd;

    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.unwrap();
            let target = std::fs::read_link(entry.path()).ok()?;
            let listing_itself = target.starts_with("/proc") && target.ends_with("fd");
            (!listing_itself).then(|| entry.file_name().to_string_lossy().parse().unwrap())
        })
        .filter(|&fd| {
            // SAFETY: F_GETFD only reads flags; should the descriptor have been closed
            // since it was listed, fcntl answers EBADF and it is left out.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            match fcntl(fd, FcntlArg::F_GETFD) {
                Ok(flags) => {
                    !inheritable_only
                        || !FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC)
                }
                Err(_) => false,
            }
        })
        .collect();
    fds.sort();
    fds.iter().map(i32::to_string).collect()
}

/// Prints how the child ended: `code=N` or `signal=N`.
pub fn print_status(status: std::process::ExitStatus) {
    println!("{}", status_text(status));
}

/// How a process ended, as probes print it: `code=N` or `signal=N`.
pub fn status_text(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("code={code}"),
        (None, Some(signal)) => format!("signal={signal}"),
        (None, None) => format!("status={status:?}"),
    }
}

/// The stable name a probe prints for the step an error names (`Error::step`), which tests
/// compare: `change-directory`, `write-uid-map`…; `none` for an error of no step. A step
/// no test compares is printed with its description.
pub fn step_name(step: Option<reexec::Step>) -> String {
    use reexec::Step;
    let name = match step {
        None => "none",
        Some(Step::Clone) => "clone",
        Some(Step::WriteUidMap) => "write-uid-map",
        Some(Step::WriteGidMap) => "write-gid-map",
        Some(Step::ParentSetup) => "parent-setup",
        Some(Step::ChangeDirectory) => "change-directory",
        Some(Step::Exec) => "exec",
        Some(other) => return format!("unnamed: {other}"),
    };
    name.to_owned()
}

/// A value a probe prints that may be missing: the value, or `none`.
pub fn or_none<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "none".to_owned(), |value| value.to_string())
}

/// Becomes the reaper of orphans, starts this binary with `middle_args` as a plain process,
/// SIGKILLs it once it has spawned its sleeper entry, and reports how the orphaned sleeper
/// ended. The middle process must print `child=PID` of a sleeping entry, then wait.
pub fn orphan_harness(middle_args: &[&str]) {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::Pid;
    use std::io::BufRead;

    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let mut middle = std::process::Command::new(std::env::current_exe().unwrap())
        .args(middle_args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(middle.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let sleeper: i32 = line.trim().strip_prefix("child=").unwrap().parse().unwrap();
    middle.kill().unwrap();
    middle.wait().unwrap();
    // A signalled orphan becomes a zombie within milliseconds; one that survived a
    // second is taken as not signalled.
    let is_zombie = || {
        std::fs::read_to_string(format!("/proc/{sleeper}/stat"))
            .map_or(true, |stat| stat.contains(") Z "))
    };
    for _ in 0..50 {
        if is_zombie() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sleeper = Pid::from_raw(sleeper);
    let mut ended = waitpid(sleeper, Some(nix::sys::wait::WaitPidFlag::WNOHANG)).unwrap();
    if ended == WaitStatus::StillAlive {
        println!("orphan_survived=true");
        nix::sys::signal::kill(sleeper, nix::sys::signal::Signal::SIGKILL).unwrap();
        ended = waitpid(sleeper, None).unwrap();
    }
    match ended {
        WaitStatus::Signaled(_, signal, _) => println!("orphan_signal={}", signal as i32),
        WaitStatus::Exited(_, code) => println!("orphan_code={code}"),
        other => println!("orphan_other={other:?}"),
    }
}

/// Runs `command` to completion, killing it (by its pid) if it takes longer than
/// `timeout`; a test that hangs then fails instead of blocking CI.
pub fn output_with_timeout(
    command: &mut std::process::Command,
    timeout: std::time::Duration,
) -> Output {
    use std::process::Stdio;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    // A binary the test just copied can be briefly "busy": a child forked meanwhile by
    // another test's thread holds a copy of the writing descriptor until it execs.
    let mut attempts = 0;
    let child = loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(nix::libc::ETXTBSY) && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other.unwrap(),
        }
    };
    let pid = child.id();
    let (finished, wait) = std::sync::mpsc::channel();
    let watchdog = std::thread::spawn(move || {
        if wait.recv_timeout(timeout).is_err() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            eprintln!("killed pid {pid} after {timeout:?}");
        }
    });
    let output = child.wait_with_output().unwrap();
    let _ = finished.send(());
    watchdog.join().unwrap();
    output
}

/// How a test runs a probe without privilege, or why it can't.
#[derive(Debug)]
pub enum Unprivileged {
    /// Run the probe's copy at this path through `setpriv` as uid and gid 65534.
    Setpriv(TempDir, PathBuf),
    /// The tests already run without privilege: run the probe as it is.
    AlreadyUnprivileged,
}

impl Unprivileged {
    /// Prepares to run `probe` as uid/gid 65534, or says why not (the test prints it and
    /// skips that half).
    pub fn prepare(probe: &str) -> Result<Unprivileged, String> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(Unprivileged::AlreadyUnprivileged);
        }
        if !Path::new("/usr/bin/setpriv").exists() && !Path::new("/bin/setpriv").exists() {
            return Err("setpriv(1) is missing (Debian package util-linux)".into());
        }
        // The build directory may not be readable by uid 65534: run a world-readable copy.
        let dir = TempDir::new("unprivileged");
        let copy = dir.path().join(Path::new(probe).file_name().unwrap());
        copy_executable(Path::new(probe), &copy);
        Ok(Unprivileged::Setpriv(dir, copy))
    }

    /// A command that runs the probe without privilege with `args`.
    pub fn command(&self, probe: &str, args: &[&str]) -> std::process::Command {
        match self {
            Unprivileged::Setpriv(_, copy) => {
                let mut command = std::process::Command::new("setpriv");
                command
                    .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(copy)
                    .args(args)
                    .current_dir("/");
                command
            }
            Unprivileged::AlreadyUnprivileged => {
                let mut command = std::process::Command::new(probe);
                command.args(args);
                command
            }
        }
    }
}

/// Who runs a program typed into a shell, for tests that work through a terminal.
#[derive(Debug)]
pub struct ShellUser {
    /// "root", "unprivileged" (the tests' own user isn't root) or "uid 65534".
    pub label: &'static str,
    /// The words that go before a program to run it as this user: empty, or `setpriv …`.
    pub prefix: String,
    /// The program: itself, or a copy that uid 65534 can read.
    pub program: String,
    _copy: Option<Unprivileged>,
}

impl ShellUser {
    /// The prefix and the program, as one would type them.
    pub fn command(&self) -> String {
        format!("{}{}", self.prefix, self.program)
    }
}

/// [`as_root_and_unprivileged`] for programs typed into a shell: `check` gets the words
/// that run `program` as the tests' user and, when that is root and running without
/// privilege works here, as uid and gid 65534. A run that can't happen is skipped with
/// the reason printed. Paths must need no quoting.
pub fn in_shell_as_root_and_unprivileged(program: &str, check: impl Fn(&ShellUser)) {
    check(&ShellUser {
        label: if is_root() { "root" } else { "unprivileged" },
        prefix: String::new(),
        program: program.to_owned(),
        _copy: None,
    });
    if !is_root() {
        println!("skipped the second run: the tests run unprivileged already");
        return;
    }
    match Unprivileged::prepare(program) {
        Ok(unprivileged) => {
            let Unprivileged::Setpriv(_, copy) = &unprivileged else {
                unreachable!("root prepares a copy for setpriv")
            };
            check(&ShellUser {
                label: "uid 65534",
                prefix: "setpriv --reuid=65534 --regid=65534 --clear-groups ".into(),
                program: copy.display().to_string(),
                _copy: Some(unprivileged),
            });
        }
        Err(reason) => println!("skipped the unprivileged run: {reason}"),
    }
}

/// A tmux server on a socket of the test's own, killed when the test ends — also when
/// an assertion fails, so no server, shell or program outlives the test. It reads no
/// configuration file; each session has one window with one pane, and the methods below
/// act on the newest session.
#[derive(Debug)]
pub struct TmuxServer {
    dir: TempDir,
    sessions: std::cell::Cell<usize>,
}

impl TmuxServer {
    /// A server, running until dropped; `Err` says why tmux can't be used.
    pub fn new() -> Result<TmuxServer, String> {
        match std::process::Command::new("tmux").arg("-V").output() {
            Ok(output) if output.status.success() => {
                let server = TmuxServer {
                    dir: TempDir::new("tmux"),
                    sessions: std::cell::Cell::new(0),
                };
                // Left to itself, the server exits with its last session, and a session
                // started at that moment is lost with it; and a pane whose command ended
                // would be gone with what it showed.
                server.run(&[
                    "start-server",
                    ";",
                    "set-option",
                    "-g",
                    "exit-empty",
                    "off",
                    ";",
                    "set-option",
                    "-g",
                    "remain-on-exit",
                    "on",
                ]);
                Ok(server)
            }
            _ => Err("tmux is not installed (Debian package tmux)".into()),
        }
    }

    /// Runs `tmux args` against this server; returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let output = std::process::Command::new("tmux")
            .arg("-f")
            .arg("/dev/null")
            .arg("-S")
            .arg(self.dir.path().join("socket"))
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The newest session's name: tmux, left to choose, may pick one that is ending.
    fn target(&self) -> String {
        format!("s{}", self.sessions.get())
    }

    /// Starts a detached session of 120×30 in `dir`, running `command` through the
    /// default shell.
    pub fn start(&self, dir: &Path, command: &str) {
        self.sessions.set(self.sessions.get() + 1);
        let dir = dir.to_str().unwrap();
        let name = self.target();
        self.run(&[
            "new-session",
            "-d",
            "-s",
            &name,
            "-x",
            "120",
            "-y",
            "30",
            "-c",
            dir,
            command,
        ]);
    }

    /// What the pane shows now.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.target()])
    }

    /// Whether `needle` appears on screen within 5 s.
    pub fn shows(&self, needle: &str) -> bool {
        for _ in 0..100 {
            if self.screen().contains(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }

    /// Waits until `needle` appears on screen; panics with the screen if it doesn't
    /// within 5 s.
    pub fn expect(&self, needle: &str) {
        assert!(
            self.shows(needle),
            "expected {needle:?} on screen:\n{}",
            self.screen()
        );
    }

    /// Types `text` as it is (no key names), then Enter.
    pub fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", &self.target(), "-l", text]);
        self.keys("Enter");
    }

    /// Presses a key tmux names: `C-c`, `Enter`…
    pub fn keys(&self, key: &str) {
        self.run(&["send-keys", "-t", &self.target(), key]);
    }

    /// Resizes the window, and so the pane's terminal.
    pub fn resize(&self, columns: u16, rows: u16) {
        let (columns, rows) = (columns.to_string(), rows.to_string());
        self.run(&[
            "resize-window",
            "-t",
            &self.target(),
            "-x",
            &columns,
            "-y",
            &rows,
        ]);
    }

    fn display(&self, format: &str) -> String {
        self.run(&["display-message", "-p", "-t", &self.target(), format])
            .trim()
            .to_owned()
    }

    /// The pane's terminal, as a path: `/dev/pts/N`.
    pub fn pane_tty(&self) -> String {
        self.display("#{pane_tty}")
    }

    /// The pane's size as `stty size` prints it: rows, a space, columns.
    pub fn pane_size(&self) -> String {
        self.display("#{pane_height} #{pane_width}")
    }

    /// Starts a session that runs `command` between two `stty -a` of its terminal,
    /// recording in `dir` those settings, the command's pid and its exit status.
    pub fn run_recorded(&self, dir: &Path, command: &str) -> RecordedRun {
        let script = dir.join("run.sh");
        // The subshell prints its own pid through a child's $PPID, then becomes the
        // command; `status` appears last, whole.
        std::fs::write(
            &script,
            format!(
                "stty -a > before\n\
                 (sh -c 'echo $PPID' > pid; exec {command})\n\
                 echo $? > status.new\n\
                 stty -a > after\n\
                 mv status.new status\n"
            ),
        )
        .unwrap();
        self.start(dir, &format!("sh {}", script.display()));
        RecordedRun(dir.to_owned())
    }
}

impl Drop for TmuxServer {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// A command run by [`TmuxServer::run_recorded`].
#[derive(Debug)]
pub struct RecordedRun(PathBuf);

impl RecordedRun {
    /// The command's pid, once it has started.
    pub fn pid(&self) -> i32 {
        wait_for_file(&self.0.join("pid")).trim().parse().unwrap()
    }

    /// Its exit status, once it has ended (60 s at most).
    pub fn status(&self) -> i32 {
        wait_for_file(&self.0.join("status"))
            .trim()
            .parse()
            .unwrap()
    }

    /// The terminal's settings (`stty -a`) before the command, and after it; without
    /// the window size, which is no setting and a test may change.
    pub fn settings(&self) -> (String, String) {
        let read = |name| {
            std::fs::read_to_string(self.0.join(name))
                .unwrap()
                .split("; ")
                .filter(|part| !part.starts_with("rows ") && !part.starts_with("columns "))
                .collect::<Vec<_>>()
                .join("; ")
        };
        (read("before"), read("after"))
    }
}

/// The content of `path` once it exists and is not empty; panics after 60 s.
pub fn wait_for_file(path: &Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match std::fs::read_to_string(path) {
            Ok(text) if !text.is_empty() => return text,
            _ if std::time::Instant::now() > deadline => {
                panic!("{} did not appear within 60 s", path.display())
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(20)),
        }
    }
}

/// The settings of the terminal at `path` (`stty -a`), read from outside it.
pub fn terminal_settings(path: &str) -> String {
    let output = std::process::Command::new("stty")
        .args(["-a", "-F", path])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "stty -F {path}: {}",
        describe(&output)
    );
    stdout_text(&output)
}

/// Whether the terminal's settings say raw mode: no line editing, echo or signal keys.
pub fn is_raw(settings: &str) -> bool {
    ["-icanon", "-echo", "-isig"]
        .iter()
        .all(|flag| settings.split_whitespace().any(|word| word == *flag))
}

/// Whether the tests run as root (as they do in CI).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A process's stdout as text.
pub fn stdout_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A process's stderr as text.
pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `program` with `args` as the test's own user and, when that is root and running
/// without privilege works here, once more as uid and gid 65534; `check` gets each output
/// with a label: "root", "unprivileged" (the tests' own user isn't root) or "uid 65534".
/// A run that can't happen is skipped with the reason printed.
pub fn as_root_and_unprivileged(
    program: &str,
    timeout: std::time::Duration,
    args: &[&str],
    check: impl Fn(&str, &Output),
) {
    let label = if is_root() { "root" } else { "unprivileged" };
    check(
        label,
        &output_with_timeout(std::process::Command::new(program).args(args), timeout),
    );
    if !is_root() {
        println!("skipped the second run: the tests run unprivileged already");
        return;
    }
    match Unprivileged::prepare(program) {
        Ok(unprivileged) => check(
            "uid 65534",
            &output_with_timeout(&mut unprivileged.command(program, args), timeout),
        ),
        Err(reason) => println!("skipped the unprivileged run: {reason}"),
    }
}

/// Copies an executable in a separate `cp` process. Copied in this process, the file's
/// writing descriptor could be inherited by a child that another test's thread forks at
/// that moment, and executing the copy would fail with ETXTBSY until that child execs.
pub fn copy_executable(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp {} {} failed",
        from.display(),
        to.display()
    );
}

/// Runs `program` with `args` and checks it was refused: exit status `code`, `expected`
/// in its stderr, and this process's mount table the same as before.
pub fn assert_refused(program: &str, args: &[&str], code: i32, expected: &str) {
    let mount_table = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let before = mount_table();
    let output = output_with_timeout(
        std::process::Command::new(program).args(args),
        std::time::Duration::from_secs(60),
    );
    assert_eq!(
        output.status.code(),
        Some(code),
        "{args:?}: {}",
        describe(&output)
    );
    assert!(
        stderr_text(&output).contains(expected),
        "{args:?}: expected {expected:?} in: {}",
        describe(&output)
    );
    assert_eq!(before, mount_table(), "{args:?} left a mount behind");
}

/// Starts `command` with stdout piped and waits until its first line, which must be
/// `ready`: the moment a test may act on a command that is up and running.
pub fn spawn_until_ready(command: &mut std::process::Command) -> std::process::Child {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n", "the command's first line");
    child
}

/// The project's `scripts/make-rootfs`.
pub const MAKE_ROOTFS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/make-rootfs");

/// A busybox root filesystem built by `scripts/make-rootfs` once per test binary, in
/// `target_tmpdir` (the test's `env!("CARGO_TARGET_TMPDIR")`); `Err` says why there is
/// none. make-rootfs builds only in a directory it creates, so what a previous run of the
/// same binary left there is removed first.
pub fn busybox_rootfs(target_tmpdir: &str) -> Result<&'static Path, String> {
    static ROOTFS: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let binary = std::env::current_exe().map_err(|error| error.to_string())?;
            let name = binary.file_name().unwrap().to_string_lossy();
            let dir = Path::new(target_tmpdir).join(format!("busybox-rootfs-{name}"));
            match std::fs::remove_dir_all(&dir) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("removing {}: {error}", dir.display()));
                }
                _ => {}
            }
            let output = std::process::Command::new("bash")
                .arg(MAKE_ROOTFS)
                .arg(&dir)
                .output()
                .map_err(|error| error.to_string())?;
            if output.status.success() {
                Ok(dir)
            } else {
                Err(format!(
                    "scripts/make-rootfs failed: {}",
                    stderr_text(&output)
                ))
            }
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

/// The argument a [`filter_syscall`] filter compares: the low 32 bits of argument `index`,
/// masked with `mask`, against `value`.
#[derive(Clone, Copy, Debug)]
pub struct SyscallArg {
    /// Which argument, from 0.
    pub index: usize,
    /// The bits compared.
    pub mask: u32,
    /// What they must equal.
    pub value: u32,
}

/// Installs a seccomp filter (seccomp(2)) on the calling thread only: system call `number`
/// — when `arg` is given, only with that argument — gets `action` (`SECCOMP_RET_TRAP`,
/// `SECCOMP_RET_ERRNO | errno`, …); every other call runs. The thread's children inherit
/// it. Sets `no_new_privs`, which an unprivileged filter needs. Fails where this kernel
/// or the surrounding sandbox refuses filters: the test then skips with the reason.
pub fn filter_syscall(number: i64, arg: Option<SyscallArg>, action: u32) -> Result<(), String> {
    use nix::libc;

    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;
    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump_if_equal = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let allow = libc::SECCOMP_RET_ALLOW;
    let compare_arg = match arg {
        None => Vec::new(),
        Some(SyscallArg { index, mask, value }) => vec![
            // The low half of a 64-bit argument: both architectures are little-endian.
            statement(
                load,
                (std::mem::offset_of!(libc::seccomp_data, args) + 8 * index) as u32,
            ),
            statement(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K, mask),
            jump_if_equal(value, 0, 1),
        ],
    };
    let mut filter = vec![
        statement(load, std::mem::offset_of!(libc::seccomp_data, arch) as u32),
        jump_if_equal(AUDIT_ARCH, 1, 0),
        statement(libc::BPF_RET | libc::BPF_K, allow),
        statement(load, std::mem::offset_of!(libc::seccomp_data, nr) as u32),
        // Another call: jump over the argument's comparison and the action, to allow.
        jump_if_equal(number as u32, 0, compare_arg.len() as u8 + 1),
    ];
    filter.extend(compare_arg);
    filter.push(statement(libc::BPF_RET | libc::BPF_K, action));
    filter.push(statement(libc::BPF_RET | libc::BPF_K, allow));
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with numbers only (no_new_privs), then with a pointer to `program`,
    // which points into `filter`; the kernel copies both during the call.
    let installed = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
            && libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &program as *const libc::sock_fprog,
            ) == 0
    };
    if !installed {
        return Err(std::io::Error::last_os_error().to_string());
    }
    Ok(())
}
