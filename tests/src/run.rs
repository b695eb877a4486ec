//! Running a program from a test: with a timeout, until it is ready, and as each user a
//! test runs as — the tests' own (root in CI) and uid/gid 65534.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;

use crate::output::{assert_exit_code, assert_failed_with, stdout_text};
use crate::procfs::mount_table;

/// Whether the tests run as root (as they do in CI).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A new, empty directory under the system's temporary directory, whose name contains
/// `label`, readable and searchable by everyone (mode 755, as a directory made by hand
/// is): uid 65534 may run what a test puts there. Removed with its content on drop.
pub fn temp_dir(label: &str) -> TempDir {
    dir_with_mode(label, 0o755)
}

/// Like [`temp_dir`], but anyone may create files in it (mode 777): for what a test runs as
/// uid 65534.
pub fn world_writable_dir(label: &str) -> TempDir {
    dir_with_mode(label, 0o777)
}

/// The group [`file_denied_to_group`] denies.
pub const DENIED_GROUP: u32 = 4242;

/// A file holding `content` in a new [`temp_dir`], that only "others" may read: owned by
/// uid 1234 and group [`DENIED_GROUP`], mode 604. A process in that group is denied, and
/// the same process without the group let in: the trap for a process that may shed its
/// supplementary groups. Neither id is anyone's here. Needs root (chown).
pub fn file_denied_to_group(label: &str, content: &str) -> (TempDir, PathBuf) {
    let dir = temp_dir(label);
    let file = dir.path().join("denied-to-group");
    std::fs::write(&file, content).unwrap();
    nix::unistd::chown(&file, Some(1234.into()), Some(DENIED_GROUP.into())).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o604)).unwrap();
    (dir, file)
}

/// `program` run as a member of [`DENIED_GROUP`] and of no other supplementary group
/// (`setpriv --groups`), from `/`; add its arguments.
pub fn in_denied_group(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--groups={DENIED_GROUP}"))
        .arg(program)
        .current_dir("/");
    command
}

fn dir_with_mode(label: &str, mode: u32) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("reexec-{label}-"))
        .tempdir()
        .unwrap();
    // Set after creating, as the umask would take bits away from a mode given to mkdir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
    dir
}

/// Runs `command` to completion, killing it (by its pid) if it takes longer than
/// `timeout`; a test that hangs then fails instead of blocking CI.
pub fn output_with_timeout(command: &mut Command, timeout: Duration) -> Output {
    use std::process::Stdio;
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    // A binary the test just copied can be briefly "busy": a child forked meanwhile by
    // another test's thread holds a copy of the writing descriptor until it execs.
    let mut attempts = 0;
    let child = loop {
        match command.spawn() {
            Err(error) if error.raw_os_error() == Some(nix::libc::ETXTBSY) && attempts < 100 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(10));
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

/// Starts `command` with stdout piped and waits until its first line, which must be
/// `ready`: the moment a test may act on a command that is up and running.
pub fn spawn_until_ready(command: &mut Command) -> std::process::Child {
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(
        first_line(&mut child),
        "ready\n",
        "the command's first line"
    );
    child
}

/// The first line `child` writes to its piped stdout, with its newline; the rest of its
/// output is not read.
pub fn first_line(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line
}

/// Copies an executable in a separate `cp` process. Copied in this process, the file's
/// writing descriptor could be inherited by a child that another test's thread forks at
/// that moment, and executing the copy would fail with ETXTBSY until that child execs.
pub fn copy_executable(from: &Path, to: &Path) {
    let status = Command::new("cp").arg(from).arg(to).status().unwrap();
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
    let before = mount_table();
    let output = output_with_timeout(Command::new(program).args(args), Duration::from_secs(60));
    assert_failed_with(&format!("{args:?}"), &output, code, &[expected]);
    assert_eq!(before, mount_table(), "{args:?} left a mount behind");
}

/// The words that run a program as uid and gid 65534, without supplementary groups.
const SETPRIV: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

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
        if !is_root() {
            return Ok(Unprivileged::AlreadyUnprivileged);
        }
        if !Path::new("/usr/bin/setpriv").exists() && !Path::new("/bin/setpriv").exists() {
            return Err("setpriv(1) is missing (Debian package util-linux)".into());
        }
        // The build directory may not be readable by uid 65534: run a world-readable copy.
        let dir = temp_dir("unprivileged");
        let copy = dir.path().join(Path::new(probe).file_name().unwrap());
        copy_executable(Path::new(probe), &copy);
        Ok(Unprivileged::Setpriv(dir, copy))
    }

    /// A command that runs the probe without privilege with `args`.
    pub fn command(&self, probe: &str, args: &[&str]) -> Command {
        match self {
            Unprivileged::Setpriv(_, copy) => {
                let mut command = setpriv(copy);
                command.args(args);
                command
            }
            Unprivileged::AlreadyUnprivileged => {
                let mut command = Command::new(probe);
                command.args(args);
                command
            }
        }
    }
}

