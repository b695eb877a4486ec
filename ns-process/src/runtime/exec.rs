//! `ns-runtime exec`: another process in a running container's namespaces and cgroup.
//!
//! The runtime opens, outside, everything the process will need of the host: the
//! container init's namespace files (`/proc/PID/ns/*`), its root (`/proc/PID/root`), its
//! cgroup's `cgroup.procs` files and the console socket. It hands them to the entry
//! `nsExec`, re-executed from this binary, which — single-threaded, as setns(2) of a user
//! namespace wants — enters the cgroup, joins the namespaces (user first, whose
//! capabilities the others need; the mount namespace last, then the init's root), sets
//! up the PID namespace for its children, and starts the process, which takes on its
//! user, capabilities and seccomp filter just before it execs (`sys::spawn`, as the init
//! starts its command). The entry
//! reports the process's pid and ends: the process is then the runtime's child (the
//! runtime is a subreaper), or its caller's with `--detach` (conmon is a subreaper).
//!
//! Why not reexec's `Command::join`: it joins before execve of `/proc/self/exe`, and in
//! the container's mount namespace `/proc` is the container's, where the joining process
//! — not in its PID namespace — has no `/proc/self`: the execve would fail. A PID
//! namespace can't be joined by it either (only children enter one). Joining after the
//! exec, from the entry, has neither problem and costs no extra process.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::fcntl::{OFlag, open};
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::unistd::Pid;
use reexec::{Capabilities, Capability, CapabilitySet};
use serde::{Deserialize, Serialize};

use super::{Global, console};
use crate::signals;
use crate::sys::spawn::CommandStart;

/// The entry that joins the container and starts the process.
const ENTRY: &str = "nsExec";

/// `exec`'s flags, as runc's.
#[derive(Debug, clap::Args)]
pub(crate) struct ExecArgs {
    /// The process as OCI JSON (`config.json`'s `process`), instead of COMMAND.
    #[arg(long, short, value_name = "FILE")]
    pub(crate) process: Option<PathBuf>,
    /// Returns once the process started.
    #[arg(long, short)]
    pub(crate) detach: bool,
    /// Where the process's pid is written.
    #[arg(long = "pid-file", value_name = "FILE")]
    pub(crate) pid_file: Option<PathBuf>,
    /// A unix socket that receives the pty's master, with `--tty`.
    #[arg(long = "console-socket", value_name = "SOCKET")]
    pub(crate) console_socket: Option<PathBuf>,
    /// A pty for the process.
    #[arg(long, short)]
    pub(crate) tty: bool,
    /// The working directory inside.
    #[arg(long, value_name = "DIR")]
    pub(crate) cwd: Option<PathBuf>,
    // exec16's flags beyond the stub's.
    /// Sets KEY=VALUE in the process's environment (repeatable), over the container's.
    #[arg(long, short, value_name = "KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// The process's user: UID[:GID], numbers as the container sees them.
    #[arg(long, short, value_name = "UID[:GID]")]
    pub(crate) user: Option<String>,
    /// Tests only: the container's init by its host pid, without a state directory.
    #[arg(long = "internal-container-pid", hide = true, value_name = "PID")]
    pub(crate) container_pid: Option<i32>,
    /// The container's id.
    pub(crate) id: String,
    /// The command and its arguments, without `--process`.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) command: Vec<String>,
}

