//! The container's cgroup at `linux.cgroupsPath`, limited by `linux.resources`, kept from
//! `create` to `delete`.
//!
//! As runc does, every container gets a cgroup, so that `ps`, `kill --all` and `delete`
//! find its processes: at `cgroupsPath`, or `ns-runtime/ID` below the runtime's own cgroup
//! when the config has none. A relative `cgroupsPath` is below the runtime's own cgroup; an
//! absolute one (what podman and containerd give) from each hierarchy's root. On cgroup v1
//! it is made in the hierarchies of memory, pids, cpu and freezer (and cpuset, devices
//! when they are used), not in every mounted one as runc does: the others would limit
//! nothing. podman 4.3.1 with `--cgroup-manager cgroupfs --cgroup-parent P` gives
//! `/P/libpod-ID` (it makes `P` itself, in every hierarchy, and conmon's `P/conmon`);
//! `delete` removes the container's cgroup only, as runc, never the client's parent.
//!
//! Without privilege and no delegated cgroup, a config that asks for no resources runs
//! without a cgroup (`ps` and `kill --all` then see the init alone); one that asks for
//! limits is refused: a limit is never dropped.
//!
//! A relative path is found again from the caller's cgroup: `delete`, `ps` and `kill`
//! must run in the cgroup `create` ran in (as a shell or a test running them in turn is).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use oci_spec::runtime::{LinuxDeviceType, LinuxResources, Spec};
use reexec::{Cgroup, Controller};

/// Where the container's cgroup is when the config names none: below the runtime's own.
const DEFAULT_PARENT: &str = "ns-runtime";

/// The kernel's default CPU period, for a quota given without one.
const DEFAULT_CPU_PERIOD: Duration = Duration::from_millis(100);

/// The device nodes every container may use whatever its rules say, as runtime-spec's
/// default devices (null, zero, full, random, urandom, tty, console, ptmx, the ptys), and
/// the making of any node (`m`), which opening it still needs a rule for.
const DEFAULT_DEVICES: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
];

/// The container's cgroup path: `linux.cgroupsPath`, or `ns-runtime/ID`.
pub(crate) fn path(spec: &Spec, id: &str) -> PathBuf {
    spec.linux()
        .as_ref()
        .and_then(|linux| linux.cgroups_path().clone())
        .unwrap_or_else(|| Path::new(DEFAULT_PARENT).join(id))
}

/// Makes the container's cgroup and sets `linux.resources` on it; `None` when no cgroup
/// can be made and none is needed (no privilege, no resources). The caller gives it to
/// the init's `reexec::Command::cgroup`, then `keep`s it past `create`.
pub(crate) fn create(spec: &Spec, id: &str) -> Result<Option<Cgroup>, String> {
    let resources = resources(spec);
    let asked = asked(resources.as_ref())?;
    let path = path(spec, id);
    let available = Cgroup::available();
    let mut controllers = Vec::new();
    for (field, controller) in &asked {
        if !available.contains(controller) {
            return Err(format!(
                "linux.resources.{field} needs the {} cgroup controller, which this host \
                 does not offer below the runtime's cgroup (/proc/self/cgroup): leave the \
                 limit out, or run where the controller is mounted or delegated",
                controller.name()
            ));
        }
        if !controllers.contains(controller) {
            controllers.push(*controller);
        }
    }
    // The processes are tracked with what is there, limited or not; the freezer stops
    // them all for kill --all.
    for controller in [
        Controller::Memory,
        Controller::Pids,
        Controller::Cpu,
        Controller::Freezer,
    ] {
        if available.contains(&controller) && !controllers.contains(&controller) {
            controllers.push(controller);
        }
    }
    let device_rules = resources.as_ref().and_then(|r| r.devices().clone());
    let devices = device_rules.is_some() && available.contains(&Controller::Devices);
    if devices && !controllers.contains(&Controller::Devices) {
        controllers.push(Controller::Devices);
    }
    let mut cgroup = match create_at(&path, &controllers) {
        Ok(cgroup) => cgroup,
        Err(error) => return without_cgroup(&asked, &path, error),
    };
    let limited = set_limits(&cgroup, resources.as_ref(), devices.then_some(spec));
    if let Err(error) = limited {
        // Nothing left behind by a failed create.
        let parents = parents(&cgroup);
        return Err(match cgroup.remove() {
            Ok(()) => {
                remove_default_parents(spec, parents);
                error
            }
            Err(also) => format!("{error} (and removing its cgroup: {also})"),
        });
    }
    // From now on only `delete` removes it.
    cgroup.keep();
    Ok(Some(cgroup))
}

