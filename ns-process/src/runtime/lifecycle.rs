//! `create`, `start`, `state`, `kill`, `delete`, `run` and `list`: a container's life,
//! from its bundle to its state directory's removal.
//!
//! `create` turns the bundle into an ns-process command line, parses and checks it as
//! ns-process does, and starts the init through the engine's own start (`start_init`),
//! detached: the init sets everything up, says so, and waits for `start` (`created.rs`).
//! `create` returns once the state is saved and the pid file written; until then the
//! init keeps its death signal, so a `create` killed half-way leaves no process behind,
//! and its directory is removed by the next call that meets it (`state.rs`).

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use nix::sys::signal::Signal;
use nix::sys::stat::Mode;
use oci_spec::runtime::ContainerState;

use crate::cli::InitSetting;

use super::created::{LIVING_ON, READY, SAVED, START};
use super::hooks::{self, Kind};
use super::state::{self, Container, Reserved};
use super::{CreateArgs, Failure, Global, cgroups, console, log, spec};
use crate::{cli, signals};

/// How long `delete --force` waits for a killed container's init to end.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// A container just created: saved, its init waiting for `start`.
struct Created {
    container: Container,
    /// The init, a child of this process until it exits.
    init: crate::Init,
}

/// `ns-runtime create`.
pub(crate) fn create(global: &Global, args: &CreateArgs) -> Result<ExitCode, Failure> {
    create_container(global, args)?;
    Ok(ExitCode::SUCCESS)
}

