//! A bundle's `config.json`, turned into the `ns-process` command line that runs it: one
//! engine, two front ends. Each field becomes ns-process flags (public ones where podman
//! has the same, hidden `--internal-…` ones otherwise), parsed by the init with the same
//! `cli::Options` and run by the same setup steps as a command line typed by hand.
//!
//! What the engine can't do is either left out with a note (where the spec lets a
//! runtime ignore it, or ignoring it only takes away from the process) or refused with
//! an error naming the field: README.md's table "ns-runtime: config.json fields".
//! `linux.resources`, `linux.cgroupsPath` and `hooks` are the runtime's own
//! (`cgroups.rs`, `hooks.rs`), not the engine's.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use oci_spec::runtime::{LinuxCapabilities, LinuxNamespaceType, Mount, Process, Spec};

/// `spec`'s flags.
#[derive(Debug, clap::Args)]
pub(crate) struct SpecArgs {
    /// The bundle directory to write `config.json` into.
    #[arg(long, short, value_name = "DIR", default_value = ".")]
    pub(crate) bundle: std::path::PathBuf,
    /// A config for a run without privilege (user namespace, maps of the caller).
    #[arg(long)]
    pub(crate) rootless: bool,
    /// Instead: print the ns-process arguments that run the bundle's config.json, each
    /// ended by a NUL byte, and what they leave out on stderr.
    #[arg(long, hide = true, conflicts_with = "rootless")]
    pub(crate) print_engine_args: bool,
}

/// The OCI runtime spec versions ns-runtime reads: any 1.x.
const OCI_VERSION_MIN: &str = "1.0.0";
/// The newest version of the spec ns-runtime knows, oci-spec's.
const OCI_VERSION_MAX: &str = oci_spec::runtime::VERSION;

/// Reads `bundle/config.json`. The error names the file and, for a value of the wrong
/// type, the field (`process.user.uid`).
pub(crate) fn load(bundle: &Path) -> Result<Spec, String> {
    let path = bundle.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{}: no config.json in the bundle; write one with `ns-runtime spec --bundle {}`",
            path.display(),
            bundle.display()
        ),
        _ => format!("reading {}: {error}", path.display()),
    })?;
    parse(&text).map_err(|why| format!("{}: {why}", path.display()))
}

/// A config.json's text, parsed and its version checked.
fn parse(text: &str) -> Result<Spec, String> {
    if let Err(error) = serde_json::from_str::<serde_json::Value>(text) {
        return Err(format!("not valid JSON: {error}"));
    }
    let spec: Spec = serde_json::from_str(text).map_err(|error| {
        let field = field_at(text, error.line(), error.column());
        let field = if field.is_empty() {
            "the top level".to_owned()
        } else {
            field
        };
        format!("{field}: {error}")
    })?;
    let version = spec.version();
    let major = version.split('.').next().unwrap_or_default();
    if major != "1" {
        return Err(format!(
            "ociVersion {version:?}: ns-runtime reads version 1 of the OCI runtime spec \
             ({OCI_VERSION_MIN} to {OCI_VERSION_MAX}); write a config for it"
        ));
    }
    Ok(spec)
}

