//! OCI hooks: `createRuntime`, `createContainer`, `startContainer`, `poststart`,
//! `poststop`, each given the container's state on stdin.
//!
//! Where each runs, as runtime-spec says: `createRuntime` (with the deprecated
//! `prestart` before it), `poststart` and `poststop` in the runtime's namespaces, from
//! `create`, `start` and `delete`; `createContainer` in the container's namespaces before
//! the pivot into its root (its path the runtime's), and `startContainer` in the
//! container just before its command is run (its path the container's): those two are
//! run by the container's init, which learns the bundle and the id from
//! `--internal-runtime-bundle` and `--internal-runtime-id`.
//!
//! A hook that fails (non-zero exit, killed, or past its `timeout`, after which it is
//! killed with its process group) fails the operation, naming the hook and its exit and
//! output; a `poststart` or `poststop` hook that fails is a warning only, as the spec asks.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use oci_spec::runtime::{ContainerState, Hook, Hooks, Spec, State};
use serde::Deserialize;

/// How much of a failed hook's output goes into the error.
const OUTPUT_SHOWN: usize = 2000;

/// The moments of a container's life that have hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// The runtime's kinds are run by create/start/delete (life16) once they land.
pub(crate) enum Kind {
    /// In `create`, once the container's namespaces exist, before its init pivots (with
    /// the deprecated `prestart` hooks first); in the runtime's namespaces.
    CreateRuntime,
    /// In the container's namespaces before the pivot, run by its init.
    CreateContainer,
    /// In the container, once `start` is asked, before its command: run by its init.
    StartContainer,
    /// In `start`, once the command runs; a failure is a warning.
    Poststart,
    /// In `delete`; a failure is a warning.
    Poststop,
}

impl Kind {
    /// The field of `hooks` in `config.json`.
    pub(crate) fn field(self) -> &'static str {
        match self {
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    /// Whether a failure fails the operation, or is only a warning.
    fn fatal(self) -> bool {
        !matches!(self, Kind::Poststart | Kind::Poststop)
    }

    /// The hooks of this kind, in order, of `config.json`'s `hooks`.
    fn hooks(self, hooks: Option<&Hooks>) -> Vec<(&'static str, &Hook)> {
        fn list<'a>(
            field: &'static str,
            hooks: &'a Option<Vec<Hook>>,
        ) -> Vec<(&'static str, &'a Hook)> {
            hooks.iter().flatten().map(|hook| (field, hook)).collect()
        }
        let Some(hooks) = hooks else {
            return Vec::new();
        };
        match self {
            Kind::CreateRuntime => {
                #[allow(deprecated)]
                let mut all = list("prestart", hooks.prestart());
                all.extend(list("createRuntime", hooks.create_runtime()));
                all
            }
            Kind::CreateContainer => list("createContainer", hooks.create_container()),
            Kind::StartContainer => list("startContainer", hooks.start_container()),
            Kind::Poststart => list("poststart", hooks.poststart()),
            Kind::Poststop => list("poststop", hooks.poststop()),
        }
    }
}

/// Runs the hooks of `kind` in order, each with `state` as JSON on its stdin. The first
/// that fails ends the run with an error naming it, for the kinds whose failure fails the
/// operation; for `poststart` and `poststop` a failure is written to stderr as a warning
/// and the next hook runs.
pub(crate) fn run(spec: &Spec, kind: Kind, state: &State) -> Result<(), String> {
    run_of(spec.hooks().as_ref(), kind, state)
}

/// [`run`] with only `config.json`'s `hooks`, as the init has them.
fn run_of(hooks: Option<&Hooks>, kind: Kind, state: &State) -> Result<(), String> {
    let hooks = kind.hooks(hooks);
    if hooks.is_empty() {
        return Ok(());
    }
    let json = serde_json::to_vec(state)
        .map_err(|error| format!("the container's state as JSON for the hooks: {error}"))?;
    for (index, (field, hook)) in hooks.iter().enumerate() {
        if let Err(why) = run_one(hook, &json) {
            let message = format!("hooks.{field}[{index}] ({}): {why}", hook.path().display());
            if kind.fatal() {
                return Err(message);
            }
            eprintln!("ns-runtime: warning: {message}");
        }
    }
    Ok(())
}

