//! One spawn of each kind, checked: what the load, EINTR and fd-hygiene modes mix.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use reexec::{Command, Stdio};
use reexec_tests::SEED_NAMESPACES;

/// The kinds of spawn the load, EINTR and fd modes mix.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    /// No namespace, `status()`: the vfork path.
    Plain,
    /// `SEED_NAMESPACES` with root mapped to the caller, `status()`: the child waits for
    /// its maps, and is PID 1 of its namespace.
    Namespaced,
    /// No namespace, a `parent_setup` hook, stdout piped: the child waits for the hook.
    PlainHook,
    /// SEED, maps, a hook and piped stdout.
    NamespacedHook,
    /// No namespace, stdin, stdout and stderr piped through `cat`.
    PlainPiped,
    /// SEED, maps, and all three piped through `cat`.
    NamespacedPiped,
}

pub(crate) const KINDS: [Kind; 6] = [
    Kind::Plain,
    Kind::Namespaced,
    Kind::PlainHook,
    Kind::NamespacedHook,
    Kind::PlainPiped,
    Kind::NamespacedPiped,
];

impl Kind {
    fn namespaced(self) -> bool {
        matches!(
            self,
            Kind::Namespaced | Kind::NamespacedHook | Kind::NamespacedPiped
        )
    }

    pub(crate) fn command(self, entry: &str) -> Command {
        let mut command = Command::new(entry);
        if self.namespaced() {
            command.namespaces(SEED_NAMESPACES).map_root_to_caller();
        }
        command
    }
}

/// What a hook does besides recording the pid it was given.
pub(crate) type HookExtra = Arc<dyn Fn(u32) -> std::io::Result<()> + Send + Sync>;

/// Spawns one child of `kind` and checks everything it can about the result: the exit
/// status (each spawn has its own), what the child printed, the pid the hook saw.
pub(crate) fn spawn_one(
    kind: Kind,
    tag: &str,
    code: u8,
    hook: Option<HookExtra>,
) -> Result<(), String> {
    let wrong = |what: String| Err(format!("{tag} {kind:?}: {what}"));
    match kind {
        Kind::Plain | Kind::Namespaced => {
            let status = kind
                .command("exit-with")
                .args([code.to_string().as_str(), tag])
                .stdout(Stdio::null())
                .status();
            match status {
                Ok(status) if status.code() == Some(i32::from(code)) => Ok(()),
                other => wrong(format!("expected code {code}, got {other:?}")),
            }
        }
        Kind::PlainHook | Kind::NamespacedHook => {
            let seen = Arc::new(AtomicI32::new(0));
            let hook_seen = Arc::clone(&seen);
            let mut command = kind.command("exit-with");
            command
                .args([code.to_string().as_str(), tag])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .parent_setup(move |pid| {
                    hook_seen.store(pid as i32, Ordering::Relaxed);
                    hook.as_ref().map_or(Ok(()), |extra| extra(pid))
                });
            let child = command
                .spawn()
                .map_err(|error| format!("{tag} {kind:?}: {error}"))?;
            let pid = child.id() as i32;
            let output = child
                .wait_with_output()
                .map_err(|error| format!("{tag} {kind:?}: {error}"))?;
            let stdout = String::from_utf8_lossy(&output.stdout);
            let expected_pid = if kind.namespaced() {
                "pid=1".to_owned()
            } else {
                format!("pid={pid}")
            };
            if output.status.code() != Some(i32::from(code))
                || !stdout.lines().any(|line| line == format!("token={tag}"))
                || !stdout.lines().any(|line| line == expected_pid)
                || seen.load(Ordering::Relaxed) != pid
            {
                return wrong(format!(
                    "expected code {code}, token {tag}, {expected_pid}, hook pid {pid}; got \
                     {:?}, stdout {stdout:?}, stderr {:?}, hook pid {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr),
                    seen.load(Ordering::Relaxed)
                ));
            }
            Ok(())
        }
        Kind::PlainPiped | Kind::NamespacedPiped => {
            let mut child = kind
                .command("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|error| format!("{tag} {kind:?}: {error}"))?;
            let text = format!("through the pipe: {tag}\n");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .map_err(|error| format!("{tag} {kind:?}: writing stdin: {error}"))?;
            let output = child
                .wait_with_output()
                .map_err(|error| format!("{tag} {kind:?}: {error}"))?;
            if output.status.code() != Some(0) || output.stdout != text.as_bytes() {
                return wrong(format!(
                    "expected code 0 and {text:?}, got {:?}, {:?}, stderr {:?}",
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(())
        }
    }
}

/// The exit status each spawn expects: different for neighbours, never 0.
pub(crate) fn code_for(thread: usize, round: usize) -> u8 {
    1 + ((thread * 131 + round * 7) % 200) as u8
}