/// `ns-runtime exec`.
pub(crate) fn run(global: &Global, args: &ExecArgs) -> Result<ExitCode, String> {
    let (pid, bundle) = match args.container_pid {
        Some(pid) => (pid, None),
        None => {
            let container =
                super::state::Container::find(&super::state::root_dir(global), &args.id)
                    .map_err(|failure| failure.message)?;
            if container.status() != oci_spec::runtime::ContainerState::Running {
                return Err(format!(
                    "exec: container {} is {}: only a running container runs another process; \
                     start it first",
                    args.id,
                    container.status()
                ));
            }
            (container.pid, Some(container.bundle))
        }
    };
    let config = match &bundle {
        Some(bundle) => Some(super::spec::load(bundle).map_err(|why| format!("exec: {why}"))?),
        None => None,
    };
    let process = process_of(
        args,
        config.as_ref().and_then(|spec| spec.process().clone()),
    )?;
    let terminal = process.terminal().unwrap_or(false);
    console::check_request(terminal, args.console_socket.as_deref())
        .map_err(|why| format!("exec: {why}"))?;
    let seccomp = config
        .as_ref()
        .and_then(|spec| spec.linux().as_ref())
        .and_then(|linux| linux.seccomp().as_ref())
        .map(|seccomp| serde_json::to_value(seccomp).map_err(|error| error.to_string()))
        .transpose()?;
    let mut plan = Plan::new(&process, seccomp)?;
    // Checked here, where the caller sees the message, before anything starts.
    plan.seccomp_program()?;

    let init = format!("/proc/{pid}");
    if !Path::new(&init).exists() {
        return Err(format!(
            "exec: container {} is not running: its init (pid {pid}) is gone",
            args.id
        ));
    }
    let mut handed: Vec<OwnedFd> = Vec::new();
    let mut hand = |fd: OwnedFd| {
        let number = FIRST_HANDED + handed.len() as RawFd;
        handed.push(fd);
        number
    };
    for (name, _) in NAMESPACES {
        let Some(fd) = namespace_to_join(pid, name)? else {
            continue;
        };
        let number = hand(fd);
        if *name == "pid" {
            plan.pid_namespace = Some(number);
        } else {
            plan.namespaces.push((name.to_string(), number));
        }
    }
    let root = open(
        Path::new(&init).join("root").as_path(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| format!("exec: opening {init}/root: {}", errno.desc()))?;
    plan.root = hand(root);
    if let Some(socket) = &args.console_socket {
        plan.console = Some(hand(console::connect(socket)?));
    }
    plan.cgroup_procs = cgroups_to_join(pid)?;
    check_mapped(pid, "uid", &[plan.uid])?;
    let mut gids = plan.groups.clone();
    gids.push(plan.gid);
    check_mapped(pid, "gid", &gids)?;

    // The process is this runtime's child once the entry that forked it is gone, and is
    // waited for here; with --detach the caller's subreaper (conmon) takes it.
    if !args.detach {
        nix::sys::prctl::set_child_subreaper(true)
            .map_err(|errno| format!("exec: prctl(PR_SET_CHILD_SUBREAPER): {}", errno.desc()))?;
    }
    // Blocked before the process exists: none sent meanwhile is lost, all go to it.
    let blocked = signals::Blocked::now()
        .map_err(|errno| format!("exec: blocking signals: {}", errno.desc()))?;

    let (plan_read, plan_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|errno| format!("exec: pipe2: {}", errno.desc()))?;
    let (report_read, report_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|errno| format!("exec: pipe2: {}", errno.desc()))?;
    let mut child = {
        let mut command = reexec::Command::new(ENTRY);
        command
            .env_clear()
            .fd(PLAN_FD, plan_read)
            .fd(REPORT_FD, report_write);
        for (index, fd) in handed.into_iter().enumerate() {
            command.fd(FIRST_HANDED + index as RawFd, fd);
        }
        command
            .spawn()
            .map_err(|error| format!("exec: starting {ENTRY}: {error}"))?
        // The command, and our copies of the descriptors it was handed, end here.
    };
    let text = serde_json::to_vec(&plan).map_err(|error| error.to_string())?;
    let mut plan_write = std::fs::File::from(plan_write);
    // A write that fails means the entry ended early: its report says why.
    let _ = plan_write.write_all(&text);
    drop(plan_write);
    let mut report = String::new();
    let _ = std::fs::File::from(report_read).read_to_string(&mut report);
    let status = child
        .wait()
        .map_err(|error| format!("exec: waiting for {ENTRY}: {error}"))?;
    let started = match report.split_at_checked(1) {
        Some(("P", number)) => number.trim().parse::<i32>().ok(),
        _ => None,
    };
    let Some(started) = started else {
        return Err(match report.strip_prefix('E') {
            Some(message) => format!("exec: {message}"),
            None => format!("exec: {ENTRY} ended ({status}) before starting the process"),
        });
    };
    if let Some(pid_file) = &args.pid_file {
        write_pid_file(pid_file, started)?;
    }
    if args.detach {
        return Ok(ExitCode::SUCCESS);
    }
    signals::supervise_as_init(Pid::from_raw(started), &blocked)
        .map(ExitCode::from)
        .map_err(|errno| format!("exec: waiting for the process: {}", errno.desc()))
}

/// The descriptors the entry is handed: the plan it reads, the report it writes, then
/// the namespace files, the root and the console socket, in the plan's numbers.
const PLAN_FD: RawFd = 3;
const REPORT_FD: RawFd = 4;
const FIRST_HANDED: RawFd = 5;

/// The namespaces joined, by their names under `/proc/PID/ns`, in the order they are:
/// the user namespace first, the mount namespace last of those the entry itself enters,
/// the PID namespace only for its children. (A time namespace can't be joined by a
/// process that shares memory or has threads; ns-process's containers make none.)
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("net", CloneFlags::CLONE_NEWNET),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("pid", CloneFlags::CLONE_NEWPID),
];