/// Files of subordinate ids for uid 65534, seen only by the commands
/// [`SubordinateIdFiles::command`] makes: copies bound over `/etc/subuid` and `/etc/subgid` in
/// a mount namespace of their own (`unshare --mount`), where `newuidmap` and `newgidmap`
/// read them. The host's files stay as they are. Needs root.
#[derive(Debug)]
pub struct SubordinateIdFiles {
    dir: TempDir,
}

impl SubordinateIdFiles {
    /// Both files holding `lines` (subuid(5): `nobody:200000:65536`, or nothing for no
    /// range); `Err` says why the test can't run here.
    pub fn with(lines: &str) -> Result<SubordinateIdFiles, String> {
        if !is_root() {
            return Err("binding files over /etc/subuid needs root".into());
        }
        for file in ["/etc/subuid", "/etc/subgid"] {
            if !Path::new(file).is_file() {
                return Err(format!("{file} is missing: nothing to bind a copy over"));
            }
        }
        let dir = temp_dir("subordinate-ids");
        for name in ["subuid", "subgid"] {
            std::fs::write(dir.path().join(name), lines).unwrap();
        }
        Ok(SubordinateIdFiles { dir })
    }

    /// `program` run as uid and gid 65534, also in the supplementary `groups` (none when
    /// empty), from `/`, with these files; add its arguments.
    pub fn command(&self, groups: &[u32], program: impl AsRef<OsStr>) -> Command {
        let groups = if groups.is_empty() {
            "--clear-groups".to_owned()
        } else {
            let list: Vec<String> = groups.iter().map(u32::to_string).collect();
            format!("--groups={}", list.join(","))
        };
        let mut command = Command::new("unshare");
        command
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(
                r#"mount --bind "$1" /etc/subuid && mount --bind "$2" /etc/subgid && shift 2 && exec setpriv --reuid=65534 --regid=65534 "$@""#,
            )
            .arg("sh")
            .arg(self.dir.path().join("subuid"))
            .arg(self.dir.path().join("subgid"))
            .arg(groups)
            .arg(program)
            .current_dir("/");
        command
    }
}

/// `program` run as uid and gid 65534, from `/`, which every user may enter.
fn setpriv(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(SETPRIV[0]);
    command.args(&SETPRIV[1..]).arg(program).current_dir("/");
    command
}

/// One of the users a test runs a program as: the tests' own ("root", or "unprivileged"
/// where the tests don't run as root), or "uid 65534", who runs a world-readable copy of
/// the program through `setpriv`.
#[derive(Debug)]
pub struct TestUser {
    label: &'static str,
    program: PathBuf,
    /// Holds the copy for uid 65534.
    setpriv: Option<Unprivileged>,
}