/// Runs one hook to its end, or to its timeout; `Err` says how it failed, with its output.
fn run_one(hook: &Hook, state: &[u8]) -> Result<(), String> {
    let timeout = match hook.timeout() {
        None => None,
        Some(seconds) if seconds > 0 => Some(Duration::from_secs(seconds as u64)),
        Some(seconds) => {
            return Err(format!(
                "timeout {seconds}: a hook's timeout is a number of seconds above 0"
            ));
        }
    };
    let mut command = Command::new(hook.path());
    // args[0] is what the hook sees as its name, as execve's argv.
    if let Some((name, args)) = hook.args().as_ref().and_then(|args| args.split_first()) {
        command.arg0(name).args(args);
    }
    // Its `env` exactly; without one, the runtime's own, as runc does.
    if let Some(env) = hook.env() {
        command.env_clear();
        for variable in env {
            let (key, value) = variable.split_once('=').unwrap_or((variable, ""));
            command.env(key, value);
        }
    }
    // Its output in a file, not a pipe: a process the hook leaves behind holding the
    // pipe would keep the runtime waiting for an end of file.
    let output = unlinked_file().map_err(|error| format!("a file for its output: {error}"))?;
    let output_copy = output
        .try_clone()
        .map_err(|error| format!("a file for its output: {error}"))?;
    command
        .stdin(Stdio::piped())
        .stdout(output_copy)
        .stderr(output.try_clone().map_err(|e| e.to_string())?)
        // Its own process group: a timeout kills what it started too.
        .process_group(0);
    let mut child = command.spawn().map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => {
            "not found: a hook's path is absolute, and resolves where the hook runs".to_owned()
        }
        _ => format!("could not be started: {error}"),
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its state is fine: the state is a few hundred bytes.
        let _ = stdin.write_all(state);
    }
    let status = wait(&mut child, timeout);
    let shown = tail(output);
    match status {
        Waited::Exited(status) if status.success() => Ok(()),
        Waited::Exited(status) => Err(format!("{}{shown}", describe(status))),
        Waited::TimedOut(after) => Err(format!(
            "still running after its timeout of {}s: killed{shown}",
            after.as_secs()
        )),
        Waited::Failed(error) => Err(format!("waiting for it: {error}")),
    }
}

enum Waited {
    Exited(ExitStatus),
    TimedOut(Duration),
    Failed(std::io::Error),
}

/// Waits for `child` until `timeout`, after which its process group is killed.
fn wait(child: &mut std::process::Child, timeout: Option<Duration>) -> Waited {
    let Some(timeout) = timeout else {
        return child.wait().map_or_else(Waited::Failed, Waited::Exited);
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Waited::Exited(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                // Its group's pgid is its pid (process_group(0)); not yet reaped, so the
                // pid is still its own.
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.wait();
                return Waited::TimedOut(timeout);
            }
            Err(error) => return Waited::Failed(error),
        }
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(signal) => format!("killed by {signal}"),
            Err(_) => format!("killed by signal {signal}"),
        },
        _ => status.to_string(),
    }
}

/// The end of what the hook wrote, as `: OUTPUT`, or nothing.
fn tail(mut output: File) -> String {
    let mut text = Vec::new();
    if output.rewind().is_err() || output.read_to_end(&mut text).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&text);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let start = text
        .char_indices()
        .rev()
        .nth(OUTPUT_SHOWN)
        .map_or(0, |(at, _)| at);
    format!(": {}", &text[start..])
}

/// A file in memory for a hook's output: no directory needed, which inside a container
/// with a read-only root (a startContainer hook) there may be none to write in.
fn unlinked_file() -> std::io::Result<File> {
    let fd =
        nix::sys::memfd::memfd_create(c"ns-runtime-hook", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)?;
    Ok(File::from(fd))
}

/// What the container's init knows of its container, for the hooks it runs itself.
struct InInit {
    hooks: Option<Hooks>,
    state: State,
}