/// The init's namespace `name`, open, or `None` when it is this process's own (setns
/// refuses to enter one's own user namespace, and the others need no entering).
fn namespace_to_join(pid: i32, name: &str) -> Result<Option<OwnedFd>, String> {
    let theirs = format!("/proc/{pid}/ns/{name}");
    let identity =
        |path: &str| std::fs::metadata(path).map(|metadata| (metadata.dev(), metadata.ino()));
    let their_identity = identity(&theirs).map_err(|error| {
        format!("exec: {theirs}: {error}; the container's init must be running and yours")
    })?;
    if identity(&format!("/proc/self/ns/{name}")).ok() == Some(their_identity) {
        return Ok(None);
    }
    open(
        theirs.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map(Some)
    .map_err(|errno| format!("exec: opening {theirs}: {}", errno.desc()))
}

/// Refuses ids the container's user namespace does not map: the switch to them would
/// fail in the forked child with a bare EINVAL.
fn check_mapped(pid: i32, kind: &str, ids: &[u32]) -> Result<(), String> {
    let path = format!("/proc/{pid}/{kind}_map");
    let map =
        std::fs::read_to_string(&path).map_err(|error| format!("exec: reading {path}: {error}"))?;
    let ranges: Vec<(u64, u64)> = map
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace().map(str::parse::<u64>);
            match (fields.next(), fields.next(), fields.next()) {
                (Some(Ok(inside)), Some(Ok(_)), Some(Ok(count))) => Some((inside, count)),
                _ => None,
            }
        })
        .collect();
    for &id in ids {
        let id = u64::from(id);
        if !ranges
            .iter()
            .any(|&(inside, count)| id >= inside && id - inside < count)
        {
            return Err(format!(
                "exec: {kind} {id} is not mapped in the container's user namespace \
                 ({path}: {}); give a {kind} the container maps",
                map.lines()
                    .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

/// The `cgroup.procs` files of the init's cgroups that differ from this process's: one
/// per hierarchy (v1 controllers and v2), found through this process's mounts.
fn cgroups_to_join(pid: i32) -> Result<Vec<PathBuf>, String> {
    let read = |path: String| {
        std::fs::read_to_string(&path).map_err(|error| format!("exec: reading {path}: {error}"))
    };
    let theirs = read(format!("/proc/{pid}/cgroup"))?;
    let ours = read("/proc/self/cgroup".into())?;
    let mountinfo = read("/proc/self/mountinfo".into())?;
    let mut files = Vec::new();
    for line in theirs.lines() {
        if ours.lines().any(|own| own == line) {
            continue;
        }
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some(mount_point) = cgroup_mount(&mountinfo, controllers) else {
            // A hierarchy this process can't see (not mounted here) can't be entered.
            continue;
        };
        files.push(
            Path::new(&mount_point)
                .join(path.trim_start_matches('/'))
                .join("cgroup.procs"),
        );
    }
    Ok(files)
}

/// Where the hierarchy of `controllers` (`cpu,cpuacct`, `name=systemd`, or empty for
/// v2) is mounted, from `/proc/self/mountinfo`.
fn cgroup_mount(mountinfo: &str, controllers: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let mount_point = before.split(' ').nth(4)?;
        let mut after = after.split(' ');
        let fstype = after.next()?;
        let options = after.nth(1)?;
        let matches = match (fstype, controllers) {
            ("cgroup2", "") => true,
            ("cgroup", wanted) if !wanted.is_empty() => wanted
                .split(',')
                .all(|controller| options.split(',').any(|option| option == controller)),
            _ => false,
        };
        matches.then(|| mount_point.replace("\\040", " "))
    })
}

/// Writes `pid` to `path` as runc does (no newline), whole or not at all.
fn write_pid_file(path: &Path, pid: i32) -> Result<(), String> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, pid.to_string())
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|error| format!("exec: --pid-file {}: {error}", path.display()))
}