impl TestUser {
    /// The users to run `program` as: the tests' own and, when that is root and running
    /// without privilege works here, uid and gid 65534. Prints why a run is left out.
    ///
    /// ```no_run
    /// for user in reexec_tests::TestUser::all("/bin/true") {
    ///     let status = user.command().status().unwrap();
    ///     assert!(status.success(), "{}", user.label());
    /// }
    /// ```
    pub fn all(program: &str) -> Vec<TestUser> {
        let own = TestUser {
            label: if is_root() { "root" } else { "unprivileged" },
            program: program.into(),
            setpriv: None,
        };
        if !is_root() {
            println!("skipped the second run: the tests run unprivileged already");
            return vec![own];
        }
        match TestUser::unprivileged(program) {
            Ok(unprivileged) => vec![own, unprivileged],
            Err(reason) => {
                println!("skipped the unprivileged run: {reason}");
                vec![own]
            }
        }
    }

    /// A user without privilege: uid 65534 where the tests run as root, else the tests'
    /// own; `Err` says why there is none.
    pub fn unprivileged(program: &str) -> Result<TestUser, String> {
        Ok(match Unprivileged::prepare(program)? {
            Unprivileged::AlreadyUnprivileged => TestUser {
                label: "unprivileged",
                program: program.into(),
                setpriv: None,
            },
            Unprivileged::Setpriv(dir, copy) => TestUser {
                label: "uid 65534",
                program: copy.clone(),
                setpriv: Some(Unprivileged::Setpriv(dir, copy)),
            },
        })
    }

    /// "root", "unprivileged" (the tests' own user, not root) or "uid 65534".
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// Whether this user is root.
    pub fn is_root(&self) -> bool {
        self.label == "root"
    }

    /// The user's uid and gid.
    pub fn ids(&self) -> (u32, u32) {
        if self.setpriv.is_some() {
            (65534, 65534)
        } else {
            (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            )
        }
    }

    /// The program: the one given, or the copy uid 65534 can read.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// A command that runs the program as this user; add its arguments.
    pub fn command(&self) -> Command {
        self.command_of(&self.program)
    }

    /// A command that runs `program` — another one, such as a shell given
    /// [`TestUser::program`] as an argument — as this user.
    pub fn command_of(&self, program: impl AsRef<OsStr>) -> Command {
        match self.setpriv {
            Some(_) => setpriv(program),
            None => Command::new(program),
        }
    }

    /// The words typed before a program in a shell to run it as this user: empty, or
    /// `setpriv …` and a space.
    pub fn prefix(&self) -> String {
        match self.setpriv {
            Some(_) => format!("{} ", SETPRIV.join(" ")),
            None => String::new(),
        }
    }

    /// The program run as this user, as one would type it into a shell. Paths must need
    /// no quoting.
    pub fn command_line(&self) -> String {
        format!("{}{}", self.prefix(), self.program.display())
    }
}

/// Runs `program` with `args` as each of [`TestUser::all`] — the test's own user and, when
/// that is root and running without privilege works here, uid and gid 65534; `check` gets
/// each output with the user's label. A run that can't happen is skipped with the reason
/// printed.
pub fn as_root_and_unprivileged(
    program: &str,
    timeout: Duration,
    args: &[&str],
    check: impl Fn(&str, &Output),
) {
    for user in TestUser::all(program) {
        check(
            user.label(),
            &output_with_timeout(user.command().args(args), timeout),
        );
    }
}

/// [`as_root_and_unprivileged`] for a program that must succeed: checks that each run
/// exited with 0, and gives `check` the user's label and what the run wrote on stdout.
pub fn succeeds_as_root_and_unprivileged(
    program: &str,
    timeout: Duration,
    args: &[&str],
    check: impl Fn(&str, &str),
) {
    as_root_and_unprivileged(program, timeout, args, |label, output| {
        assert_exit_code(label, output, 0);
        check(label, &stdout_text(output));
    });
}