/// Of `config.json`, what the init's hooks need, other fields ignored. Not a whole
/// [`Spec`]: its `process` is checked with a `regex::Regex` (`execCPUAffinity`), and
/// that link alone puts regex's Unicode tables in the binary — 220 KiB of pointers the
/// loader relocates in each start of ns-process and of its init (#14). `create` has
/// already read the whole config, and refused a bad one, before the init starts.
#[derive(Deserialize)]
struct ConfigForHooks {
    #[serde(default, rename = "ociVersion")]
    version: String,
    #[serde(default)]
    annotations: Option<HashMap<String, String>>,
    #[serde(default)]
    hooks: Option<Hooks>,
}

/// Whether `spec` has hooks its container's init runs (`createContainer`,
/// `startContainer`), which the init then needs the bundle for.
pub(crate) fn run_by_init(spec: &Spec) -> bool {
    [Kind::CreateContainer, Kind::StartContainer]
        .into_iter()
        .any(|kind| !kind.hooks(spec.hooks().as_ref()).is_empty())
}

/// Set once by the init, before its setup.
static IN_INIT: OnceLock<InInit> = OnceLock::new();

/// In the container's init, before its setup: reads the bundle's `config.json` and notes
/// the state the init's hooks get, its pid the host's (read now, from the host's `/proc`,
/// which the pivot leaves). Does nothing outside ns-runtime (no `bundle`).
pub(crate) fn prepare_in_init(bundle: Option<&Path>, id: Option<&str>) -> Result<(), String> {
    let Some(bundle) = bundle else {
        return Ok(());
    };
    let config = bundle.join("config.json");
    let text = std::fs::read(&config)
        .map_err(|error| format!("reading {} for its hooks: {error}", config.display()))?;
    let config_for_hooks: ConfigForHooks = serde_json::from_slice(&text)
        .map_err(|error| format!("reading {} for its hooks: {error}", config.display()))?;
    let pid = std::fs::read_link("/proc/self")
        .ok()
        .and_then(|link| link.to_str()?.parse::<i32>().ok());
    let mut state = State::default();
    state
        .set_version(config_for_hooks.version)
        .set_id(id.unwrap_or_default().to_owned())
        .set_status(ContainerState::Creating)
        .set_pid(pid)
        .set_bundle(PathBuf::from(bundle))
        .set_annotations(config_for_hooks.annotations);
    let _ = IN_INIT.set(InInit {
        hooks: config_for_hooks.hooks,
        state,
    });
    Ok(())
}