/// The process to run: `--process`'s, or the container's own with COMMAND and the flags
/// over it (as runc does).
fn process_of(
    args: &ExecArgs,
    container: Option<oci_spec::runtime::Process>,
) -> Result<oci_spec::runtime::Process, String> {
    if let Some(file) = &args.process {
        if !args.command.is_empty() {
            return Err(format!(
                "exec: both --process {} and a command were given: give one",
                file.display()
            ));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|error| format!("exec: --process {}: {error}", file.display()))?;
        let process: oci_spec::runtime::Process = serde_json::from_str(&text).map_err(|error| {
            format!(
                "exec: --process {}: not an OCI process (config.json's \"process\"): {error}",
                file.display()
            )
        })?;
        if process.args().as_ref().is_none_or(|args| args.is_empty()) {
            return Err(format!(
                "exec: --process {}: args is empty: name the program to run",
                file.display()
            ));
        }
        return Ok(process);
    }
    if args.command.is_empty() {
        return Err("exec: no command: give it after the container's id, or --process FILE".into());
    }
    let mut process = container.unwrap_or_else(default_process);
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    if let Some(cwd) = &args.cwd {
        process.set_cwd(cwd.clone());
    }
    let mut env = process.env().clone().unwrap_or_default();
    for pair in &args.env {
        let Some((key, _)) = pair.split_once('=') else {
            return Err(format!("exec: --env {pair:?}: give KEY=VALUE"));
        };
        env.retain(|existing| existing.split_once('=').map(|(k, _)| k) != Some(key));
        env.push(pair.clone());
    }
    process.set_env(Some(env));
    if let Some(user) = &args.user {
        let bad = || format!("exec: --user {user:?}: give UID or UID:GID, as numbers");
        let (uid, gid) = match user.split_once(':') {
            Some((uid, gid)) => (uid, Some(gid)),
            None => (user.as_str(), None),
        };
        let uid: u32 = uid.parse().map_err(|_| bad())?;
        let gid: u32 = gid.map_or(Ok(0), str::parse).map_err(|_| bad())?;
        let mut user = oci_spec::runtime::User::default();
        user.set_uid(uid);
        user.set_gid(gid);
        process.set_user(user);
    }
    Ok(process)
}

