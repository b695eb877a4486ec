//! Tests that need a terminal: a tmux server of the test's own, what its panes show, and the
//! settings of a terminal.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::output::{describe, stdout_text};
use crate::run::{TestUser, temp_dir, world_writable_dir};

/// Runs `check` for each of [`TestUser::all`] with a tmux server of its own and a directory
/// anyone may write in (uid 65534 writes there too), both gone when `check` returns. `check`
/// types [`TestUser::command_line`] (or [`TestUser::prefix`] before another program) into
/// the server's shells. Where tmux is missing, nothing runs and the reason is printed.
pub fn in_terminal_as_root_and_unprivileged(
    program: &str,
    check: impl Fn(&TestUser, &TmuxServer, &Path),
) {
    if let Err(reason) = tmux_available() {
        println!("skipped: {reason}");
        return;
    }
    for user in TestUser::all(program) {
        let server = TmuxServer::new().unwrap();
        let work = world_writable_dir("terminal");
        check(&user, &server, work.path());
    }
}

/// `Err` says why tmux can't be used here.
fn tmux_available() -> Result<(), String> {
    match std::process::Command::new("tmux").arg("-V").output() {
        Ok(output) if output.status.success() => Ok(()),
        _ => Err("tmux is not installed (Debian package tmux)".into()),
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
        tmux_available()?;
        let server = TmuxServer {
            dir: temp_dir("tmux"),
            sessions: std::cell::Cell::new(0),
        };
        // Left to itself, the server exits with its last session, and a session started at
        // that moment is lost with it; and a pane whose command ended would be gone with
        // what it showed.
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
        stdout_text(&output)
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

    /// Whether `needle` appears on screen within 60 s: tmux draws what a pane's program
    /// wrote on its own time, and on a loaded machine 30,000 lines take it tens of
    /// seconds (20 s were seen to end at line 29,443 while six builds shared two CPUs).
    /// Only a failing test waits that long.
    pub fn shows(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if self.screen().contains(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.screen().contains(needle)
    }

    /// Waits until `needle` appears on screen; panics with the screen if it doesn't
    /// within 60 s.
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

    /// Asserts that the command left the terminal's settings as it found them.
    pub fn assert_settings_restored(&self, context: &str) {
        let (before, after) = self.settings();
        assert_eq!(
            before, after,
            "{context}: the terminal's settings were not restored"
        );
    }

    /// The terminal's settings (`stty -a`) before the command, and after it; without
    /// the window size, which is no setting and a test may change.
    fn settings(&self) -> (String, String) {
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