/// The JSON path (`process.rlimits[0].hard`) of the value at `line` and `column` (both
/// from 1, as serde_json counts them) of `text`, a valid JSON document.
fn field_at(text: &str, line: usize, column: usize) -> String {
    enum Frame {
        Object(Option<String>),
        Array(usize),
    }
    let offset = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        + column.saturating_sub(1);
    let mut stack: Vec<Frame> = Vec::new();
    let mut expect_key = false;
    let mut chars = text.char_indices().peekable();
    while let Some((index, char)) = chars.next() {
        if index >= offset {
            break;
        }
        match char {
            '"' => {
                let mut string = String::new();
                while let Some((_, char)) = chars.next() {
                    match char {
                        '\\' => {
                            chars.next();
                        }
                        '"' => break,
                        char => string.push(char),
                    }
                }
                if let (Some(Frame::Object(key)), true) = (stack.last_mut(), expect_key) {
                    *key = Some(string);
                    expect_key = false;
                }
            }
            '{' => {
                stack.push(Frame::Object(None));
                expect_key = true;
            }
            '[' => stack.push(Frame::Array(0)),
            '}' | ']' => {
                stack.pop();
            }
            ',' => match stack.last_mut() {
                Some(Frame::Object(_)) => expect_key = true,
                Some(Frame::Array(index)) => *index += 1,
                None => {}
            },
            _ => {}
        }
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// An ns-process command line, and the notes on what config.json asked that it leaves
/// out (for the runtime's debug log).
#[derive(Debug, Default)]
pub(crate) struct Translation {
    pub(crate) args: Vec<OsString>,
    pub(crate) notes: Vec<String>,
}

impl Translation {
    fn flag(&mut self, flag: &str, value: impl Into<OsString>) {
        self.args.push(flag.into());
        self.args.push(value.into());
    }

    fn switch(&mut self, flag: &str) {
        self.args.push(flag.into());
    }

    fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

/// [`engine_args`], with the notes.
pub(crate) fn translate(spec: &Spec, bundle: &Path) -> Result<Translation, String> {
    let mut out = Translation::default();
    let root = spec
        .root()
        .as_ref()
        .ok_or("root is missing: give root.path, the container's root filesystem")?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    out.flag("--rootfs", rootfs);
    if root.readonly() == Some(true) {
        out.switch("--read-only");
    }
    // config.json says what is mounted where: no /tmp of ns-process's own.
    out.switch("--tmp-on-rootfs");

    let process = spec
        .process()
        .as_ref()
        .ok_or("process is missing: ns-runtime runs config.json's process")?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or("linux is missing: ns-runtime runs Linux containers only")?;

    let new_uts = namespaces(linux, &mut out)?;
    if let Some(hostname) = spec.hostname() {
        if !new_uts {
            return Err(format!(
                "hostname {hostname:?} needs a UTS namespace of the container's own: add \
                 {{\"type\": \"uts\"}} to linux.namespaces, or drop hostname"
            ));
        }
        out.flag("--hostname", hostname);
    } else if new_uts {
        out.note("no hostname: the UTS namespace gets ns-process's (\"ns-process\")");
    }
    if let Some(domainname) = spec.domainname() {
        if !new_uts {
            return Err(format!(
                "domainname {domainname:?} needs a UTS namespace of the container's own: add \
                 {{\"type\": \"uts\"}} to linux.namespaces, or drop domainname"
            ));
        }
        out.flag("--sysctl", format!("kernel.domainname={domainname}"));
    }
    for (flag, maps) in [
        ("--map-users", linux.uid_mappings()),
        ("--map-groups", linux.gid_mappings()),
    ] {
        for map in maps.iter().flatten() {
            out.flag(
                flag,
                format!("{}:{}:{}", map.container_id(), map.host_id(), map.size()),
            );
        }
    }
    mounts(spec, bundle, &mut out)?;
    linux_fields(linux, &mut out)?;
    process_fields(process, &mut out)?;

    out.switch("--");
    let args = process
        .args()
        .as_ref()
        .filter(|args| !args.is_empty())
        .ok_or("process.args is missing or empty: give the program to run and its arguments")?;
    out.args.extend(args.iter().map(OsString::from));
    Ok(out)
}

/// `linux.namespaces`: a kind not listed is the runtime's own (`--share`), one with a
/// path is joined (`--join`). Returns whether the UTS namespace is a new one.
fn namespaces(linux: &oci_spec::runtime::Linux, out: &mut Translation) -> Result<bool, String> {
    let listed = linux.namespaces().clone().unwrap_or_default();
    let mut seen = Vec::new();
    for (index, namespace) in listed.iter().enumerate() {
        let kind = namespace.typ();
        if seen.contains(&kind) {
            return Err(format!(
                "linux.namespaces[{index}]: {kind:?} is listed twice; list each kind once"
            ));
        }
        seen.push(kind);
        let name = match kind {
            LinuxNamespaceType::Pid if namespace.path().is_some() => {
                return Err(format!(
                    "linux.namespaces[{index}]: joining a PID namespace is not supported \
                     (ns-process's init would stay outside it); drop its path for a new one"
                ));
            }
            LinuxNamespaceType::Time => {
                return Err(format!(
                    "linux.namespaces[{index}]: time namespaces are not supported; drop it"
                ));
            }
            LinuxNamespaceType::Pid => continue,
            LinuxNamespaceType::Mount => "mnt",
            LinuxNamespaceType::Network => "net",
            LinuxNamespaceType::Ipc => "ipc",
            LinuxNamespaceType::Uts => "uts",
            LinuxNamespaceType::User => "user",
            LinuxNamespaceType::Cgroup => "cgroup",
        };
        match namespace.path() {
            Some(path) => out.flag("--join", join_arg(name, path)),
            None if kind == LinuxNamespaceType::Cgroup => out.flag("--cgroupns", "private"),
            None => {}
        }
    }
    let shared = [
        (LinuxNamespaceType::Mount, "mount"),
        (LinuxNamespaceType::Uts, "uts"),
        (LinuxNamespaceType::Ipc, "ipc"),
        (LinuxNamespaceType::Pid, "pid"),
        (LinuxNamespaceType::Network, "net"),
        (LinuxNamespaceType::User, "user"),
    ];
    for (kind, name) in shared {
        if !seen.contains(&kind) {
            out.flag("--share", name);
        }
    }
    let uts = listed
        .iter()
        .find(|namespace| namespace.typ() == LinuxNamespaceType::Uts);
    Ok(uts.is_some_and(|namespace| namespace.path().is_none()))
}

fn join_arg(name: &str, path: &Path) -> OsString {
    let mut arg = OsString::from(format!("{name}="));
    arg.push(path);
    arg
}

/// The mounts ns-process makes itself in a rootfs, as config.json lists them: (type,
/// destination). The spec's default list names exactly these, and the engine makes each
/// with its own hardened options.
const OWN_MOUNTS: [(&str, &str); 6] = [
    ("proc", "/proc"),
    ("tmpfs", "/dev"),
    ("devpts", "/dev/pts"),
    ("tmpfs", "/dev/shm"),
    ("mqueue", "/dev/mqueue"),
    ("sysfs", "/sys"),
];

/// `mounts`: those ns-process makes itself are recognised, binds and tmpfs become
/// `--mount`, anything else is refused.
fn mounts(spec: &Spec, bundle: &Path, out: &mut Translation) -> Result<(), String> {
    let mounts = spec.mounts().clone().unwrap_or_default();
    let mut own_listed = Vec::new();
    let mut cgroup_listed = false;
    for (index, mount) in mounts.iter().enumerate() {
        let destination = mount.destination();
        let at = |why: String| format!("mounts[{index}] ({}): {why}", destination.display());
        let fstype = mount.typ().as_deref().unwrap_or("");
        let options = mount.options().clone().unwrap_or_default();
        let is_bind = fstype == "bind" || options.iter().any(|o| o == "bind" || o == "rbind");
        let dest = destination.to_str().ok_or_else(|| at("not UTF-8".into()))?;
        if let Some(own) = OWN_MOUNTS
            .iter()
            .find(|(own_type, own_dest)| *own_dest == dest && *own_type == fstype)
        {
            own_listed.push(*own);
            continue;
        }
        if dest == "/sys" && is_bind && mount.source().as_deref() == Some(Path::new("/sys")) {
            // runc's rootless config: the host's /sys, which ns-process binds read-only
            // itself where the network namespace is shared.
            own_listed.push(("sysfs", "/sys"));
            out.note("mounts: /sys, a bind of the host's, is ns-process's own /sys");
            continue;
        }
        if matches!(fstype, "cgroup" | "cgroup2") {
            // The container's own cgroups, bound as runc shows them (on v1 one per
            // hierarchy, so either type is the same flag); read-only where listed so.
            if cgroup_listed {
                out.note(format!(
                    "mounts[{index}]: a second {fstype} filesystem, on {dest}, is not mounted: \
                     the container's cgroups are mounted once"
                ));
                continue;
            }
            cgroup_listed = true;
            let mode = if options.iter().any(|o| o == "ro" || o == "readonly") {
                "ro"
            } else {
                "rw"
            };
            let arg = format!("{dest}:{mode}");
            crate::mounts::CgroupMountArg::parse(&arg).map_err(at)?;
            out.flag("--internal-cgroup-mount", arg);
            continue;
        }
        let mut arg = if is_bind {
            let source = mount
                .source()
                .as_ref()
                .ok_or_else(|| at("a bind needs a source".into()))?;
            let source = if source.is_absolute() {
                source.clone()
            } else {
                bundle.join(source)
            };
            let source = source
                .to_str()
                .ok_or_else(|| at("the source is not UTF-8".into()))?
                .to_owned();
            format!("type=bind,source={source},destination={dest}")
        } else if fstype == "tmpfs" {
            format!("type=tmpfs,destination={dest}")
        } else {
            return Err(at(format!(
                "type {fstype:?} is not supported here: ns-process mounts binds and tmpfs \
                 anywhere, and proc, devpts, mqueue and sysfs only on /proc, /dev/pts, \
                 /dev/mqueue and /sys"
            )));
        };
        let has_comma =
            |path: Option<&PathBuf>| path.is_some_and(|path| path.to_string_lossy().contains(','));
        if has_comma(Some(destination)) || (is_bind && has_comma(mount.source().as_ref())) {
            return Err(at("a path with ',' can't be mounted".into()));
        }
        for option in &options {
            arg.push(',');
            arg.push_str(option);
        }
        crate::mounts::MountArg::parse(&arg)
            .map_err(|why| at(why.replacen("invalid --mount", "invalid mount", 1)))?;
        out.flag("--mount", arg);
    }
    for own in OWN_MOUNTS {
        if !own_listed.contains(&own) && !mounts.iter().any(|mount| listed_at(mount, own.1)) {
            out.note(format!(
                "mounts: {} is not listed, but ns-process mounts its own {} there",
                own.1, own.0
            ));
        }
    }
    Ok(())
}

fn listed_at(mount: &Mount, destination: &str) -> bool {
    mount.destination() == Path::new(destination)
}

/// The other `linux` fields: sysctl, masked and read-only paths, seccomp, devices, and
/// those refused or left out.
fn linux_fields(linux: &oci_spec::runtime::Linux, out: &mut Translation) -> Result<(), String> {
    let mut sysctls: Vec<_> = linux.sysctl().iter().flatten().collect();
    sysctls.sort();
    for (key, value) in sysctls {
        let arg = format!("{key}={value}");
        crate::sysctl::Sysctl::parse(&arg).map_err(|why| format!("linux.sysctl: {why}"))?;
        out.flag("--sysctl", arg);
    }
    out.switch("--internal-own-kernel-paths");
    for (flag, field, paths) in [
        (
            "--internal-masked-path",
            "maskedPaths",
            linux.masked_paths(),
        ),
        (
            "--internal-readonly-path",
            "readonlyPaths",
            linux.readonly_paths(),
        ),
    ] {
        for (index, path) in paths.iter().flatten().enumerate() {
            crate::mounts::kernel_path(path)
                .map_err(|why| format!("linux.{field}[{index}]: {why}"))?;
            out.flag(flag, path);
        }
    }
    match linux.seccomp() {
        None => {
            out.flag("--seccomp", "unconfined");
        }
        Some(seccomp) => {
            if seccomp.listener_path().is_some() {
                return Err(
                    "linux.seccomp.listenerPath: seccomp notify (SCMP_ACT_NOTIFY) is not \
                     supported; drop the listener and its rules"
                        .into(),
                );
            }
            let json = serde_json::to_string(seccomp)
                .map_err(|error| format!("linux.seccomp: {error}"))?;
            // Compiled now, so that a bad profile is named as config.json's field.
            crate::seccomp::program_from_json(&json, "linux.seccomp")?;
            out.flag("--internal-seccomp-json", json);
        }
    }
    for (index, device) in linux.devices().iter().flatten().enumerate() {
        devices(index, device, out)?;
    }
    match linux.rootfs_propagation().as_deref() {
        None | Some("" | "private" | "rprivate") => {}
        Some(other) => {
            return Err(format!(
                "linux.rootfsPropagation {other:?} is not supported: every mount of the \
                 container is private to it; use private or rprivate"
            ));
        }
    }
    if linux.mount_label().is_some() {
        out.note("linux.mountLabel: SELinux labels are not supported; left out");
    }
    let refused = [
        (linux.intel_rdt().is_some(), "linux.intelRdt"),
        (linux.personality().is_some(), "linux.personality"),
        (linux.memory_policy().is_some(), "linux.memoryPolicy"),
        (linux.time_offsets().is_some(), "linux.timeOffsets"),
        (linux.net_devices().is_some(), "linux.netDevices"),
    ];
    if let Some((_, field)) = refused.iter().find(|(given, _)| *given) {
        return Err(format!(
            "{field} is not supported by ns-runtime; drop it from config.json"
        ));
    }
    Ok(())
}

/// One of `linux.devices`: a node of the host's with the type and major:minor it names,
/// bound (`--device`), which works in a user namespace where mknod(2) can't — the one at
/// the same path, or else the first found in /dev (podman's `--device /dev/sdc:/dev/xvdc`
/// names /dev/xvdc with sdc's numbers). Refused when the host has none.
fn devices(
    index: usize,
    device: &oci_spec::runtime::LinuxDevice,
    out: &mut Translation,
) -> Result<(), String> {
    use oci_spec::runtime::LinuxDeviceType;
    use std::os::unix::fs::MetadataExt;
    let path = device.path();
    let at = |why: String| format!("linux.devices[{index}] ({}): {why}", path.display());
    let (kind, wanted) = match device.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => (nix::libc::S_IFCHR, "character"),
        LinuxDeviceType::B => (nix::libc::S_IFBLK, "block"),
        other => {
            return Err(at(format!(
                "type {other:?} is not supported; give a character or block device"
            )));
        }
    };
    let numbers = (device.major(), device.minor());
    let is_it = |candidate: &Path| {
        std::fs::metadata(candidate).is_ok_and(|metadata| {
            let rdev = metadata.rdev();
            metadata.mode() & nix::libc::S_IFMT == kind
                && (
                    nix::sys::stat::major(rdev) as i64,
                    nix::sys::stat::minor(rdev) as i64,
                ) == numbers
        })
    };
    let host = if is_it(path) {
        path.clone()
    } else {
        host_node(&is_it).ok_or_else(|| {
            at(format!(
                "the host has no {wanted} device {}:{} (neither at this path nor in /dev); \
                 ns-runtime binds the host's node",
                numbers.0, numbers.1
            ))
        })?
    };
    let metadata = std::fs::metadata(&host).map_err(|error| at(error.to_string()))?;
    let mode_differs = device
        .file_mode()
        .is_some_and(|mode| mode & 0o7777 != metadata.mode() & 0o7777);
    let owner_differs = device.uid().is_some_and(|uid| uid != metadata.uid())
        || device.gid().is_some_and(|gid| gid != metadata.gid());
    if mode_differs || owner_differs {
        out.note(format!(
            "linux.devices[{index}] ({}): bound with the host's owner and mode, not the \
             config's",
            path.display()
        ));
    }
    let mut arg = host.into_os_string();
    if arg != path.as_os_str() {
        arg.push(":");
        arg.push(path);
    }
    out.flag("--device", arg);
    Ok(())
}

/// The first node in the host's /dev, or a directory of it, that `is_it`.
fn host_node(is_it: &dyn Fn(&Path) -> bool) -> Option<PathBuf> {
    let entries = |dir: &Path| -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .collect();
        paths.sort();
        paths
    };
    let top = entries(Path::new("/dev"));
    let below = top
        .iter()
        .filter(|path| {
            path.symlink_metadata()
                .is_ok_and(|metadata| metadata.is_dir())
        })
        .flat_map(|dir| entries(dir));
    top.iter().cloned().chain(below).find(|path| {
        // Not through a link: the node itself.
        path.symlink_metadata()
            .is_ok_and(|metadata| !metadata.file_type().is_symlink())
            && is_it(path)
    })
}

/// `process`, but for its args.
fn process_fields(process: &Process, out: &mut Translation) -> Result<(), String> {
    out.switch("--internal-exact-env");
    for (index, pair) in process.env().iter().flatten().enumerate() {
        match pair.split_once('=') {
            Some((key, _)) if !key.is_empty() => out.flag("--env", pair),
            _ => {
                return Err(format!("process.env[{index}] {pair:?} is not KEY=VALUE"));
            }
        }
    }
    let cwd = process.cwd();
    if !cwd.is_absolute() {
        return Err(format!(
            "process.cwd {:?} must be an absolute path inside the container",
            cwd.display()
        ));
    }
    out.flag("--workdir", cwd);
    let user = process.user();
    out.flag("--user", format!("{}:{}", user.uid(), user.gid()));
    for gid in user.additional_gids().iter().flatten() {
        out.flag("--group-add", gid.to_string());
    }
    // runc's default where the config gives none.
    out.flag("--umask", format!("{:04o}", user.umask().unwrap_or(0o022)));
    if process.terminal() == Some(true) {
        out.switch("--internal-terminal");
    }
    for (index, rlimit) in process.rlimits().iter().flatten().enumerate() {
        let name = serde_json::to_value(rlimit.typ())
            .ok()
            .and_then(|value| Some(value.as_str()?.to_owned()))
            .unwrap_or_default();
        let name = name.trim_start_matches("RLIMIT_").to_ascii_lowercase();
        let value = |limit: u64| match limit {
            u64::MAX => "unlimited".to_owned(),
            limit => limit.to_string(),
        };
        let arg = format!("{name}={}:{}", value(rlimit.soft()), value(rlimit.hard()));
        crate::ulimit::Ulimit::parse(&arg)
            .map_err(|why| format!("process.rlimits[{index}]: {why}"))?;
        out.flag("--ulimit", arg);
    }
    capabilities(process.capabilities().as_ref(), user.uid(), out)?;
    if process.no_new_privileges() != Some(true) {
        out.note("process.noNewPrivileges is not true, but ns-process always sets no_new_privs");
    }
    if let Some(adjustment) = process.oom_score_adj() {
        out.flag("--oom-score-adj", adjustment.to_string());
    }
    if let Some(profile) = process.apparmor_profile() {
        out.note(format!(
            "process.apparmorProfile {profile:?}: AppArmor is not supported; left out"
        ));
    }
    if process.selinux_label().is_some() {
        out.note("process.selinuxLabel: SELinux labels are not supported; left out");
    }
    if process.console_size().is_some() && process.terminal() != Some(true) {
        out.note("process.consoleSize without process.terminal: left out");
    }
    let refused = [
        (process.io_priority().is_some(), "process.ioPriority"),
        (process.scheduler().is_some(), "process.scheduler"),
        (
            process.exec_cpu_affinity().is_some(),
            "process.execCPUAffinity",
        ),
    ];
    if let Some((_, field)) = refused.iter().find(|(given, _)| *given) {
        return Err(format!(
            "{field} is not supported by ns-runtime; drop it from config.json"
        ));
    }
    Ok(())
}

/// The names of a capability set, sorted, as config.json writes them (`CAP_CHOWN`).
fn capability_names(set: Option<&oci_spec::runtime::Capabilities>) -> Vec<String> {
    let mut names: Vec<String> = set
        .into_iter()
        .flatten()
        .filter_map(|capability| Some(serde_json::to_value(capability).ok()?.as_str()?.to_owned()))
        .collect();
    names.sort();
    names
}

/// `process.capabilities`: ns-process keeps one set (bounding, permitted and effective)
/// for root inside, and none for another user; inheritable and ambient stay empty.
fn capabilities(
    capabilities: Option<&LinuxCapabilities>,
    uid: u32,
    out: &mut Translation,
) -> Result<(), String> {
    out.flag("--cap-drop", "ALL");
    let Some(capabilities) = capabilities else {
        return Ok(());
    };
    let bounding = capability_names(capabilities.bounding().as_ref());
    for (index, name) in bounding.iter().enumerate() {
        crate::capabilities::CapArg::parse(name)
            .map_err(|why| format!("process.capabilities.bounding[{index}]: {why}"))?;
        out.flag("--cap-add", name);
    }
    for (field, set) in [
        ("effective", capabilities.effective()),
        ("permitted", capabilities.permitted()),
    ] {
        let names = capability_names(set.as_ref());
        if uid == 0 && set.is_some() && names != bounding {
            return Err(format!(
                "process.capabilities.{field} differs from bounding: ns-process gives root \
                 inside one set, bounding, permitted and effective alike; make them the same"
            ));
        }
        if uid != 0 && !names.is_empty() {
            out.note(format!(
                "process.capabilities.{field}: uid {uid} keeps no capability in ns-process; \
                 left out"
            ));
        }
    }
    for (field, set) in [
        ("inheritable", capabilities.inheritable()),
        ("ambient", capabilities.ambient()),
    ] {
        if !capability_names(set.as_ref()).is_empty() {
            out.note(format!(
                "process.capabilities.{field}: left empty, as Docker's since CVE-2022-24769"
            ));
        }
    }
    Ok(())
}

/// `ns-runtime spec`: an example config.json, as `runc spec` writes it, for a rootfs at
/// `rootfs` in the bundle. Refuses to overwrite one.
pub(crate) fn write_example(args: &SpecArgs) -> Result<ExitCode, String> {
    if args.print_engine_args {
        return print_engine_args(&args.bundle);
    }
    let path = args.bundle.join("config.json");
    let spec = example(args.rootless);
    let text = serde_json::to_string_pretty(&spec).map_err(|error| error.to_string())?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "{}: the bundle has a config.json already; remove it first",
                path.display()
            ),
            _ => format!("creating {}: {error}", path.display()),
        })?;
    std::io::Write::write_all(&mut file, format!("{text}\n").as_bytes())
        .map_err(|error| format!("writing {}: {error}", path.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// `ns-runtime spec --print-engine-args`: what ns-runtime would run, for a person (or a
/// test) to see or run by hand with ns-process.
fn print_engine_args(bundle: &Path) -> Result<ExitCode, String> {
    let spec = load(bundle)?;
    let translation = translate(&spec, bundle)?;
    for note in &translation.notes {
        eprintln!("ns-runtime: left out: {note}");
    }
    let mut out = Vec::new();
    for arg in &translation.args {
        out.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(arg.as_os_str()));
        out.push(0);
    }
    std::io::Write::write_all(&mut std::io::stdout().lock(), &out)
        .map_err(|error| format!("writing the arguments: {error}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The example config: oci-spec's defaults, which are runc's, with ns-runtime's name.
/// `rootless`: no network namespace, a user namespace mapping root to the caller, the
/// host's /sys bound, and no cgroup resources, as `runc spec --rootless`.
pub(crate) fn example(rootless: bool) -> Spec {
    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION_MAX.to_owned());
    spec.set_hostname(Some("ns-runtime".to_owned()));
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
        process.set_args(Some(vec!["sh".to_owned()]));
    }
    if rootless {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        spec.set_linux(Some(oci_spec::runtime::Linux::rootless(uid, gid)));
        if let Some(mounts) = spec.mounts_mut() {
            mounts.retain(|mount| !matches!(mount.typ().as_deref(), Some("cgroup" | "cgroup2")));
            for mount in mounts.iter_mut() {
                if mount.destination() == Path::new("/sys") {
                    mount.set_typ(Some("none".to_owned()));
                    mount.set_source(Some(PathBuf::from("/sys")));
                    mount.set_options(Some(
                        ["rbind", "nosuid", "noexec", "nodev", "ro"]
                            .map(String::from)
                            .to_vec(),
                    ));
                }
                if let Some(options) = mount.options_mut() {
                    options.retain(|option| option != "gid=5");
                }
            }
        }
    }
    spec
}

/// `ns-runtime features`: what this runtime supports, as JSON in runc's form, from the
/// engine's own lists.
pub(crate) fn print_features() -> Result<ExitCode, String> {
    let text = serde_json::to_string_pretty(&features()).map_err(|error| error.to_string())?;
    // Not println!: a reader that goes away (`| head`) is no reason to panic.
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, format!("{text}\n").as_bytes())
        .map_err(|error| format!("writing the features: {error}"))?;
    Ok(ExitCode::SUCCESS)
}

/// The `features` document.
pub(crate) fn features() -> serde_json::Value {
    let capabilities: Vec<String> = reexec::Capability::ALL
        .iter()
        .map(|capability| format!("CAP_{}", capability.name()))
        .collect();
    serde_json::json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": ["createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": crate::mounts::OPTIONS,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": capabilities,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": crate::seccomp::ACTIONS,
                "operators": crate::seccomp::OPERATORS,
                "archs": [crate::seccomp::native_architecture()],
                "knownFlags": crate::seccomp::FLAGS,
                "supportedFlags": crate::seccomp::FLAGS,
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}},
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.name": "ns-runtime",
            "org.opencontainers.runtime-spec.features.version": env!("CARGO_PKG_VERSION"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The args of a config.json: the example, changed by `change` (a JSON merge).
    fn args_of(change: serde_json::Value) -> Result<Vec<String>, String> {
        let mut config = serde_json::to_value(example(false)).unwrap();
        merge(&mut config, change);
        let spec = parse(&config.to_string())?;
        translate(&spec, Path::new("/bundle")).map(|translation| {
            translation
                .args
                .iter()
                .map(|arg| arg.to_string_lossy().into_owned())
                .collect()
        })
    }

    fn merge(into: &mut serde_json::Value, change: serde_json::Value) {
        match (into, change) {
            (serde_json::Value::Object(into), serde_json::Value::Object(change)) => {
                for (key, value) in change {
                    if value.is_null() {
                        into.remove(&key);
                    } else {
                        merge(into.entry(key).or_insert(serde_json::Value::Null), value);
                    }
                }
            }
            (into, change) => *into = change,
        }
    }

    /// Whether `args` hold `flag value` side by side.
    fn has(args: &[String], flag: &str, value: &str) -> bool {
        args.windows(2)
            .any(|pair| pair[0] == flag && pair[1] == value)
    }

    #[test]
    fn the_example_becomes_a_command_line_the_engine_takes() {
        let args = args_of(serde_json::json!({})).unwrap();
        assert!(has(&args, "--rootfs", "/bundle/rootfs"), "{args:?}");
        assert!(args.contains(&"--read-only".to_owned()));
        assert!(has(&args, "--hostname", "ns-runtime"));
        assert!(has(&args, "--share", "user"), "no user namespace listed");
        assert!(has(&args, "--cgroupns", "private"));
        assert!(has(&args, "--ulimit", "nofile=1024:1024"));
        assert!(has(&args, "--cap-add", "CAP_KILL"));
        assert!(has(&args, "--env", "TERM=xterm"));
        assert!(has(&args, "--user", "0:0"));
        assert!(has(&args, "--internal-masked-path", "/proc/kcore"));
        assert!(has(&args, "--seccomp", "unconfined"));
        assert_eq!(args[args.len() - 2..], ["--".to_owned(), "sh".to_owned()]);
        let options = <crate::cli::Options as clap::Parser>::try_parse_from(
            std::iter::once("ns-process".to_owned()).chain(args),
        )
        .unwrap();
        assert!(options.internal_exact_env && options.internal_terminal);
    }

    #[test]
    fn each_field_becomes_its_flag() {
        let args = args_of(serde_json::json!({
            "hostname": null,
            "process": {
                "user": {"uid": 1000, "gid": 100, "additionalGids": [5, 7], "umask": 18},
                "cwd": "/work",
                "oomScoreAdj": 300,
                "env": ["A=1"]
            },
            "linux": {
                "namespaces": [{"type": "user"}, {"type": "mount"},
                               {"type": "network", "path": "/proc/1/ns/net"}],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
                "sysctl": {"net.ipv4.ip_forward": "1"}
            },
            "mounts": [
                {"destination": "/data", "type": "bind", "source": "data",
                 "options": ["rbind", "ro"]},
                {"destination": "/scratch", "type": "tmpfs", "options": ["size=1m"]}
            ]
        }))
        .unwrap();
        for (flag, value) in [
            ("--user", "1000:100"),
            ("--group-add", "5"),
            ("--group-add", "7"),
            ("--umask", "0022"),
            ("--workdir", "/work"),
            ("--oom-score-adj", "300"),
            ("--join", "net=/proc/1/ns/net"),
            ("--share", "uts"),
            ("--share", "pid"),
            ("--map-users", "0:1000:1"),
            ("--sysctl", "net.ipv4.ip_forward=1"),
            (
                "--mount",
                "type=bind,source=/bundle/data,destination=/data,rbind,ro",
            ),
            ("--mount", "type=tmpfs,destination=/scratch,size=1m"),
            ("--env", "A=1"),
        ] {
            assert!(has(&args, flag, value), "{flag} {value}: {args:?}");
        }
        assert!(
            !has(&args, "--env", "TERM=xterm"),
            "env is exactly process.env"
        );
        assert!(!has(&args, "--share", "user") && !has(&args, "--share", "net"));
    }

    #[test]
    fn what_the_engine_cannot_do_is_refused_naming_the_field() {
        for (change, expected) in [
            (
                serde_json::json!({"linux": {"sysctl": {"kernel.core_pattern": "x"}}}),
                "linux.sysctl: ",
            ),
            (
                serde_json::json!({"linux": {"maskedPaths": ["/etc/shadow"]}}),
                "linux.maskedPaths[0]",
            ),
            (
                serde_json::json!({"linux": {"intelRdt": {"closID": "x"}}}),
                "linux.intelRdt",
            ),
            (
                serde_json::json!({"linux": {"namespaces": [{"type": "pid", "path": "/proc/1/ns/pid"}]}}),
                "joining a PID namespace",
            ),
            (
                serde_json::json!({"mounts": [{"destination": "/x", "type": "nfs", "source": "h:/x"}]}),
                "mounts[0] (/x): type \"nfs\"",
            ),
            (
                serde_json::json!({"mounts": [{"destination": "/x", "type": "tmpfs", "options": ["rshared"]}]}),
                "propagation",
            ),
            (
                serde_json::json!({"process": {"env": ["NOEQUALS"]}}),
                "process.env[0]",
            ),
            (
                serde_json::json!({"process": {"cwd": "relative"}}),
                "process.cwd",
            ),
            (
                serde_json::json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]}}),
                "process.rlimits[0]",
            ),
            (
                serde_json::json!({"process": {"capabilities": {"bounding": ["CAP_KILL"], "effective": []}}}),
                "process.capabilities.effective",
            ),
            (
                serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64"], "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}}}),
                "linux.seccomp.syscalls[0].args[0].op: unknown variant",
            ),
            (
                serde_json::json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_S390X"]}}}),
                "architectures does not list",
            ),
            (
                serde_json::json!({"hostname": "h", "linux": {"namespaces": [{"type": "mount"}]}}),
                "UTS namespace",
            ),
            (serde_json::json!({"process": {"args": []}}), "process.args"),
            (
                serde_json::json!({"ociVersion": "2.0.0"}),
                "ociVersion \"2.0.0\"",
            ),
        ] {
            let error = args_of(change.clone()).unwrap_err();
            assert!(error.contains(expected), "{change}: {error}");
        }
    }

    #[test]
    fn devices_are_the_hosts_nodes_of_the_same_path() {
        let args = args_of(serde_json::json!({"linux": {"devices": [
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3}
        ]}}))
        .unwrap();
        assert!(has(&args, "--device", "/dev/null"), "{args:?}");
        // Podman's `--device /dev/null:/dev/xnull`: the host's node of those numbers.
        let args = args_of(serde_json::json!({"linux": {"devices": [
            {"path": "/dev/xnull", "type": "c", "major": 1, "minor": 3}
        ]}}))
        .unwrap();
        assert!(has(&args, "--device", "/dev/null:/dev/xnull"), "{args:?}");
        for (device, expected) in [
            (
                serde_json::json!({"path": "/dev/null", "type": "c", "major": 1, "minor": 4000}),
                "the host has no character device 1:4000",
            ),
            (
                serde_json::json!({"path": "/dev/null", "type": "b", "major": 1, "minor": 3}),
                "the host has no block device 1:3",
            ),
            (
                serde_json::json!({"path": "/dev/null", "type": "p"}),
                "is not supported",
            ),
        ] {
            let error = args_of(serde_json::json!({"linux": {"devices": [device]}})).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn a_cgroup_mount_binds_the_containers_cgroups_read_only_as_listed() {
        // runc's example lists /sys/fs/cgroup with ro among its options.
        let args = args_of(serde_json::json!({})).unwrap();
        assert!(
            has(&args, "--internal-cgroup-mount", "/sys/fs/cgroup:ro"),
            "{args:?}"
        );
        let mut config = serde_json::to_value(example(false)).unwrap();
        let cgroup = serde_json::json!({"destination": "/sys/fs/cgroup", "type": "cgroup2",
                                        "source": "cgroup", "options": ["nosuid", "rw"]});
        config["mounts"] = serde_json::json!([cgroup.clone(), cgroup]);
        let translation = translate(&parse(&config.to_string()).unwrap(), Path::new("/b")).unwrap();
        let args: Vec<String> = translation
            .args
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert!(
            has(&args, "--internal-cgroup-mount", "/sys/fs/cgroup:rw"),
            "{args:?}"
        );
        assert_eq!(
            args.iter()
                .filter(|arg| *arg == "--internal-cgroup-mount")
                .count(),
            1
        );
        assert!(
            translation
                .notes
                .iter()
                .any(|note| note.contains("mounts[1]: a second cgroup2")),
            "{:?}",
            translation.notes
        );
    }

    #[test]
    fn what_is_left_out_is_noted() {
        let mut config = serde_json::to_value(example(false)).unwrap();
        merge(
            &mut config,
            serde_json::json!({"process": {"apparmorProfile": "x", "noNewPrivileges": false}}),
        );
        let spec = parse(&config.to_string()).unwrap();
        let notes = translate(&spec, Path::new("/b")).unwrap().notes;
        for expected in ["apparmorProfile", "noNewPrivileges"] {
            assert!(
                notes.iter().any(|note| note.contains(expected)),
                "{expected}: {notes:?}"
            );
        }
    }

    #[test]
    fn a_value_of_the_wrong_type_is_named_by_its_path() {
        let error = parse(r#"{"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": "root", "gid": 0}}}"#)
            .unwrap_err();
        assert!(error.starts_with("process.user.uid: "), "{error}");
        let error = parse(r#"{"ociVersion": "1.0.0", "process": {"cwd": "/", "user": {"uid": 0, "gid": 0}, "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}, {"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]}}"#)
            .unwrap_err();
        assert!(error.starts_with("process.rlimits[1].type: "), "{error}");
        assert!(parse("{").unwrap_err().starts_with("not valid JSON"));
        assert!(
            load(Path::new("/nonexistent-bundle"))
                .unwrap_err()
                .contains("ns-runtime spec --bundle")
        );
    }
}