/// Without a bundle (`--internal-container-pid`), what ns-process's own command gets:
/// the default PATH, Docker's 14 capabilities, no new privileges not asked for.
fn default_process() -> oci_spec::runtime::Process {
    let mut process = oci_spec::runtime::Process::default();
    process.set_no_new_privileges(Some(false));
    let kept: Vec<oci_spec::runtime::Capability> =
        crate::capabilities::for_command(false, &[], &[])
            .iter()
            .filter_map(|capability| {
                serde_json::from_value(serde_json::Value::String(format!(
                    "CAP_{}",
                    capability.name()
                )))
                .ok()
            })
            .collect();
    let set: oci_spec::runtime::Capabilities = kept.into_iter().collect();
    let mut capabilities = oci_spec::runtime::LinuxCapabilities::default();
    capabilities.set_bounding(Some(set.clone()));
    capabilities.set_permitted(Some(set.clone()));
    capabilities.set_effective(Some(set));
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    process.set_capabilities(Some(capabilities));
    process
}

/// What the entry does, sent to it as JSON on descriptor 3: the process, already
/// checked, and the numbers of the descriptors it was handed.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Plan {
    args: Vec<String>,
    env: Vec<String>,
    cwd: PathBuf,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    umask: Option<u32>,
    /// Bounding, effective, inheritable, permitted, ambient; `None`: all of them kept.
    capabilities: Option<[u64; 5]>,
    no_new_privileges: bool,
    /// (RLIMIT_ name, soft, hard).
    rlimits: Vec<(String, u64, u64)>,
    /// The container's `linux.seccomp`, as its JSON.
    seccomp: Option<serde_json::Value>,
    console_size: Option<(u16, u16)>,
    /// (name under /proc/PID/ns, descriptor), in the order to join.
    namespaces: Vec<(String, RawFd)>,
    pid_namespace: Option<RawFd>,
    root: RawFd,
    console: Option<RawFd>,
    cgroup_procs: Vec<PathBuf>,
}

impl Plan {
    fn new(
        process: &oci_spec::runtime::Process,
        seccomp: Option<serde_json::Value>,
    ) -> Result<Plan, String> {
        let args = process.args().clone().unwrap_or_default();
        let cwd = process.cwd().clone();
        if !cwd.is_absolute() {
            return Err(format!(
                "exec: the working directory {} is relative: give an absolute path inside the \
                 container",
                cwd.display()
            ));
        }
        let user = process.user();
        let capabilities = match process.capabilities() {
            None => None,
            Some(sets) => {
                let bits = |set: &Option<oci_spec::runtime::Capabilities>| -> Result<u64, String> {
                    let mut kept = CapabilitySet::EMPTY;
                    for capability in set.iter().flatten() {
                        let name = serde_json::to_value(capability)
                            .ok()
                            .and_then(|value| value.as_str().map(str::to_owned))
                            .unwrap_or_default();
                        let parsed: Capability = name.parse().map_err(|_| {
                            format!("exec: capability {name:?} is not one this build knows")
                        })?;
                        kept.insert(parsed);
                    }
                    Ok(kept.bits())
                };
                Some([
                    bits(sets.bounding())?,
                    bits(sets.effective())?,
                    bits(sets.inheritable())?,
                    bits(sets.permitted())?,
                    bits(sets.ambient())?,
                ])
            }
        };
        let mut rlimits = Vec::new();
        for rlimit in process.rlimits().iter().flatten() {
            let name = rlimit.typ().to_string();
            resource(&name)?;
            rlimits.push((name, rlimit.soft(), rlimit.hard()));
        }
        Ok(Plan {
            args,
            env: process.env().clone().unwrap_or_default(),
            cwd,
            uid: user.uid(),
            gid: user.gid(),
            groups: user.additional_gids().clone().unwrap_or_default(),
            umask: user.umask(),
            capabilities,
            no_new_privileges: process.no_new_privileges().unwrap_or(false),
            rlimits,
            seccomp,
            console_size: console::size_of(process.console_size())?,
            ..Plan::default()
        })
    }