/// When the cgroup could not be made: no cgroup at all for a caller without a delegated
/// one whose config asks for no limits; a refusal naming the limits otherwise.
fn without_cgroup(
    asked: &[(&str, Controller)],
    path: &Path,
    error: reexec::Error,
) -> Result<Option<Cgroup>, String> {
    if asked.is_empty() && no_permission(&error) {
        return Ok(None);
    }
    let why = if asked.is_empty() {
        String::new()
    } else {
        let fields: Vec<&str> = asked.iter().map(|(field, _)| *field).collect();
        format!(" for linux.resources ({})", fields.join(", "))
    };
    Err(format!(
        "the container's cgroup {}{why} could not be made: {error}",
        path.display()
    ))
}

/// Removes the container's cgroup (at `delete`, its processes gone), and the default
/// parent `ns-runtime` once no other container's is in it. A container that has none is
/// fine.
pub(crate) fn remove(spec: &Spec, id: &str) -> Result<(), String> {
    let path = path(spec, id);
    let Ok(cgroup) = Cgroup::open(&path) else {
        return Ok(());
    };
    let parents = parents(&cgroup);
    cgroup.remove().map_err(|error| {
        format!(
            "removing the container's cgroup {}: {error}",
            path.display()
        )
    })?;
    remove_default_parents(spec, parents);
    Ok(())
}

fn parents(cgroup: &Cgroup) -> Vec<PathBuf> {
    cgroup
        .paths()
        .filter_map(Path::parent)
        .map(Path::to_path_buf)
        .collect()
}