fn create_container(global: &Global, args: &CreateArgs) -> Result<Created, Failure> {
    if global.systemd_cgroup {
        return Err(Failure::bad_input(
            "--systemd-cgroup: cgroups through systemd are not supported; let the client \
             manage cgroups with cgroupfs (podman --cgroup-manager cgroupfs)",
        ));
    }
    if args.no_pivot {
        return Err(Failure::bad_input(
            "--no-pivot: ns-runtime always pivots into the rootfs (a chroot-like root could \
             be left through the mount namespace); run without --no-pivot",
        ));
    }
    state::check_id(&args.id)?;
    let bundle = std::path::absolute(&args.bundle).map_err(|error| {
        Failure::bad_input(format!("--bundle {}: {error}", args.bundle.display()))
    })?;
    let spec = spec::load(&bundle).map_err(Failure::bad_input)?;
    // With process.terminal, the init makes the command's pty inside and sends its master
    // over the console socket, connected here, where the caller's path is.
    let process = spec.process().as_ref();
    let terminal = process
        .and_then(|process| process.terminal())
        .unwrap_or(false);
    console::check_request(terminal, args.console_socket.as_deref()).map_err(Failure::bad_input)?;
    let console_size = console::size_of(process.and_then(|process| process.console_size()))
        .map_err(Failure::bad_input)?;
    let mut engine_args: Vec<OsString> = Vec::new();
    if args.preserve_fds > 0 {
        engine_args.push(format!("--preserve-fds={}", args.preserve_fds).into());
    }
    let translation = spec::translate(&spec, &bundle).map_err(Failure::bad_input)?;
    for note in &translation.notes {
        log::debug(global, &format!("config.json: {note}"));
    }
    engine_args.extend(translation.args);
    log::debug(
        global,
        &format!(
            "the bundle {} runs as: ns-process {}",
            bundle.display(),
            shell_words(&engine_args)
        ),
    );
    let program = std::iter::once(OsString::from("ns-process"));
    let options = cli::Options::try_parse_from(program.chain(engine_args.iter().cloned()))
        .map_err(|error| {
            Failure::bad_input(format!(
                "config.json asks for what ns-process can't run: {}",
                first_line(&error.to_string())
            ))
        })?;
    options.validate().map_err(|message| {
        Failure::bad_input(format!(
            "config.json asks for what ns-process refuses: {message}"
        ))
    })?;

    let root = state::root_dir(global);
    let reserved = Reserved::make(&root, &args.id)?;
    // Made once the id is ours, so that a create refused for a taken id touches no
    // cgroup; removed again by any failure below.
    let cgroup = ContainerCgroup::create(&spec, &args.id)?;
    let fifo_path = reserved.dir.join(state::FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::S_IRUSR | Mode::S_IWUSR).map_err(|errno| {
        Failure::failed(format!("mkfifo {}: {}", fifo_path.display(), errno.desc()))
    })?;
    // The read end, opened before any writer exists: see created.rs.
    let fifo: OwnedFd = nix::fcntl::open(
        &fifo_path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| {
        Failure::failed(format!("opening {}: {}", fifo_path.display(), errno.desc()))
    })?;
    let (mut ready, init_ready) =
        UnixStream::pair().map_err(|error| Failure::failed(format!("socketpair: {error}")))?;
    // Above the preserved descriptors and the one a bridge's report would take.
    let first = cli::preserved_fds(options.preserve_fds).end + 1;
    let mut detached = crate::Detached {
        init_settings: vec![
            InitSetting::ReadyFd(first),
            InitSetting::StartFifoFd(first + 1),
        ],
        fds: vec![(first, OwnedFd::from(init_ready)), (first + 1, fifo)],
        cgroup: cgroup.cgroup.as_ref(),
        state_dir: &reserved.dir,
    };
    // The createContainer and startContainer hooks are the init's to run: only then
    // does it need the bundle, whose config.json it reads once more before its setup.
    if hooks::run_by_init(&spec) {
        detached
            .init_settings
            .push(InitSetting::RuntimeBundle(bundle.clone()));
        detached
            .init_settings
            .push(InitSetting::RuntimeId(args.id.clone()));
    }
    if let Some(socket) = &args.console_socket {
        let connection = console::connect(socket).map_err(Failure::failed)?;
        let number = first + 2;
        detached.init_settings.push(InitSetting::ConsoleFd(number));
        if let Some((rows, columns)) = console_size {
            detached
                .init_settings
                .push(InitSetting::ConsoleSize(rows, columns));
        }
        detached.fds.push((number, connection));
    }
    let mut init = crate::start_init(&options, engine_args, Some(detached))
        .map_err(|message| Failure::failed(format!("starting the container's init: {message}")))?;
    let pid = init.child.id() as i32;

    let mut answer = [0u8; 1];
    let said = ready.read(&mut answer);
    if !matches!(said, Ok(1) if answer[0] == READY) {
        // Its message, if it had one, is on stderr already.
        let status = init.child.wait().map(signals::exit_code);
        return Err(Failure::failed(match status {
            Ok(code) => format!(
                "the container's init failed its setup (exit status {code}); its reason is \
                 above on stderr"
            ),
            Err(error) => format!("the container's init failed its setup: {error}"),
        }));
    }
    log::debug(
        global,
        &format!("the init ({pid}) is set up; saving the container's state"),
    );
    let failed_now = |init: &mut crate::Init, message: String| {
        // The socket closes as `ready` drops: the init ends without its death signal.
        let _ = init.child.kill();
        let _ = init.child.wait();
        Failure::failed(message)
    };
    let Some(start_time) = state::start_time(pid) else {
        return Err(failed_now(
            &mut init,
            format!("the container's init ({pid}) ended"),
        ));
    };
    let container = Container {
        id: args.id.clone(),
        pid,
        start_time,
        bundle: bundle.clone(),
        rootfs: spec
            .root()
            .as_ref()
            .map(|root| bundle.join(root.path()))
            .unwrap_or_default(),
        created: log::rfc3339(SystemTime::now()),
        owner: nix::unistd::geteuid().as_raw(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        dir: reserved.dir.clone(),
    };
    // The init is set up and waits: the runtime's own hooks run now, the container
    // still "creating".
    let mut creating = container.oci_state();
    creating.set_status(ContainerState::Creating);
    if let Err(message) = hooks::run(&spec, Kind::CreateRuntime, &creating) {
        return Err(failed_now(&mut init, message));
    }
    if let Err(message) = container.save() {
        return Err(failed_now(&mut init, message));
    }
    if let Some(pid_file) = &args.pid_file {
        if let Err(message) = state::write_atomically(pid_file, pid.to_string().as_bytes()) {
            return Err(failed_now(&mut init, format!("--pid-file: {message}")));
        }
    }
    log::debug(
        global,
        &format!(
            "saved {}; the init lives on from now",
            container.dir.display()
        ),
    );
    if let Err(error) = ready.write_all(&[SAVED]) {
        if let Some(pid_file) = &args.pid_file {
            let _ = std::fs::remove_file(pid_file);
        }
        return Err(failed_now(
            &mut init,
            format!("telling the init it is saved: {error}"),
        ));
    }
    // Killed before the answer, this process leaves a container whose init may live on
    // (then it is saved whole) or not (then the next call removes it, `creating` still
    // being there).
    let lives_on = ready.read(&mut answer);
    if !matches!(lives_on, Ok(1) if answer[0] == LIVING_ON) {
        if let Some(pid_file) = &args.pid_file {
            let _ = std::fs::remove_file(pid_file);
        }
        return Err(failed_now(
            &mut init,
            "the container's init ended instead of living on past create".into(),
        ));
    }
    reserved.commit();
    cgroup.keep();
    log::debug(
        global,
        &format!("created {} with the init's pid {pid}", args.id),
    );
    Ok(Created { container, init })
}

/// `ns-runtime start`.
pub(crate) fn start(global: &Global, id: &str) -> Result<ExitCode, Failure> {
    let container = Container::find(&state::root_dir(global), id)?;
    let _lock = container.lock()?;
    start_container(&container)?;
    run_hooks(global, &container, Kind::Poststart);
    Ok(ExitCode::SUCCESS)
}

/// Runs the hooks of `kind` that only warn (poststart, poststop) from the container's
/// bundle; a bundle whose config.json is gone meanwhile has none to run.
fn run_hooks(global: &Global, container: &Container, kind: Kind) {
    match spec::load(&container.bundle) {
        Ok(spec) => {
            if let Err(message) = hooks::run(&spec, kind, &container.oci_state()) {
                eprintln!("ns-runtime: warning: {message}");
            }
        }
        Err(message) => log::debug(global, &format!("no {} hooks run: {message}", kind.field())),
    }
}

/// The container's cgroup while `create` runs: removed if the create fails, kept once
/// the container is saved and its init lives on.
struct ContainerCgroup {
    cgroup: Option<reexec::Cgroup>,
    spec: oci_spec::runtime::Spec,
    id: String,
    kept: bool,
}

impl ContainerCgroup {
    fn create(spec: &oci_spec::runtime::Spec, id: &str) -> Result<ContainerCgroup, Failure> {
        let cgroup = cgroups::create(spec, id).map_err(Failure::bad_input)?;
        Ok(ContainerCgroup {
            cgroup,
            spec: spec.clone(),
            id: id.to_owned(),
            kept: false,
        })
    }

    fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for ContainerCgroup {
    fn drop(&mut self) {
        if !self.kept && self.cgroup.is_some() {
            // Best effort: the init is gone (killed and reaped) by now.
            let _ = cgroups::remove(&self.spec, &self.id);
        }
    }
}

fn start_container(container: &Container) -> Result<(), Failure> {
    let id = &container.id;
    match container.status() {
        ContainerState::Created => {}
        ContainerState::Running => {
            return Err(Failure::wrong_state(format!(
                "cannot start container {id:?}: it is running already"
            )));
        }
        status => {
            return Err(Failure::wrong_state(format!(
                "cannot start container {id:?}: it is {status}; delete it and create it again"
            )));
        }
    }
    let fifo_path = container.dir.join(state::FIFO);
    // Without blocking: no reader means the init has gone meanwhile (ENXIO).
    let fifo = nix::fcntl::open(
        &fifo_path,
        nix::fcntl::OFlag::O_WRONLY | nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| match errno {
        nix::errno::Errno::ENXIO => Failure::wrong_state(format!(
            "cannot start container {id:?}: its init is no longer waiting (it ended); delete it"
        )),
        errno => Failure::failed(format!("opening {}: {}", fifo_path.display(), errno.desc())),
    })?;
    nix::unistd::write(&fifo, &[START]).map_err(|errno| {
        Failure::failed(format!("writing {}: {}", fifo_path.display(), errno.desc()))
    })?;
    // Gone, the FIFO says "running".
    std::fs::remove_file(&fifo_path)
        .map_err(|error| Failure::failed(format!("removing {}: {error}", fifo_path.display())))?;
    Ok(())
}

/// `ns-runtime state`.
pub(crate) fn state(global: &Global, id: &str) -> Result<ExitCode, Failure> {
    let container = Container::find(&state::root_dir(global), id)?;
    // The OCI state, and what runc adds to it.
    let mut json = serde_json::to_value(container.oci_state())
        .map_err(|error| Failure::failed(error.to_string()))?;
    if let Some(object) = json.as_object_mut() {
        object.insert("rootfs".into(), serde_json::json!(container.rootfs));
        object.insert("created".into(), serde_json::json!(container.created));
        // Empty, as runc's `state` has it; `list` names the owner.
        object.insert("owner".into(), serde_json::json!(""));
    }
    let json =
        serde_json::to_string_pretty(&json).map_err(|error| Failure::failed(error.to_string()))?;
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

/// A signal as `kill` takes it: a number, or a name with or without `SIG`, any case.
pub(crate) fn parse_signal(text: &str) -> Result<Signal, Failure> {
    let refused = || {
        Failure::usage(format!(
            "unknown signal {text:?}: give a name (TERM, SIGKILL, …) or a number (1 to 31)"
        ))
    };
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| refused());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| refused())
}

/// `ns-runtime kill`: the signal goes to the init, which forwards SIGINT, SIGTERM,
/// SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH to the command (and ends with it);
/// SIGKILL ends the init and, with it, everything in the container's PID namespace.
pub(crate) fn kill(
    global: &Global,
    id: &str,
    signal: Option<&str>,
    all: bool,
) -> Result<ExitCode, Failure> {
    let signal = parse_signal(signal.unwrap_or("SIGTERM"))?;
    let container = Container::find(&state::root_dir(global), id)?;
    if container.status() == ContainerState::Stopped {
        return Err(Failure::wrong_state(format!(
            "cannot kill container {id:?}: it is stopped"
        )));
    }
    // With a cgroup, --all freezes it and signals every process in it; without one
    // (made without privilege), the init's descendants are walked.
    let signalled_in_cgroup = match (all, spec::load(&container.bundle)) {
        (true, Ok(spec)) => cgroups::signal_all(&spec, id, signal).map_err(Failure::failed)?,
        _ => 0,
    };
    if all && signalled_in_cgroup == 0 {
        // The container's processes are the init's descendants: an orphan inside is
        // the init's (PID 1's) child. Children before their parents, the init last, so
        // that none is reparented away from the walk meanwhile.
        for pid in descendants(container.pid).into_iter().rev() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
        }
    }
    send(&container, signal)?;
    Ok(ExitCode::SUCCESS)
}