    fn capabilities(&self) -> Capabilities {
        let mut sets = Capabilities::none();
        match self.capabilities {
            None => {
                sets.bounding = CapabilitySet::ALL;
                sets.permitted = CapabilitySet::ALL;
                sets.effective = CapabilitySet::ALL;
            }
            Some([bounding, effective, inheritable, permitted, ambient]) => {
                sets.bounding = CapabilitySet::from_bits(bounding);
                sets.permitted = CapabilitySet::from_bits(permitted);
                sets.effective = CapabilitySet::from_bits(effective);
                sets.inheritable = CapabilitySet::from_bits(inheritable);
                sets.ambient = CapabilitySet::from_bits(ambient);
            }
        }
        sets
    }

    /// The container's seccomp filter, compiled.
    fn seccomp_program(&self) -> Result<Option<reexec::SeccompProgram>, String> {
        let Some(profile) = &self.seccomp else {
            return Ok(None);
        };
        crate::seccomp::program_from_json(
            &profile.to_string(),
            "exec: the container's linux.seccomp",
        )
        .map(Some)
    }
}

/// The resource an OCI rlimit names.
fn resource(name: &str) -> Result<nix::sys::resource::Resource, String> {
    use nix::sys::resource::Resource;
    Ok(match name {
        "RLIMIT_AS" => Resource::RLIMIT_AS,
        "RLIMIT_CORE" => Resource::RLIMIT_CORE,
        "RLIMIT_CPU" => Resource::RLIMIT_CPU,
        "RLIMIT_DATA" => Resource::RLIMIT_DATA,
        "RLIMIT_FSIZE" => Resource::RLIMIT_FSIZE,
        "RLIMIT_LOCKS" => Resource::RLIMIT_LOCKS,
        "RLIMIT_MEMLOCK" => Resource::RLIMIT_MEMLOCK,
        "RLIMIT_MSGQUEUE" => Resource::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => Resource::RLIMIT_NICE,
        "RLIMIT_NOFILE" => Resource::RLIMIT_NOFILE,
        "RLIMIT_NPROC" => Resource::RLIMIT_NPROC,
        "RLIMIT_RSS" => Resource::RLIMIT_RSS,
        "RLIMIT_RTPRIO" => Resource::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => Resource::RLIMIT_RTTIME,
        "RLIMIT_SIGPENDING" => Resource::RLIMIT_SIGPENDING,
        "RLIMIT_STACK" => Resource::RLIMIT_STACK,
        other => return Err(format!("exec: process.rlimits: unknown type {other:?}")),
    })
}