/// Removes the default parent `ns-runtime` in each hierarchy once no container's cgroup
/// is in it; a `cgroupsPath`'s parents are the client's, and stay.
fn remove_default_parents(spec: &Spec, parents: Vec<PathBuf>) {
    if spec
        .linux()
        .as_ref()
        .and_then(|linux| linux.cgroups_path().as_ref())
        .is_none()
    {
        for parent in parents {
            // Best effort: another container's cgroup keeps it, and its removal takes it.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// The pids of the container's processes (host pids), for `ps` and `kill --all`; none
/// when it has no cgroup.
pub(crate) fn processes(spec: &Spec, id: &str) -> Result<Vec<i32>, String> {
    let path = path(spec, id);
    let Ok(cgroup) = Cgroup::open(&path) else {
        return Ok(Vec::new());
    };
    let pids = cgroup.processes().map_err(|error| {
        format!(
            "listing the processes of the container's cgroup {}: {error}",
            path.display()
        )
    })?;
    Ok(pids.into_iter().map(|pid| pid as i32).collect())
}

/// `kill --all`: sends `signal` to every process of the container's cgroup, frozen
/// meanwhile where the host can (so that none forks one more that the signal misses);
/// returns how many were signalled — none when the container has no cgroup, and then the
/// caller signals the init alone.
pub(crate) fn signal_all(
    spec: &Spec,
    id: &str,
    signal: nix::sys::signal::Signal,
) -> Result<usize, String> {
    let path = path(spec, id);
    let Ok(cgroup) = Cgroup::open(&path) else {
        return Ok(0);
    };
    // Without a freezer (v1 without one mounted) the signals still go, one by one.
    let frozen = cgroup.freeze().is_ok();
    let listed = cgroup.processes();
    let mut signalled = 0;
    if let Ok(pids) = &listed {
        for &pid in pids {
            match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal) {
                Ok(()) => signalled += 1,
                // Ended meanwhile.
                Err(Errno::ESRCH) => {}
                Err(errno) => {
                    if frozen {
                        let _ = cgroup.thaw();
                    }
                    return Err(format!("kill({pid}, {signal}): {}", errno.desc()));
                }
            }
        }
    }
    if frozen {
        cgroup.thaw().map_err(|error| {
            format!(
                "thawing the container's cgroup {} after the signals: {error}",
                path.display()
            )
        })?;
    }
    listed.map_err(|error| {
        format!(
            "listing the processes of the container's cgroup {}: {error}",
            path.display()
        )
    })?;
    Ok(signalled)
}

/// [`Cgroup::create_at`], once more if a concurrent `delete` removed the default parent
/// between its making and the container's.
fn create_at(path: &Path, controllers: &[Controller]) -> Result<Cgroup, reexec::Error> {
    Cgroup::create_at(path, controllers).or_else(|error| {
        if error.raw_os_error() == Some(Errno::ENOENT as i32) {
            Cgroup::create_at(path, controllers)
        } else {
            Err(error)
        }
    })
}

/// Whether `error` is the refusal of a caller without a delegated cgroup.
fn no_permission(error: &reexec::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(code) if [Errno::EACCES, Errno::EPERM, Errno::EROFS].contains(&Errno::from_raw(code))
    )
}

fn resources(spec: &Spec) -> Option<LinuxResources> {
    spec.linux()
        .as_ref()
        .and_then(|linux| linux.resources().clone())
}

/// The limits `resources` sets (a field and the controller it needs), refusing those
/// ns-runtime does not support rather than running without them.
fn asked(resources: Option<&LinuxResources>) -> Result<Vec<(&'static str, Controller)>, String> {
    let Some(resources) = resources else {
        return Ok(Vec::new());
    };
    let mut asked = Vec::new();
    let unsupported = |field: &str| {
        Err(format!(
            "linux.resources.{field} is not supported by ns-runtime: leave it out of the config \
             (supported: memory limit, swap and reservation; pids limit; cpu shares, quota, \
             period, cpus and mems; devices)"
        ))
    };
    if let Some(memory) = resources.memory() {
        if memory.limit().is_some_and(|limit| limit > 0) {
            asked.push(("memory.limit", Controller::Memory));
        }
        if memory.swap().is_some_and(|swap| swap > 0) {
            asked.push(("memory.swap", Controller::Memory));
        }
        if memory.reservation().is_some_and(|bytes| bytes > 0) {
            asked.push(("memory.reservation", Controller::Memory));
        }
        if memory.swappiness().is_some() {
            return unsupported("memory.swappiness");
        }
        if memory.disable_oom_killer() == Some(true) {
            return unsupported("memory.disableOOMKiller");
        }
        // memory.kernel and kernelTCP are deprecated by the spec, and ignored by the
        // kernels that still have them in v1: left out, as runc does.
    }
    if resources.pids().is_some_and(|pids| pids.limit() > 0) {
        asked.push(("pids.limit", Controller::Pids));
    }
    if let Some(cpu) = resources.cpu() {
        if cpu.shares().is_some_and(|shares| shares > 0) {
            asked.push(("cpu.shares", Controller::Cpu));
        }
        if cpu.quota().is_some_and(|quota| quota > 0) {
            asked.push(("cpu.quota", Controller::Cpu));
        }
        if cpu.period().is_some_and(|period| period > 0) {
            asked.push(("cpu.period", Controller::Cpu));
        }
        if cpu.cpus().as_ref().is_some_and(|cpus| !cpus.is_empty()) {
            asked.push(("cpu.cpus", Controller::Cpuset));
        }
        if cpu.mems().as_ref().is_some_and(|mems| !mems.is_empty()) {
            asked.push(("cpu.mems", Controller::Cpuset));
        }
        if cpu.realtime_runtime().is_some_and(|v| v != 0)
            || cpu.realtime_period().is_some_and(|v| v != 0)
        {
            return unsupported("cpu.realtimeRuntime/realtimePeriod");
        }
        if cpu.idle().is_some_and(|idle| idle != 0) {
            return unsupported("cpu.idle");
        }
        if cpu.burst().is_some_and(|burst| burst != 0) {
            return unsupported("cpu.burst");
        }
    }
    for (field, set) in [
        ("blockIO", resources.block_io().is_some()),
        (
            "hugepageLimits",
            resources
                .hugepage_limits()
                .as_ref()
                .is_some_and(|l| !l.is_empty()),
        ),
        ("network", resources.network().is_some()),
        (
            "rdma",
            resources.rdma().as_ref().is_some_and(|r| !r.is_empty()),
        ),
        (
            "unified",
            resources.unified().as_ref().is_some_and(|u| !u.is_empty()),
        ),
    ] {
        if set {
            return unsupported(field);
        }
    }
    Ok(asked)
}

/// Sets `resources` on `cgroup`; with `devices_of`, its device rules too (then the
/// default devices and the config's `linux.devices`, which the container needs to open).
fn set_limits(
    cgroup: &Cgroup,
    resources: Option<&LinuxResources>,
    devices_of: Option<&Spec>,
) -> Result<(), String> {
    let Some(resources) = resources else {
        return Ok(());
    };
    let failed = |field: &str, error: reexec::Error| {
        format!("linux.resources.{field}: the limit could not be set: {error}")
    };
    if let Some(memory) = resources.memory() {
        let limit = memory.limit().filter(|&limit| limit > 0);
        if let Some(limit) = limit {
            cgroup
                .set_memory_max(limit as u64)
                .map_err(|e| failed("memory.limit", e))?;
        }
        if let Some(swap) = memory.swap().filter(|&swap| swap > 0) {
            if limit.is_none() {
                return Err("linux.resources.memory.swap is memory plus swap: it needs \
                            memory.limit too"
                    .into());
            }
            match cgroup.set_memory_swap_max(swap as u64) {
                Ok(()) => {}
                // A kernel that does not account swap (v1 without swapaccount=1): the
                // memory limit holds, as with runc.
                Err(error) if error.raw_os_error() == Some(Errno::ENOENT as i32) => {}
                Err(error) => return Err(failed("memory.swap", error)),
            }
        }
        if let Some(bytes) = memory.reservation().filter(|&bytes| bytes > 0) {
            cgroup
                .set_memory_reservation(bytes as u64)
                .map_err(|e| failed("memory.reservation", e))?;
        }
    }
    if let Some(limit) = resources.pids().map(|pids| pids.limit()).filter(|&l| l > 0) {
        cgroup
            .set_pids_max(limit as u64)
            .map_err(|e| failed("pids.limit", e))?;
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(shares) = cpu.shares().filter(|&shares| shares > 0) {
            cgroup
                .set_cpu_shares(shares)
                .map_err(|e| failed("cpu.shares", e))?;
        }
        let period = cpu
            .period()
            .filter(|&period| period > 0)
            .map(Duration::from_micros);
        match (cpu.quota().filter(|&quota| quota > 0), period) {
            (Some(quota), period) => cgroup
                .set_cpu_max(
                    Duration::from_micros(quota as u64),
                    period.unwrap_or(DEFAULT_CPU_PERIOD),
                )
                .map_err(|e| failed("cpu.quota", e))?,
            (None, Some(period)) => cgroup
                .set_cpu_period(period)
                .map_err(|e| failed("cpu.period", e))?,
            (None, None) => {}
        }
        if let Some(cpus) = cpu.cpus().as_ref().filter(|cpus| !cpus.is_empty()) {
            cgroup
                .set_cpuset_cpus(cpus)
                .map_err(|e| failed("cpu.cpus", e))?;
        }
        if let Some(mems) = cpu.mems().as_ref().filter(|mems| !mems.is_empty()) {
            cgroup
                .set_cpuset_mems(mems)
                .map_err(|e| failed("cpu.mems", e))?;
        }
    }
    if let (Some(spec), Some(rules)) = (devices_of, resources.devices()) {
        for rule in rules {
            let text = format!(
                "{} {}:{} {}",
                rule.typ().unwrap_or_default().as_str(),
                number(rule.major()),
                number(rule.minor()),
                rule.access().as_deref().unwrap_or("rwm")
            );
            let set = if rule.allow() {
                cgroup.allow_device(&text)
            } else {
                cgroup.deny_device(&text)
            };
            set.map_err(|e| failed(&format!("devices ({text})"), e))?;
        }
        let listed = spec
            .linux()
            .as_ref()
            .and_then(|linux| linux.devices().clone())
            .unwrap_or_default();
        // A fifo needs no rule; an unbuffered character device is a character one.
        let listed = listed.iter().filter_map(|device| {
            let kind = match device.typ() {
                LinuxDeviceType::B => "b",
                LinuxDeviceType::C | LinuxDeviceType::U => "c",
                LinuxDeviceType::P | LinuxDeviceType::A => return None,
            };
            Some(format!("{kind} {}:{} rwm", device.major(), device.minor()))
        });
        for text in DEFAULT_DEVICES
            .iter()
            .map(|rule| rule.to_string())
            .chain(listed)
        {
            cgroup
                .allow_device(&text)
                .map_err(|e| failed(&format!("devices (allowing {text})"), e))?;
        }
    }
    Ok(())
}

/// A device number of a rule: `*` for any.
fn number(number: Option<i64>) -> String {
    number.map_or_else(|| "*".into(), |number| number.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config with `linux` as given (JSON), the rest empty.
    fn spec(linux: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({ "ociVersion": "1.0.2", "linux": linux }))
            .unwrap()
    }

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    /// Whether memory, pids, cpu, devices and freezer are v1 hierarchies here, as the tests of
    /// v1 limits need.
    fn v1_here() -> bool {
        let available = Cgroup::available();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let v1 = |name: &str| {
            mountinfo
                .lines()
                .any(|line| line.contains(" - cgroup ") && line.rsplit(',').any(|o| o == name))
        };
        ["memory", "pids", "cpu", "devices", "freezer"]
            .iter()
            .all(|c| v1(c))
            && available.contains(&Controller::Devices)
    }

    /// Removes the container's cgroup even when an assertion fails first.
    struct RemovedAtEnd<'a>(&'a Spec, &'a str);

    impl Drop for RemovedAtEnd<'_> {
        fn drop(&mut self) {
            let _ = remove(self.0, self.1);
        }
    }

    fn read(dir: &Path, file: &str) -> String {
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_owned()
    }

    /// Runs `script` with sh in the cgroup's directories (it joins them first).
    fn sh_in(cgroup: &Cgroup, script: &str) -> std::process::Output {
        let procs: Vec<String> = cgroup
            .paths()
            .map(|dir| format!("echo $$ > {}/cgroup.procs", dir.display()))
            .collect();
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{} && {script}", procs.join(" && ")))
            .output()
            .unwrap()
    }

    #[test]
    fn the_resources_are_set_and_the_devices_denied_and_delete_leaves_nothing() {
        if !is_root() || !v1_here() {
            println!(
                "skipped: needs root and v1 memory, pids, cpu, devices and freezer hierarchies"
            );
            return;
        }
        let id = format!("cg-test-{}", std::process::id());
        let spec = spec(serde_json::json!({
            "resources": {
                "devices": [{ "allow": false, "access": "rwm" }],
                "memory": { "limit": 67108864, "swap": 134217728, "reservation": 33554432 },
                "cpu": { "quota": 50000, "period": 100000, "shares": 512 },
                "pids": { "limit": 50 }
            }
        }));
        let cgroup = create(&spec, &id).unwrap().unwrap();
        let _removed = RemovedAtEnd(&spec, &id);
        let memory = cgroup.path(Controller::Memory).unwrap().to_path_buf();
        assert!(
            memory.ends_with(format!("ns-runtime/{id}")),
            "{}",
            memory.display()
        );
        assert_eq!(read(&memory, "memory.limit_in_bytes"), "67108864");
        assert_eq!(read(&memory, "memory.soft_limit_in_bytes"), "33554432");
        if memory.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), "134217728");
        }
        let pids = cgroup.path(Controller::Pids).unwrap();
        assert_eq!(read(pids, "pids.max"), "50");
        let cpu = cgroup.path(Controller::Cpu).unwrap();
        assert_eq!(read(cpu, "cpu.cfs_quota_us"), "50000");
        assert_eq!(read(cpu, "cpu.shares"), "512");
        // The devices: /dev/null opens; a node of a device no rule allows (the kernel
        // log, 1:11) made by root, which opens outside the cgroup, does not inside.
        let dir = std::env::temp_dir().join(format!("ns-runtime-{id}"));
        std::fs::create_dir(&dir).unwrap();
        let node = dir.join("kmsg");
        let mknod = std::process::Command::new("mknod")
            .arg(&node)
            .args(["c", "1", "11"])
            .status()
            .unwrap();
        assert!(mknod.success());
        let outside = std::fs::File::open(&node);
        let script = format!(": </dev/null && echo null-ok && : <{}", node.display());
        let output = sh_in(&cgroup, &script);
        std::fs::remove_dir_all(&dir).unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stdout.contains("null-ok"), "{stdout} {stderr}");
        if let Err(error) = outside {
            println!("the node does not open even outside ({error}): device check skipped");
        } else {
            assert!(!output.status.success(), "the node opened: {stderr}");
            assert!(stderr.contains("not permitted"), "{stderr}");
        }
        // A process in it is listed, as ps and kill --all see them.
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        for dir in cgroup.paths() {
            std::fs::write(dir.join("cgroup.procs"), sleeper.id().to_string()).unwrap();
        }
        assert_eq!(processes(&spec, &id).unwrap(), vec![sleeper.id() as i32]);
        // exec's process joins the same directories.
        let opened = Cgroup::open(&path(&spec, &id)).unwrap();
        assert!(cgroup.paths().all(|dir| opened.paths().any(|o| o == dir)));
        // kill --all, through the freezer.
        assert!(cgroup.path(Controller::Freezer).is_some());
        assert_eq!(
            signal_all(&spec, &id, nix::sys::signal::Signal::SIGKILL).unwrap(),
            1
        );
        let status = sleeper.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        // Kept past create: dropping the handle leaves it for delete.
        let dirs: Vec<PathBuf> = cgroup.paths().map(Path::to_path_buf).collect();
        drop(cgroup);
        assert!(dirs.iter().all(|dir| dir.is_dir()));
        remove(&spec, &id).unwrap();
        assert!(dirs.iter().all(|dir| !dir.exists()), "{dirs:?}");
        assert_eq!(processes(&spec, &id).unwrap(), Vec::<i32>::new());
        assert_eq!(
            signal_all(&spec, &id, nix::sys::signal::Signal::SIGKILL).unwrap(),
            0
        );
        // Removing twice is fine: delete --force of a container whose cgroup is gone.
        remove(&spec, &id).unwrap();
        // A privileged container's rule (podman --privileged): every device.
        let privileged = super::tests::spec(serde_json::json!({
            "resources": { "devices": [{ "allow": true, "access": "rwm" }] }
        }));
        let cgroup = create(&privileged, &id).unwrap().unwrap();
        let _removed = RemovedAtEnd(&privileged, &id);
        let devices = cgroup.path(Controller::Devices).unwrap();
        assert_eq!(read(devices, "devices.list"), "a *:* rwm");
    }

    #[test]
    fn an_absolute_cgroups_path_is_from_the_root_as_podman_gives_it() {
        if !is_root() || !v1_here() {
            println!("skipped: needs root and v1 hierarchies");
            return;
        }
        // As podman --cgroup-manager cgroupfs --cgroup-parent P: /P/libpod-ID, P here
        // below the test's own memory cgroup.
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .unwrap()
            .lines()
            .find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, listed, path) = (parts.next()?, parts.next()?, parts.next()?);
                (listed == "memory").then(|| path.to_owned())
            })
            .unwrap();
        let id = format!("abs-{}", std::process::id());
        let parent = format!("{}/cg-test-parent-{id}", own.trim_end_matches('/'));
        let cgroups_path = format!("{parent}/libpod-{id}");
        let spec = spec(serde_json::json!({
            "cgroupsPath": cgroups_path,
            "resources": { "pids": { "limit": 10 } }
        }));
        // What existed before: only what the test causes is removed after.
        // Every hierarchy (the runtime also makes its cgroup in the freezer's, and
        // others), each once: the co-mounted controllers' links left out.
        let hierarchies: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| entry.path())
            .collect();
        let ancestors = |root: &Path| -> Vec<PathBuf> {
            Path::new(parent.trim_start_matches('/'))
                .ancestors()
                .filter(|a| !a.as_os_str().is_empty())
                .map(|a| root.join(a))
                .collect()
        };
        let before: Vec<PathBuf> = hierarchies
            .iter()
            .flat_map(|root| ancestors(root))
            .filter(|dir| dir.exists())
            .collect();
        let cgroup = create(&spec, &id).unwrap().unwrap();
        let _removed = RemovedAtEnd(&spec, &id);
        let pids = cgroup.path(Controller::Pids).unwrap().to_path_buf();
        assert_eq!(
            pids,
            Path::new("/sys/fs/cgroup/pids").join(cgroups_path.trim_start_matches('/'))
        );
        assert_eq!(read(&pids, "pids.max"), "10");
        remove(&spec, &id).unwrap();
        assert!(!pids.exists());
        // As runc, delete takes the container's cgroup, not the parent the client named.
        assert!(pids.parent().unwrap().is_dir());
        for root in &hierarchies {
            for dir in ancestors(root) {
                if !before.contains(&dir) && dir.exists() {
                    std::fs::remove_dir(&dir).unwrap();
                }
            }
        }
    }

    #[test]
    fn without_permission_no_limits_means_no_cgroup_and_limits_a_refusal() {
        let denied = || reexec::Error::Cgroup {
            step: reexec::Step::ManageCgroup,
            action: "creating the cgroup".into(),
            target: "/sys/fs/cgroup/pids/ns-runtime".into(),
            source: std::io::Error::from_raw_os_error(Errno::EACCES as i32),
            hint: "no delegation".into(),
        };
        let path = Path::new("ns-runtime/c1");
        assert!(without_cgroup(&[], path, denied()).unwrap().is_none());
        let error =
            without_cgroup(&[("pids.limit", Controller::Pids)], path, denied()).unwrap_err();
        assert!(
            error.contains("ns-runtime/c1 for linux.resources (pids.limit)")
                && error.contains("no delegation"),
            "{error}"
        );
    }

    #[test]
    fn unsupported_resources_are_refused_by_name() {
        for (resources, field) in [
            (
                serde_json::json!({ "memory": { "swappiness": 10 } }),
                "memory.swappiness",
            ),
            (
                serde_json::json!({ "cpu": { "realtimeRuntime": 5 } }),
                "cpu.realtime",
            ),
            (
                serde_json::json!({ "blockIO": { "weight": 10 } }),
                "blockIO",
            ),
            (
                serde_json::json!({ "unified": { "memory.high": "1" } }),
                "unified",
            ),
        ] {
            let spec = spec(serde_json::json!({ "resources": resources }));
            let error = create(&spec, "refused").unwrap_err();
            assert!(
                error.contains(&format!("linux.resources.{field}"))
                    && error.contains("not supported"),
                "{error}"
            );
        }
        // A swap without a memory limit says what is missing, and leaves no cgroup.
        if is_root() && v1_here() {
            let spec = spec(serde_json::json!({
                "resources": { "memory": { "swap": 134217728 } }
            }));
            let error = create(&spec, "swap-alone").unwrap_err();
            assert!(error.contains("needs memory.limit too"), "{error}");
            assert!(Cgroup::open(Path::new("ns-runtime/swap-alone")).is_err());
        }
    }

    #[test]
    fn the_default_path_is_below_the_runtimes_own_cgroup() {
        let spec_without = spec(serde_json::json!({}));
        assert_eq!(path(&spec_without, "c1"), Path::new("ns-runtime/c1"));
        let given = spec(serde_json::json!({ "cgroupsPath": "/machine/c1" }));
        assert_eq!(path(&given, "c1"), Path::new("/machine/c1"));
    }
}