/// Runs the init's hooks of `kind` (`createContainer`, `startContainer`), if this init is
/// a container's of ns-runtime.
pub(crate) fn run_in_init(kind: Kind) -> Result<(), String> {
    let Some(in_init) = IN_INIT.get() else {
        return Ok(());
    };
    let mut state = in_init.state.clone();
    if kind == Kind::StartContainer {
        state.set_status(ContainerState::Created);
    }
    run_of(in_init.hooks.as_ref(), kind, &state)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(hooks: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({ "ociVersion": "1.0.2", "hooks": hooks }))
            .unwrap()
    }

    fn state() -> State {
        let mut state = State::default();
        state
            .set_version("1.0.2".to_owned())
            .set_id("hooked".to_owned())
            .set_status(ContainerState::Created)
            .set_pid(Some(4242))
            .set_bundle(PathBuf::from("/bundles/hooked"));
        state
    }

    fn temp_dir(label: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ns-runtime-hooks-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn each_hook_gets_the_state_on_stdin_its_args_and_its_env() {
        let dir = temp_dir("stdin");
        let script =
            "cat > \"$OUT/state-$1\"; echo \"$0 $1 $PATH_SEEN ${HOME:-nohome}\" > \"$OUT/args-$1\"";
        let hook = |n: &str| {
            serde_json::json!({
                "path": "/bin/sh",
                "args": ["hook-name", "-c", script, "called-as", n],
                "env": [format!("OUT={}", dir.display()), "PATH_SEEN=given"],
            })
        };
        let spec = spec_with(serde_json::json!({
            "prestart": [hook("0")],
            "createRuntime": [hook("1"), hook("2")],
        }));
        run(&spec, Kind::CreateRuntime, &state()).unwrap();
        for n in ["0", "1", "2"] {
            let seen: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join(format!("state-{n}"))).unwrap())
                    .unwrap();
            assert_eq!(seen["id"], "hooked");
            assert_eq!(seen["status"], "created");
            assert_eq!(seen["pid"], 4242);
            assert_eq!(seen["bundle"], "/bundles/hooked");
            let args = std::fs::read_to_string(dir.join(format!("args-{n}"))).unwrap();
            assert_eq!(args.trim(), format!("called-as {n} given nohome"));
        }
        // Without env, the runtime's own environment.
        let spec = spec_with(serde_json::json!({
            "poststop": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("echo \"$PATH\" > {}/inherited", dir.display())],
            }],
        }));
        run(&spec, Kind::Poststop, &state()).unwrap();
        let inherited = std::fs::read_to_string(dir.join("inherited")).unwrap();
        assert_eq!(inherited.trim(), std::env::var("PATH").unwrap());
        // Hooks of other kinds did not run.
        assert!(!dir.join("state-3").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failing_hook_is_named_with_its_status_and_output_and_stops_the_rest() {
        let dir = temp_dir("failing");
        let after = dir.join("after");
        let spec = spec_with(serde_json::json!({
            "createContainer": [
                { "path": "/bin/sh", "args": ["sh", "-c", "echo no network here >&2; exit 3"] },
                { "path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", after.display())] },
            ],
        }));
        let error = run(&spec, Kind::CreateContainer, &state()).unwrap_err();
        assert!(
            error.contains("hooks.createContainer[0] (/bin/sh)")
                && error.contains("exited with status 3")
                && error.contains("no network here"),
            "{error}"
        );
        assert!(!after.exists(), "the hook after a failed one ran");
        // A path that does not exist.
        let spec = spec_with(serde_json::json!({
            "startContainer": [{ "path": "/nonexistent/hook" }],
        }));
        let error = run(&spec, Kind::StartContainer, &state()).unwrap_err();
        assert!(
            error.contains("/nonexistent/hook") && error.contains("not found"),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed_with_what_it_started() {
        let dir = temp_dir("timeout");
        let pid_file = dir.join("grandchild");
        // The hook starts a sleeper of its own, then sleeps: both are killed.
        let script = format!("sleep 60 & echo $! > {}; sleep 60", pid_file.display());
        let spec = spec_with(serde_json::json!({
            "createRuntime": [{ "path": "/bin/sh", "args": ["sh", "-c", script], "timeout": 1 }],
        }));
        let started = Instant::now();
        let error = run(&spec, Kind::CreateRuntime, &state()).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        assert!(error.contains("timeout of 1s: killed"), "{error}");
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed; a zombie until its reaper (init, or a subreaper) waits for it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
            let gone = match &stat {
                Err(_) => true,
                Ok(text) => text
                    .rsplit(')')
                    .next()
                    .unwrap()
                    .trim_start()
                    .starts_with('Z'),
            };
            if gone {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the hook's sleeper {grandchild} still runs"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let zero = spec_with(serde_json::json!({
            "createRuntime": [{ "path": "/bin/true", "timeout": 0 }],
        }));
        let error = run(&zero, Kind::CreateRuntime, &state()).unwrap_err();
        assert!(error.contains("timeout 0"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn poststart_and_poststop_failures_are_warnings_and_the_rest_still_run() {
        let dir = temp_dir("warnings");
        let after = dir.join("after");
        for kind in [Kind::Poststart, Kind::Poststop] {
            let hooks = serde_json::json!([
                { "path": "/bin/false" },
                { "path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", after.display())] },
            ]);
            let spec = spec_with(serde_json::json!({ kind.field(): hooks }));
            run(&spec, kind, &state()).unwrap();
            assert!(
                after.exists(),
                "{kind:?}: the hook after the failed one did not run"
            );
            std::fs::remove_file(&after).unwrap();
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