/// In the container: joins it, starts the process, reports its pid (`P1234`) or why not
/// (`Ewhat went wrong`) on descriptor 4, and ends; the process lives on.
#[reexec::entry("nsExec")]
fn ns_exec() -> ExitCode {
    let Some(report) = crate::sys::claim_handed_fd(REPORT_FD) else {
        eprintln!("ns-runtime: {ENTRY}: started without its report descriptor");
        return ExitCode::FAILURE;
    };
    let outcome = enter_and_start();
    let text = match &outcome {
        Ok(pid) => format!("P{pid}"),
        Err(message) => format!("E{message}"),
    };
    let _ = std::fs::File::from(report).write_all(text.as_bytes());
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

fn enter_and_start() -> Result<u32, String> {
    // Non-dumpable, as the init: its child is in the container's PID namespace until it
    // execs, and the container's root, without CAP_SYS_PTRACE over the host's user
    // namespace, can then neither trace it nor open its /proc/PID/exe — this binary
    // (runc's CVE-2019-5736) — nor its descriptors.
    nix::sys::prctl::set_dumpable(false)
        .map_err(|errno| format!("prctl(PR_SET_DUMPABLE, 0): {}", errno.desc()))?;
    let plan_fd = crate::sys::claim_handed_fd(PLAN_FD).ok_or("no plan descriptor")?;
    let mut text = String::new();
    std::fs::File::from(plan_fd)
        .read_to_string(&mut text)
        .map_err(|error| format!("reading the plan: {error}"))?;
    let plan: Plan = serde_json::from_str(&text).map_err(|error| format!("the plan: {error}"))?;
    let take = |fd: RawFd| {
        crate::sys::claim_handed_fd(fd).ok_or_else(|| format!("descriptor {fd} was not handed"))
    };

    // The cgroup first, while the host's /sys/fs/cgroup is still what this process sees.
    for procs in &plan.cgroup_procs {
        std::fs::write(procs, "0").map_err(|error| {
            format!(
                "joining the container's cgroup: writing {}: {error}",
                procs.display()
            )
        })?;
    }
    for (name, fd) in &plan.namespaces {
        let flags = NAMESPACES
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, flags)| *flags)
            .ok_or_else(|| format!("unknown namespace {name}"))?;
        nix::sched::setns(take(*fd)?, flags).map_err(|errno| {
            format!(
                "joining the container's {name} namespace: setns: {}",
                errno.desc()
            )
        })?;
    }
    // Entering the mount namespace put this process at its top; the container's root is
    // where its init is, which may be below (a pivot or a chroot).
    let root = take(plan.root)?;
    nix::unistd::fchdir(&root)
        .and_then(|()| nix::unistd::chroot("."))
        .and_then(|()| nix::unistd::chdir("/"))
        .map_err(|errno| format!("entering the container's root: {}", errno.desc()))?;
    drop(root);
    if let Some(fd) = plan.pid_namespace {
        nix::sched::setns(take(fd)?, CloneFlags::CLONE_NEWPID).map_err(|errno| {
            format!(
                "joining the container's pid namespace: setns: {}",
                errno.desc()
            )
        })?;
    }
    for (name, soft, hard) in &plan.rlimits {
        nix::sys::resource::setrlimit(resource(name)?, *soft, *hard).map_err(|errno| {
            format!(
                "process.rlimits {name} {soft}/{hard}: setrlimit: {}",
                errno.desc()
            )
        })?;
    }
    if let Some(umask) = plan.umask {
        nix::sys::stat::umask(Mode::from_bits_truncate(umask));
    }
    if plan.no_new_privileges {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|errno| format!("prctl(PR_SET_NO_NEW_PRIVS): {}", errno.desc()))?;
    }
    let seccomp = plan.seccomp_program()?;

    let (program, args) = plan.args.split_first().ok_or("args is empty")?;
    // As std's Command would have it: a later value of a key replaces an earlier one.
    let env: BTreeMap<OsString, OsString> = plan
        .env
        .iter()
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.into(), value.into()))
        .collect();
    let args: Vec<OsString> = args.iter().map(OsString::from).collect();
    let not_started = |error: std::io::Error| match error.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{program:?}: executable file not found in $PATH (or no such file or \
             directory): {error}"
        ),
        _ => format!("{program:?}: {error}"),
    };
    let mut command = CommandStart::new(OsStr::new(program), &args, &env).map_err(not_started)?;
    match std::fs::metadata(&plan.cwd) {
        Ok(metadata) if metadata.is_dir() => {}
        _ => {
            return Err(format!(
                "the working directory {} is no directory in the container",
                plan.cwd.display()
            ));
        }
    }
    command.current_dir(&plan.cwd).map_err(not_started)?;
    // The pty, from the container's devpts, and its master sent out before the process
    // starts: whoever relays it is ready when it first writes.
    if let Some(connection) = plan.console {
        let connection = take(connection)?;
        let pty = console::open_pty(plan.console_size)?;
        console::send_master_on(connection.as_fd(), pty.master.as_fd(), &pty.name)?;
        command.stdio(pty.slave);
        command.take_terminal(true);
    }
    command.identity(
        plan.capabilities(),
        Some((plan.uid, plan.gid)),
        plan.groups.clone(),
    );
    if let Some(program) = seccomp {
        command.seccomp(program);
    }
    crate::sys::close_on_exec_from(3)
        .map_err(|error| format!("close_range(3, CLOSE_RANGE_CLOEXEC): {error}"))?;
    let pid = command.spawn().map_err(not_started)?;
    Ok(pid as u32)
}