/// The descendants of `pid`, parents before their children, from `/proc`.
fn descendants(pid: i32) -> Vec<i32> {
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // The parent's pid is field 4, the second after the name in parentheses.
        let parent = stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().nth(1))
            .and_then(|field| field.parse().ok());
        if let Some(parent) = parent {
            parents.push((child, parent));
        }
    }
    let mut found = vec![pid];
    let mut next = 0;
    while next < found.len() {
        let parent = found[next];
        found.extend(
            parents
                .iter()
                .filter(|(_, of)| *of == parent)
                .map(|(child, _)| *child),
        );
        next += 1;
    }
    found.remove(0);
    found
}

/// Sends `signal` to the init, if it is still the process `create` started; returns its
/// pidfd, where the kernel has them, to wait on.
fn send(container: &Container, signal: Signal) -> Result<Option<OwnedFd>, Failure> {
    // The pidfd first, then the start time: if that is still the init's, the pidfd is the
    // init's, and nothing sent through it can reach a later process given the same pid.
    let pidfd = match crate::sys::pidfd::open(container.pid) {
        Ok(pidfd) => Some(pidfd),
        Err(error) if error.raw_os_error() == Some(nix::libc::ESRCH) => return Ok(None),
        // Before Linux 5.3: kill(2) just after the check.
        Err(_) => None,
    };
    if !state::process_is(container.pid, container.start_time) {
        return Ok(None);
    }
    let sent = match &pidfd {
        Some(pidfd) => crate::sys::pidfd::send_signal(pidfd, signal as i32),
        None => nix::sys::signal::kill(nix::unistd::Pid::from_raw(container.pid), signal)
            .map_err(std::io::Error::from),
    };
    match sent {
        Ok(()) => Ok(pidfd),
        Err(error) if error.raw_os_error() == Some(nix::libc::ESRCH) => Ok(None),
        Err(error) => Err(Failure::failed(format!(
            "kill({}, {signal}): {error}",
            container.pid
        ))),
    }
}

/// Waits until the init has ended: its pidfd turns readable then; without one, its
/// start time is looked for in `/proc`.
fn wait_for_end(container: &Container, pidfd: Option<OwnedFd>) -> Result<(), Failure> {
    let deadline = Instant::now() + KILL_WAIT;
    if let Some(pidfd) = pidfd {
        let timeout =
            nix::poll::PollTimeout::try_from(KILL_WAIT).unwrap_or(nix::poll::PollTimeout::MAX);
        let mut fds = [nix::poll::PollFd::new(
            pidfd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        loop {
            match nix::poll::poll(&mut fds, timeout) {
                Err(nix::errno::Errno::EINTR) if Instant::now() < deadline => continue,
                Ok(0) | Err(_) => break,
                Ok(_) => return Ok(()),
            }
        }
    }
    while state::process_is(container.pid, container.start_time) {
        if Instant::now() > deadline {
            return Err(Failure::failed(format!(
                "container {:?}: its init ({}) did not end within {} s of SIGKILL",
                container.id,
                container.pid,
                KILL_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// `ns-runtime delete`: a stopped or created container (as runc, a created one is
/// killed first); a running one only with `--force`, killed and waited for.
pub(crate) fn delete(global: &Global, id: &str, force: bool) -> Result<ExitCode, Failure> {
    let container = Container::find(&state::root_dir(global), id)?;
    let _lock = container.lock()?;
    let status = container.status();
    if status == ContainerState::Running && !force {
        return Err(Failure::wrong_state(format!(
            "cannot delete container {id:?}: it is running; stop it first (ns-runtime kill \
             {id}) or give --force"
        )));
    }
    if status != ContainerState::Stopped {
        let pidfd = send(&container, Signal::SIGKILL)?;
        wait_for_end(&container, pidfd)?;
    }
    remove(global, &container)?;
    Ok(ExitCode::SUCCESS)
}

/// Removes what the container left on the host: its state directory.
fn remove(global: &Global, container: &Container) -> Result<(), Failure> {
    // Its cgroup (its processes gone), then the poststop hooks, then its directory.
    match spec::load(&container.bundle) {
        Ok(spec) => {
            cgroups::remove(&spec, &container.id).map_err(Failure::failed)?;
            if let Err(message) = hooks::run(&spec, Kind::Poststop, &container.oci_state()) {
                eprintln!("ns-runtime: warning: {message}");
            }
        }
        Err(message) => log::debug(
            global,
            &format!("the container's cgroup and poststop hooks are left: {message}"),
        ),
    }
    std::fs::remove_dir_all(&container.dir).map_err(|error| {
        Failure::failed(format!("removing {}: {error}", container.dir.display()))
    })?;
    log::debug(global, &format!("deleted {}", container.id));
    Ok(())
}

/// `ns-runtime run`: create, start, and (without `--detach`) wait for the container,
/// forwarding signals to it; its exit status is `run`'s, and it is deleted after.
pub(crate) fn run(global: &Global, args: &CreateArgs, detach: bool) -> Result<ExitCode, Failure> {
    let Created { container, init } = create_container(global, args)?;
    let crate::Init {
        mut child, blocked, ..
    } = init;
    if let Err(failure) = start_container(&container) {
        let _ = child.kill();
        let _ = child.wait();
        let _ = remove(global, &container);
        return Err(failure);
    }
    if detach {
        return Ok(ExitCode::SUCCESS);
    }
    let status = signals::supervise_child(&mut child, &blocked).map_err(Failure::failed);
    let _lock = container.lock()?;
    remove(global, &container)?;
    Ok(ExitCode::from(status?))
}

/// `ns-runtime list`: a table as runc's, `--format json`, or with `-q` only the ids.
pub(crate) fn list(global: &Global, format: &str, quiet: bool) -> Result<ExitCode, Failure> {
    let containers = state::all(&state::root_dir(global))?;
    if quiet {
        for container in &containers {
            println!("{}", container.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match format {
        "table" => {
            let rows: Vec<[String; 6]> = containers
                .iter()
                .map(|container| {
                    let status = container.status();
                    let pid = if status == ContainerState::Stopped {
                        0
                    } else {
                        container.pid
                    };
                    [
                        container.id.clone(),
                        pid.to_string(),
                        status.to_string(),
                        container.bundle.display().to_string(),
                        container.created.clone(),
                        state::owner_name(container.owner),
                    ]
                })
                .collect();
            let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
            let mut widths = [0usize; 6];
            for row in std::iter::once(&header).chain(&rows) {
                for (width, cell) in widths.iter_mut().zip(row) {
                    *width = (*width).max(cell.len());
                }
            }
            for row in std::iter::once(&header).chain(&rows) {
                let cells: Vec<String> = row
                    .iter()
                    .zip(widths)
                    .map(|(cell, width)| format!("{cell:width$}"))
                    .collect();
                println!("{}", cells.join("   ").trim_end());
            }
        }
        "json" => {
            let items: Vec<serde_json::Value> = containers
                .iter()
                .map(|container| {
                    let status = container.status();
                    serde_json::json!({
                        "ociVersion": oci_spec::runtime::VERSION,
                        "id": container.id,
                        "pid": if status == ContainerState::Stopped { 0 } else { container.pid },
                        "status": status.to_string(),
                        "bundle": container.bundle,
                        "rootfs": container.rootfs,
                        "created": container.created,
                        "owner": state::owner_name(container.owner),
                        "annotations": container.annotations,
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(items));
        }
        other => {
            return Err(Failure::usage(format!(
                "--format {other:?}: give table or json"
            )));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The arguments as a shell would read them back, for the debug line.
fn shell_words(args: &[OsString]) -> String {
    args.iter()
        .map(|arg| {
            let text = arg.to_string_lossy();
            if !text.is_empty()
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@%+".contains(c))
            {
                text.into_owned()
            } else {
                format!("'{}'", text.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_line(text: &str) -> &str {
    let text = text.trim_start_matches("error: ");
    text.lines().next().unwrap_or(text)
}

/// `ns-runtime ps`: the processes of the container's cgroup.
pub(crate) fn ps(
    global: &Global,
    id: &str,
    format: &str,
    ps_args: &[String],
) -> Result<ExitCode, Failure> {
    let container = Container::find(&state::root_dir(global), id)?;
    let spec = spec::load(&container.bundle).map_err(Failure::failed)?;
    super::ps::print(&spec, id, format, ps_args).map_err(Failure::failed)
}
