//! The init's setup, as named steps run in order inside the new namespaces. A failure
//! says which step and why; nothing reaches the host, since every mount happens in a
//! mount namespace made private first. Under `--rootfs` nothing is reached by a path
//! its owner could redirect with a symlink: see `Rootfs`.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, open, openat, openat2};
use nix::libc;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, mkdirat};
use nix::unistd::{chdir, fchdir, pivot_root, sethostname, symlinkat};

use crate::cli::{Bind, CgroupNs, NetMode, Options, Shareable, Tmpfs};
use crate::kernel_paths::Sys;
use crate::mounts::{MountArg, MountKind};
use crate::sys::mount_api;

/// A setup step that failed.
#[derive(Debug)]
pub(crate) struct SetupError {
    step: String,
    error: String,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.step, self.error)
    }
}

/// Runs the steps one by one, printing each with `--verbose`.
struct Steps {
    verbose: bool,
}

impl Steps {
    fn run<T>(
        &self,
        step: impl Into<String>,
        work: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, SetupError> {
        let step = step.into();
        if self.verbose {
            eprintln!("ns-process: {step}");
        }
        work().map_err(|error| SetupError { step, error })
    }

    fn skip(&self, step: &str, why: &str) {
        if self.verbose {
            eprintln!("ns-process: not {step}: {why}");
        }
    }
}

pub(crate) fn describe(call: &str, path: &Path, errno: nix::Error) -> String {
    format!("{call}({}): {}", path.display(), errno.desc())
}

/// Everything between the clone and the command, in the order the series does it. What
/// it makes in the rootfs to mount on is noted in `made`, to be taken out after the run
/// (or after a failure here).
pub(crate) fn prepare(options: &Options, made: &MadeInRootfs) -> Result<(), SetupError> {
    let steps = Steps {
        verbose: options.verbose,
    };
    let own_mounts = !options.shares(Shareable::Mount);

    // config.json's cgroup mount (#16): the hierarchies read while the mount table is
    // still the host's, before anything of the rootfs is in it, and while this cgroup
    // namespace still shows where the init's cgroup is in them.
    let cgroup_hierarchies = match (&options.internal_cgroup_mount, &options.rootfs) {
        (Some(_), Some(path)) => Some(cgroup_hierarchies(&steps, path)),
        _ => None,
    };
    // --cgroupns private (#16): made here, not at the clone, so that it is rooted at the
    // cgroup the init was put in before it ran (its limits' or the runtime's), as
    // runc's: the command sees its own cgroup as `/` of each hierarchy.
    if options.cgroupns == CgroupNs::Private {
        steps.run(
            "entering a new cgroup namespace rooted at the init's cgroup",
            || {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
                    .map_err(|errno| format!("unshare(CLONE_NEWCGROUP): {}", errno.desc()))
            },
        )?;
    }

    if own_mounts {
        // Without this, mounts made below would propagate back to the host's namespace
        // wherever / is a shared mount (systemd makes it one): mount_namespaces(7).
        steps.run("making every mount private", || {
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|errno| describe("mount MS_REC|MS_PRIVATE", Path::new("/"), errno))
        })?;
    } else {
        steps.skip(
            "making mounts private",
            "the mount namespace is shared (--share mount)",
        );
    }

    if !options.shares(Shareable::Uts) {
        steps.run(
            format!("setting the hostname to {}", options.hostname),
            || {
                sethostname(&options.hostname)
                    .map_err(|errno| format!("sethostname: {}", errno.desc()))
            },
        )?;
    }

    // Known now, before the pivot, so that /etc/hosts can give it to the hostname.
    let bridge_address = if options.net == NetMode::Bridge {
        Some(steps.run(
            format!("reading the address of {}", crate::net::INSIDE_NAME),
            || crate::net::inside_address(options.subnet),
        )?)
    } else {
        None
    };

    let new_proc = if !own_mounts {
        steps.skip("mounting /proc", "the mount namespace is shared");
        false
    } else if options.shares(Shareable::Pid) {
        steps.skip(
            "mounting /proc",
            "the PID namespace is shared (--share pid)",
        );
        false
    } else {
        true
    };

    match &options.rootfs {
        None => {
            if new_proc {
                steps.run("mounting a new proc on /proc", || {
                    // The host's own /proc: no one but root can put a link in its way.
                    let proc = Path::new("/proc");
                    mount(Some("proc"), proc, Some("proc"), PROC_FLAGS, None::<&str>)
                        .map_err(|errno| describe("mount proc", proc, errno))
                })?;
            }
            write_sysctls(&steps, options, "/proc")?;
            protect_kernel_paths(&steps, options, Some("/proc"), Some(Sys::Host))?;
            if own_mounts {
                // Before the new devpts: the pty is found by its path in the host's.
                bind_console(&steps, options, |console| {
                    crate::terminal::bind_console(Path::new("/dev/console"), console)
                })?;
                private_dev_mounts(&steps, options, &Dev::Host)?;
            }
        }
        Some(path) => {
            let rootfs = steps.run(format!("binding {} onto itself", path.display()), || {
                Rootfs::bind(path, made)
            })?;
            let dev = steps.run(
                format!("mounting a tmpfs on {}", rootfs.show("dev")),
                || rootfs.mount_dev(),
            )?;
            steps.run(format!("populating {}", rootfs.show("dev")), || {
                populate_dev(dev.as_fd())
            })?;
            // Before the pivot: the pty's devpts is a mount of this namespace only until then.
            bind_console(&steps, options, |console| {
                bind_file(dev.as_fd(), "console", console)
            })?;
            private_dev_mounts(
                &steps,
                options,
                &Dev::Fresh {
                    dev: dev.as_fd(),
                    shown: rootfs.show("dev"),
                },
            )?;
            // After /dev: a rootfs without one is refused before `proc` is created in it.
            let proc = if new_proc {
                Some(steps.run(
                    format!("mounting a new proc on {}", rootfs.show("proc")),
                    || rootfs.mount_proc(),
                )?)
            } else {
                None
            };
            if proc.is_none() {
                steps.skip(
                    "protecting /proc",
                    "no proc is mounted in the rootfs (--share pid)",
                );
            }
            let sys = mount_sys(&steps, options, &rootfs)?;
            if options.tmp_on_rootfs {
                steps.skip("mounting a tmpfs on /tmp", "--tmp-on-rootfs");
            } else {
                mount_in_rootfs(
                    &steps,
                    &rootfs,
                    "tmp",
                    format!("mounting a tmpfs on {}", rootfs.show("tmp")),
                    || new_mount(c"tmpfs", &[(c"mode", c"1777")], &[], TMP_ATTRIBUTES),
                )?;
            }
            bind_etc_files(&steps, options, &rootfs, dev.as_fd(), bridge_address)?;
            for bind in &options.bind {
                let step = format!(
                    "binding {} on {}{}{}",
                    bind.source.display(),
                    path.display(),
                    bind.target.display(),
                    if bind.read_only { " read-only" } else { "" }
                );
                steps.run(step, || rootfs.bind_in(bind))?;
            }
            for tmpfs in &options.tmpfs {
                let step = format!(
                    "mounting a tmpfs on {}{}",
                    path.display(),
                    tmpfs.target.display()
                );
                steps.run(step, || rootfs.mount_tmpfs(tmpfs))?;
            }
            // --device (#16): the host's node, bound as a --bind of a file is.
            for device in &options.device {
                let step = format!(
                    "binding the host's device {} on {}{}",
                    device.host.display(),
                    path.display(),
                    device.target.display()
                );
                let bind = Bind {
                    source: device.host.clone(),
                    target: device.target.clone(),
                    read_only: false,
                };
                steps.run(step, || rootfs.bind_in(&bind))?;
            }
            // config.json's mounts (#16), after ns-process's own, in their order.
            for mount in &options.mount {
                let step = format!(
                    "mounting {} on {}{}",
                    mount.describe(),
                    path.display(),
                    mount.target.display()
                );
                steps.run(step, || rootfs.mount_arg(mount))?;
            }
            if let (Some(arg), Some(hierarchies)) =
                (&options.internal_cgroup_mount, &cgroup_hierarchies)
            {
                let step = format!(
                    "mounting a tmpfs of the command's cgroups on {}{}{}",
                    path.display(),
                    arg.target.display(),
                    if arg.read_only { " read-only" } else { "" }
                );
                steps.run(step, || rootfs.mount_cgroups(&steps, arg, hierarchies))?;
            }
            // ns-runtime's containers (OCI createContainer hooks, cg16): in the
            // container's namespaces, its mounts made, before the pivot leaves the
            // runtime's paths behind.
            if options.internal_runtime_bundle.is_some() {
                steps.run("running the OCI createContainer hooks", || {
                    crate::runtime::hooks::run_in_init(crate::runtime::hooks::Kind::CreateContainer)
                })?;
            }
            // Through the descriptors, before the pivot: see kernel_paths::protect.
            let through = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
            let proc_path = proc.as_ref().map(through);
            let sys_path = sys.as_ref().map(through);
            write_sysctls(&steps, options, proc_path.as_deref().unwrap_or("/proc"))?;
            protect_kernel_paths(
                &steps,
                options,
                proc_path.as_deref(),
                sys_path.as_deref().map(Sys::ReadOnlyAt),
            )?;
            if options.read_only {
                steps.run(format!("making {} read-only", path.display()), || {
                    rootfs.make_read_only()
                })?;
            }
            steps.run(format!("pivoting into {}", path.display()), || {
                rootfs.pivot()
            })?;
        }
    }

    if !options.shares(Shareable::Net) {
        steps.run("bringing lo up", || crate::net::set_up("lo"))?;
    }
    if let Some(address) = bridge_address {
        steps.run(
            format!(
                "configuring {} with {address} in {}",
                crate::net::INSIDE_NAME,
                options.subnet
            ),
            || crate::net::configure_inside(options.subnet, address),
        )?;
    }
    // Nothing the command runs may gain privileges through set-user-ID binaries or file
    // capabilities: what is root here stays only as powerful as the namespaces allow.
    steps.run("setting no_new_privs", || {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|errno| format!("prctl(PR_SET_NO_NEW_PRIVS): {}", errno.desc()))
    })?;
    Ok(())
}

/// Makes the kernel's knobs read-only and masks its secrets in the proc reached at `proc`
/// and the sysfs `sys`, unless the options leave them as they are.
fn protect_kernel_paths(
    steps: &Steps,
    options: &Options,
    proc: Option<&str>,
    sys: Option<Sys<'_>>,
) -> Result<(), SetupError> {
    if proc.is_none() && sys.is_none() {
        return Ok(());
    }
    if options.protects_kernel_paths() {
        steps.run(
            "making /proc/sys and the kernel's other knobs read-only, masking its secrets",
            || crate::kernel_paths::protect(proc, sys, &crate::mounts::KernelPaths::of(options)),
        )
    } else {
        let why = if options.privileged {
            "--privileged"
        } else {
            "the mount namespace is shared"
        };
        steps.skip("protecting /proc and /sys", why);
        Ok(())
    }
}

/// `--sysctl` (#16): each parameter written through the proc reached at `proc`, before
/// `/proc/sys` is made read-only.
fn write_sysctls(steps: &Steps, options: &Options, proc: &str) -> Result<(), SetupError> {
    for sysctl in &options.sysctl {
        steps.run(
            format!("setting {} to {:?}", sysctl.key, sysctl.value),
            || sysctl.write(proc),
        )?;
    }
    Ok(())
}

const PROC_FLAGS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// What a failed call of the descriptor-based API says, with a hint where the kernel is
/// too old for it.
fn call_failed(call: &str, path: &Path, errno: Errno) -> String {
    let mut message = describe(call, path, errno);
    if errno == Errno::ENOSYS {
        message.push_str(
            "; --rootfs needs Linux 5.6 or later (openat2(2) and the mount API of \
             fsopen(2) and move_mount(2)), which resolve every path inside the rootfs",
        );
    }
    message
}

/// Why a mount point of the rootfs could not be had.
enum MountPointError {
    /// It was missing and mkdirat(2) failed with this errno (the message says where).
    CannotMake(Errno, String),
    /// It is there but may not be mounted on (the message says why and what to do).
    Refused(String),
}

impl fmt::Display for MountPointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountPointError::CannotMake(_, message) | MountPointError::Refused(message) => {
                f.write_str(message)
            }
        }
    }
}

/// Mounts what `make` makes on the rootfs's directory `name`, made there if missing;
/// the mount's descriptor is returned. Where the directory is missing and the rootfs
/// can't be written (an unprivileged caller's read-only rootfs), the mount is skipped,
/// said with `--verbose`: the rootfs still runs, without that directory.
fn mount_in_rootfs(
    steps: &Steps,
    rootfs: &Rootfs<'_>,
    name: &str,
    step: String,
    make: impl FnOnce() -> Result<OwnedFd, String>,
) -> Result<Option<OwnedFd>, SetupError> {
    let target = match rootfs.mount_point_made(name) {
        Ok(target) => target,
        Err(MountPointError::CannotMake(Errno::EACCES | Errno::EPERM | Errno::EROFS, why)) => {
            steps.skip(
                &step,
                &format!("{why}; create /{name} in the rootfs to have it"),
            );
            return Ok(None);
        }
        Err(error) => {
            return Err(SetupError {
                step,
                error: error.to_string(),
            });
        }
    };
    let shown = rootfs.show(name);
    steps.run(step, || {
        let mount = make()?;
        mount_api::attach(mount.as_fd(), target.as_fd())
            .map_err(|errno| call_failed("move_mount", Path::new(&shown), errno))?;
        Ok(Some(mount))
    })
}

/// `/sys`, read-only: a new sysfs when the network namespace is ours (the kernel allows
/// one only then, since a sysfs shows the network devices of the namespace that mounts
/// it); with `--share net`, the host's `/sys` with every mount below it, cloned and made
/// read-only as a whole before it is attached. Either way before the pivot: after it,
/// the kernel refuses a new sysfs (mount_too_revealing: no sysfs is fully visible any
/// more).
fn mount_sys(
    steps: &Steps,
    options: &Options,
    rootfs: &Rootfs<'_>,
) -> Result<Option<OwnedFd>, SetupError> {
    let shown = rootfs.show("sys");
    if options.shares(Shareable::Net) {
        mount_in_rootfs(
            steps,
            rootfs,
            "sys",
            format!("binding the host's /sys read-only on {shown} (--share net)"),
            || {
                let host = Path::new("/sys");
                let dir = open(
                    host,
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|errno| describe("open", host, errno))?;
                let tree = mount_api::clone_tree(dir.as_fd(), c"", true).map_err(|errno| {
                    call_failed("open_tree OPEN_TREE_CLONE|AT_RECURSIVE", host, errno)
                })?;
                mount_api::set_attributes(tree.as_fd(), SYS_ATTRIBUTES, true)
                    .map_err(|errno| call_failed("mount_setattr MOUNT_ATTR_RDONLY", host, errno))?;
                Ok(tree)
            },
        )
    } else {
        mount_in_rootfs(
            steps,
            rootfs,
            "sys",
            format!("mounting a new read-only sysfs on {shown}"),
            || new_mount(c"sysfs", &[], &[], SYS_ATTRIBUTES),
        )
    }
}

/// Where the tmpfs of the /etc files is attached while they are copied: a directory of
/// the rootfs's fresh /dev, removed after.
const ETC_FILES_HOLDER: &str = ".ns-process-etc";

/// `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` for the network mode (see
/// `etc_files`), each bound read-only over the rootfs's from a tmpfs of ns-process's own;
/// a `--bind` on one of them is mounted after, over it. Skipped, with `-v` saying so,
/// where the rootfs has no `/etc`, and for a file that is missing and can't be made or
/// is a symbolic link.
fn bind_etc_files(
    steps: &Steps,
    options: &Options,
    rootfs: &Rootfs<'_>,
    dev: BorrowedFd<'_>,
    bridge_address: Option<std::net::Ipv4Addr>,
) -> Result<(), SetupError> {
    let step = format!(
        "binding /etc/hostname, /etc/hosts and /etc/resolv.conf read-only in {}",
        rootfs.show("etc")
    );
    if let Err(errno) = rootfs.mount_point("etc") {
        steps.skip(
            &step,
            &format!("no directory {}: {}", rootfs.show("etc"), errno.desc()),
        );
        return Ok(());
    }
    let net = if options.shares(Shareable::Net) {
        NetMode::Host
    } else {
        options.net
    };
    let hostname = if options.shares(Shareable::Uts) {
        nix::unistd::gethostname()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        options.hostname.clone()
    };
    // The host's own files, as the init still sees them before the pivot.
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let files = crate::etc_files::contents(
        net,
        &hostname,
        bridge_address,
        read("/etc/hosts").as_deref(),
        read("/etc/resolv.conf").as_deref(),
    );
    steps.run(step, || {
        let holder = Path::new("/dev").join(ETC_FILES_HOLDER);
        mkdirat(dev, ETC_FILES_HOLDER, Mode::from_bits_truncate(0o700))
            .map_err(|errno| describe("mkdir", &holder, errno))?;
        let dir = openat(
            dev,
            ETC_FILES_HOLDER,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| describe("open", &holder, errno))?;
        let tmpfs = new_mount(
            c"tmpfs",
            &[(c"mode", c"0755"), (c"size", c"64k")],
            &[],
            SHM_ATTRIBUTES,
        )?;
        // Attached while its files are copied: open_tree(2) copies only from a mount of
        // this namespace before Linux 6.15.
        mount_api::attach(tmpfs.as_fd(), dir.as_fd())
            .map_err(|errno| call_failed("move_mount tmpfs", &holder, errno))?;
        let bound = files.iter().try_for_each(|(name, content)| {
            bind_etc_file(steps, rootfs, tmpfs.as_fd(), name, content)
        });
        let detached = umount2(
            format!("/proc/self/fd/{}", tmpfs.as_raw_fd()).as_str(),
            MntFlags::MNT_DETACH,
        )
        .map_err(|errno| describe("umount2 MNT_DETACH", &holder, errno));
        let removed =
            nix::unistd::unlinkat(dev, ETC_FILES_HOLDER, nix::unistd::UnlinkatFlags::RemoveDir)
                .map_err(|errno| describe("rmdir", &holder, errno));
        bound.and(detached).and(removed)
    })
}

/// Writes `content` to the file `name` of the tmpfs `files` and binds it read-only on the
/// rootfs's `/etc/name`.
fn bind_etc_file(
    steps: &Steps,
    rootfs: &Rootfs<'_>,
    files: BorrowedFd<'_>,
    name: &str,
    content: &str,
) -> Result<(), String> {
    let inside = Path::new("/etc").join(name);
    // A rootfs whose file is a link (resolv.conf often is) keeps it: nothing is mounted
    // where a link leads, and the rootfs runs as it did.
    let target = match rootfs.made_target(&inside, true) {
        Ok(target) => target,
        Err(error) => {
            steps.skip(&format!("binding {}", inside.display()), &error.to_string());
            return Ok(());
        }
    };
    let file = openat(
        files,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|errno| describe("creating", &inside, errno))?;
    std::fs::File::from(file)
        .write_all(content.as_bytes())
        .map_err(|error| format!("writing {}: {error}", inside.display()))?;
    let tree = mount_api::clone_tree(files, &cstring(name), false)
        .map_err(|errno| call_failed("open_tree OPEN_TREE_CLONE", &inside, errno))?;
    mount_api::set_attributes(tree.as_fd(), libc::MOUNT_ATTR_RDONLY, false)
        .map_err(|errno| call_failed("mount_setattr MOUNT_ATTR_RDONLY", &inside, errno))?;
    mount_api::attach(tree.as_fd(), target.as_fd())
        .map_err(|errno| call_failed("move_mount (bind)", &inside, errno))
}

/// The `/dev` that gets a private devpts, shm and mqueue.
enum Dev<'a> {
    /// The fresh tmpfs on the rootfs's `dev`, open at `dev`: missing directories are
    /// made in it, and mounts go through descriptors, as everything under the rootfs.
    Fresh { dev: BorrowedFd<'a>, shown: String },
    /// The host's `/dev`, in our own mount namespace: root's, so reached by path with
    /// mount(2) as the host's `/proc` is (no --rootfs needs no Linux 5.6); nothing is
    /// made in it, since that would change the host's.
    Host,
}

impl Dev<'_> {
    fn show(&self, name: &str) -> String {
        match self {
            Dev::Fresh { shown, .. } => format!("{shown}/{name}"),
            Dev::Host => format!("/dev/{name}"),
        }
    }
}

/// A filesystem to mount, in a form both mount(2) and fsconfig(2) take.
struct NewFs {
    fstype: &'static CStr,
    /// `key=value` options, and flags (options without a value), comma-separated.
    options: String,
    attributes: u64,
}

impl NewFs {
    /// Mounts it on `target` of the fresh /dev `dev`, made there, through descriptors.
    fn mount_at(&self, dev: BorrowedFd<'_>, target: &str, shown: &Path) -> Result<(), String> {
        mkdirat(dev, target, Mode::from_bits_truncate(0o755))
            .map_err(|errno| describe("mkdir", shown, errno))?;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let target = openat(dev, target, flags, Mode::empty())
            .map_err(|errno| describe("open", shown, errno))?;
        let strings = self
            .options
            .split(',')
            .filter(|option| !option.is_empty())
            .map(|option| {
                let (key, value) = option.split_once('=').unwrap_or((option, ""));
                (cstring(key), option.contains('=').then(|| cstring(value)))
            })
            .collect::<Vec<_>>();
        let pairs: Vec<(&CStr, &CStr)> = strings
            .iter()
            .filter_map(|(key, value)| Some((key.as_c_str(), value.as_deref()?)))
            .collect();
        let flags: Vec<&CStr> = strings
            .iter()
            .filter(|(_, value)| value.is_none())
            .map(|(key, _)| key.as_c_str())
            .collect();
        let mount = new_mount(self.fstype, &pairs, &flags, self.attributes)?;
        mount_api::attach(mount.as_fd(), target.as_fd())
            .map_err(|errno| call_failed("move_mount", shown, errno))
    }

    /// Mounts it on the host's `path` with mount(2).
    fn mount_on(&self, path: &Path) -> Result<(), String> {
        let flags = [
            (libc::MOUNT_ATTR_RDONLY, MsFlags::MS_RDONLY),
            (libc::MOUNT_ATTR_NOSUID, MsFlags::MS_NOSUID),
            (libc::MOUNT_ATTR_NODEV, MsFlags::MS_NODEV),
            (libc::MOUNT_ATTR_NOEXEC, MsFlags::MS_NOEXEC),
        ]
        .into_iter()
        .filter(|&(attribute, _)| self.attributes & attribute != 0)
        .fold(MsFlags::empty(), |all, (_, flag)| all | flag);
        let fstype = self.fstype.to_str().unwrap_or_default();
        mount(
            Some(fstype),
            path,
            Some(fstype),
            flags,
            Some(self.options.as_str()),
        )
        .map_err(|errno| describe(&format!("mount {fstype}"), path, errno))
    }
}

/// Options of ns-process's own, which never hold a NUL byte.
fn cstring(text: &str) -> CString {
    CString::new(text).expect("a mount option without NUL bytes")
}

/// The group that owns the ptys on a usual system (`tty`).
const TTY_GID: u32 = 5;

/// A private devpts instance on `/dev/pts` (and `/dev/ptmx` a link to its `ptmx` in a
/// fresh /dev), a tmpfs on `/dev/shm` and a new mqueue on `/dev/mqueue`, as the OCI
/// runtime spec's default filesystem has them: no pty, shared memory segment or message
/// queue of the host, nor of another run, is reachable, and the command's are gone with
/// it. The host's /dev/ptmx (a device node) opens the devpts mounted on `pts` beside it,
/// so it leads to the new instance too.
fn private_dev_mounts(steps: &Steps, options: &Options, dev: &Dev<'_>) -> Result<(), SetupError> {
    let mut devpts = "newinstance,ptmxmode=0666,mode=0620".to_owned();
    // devpts refuses a `gid=` that is not mapped in this user namespace (EINVAL).
    if crate::user::IdMap::of_this_namespace("gid").is_ok_and(|map| map.contains(TTY_GID)) {
        devpts.push_str(&format!(",gid={TTY_GID}"));
    }
    let devpts = NewFs {
        fstype: c"devpts",
        options: devpts,
        attributes: DEVPTS_ATTRIBUTES,
    };
    mount_in_dev(steps, dev, "pts", "a new devpts instance", &devpts)?;
    if let Dev::Fresh { dev, shown } = dev {
        steps.run(format!("linking {shown}/ptmx to pts/ptmx"), || {
            symlinkat("pts/ptmx", *dev, "ptmx")
                .map_err(|errno| describe("symlink", Path::new("/dev/ptmx"), errno))
        })?;
    }
    let shm = NewFs {
        fstype: c"tmpfs",
        options: "mode=1777,size=65536k".into(),
        attributes: SHM_ATTRIBUTES,
    };
    mount_in_dev(steps, dev, "shm", "a tmpfs", &shm)?;
    if options.shares(Shareable::Ipc) {
        steps.skip(
            &format!("mounting a new mqueue on {}", dev.show("mqueue")),
            "the IPC namespace is shared (--share ipc): its queues are the host's",
        );
    } else {
        // An mqueue shows the queues of the IPC namespace that mounts it: ours.
        let mqueue = NewFs {
            fstype: c"mqueue",
            options: String::new(),
            attributes: SHM_ATTRIBUTES,
        };
        mount_in_dev(steps, dev, "mqueue", "a new mqueue", &mqueue)?;
    }
    Ok(())
}

/// Mounts `fs` on the directory `name` of `dev`, or says with `--verbose` that the host's
/// /dev has none.
fn mount_in_dev(
    steps: &Steps,
    dev: &Dev<'_>,
    name: &str,
    what: &str,
    fs: &NewFs,
) -> Result<(), SetupError> {
    let shown = dev.show(name);
    let step = format!("mounting {what} on {shown}");
    match dev {
        Dev::Host if !Path::new(&shown).is_dir() => {
            steps.skip(&step, &format!("the host has no {shown}"));
            Ok(())
        }
        Dev::Host => steps.run(step, || fs.mount_on(Path::new(&shown))),
        Dev::Fresh { dev, .. } => steps.run(step, || fs.mount_at(*dev, name, Path::new(&shown))),
    }
}

/// What ns-process made in the rootfs to mount on — a missing `/proc`, `/sys`, `/tmp`,
/// `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`, a `--bind` or `--tmpfs` destination
/// and the directories leading to it — taken out once the run is over, so that the rootfs
/// is left as it was found. Each is noted by its inode when made, and removed only if the
/// same inode is still there, still an empty file or an empty directory, reached from
/// the rootfs's descriptor through no symbolic link: nothing else of the rootfs is ever
/// removed, whatever its owner or the command changed meanwhile.
#[derive(Default)]
pub(crate) struct MadeInRootfs {
    /// The rootfs's descriptor, once it is bound.
    root: std::cell::OnceCell<OwnedFd>,
    made: std::cell::RefCell<Vec<Made>>,
}

/// How many mounts are taken off one entry at most: ns-process stacks two at most (an
/// `/etc` file and a `--bind` over it).
const MAX_STACKED_MOUNTS: usize = 8;

/// A directory or file ns-process made in the rootfs: where, relative to it, and which
/// inode.
struct Made {
    path: PathBuf,
    dev: u64,
    ino: u64,
    dir: bool,
}

impl MadeInRootfs {
    /// Notes that `path` of the rootfs, open at `fd`, was made by ns-process. One whose
    /// inode can't be had is not noted, and stays.
    fn note(&self, path: &Path, fd: BorrowedFd<'_>, dir: bool) {
        if let Ok(stat) = nix::sys::stat::fstat(fd) {
            self.made.borrow_mut().push(Made {
                path: path.to_owned(),
                dev: stat.st_dev,
                ino: stat.st_ino,
                dir,
            });
        }
    }

    /// Removes what was noted, the last made first. The mounts on each are detached from
    /// this mount namespace first, since the kernel refuses to remove a mount point of the
    /// caller's own (EBUSY); the removals go through a copy of the rootfs's own mount
    /// (none of the mounts on it) made writable, as `--read-only` made the rootfs
    /// read-only for the command only. What can't be removed stays, said with `verbose`.
    pub(crate) fn remove(self, verbose: bool) {
        let made = self.made.into_inner();
        let Some(root) = self.root.into_inner() else {
            return;
        };
        if made.is_empty() {
            return;
        }
        let say = |what: String| {
            if verbose {
                eprintln!("ns-process: {what}");
            }
        };
        let writable = mount_api::clone_tree(root.as_fd(), c"", false).and_then(|tree| {
            mount_api::clear_attributes(tree.as_fd(), libc::MOUNT_ATTR_RDONLY)?;
            Ok(tree)
        });
        if let Err(errno) = fchdir(root.as_fd()) {
            say(format!(
                "leaving what was made in the rootfs to mount on: fchdir: {}",
                errno.desc()
            ));
            return;
        }
        for made in made.iter().rev() {
            // Relative to the rootfs (the working directory now), every mount stacked
            // there; this mount namespace's own, and gone with it anyway.
            for _ in 0..MAX_STACKED_MOUNTS {
                let flags = MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW;
                if umount2(&made.path, flags).is_err() {
                    break;
                }
            }
        }
        let base = writable.as_ref().map_or(root.as_fd(), |tree| tree.as_fd());
        for made in made.iter().rev() {
            match made.remove_from(base) {
                Ok(()) => say(format!(
                    "removed /{}, made to mount on",
                    made.path.display()
                )),
                Err(why) => say(format!(
                    "leaving /{}, made to mount on: {why}",
                    made.path.display()
                )),
            }
        }
    }
}

impl Made {
    /// Removes this entry, reached from `base` (the rootfs's root), if it is still the
    /// inode made, empty.
    fn remove_from(&self, base: BorrowedFd<'_>) -> Result<(), String> {
        let name = self.path.file_name().ok_or("no name")?;
        let parent = match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_SYMLINKS,
            );
        let parent = openat2(base, parent, how).map_err(|errno| errno.desc().to_owned())?;
        let stat = nix::sys::stat::fstatat(
            parent.as_fd(),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|errno| errno.desc().to_owned())?;
        let kind = stat.st_mode & libc::S_IFMT;
        let still_ours = stat.st_dev == self.dev
            && stat.st_ino == self.ino
            && if self.dir {
                kind == libc::S_IFDIR
            } else {
                kind == libc::S_IFREG && stat.st_size == 0
            };
        if !still_ours {
            return Err("it is no longer the empty entry made".into());
        }
        // rmdir(2) removes only an empty directory; a file was checked empty just above.
        let flag = if self.dir {
            nix::unistd::UnlinkatFlags::RemoveDir
        } else {
            nix::unistd::UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(parent.as_fd(), name, flag).map_err(|errno| errno.desc().to_owned())
    }
}

/// The rootfs, held from the start by one descriptor: the root of its bind mount onto
/// itself. Its owner may rename anything in it at any moment, so a path under it looked
/// up twice may lead somewhere else the second time, even out of it through a symlink
/// swapped in meanwhile (runc's CVE-2021-30465). So nothing under it is ever reached by
/// its path: each mount point is opened once from this descriptor with openat2(2),
/// resolved inside the rootfs (RESOLVE_IN_ROOT) and refused if a symlink, and mounted on
/// through the descriptor that open gave.
struct Rootfs<'a> {
    path: &'a Path,
    root: OwnedFd,
    made: &'a MadeInRootfs,
}

impl<'a> Rootfs<'a> {
    /// Binds the rootfs onto itself, recursively: pivot_root(2) needs a mount point.
    /// The path given is the caller's own and is looked up this once, following its
    /// links as the caller wrote it; from here on only the descriptor counts.
    fn bind(path: &'a Path, made: &'a MadeInRootfs) -> Result<Rootfs<'a>, String> {
        let dir = open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| describe("open", path, errno))?;
        let root = mount_api::clone_tree(dir.as_fd(), c"", true)
            .map_err(|errno| call_failed("open_tree OPEN_TREE_CLONE|AT_RECURSIVE", path, errno))?;
        mount_api::attach(root.as_fd(), dir.as_fd())
            .map_err(|errno| call_failed("move_mount", path, errno))?;
        let kept = root
            .try_clone()
            .map_err(|error| format!("dup of the rootfs's descriptor: {error}"))?;
        let _ = made.root.set(kept);
        Ok(Rootfs { path, root, made })
    }

    /// `name` under the rootfs, for messages.
    fn show(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }

    /// The directory `name` of the rootfs, opened to be mounted on: not a symlink, not
    /// through one, and never out of the rootfs.
    fn mount_point(&self, name: &str) -> Result<OwnedFd, Errno> {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(
                ResolveFlag::RESOLVE_IN_ROOT
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_SYMLINKS,
            );
        openat2(self.root.as_fd(), name, how)
    }

    /// Why `name` can't be mounted on, and what to do.
    fn refusal(&self, name: &str, errno: Errno) -> String {
        let path = self.show(name);
        match errno {
            Errno::ELOOP => format!(
                "{path} is a symbolic link: ns-process mounts /{name} only on a directory of \
                 the rootfs itself, never where a link leads; replace it with a directory \
                 (rm {path} && mkdir {path})"
            ),
            Errno::ENOTDIR => format!(
                "{path} is not a directory: /{name} is mounted on it; replace it with a \
                 directory (rm {path} && mkdir {path})"
            ),
            _ => call_failed(
                "openat2 RESOLVE_IN_ROOT|RESOLVE_NO_SYMLINKS",
                Path::new(&path),
                errno,
            ),
        }
    }

    /// A new proc on the rootfs's `proc`, made there if missing; the descriptor of its
    /// root is returned, to reach it by later.
    fn mount_proc(&self) -> Result<OwnedFd, String> {
        let target = self
            .mount_point_made("proc")
            .map_err(|error| error.to_string())?;
        let proc = new_mount(c"proc", &[], &[], PROC_ATTRIBUTES)?;
        mount_api::attach(proc.as_fd(), target.as_fd()).map_err(|errno| {
            call_failed("move_mount proc", Path::new(&self.show("proc")), errno)
        })?;
        Ok(proc)
    }

    /// The directory `name` of the rootfs, as [`Rootfs::mount_point`] opens it, made
    /// there first if missing.
    fn mount_point_made(&self, name: &str) -> Result<OwnedFd, MountPointError> {
        match self.mount_point(name) {
            Err(Errno::ENOENT) => {
                // mkdirat(2) never follows a link in the last component: if one appears
                // meanwhile, this fails or the open below refuses it.
                let created =
                    match mkdirat(self.root.as_fd(), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) => true,
                        Err(Errno::EEXIST) => false,
                        Err(errno) => {
                            return Err(MountPointError::CannotMake(
                                errno,
                                describe("mkdir", Path::new(&self.show(name)), errno),
                            ));
                        }
                    };
                let opened = self.mount_point(name);
                if let (true, Ok(dir)) = (created, &opened) {
                    self.made.note(Path::new(name), dir.as_fd(), true);
                }
                opened
            }
            other => other,
        }
        .map_err(|errno| MountPointError::Refused(self.refusal(name, errno)))
    }

    /// A fresh tmpfs on the rootfs's `dev`, empty; the descriptor of its root is returned
    /// to fill it. It is attached before it is filled, since binding device nodes onto
    /// the files of a detached mount needs Linux 6.15; only this mount namespace sees it.
    fn mount_dev(&self) -> Result<OwnedFd, String> {
        let target = self.mount_point("dev").map_err(|errno| match errno {
            Errno::ENOENT => format!(
                "{} is missing: create it, or rebuild the rootfs with scripts/make-rootfs",
                self.show("dev")
            ),
            errno => self.refusal("dev", errno),
        })?;
        let dev = new_mount(c"tmpfs", &[(c"mode", c"0755")], &[], DEV_ATTRIBUTES)?;
        mount_api::attach(dev.as_fd(), target.as_fd()).map_err(|errno| {
            call_failed("move_mount tmpfs", Path::new(&self.show("dev")), errno)
        })?;
        Ok(dev)
    }

    /// `target` of the rootfs (absolute, without `.` or `..`), opened to be mounted on and
    /// made when missing: directories, and with `file` an empty file as the last
    /// component. One component at a time from the rootfs's descriptor, none of them
    /// may be a symbolic link: a link would lead where its owner chose, out of the rootfs
    /// even, or somewhere else the next time it is looked at.
    fn made_target(&self, target: &Path, file: bool) -> Result<OwnedFd, MountPointError> {
        let names: Vec<&std::ffi::OsStr> = target
            .components()
            .filter_map(|component| match component {
                std::path::Component::Normal(name) => Some(name),
                _ => None,
            })
            .collect();
        let mut at = self.root.try_clone().map_err(|error| {
            MountPointError::Refused(format!("dup of the rootfs's descriptor: {error}"))
        })?;
        let mut walked = PathBuf::new();
        for (index, name) in names.iter().enumerate() {
            walked.push(name);
            let shown = format!("{}/{}", self.path.display(), walked.display());
            let as_file = file && index + 1 == names.len();
            let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
            if !as_file {
                flags |= OFlag::O_DIRECTORY;
            }
            let how = OpenHow::new().flags(flags).resolve(
                ResolveFlag::RESOLVE_BENEATH
                    | ResolveFlag::RESOLVE_NO_MAGICLINKS
                    | ResolveFlag::RESOLVE_NO_SYMLINKS,
            );
            let opened = match openat2(at.as_fd(), *name, how) {
                Err(Errno::ENOENT) => {
                    // Neither call follows a link in the last component: one swapped in
                    // meanwhile makes it fail, or the open after it refuses it. A file is
                    // noted through the descriptor that made it: that very inode.
                    let made = if as_file {
                        openat(
                            at.as_fd(),
                            *name,
                            OFlag::O_WRONLY
                                | OFlag::O_CREAT
                                | OFlag::O_EXCL
                                | OFlag::O_NOFOLLOW
                                | OFlag::O_CLOEXEC,
                            Mode::from_bits_truncate(0o644),
                        )
                        .map(|file| self.made.note(&walked, file.as_fd(), false))
                    } else {
                        mkdirat(at.as_fd(), *name, Mode::from_bits_truncate(0o755))
                    };
                    let made_dir = !as_file && made.is_ok();
                    match made {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(errno) => {
                            let what = if as_file { "creating" } else { "mkdir" };
                            return Err(MountPointError::CannotMake(
                                errno,
                                format!(
                                    "{}; create it in the rootfs first",
                                    describe(what, Path::new(&shown), errno)
                                ),
                            ));
                        }
                    }
                    let opened = openat2(at.as_fd(), *name, how);
                    if let (true, Ok(dir)) = (made_dir, &opened) {
                        self.made.note(&walked, dir.as_fd(), true);
                    }
                    opened
                }
                other => other,
            };
            at = opened.map_err(|errno| {
                MountPointError::Refused(match errno {
                    Errno::ELOOP => format!(
                        "{shown} is a symbolic link: ns-process mounts only on what is in the \
                     rootfs itself, never where a link leads; choose another destination, \
                     or replace the link"
                    ),
                    Errno::ENOTDIR => format!("{shown} is not a directory"),
                    errno => call_failed(
                        "openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS",
                        Path::new(&shown),
                        errno,
                    ),
                })
            })?;
        }
        Ok(at)
    }

    /// A `--bind`: the source opened once by its path, as the caller wrote it, and a
    /// copy of its mount tree (with every mount below it) attached on the destination,
    /// read-only as a whole with `:ro`.
    fn bind_in(&self, bind: &Bind) -> Result<(), String> {
        let source = open(
            &bind.source,
            OFlag::O_PATH | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| describe("open", &bind.source, errno))?;
        let is_dir = nix::sys::stat::fstat(source.as_fd())
            .map_err(|errno| describe("fstat", &bind.source, errno))?
            .st_mode
            & libc::S_IFMT
            == libc::S_IFDIR;
        let tree = mount_api::clone_tree(source.as_fd(), c"", true).map_err(|errno| {
            call_failed(
                "open_tree OPEN_TREE_CLONE|AT_RECURSIVE",
                &bind.source,
                errno,
            )
        })?;
        if bind.read_only {
            mount_api::set_attributes(tree.as_fd(), libc::MOUNT_ATTR_RDONLY, true).map_err(
                |errno| call_failed("mount_setattr MOUNT_ATTR_RDONLY", &bind.source, errno),
            )?;
        }
        let target = self
            .made_target(&bind.target, !is_dir)
            .map_err(|error| error.to_string())?;
        mount_api::attach(tree.as_fd(), target.as_fd())
            .map_err(|errno| call_failed("move_mount (bind)", &bind.target, errno))
    }

    /// A `--tmpfs`: a fresh tmpfs on its destination, made a directory when missing.
    fn mount_tmpfs(&self, tmpfs: &Tmpfs) -> Result<(), String> {
        let target = self
            .made_target(&tmpfs.target, false)
            .map_err(|error| error.to_string())?;
        let size = tmpfs.size.as_deref().map(cstring);
        let mut options = vec![(c"mode", c"0755")];
        if let Some(size) = &size {
            options.push((c"size", size.as_c_str()));
        }
        let mount = new_mount(c"tmpfs", &options, &[], TMP_ATTRIBUTES)?;
        mount_api::attach(mount.as_fd(), target.as_fd())
            .map_err(|errno| call_failed("move_mount tmpfs", &tmpfs.target, errno))
    }

    /// `--read-only`: the rootfs's own mount, not the ones on it, made read-only.
    fn make_read_only(&self) -> Result<(), String> {
        mount_api::set_attributes(self.root.as_fd(), libc::MOUNT_ATTR_RDONLY, false)
            .map_err(|errno| call_failed("mount_setattr MOUNT_ATTR_RDONLY", self.path, errno))
    }

    /// pivot_root(2) into the rootfs and detach the old root.
    ///
    /// The series binds the rootfs on itself, creates `.pivot_root` in it and removes it
    /// afterwards. Here `pivot_root(".", ".")` from the rootfs's own descriptor stacks the
    /// old root on the new one and unmounts it at once (runc's way): nothing is created
    /// inside the rootfs, so a rootfs the caller can't write works too, and no
    /// `/.pivot_root` can be left behind.
    fn pivot(&self) -> Result<(), String> {
        fchdir(self.root.as_fd()).map_err(|errno| describe("fchdir", self.path, errno))?;
        pivot_root(".", ".").map_err(|errno| describe("pivot_root", self.path, errno))?;
        umount2(".", MntFlags::MNT_DETACH)
            .map_err(|errno| describe("umount2 MNT_DETACH (old root)", Path::new("."), errno))?;
        chdir("/").map_err(|errno| describe("chdir", Path::new("/"), errno))
    }
}

// config.json's mounts (#16).
impl Rootfs<'_> {
    /// A `--mount`: a bind made as `--bind`'s (recursive with `rbind`), or a fresh tmpfs
    /// with its options, attached on its destination with its attributes.
    fn mount_arg(&self, mount: &MountArg) -> Result<(), String> {
        let (tree, is_dir, shown) = match &mount.kind {
            MountKind::Bind { source, recursive } => {
                let opened = open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
                    .map_err(|errno| describe("open", source, errno))?;
                let is_dir = nix::sys::stat::fstat(opened.as_fd())
                    .map_err(|errno| describe("fstat", source, errno))?
                    .st_mode
                    & libc::S_IFMT
                    == libc::S_IFDIR;
                let tree = mount_api::clone_tree(opened.as_fd(), c"", *recursive)
                    .map_err(|errno| call_failed("open_tree OPEN_TREE_CLONE", source, errno))?;
                // The atime flags can't be set this way on a copy; a bind keeps its source's.
                let attributes = mount.attributes
                    & (libc::MOUNT_ATTR_RDONLY
                        | libc::MOUNT_ATTR_NOSUID
                        | libc::MOUNT_ATTR_NODEV
                        | libc::MOUNT_ATTR_NOEXEC);
                if attributes != 0 {
                    mount_api::set_attributes(tree.as_fd(), attributes, *recursive)
                        .map_err(|errno| call_failed("mount_setattr", source, errno))?;
                }
                (tree, is_dir, source.clone())
            }
            MountKind::Tmpfs { copy_up } => {
                let data: Vec<(CString, CString)> = mount
                    .data
                    .iter()
                    .map(|(key, value)| (cstring(key), cstring(value)))
                    .collect();
                let pairs: Vec<(&CStr, &CStr)> = data
                    .iter()
                    .map(|(key, value)| (key.as_c_str(), value.as_c_str()))
                    .collect();
                let tree = new_mount(c"tmpfs", &pairs, &[], mount.attributes)?;
                if *copy_up {
                    let covered = self
                        .made_target(&mount.target, false)
                        .map_err(|error| error.to_string())?;
                    let from = openat(
                        covered.as_fd(),
                        ".",
                        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|errno| describe("open", &mount.target, errno))?;
                    copy_tree(from, tree.as_fd(), &mount.target, 0)?;
                }
                (tree, true, PathBuf::from("tmpfs"))
            }
        };
        let target = self
            .made_target(&mount.target, !is_dir)
            .map_err(|error| error.to_string())?;
        mount_api::attach(tree.as_fd(), target.as_fd()).map_err(|errno| {
            call_failed(
                &format!("move_mount ({})", shown.display()),
                &mount.target,
                errno,
            )
        })
    }
}

/// The cgroup hierarchies the host mounts, with the init's own cgroup in each, for
/// `--internal-cgroup-mount`; none, said with `--verbose`, where they can't be read. One
/// mounted under the rootfs is left out: its path is the rootfs owner's to redirect.
fn cgroup_hierarchies(steps: &Steps, rootfs: &Path) -> Vec<reexec::MountedHierarchy> {
    match reexec::Cgroup::mounted_hierarchies() {
        Ok(mut hierarchies) => {
            // As the mount table writes it: absolute, its links followed.
            let rootfs = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_owned());
            hierarchies.retain(|hierarchy| !hierarchy.mount_point.starts_with(&rootfs));
            hierarchies
        }
        Err(error) => {
            steps.skip("binding the command's cgroups", &error.to_string());
            Vec::new()
        }
    }
}

// config.json's cgroup mount (#16).
impl Rootfs<'_> {
    /// `--internal-cgroup-mount`: a tmpfs on its destination, and in it a directory per
    /// hierarchy, named as the host's mount point (`memory`, `cpu,cpuacct`, `systemd`,
    /// `unified`), with the init's own cgroup there bound on it: the command sees its
    /// cgroup as the root of each hierarchy, as under runc, and nothing of the host's
    /// others. A co-mounted controller gets a link to its hierarchy's directory (`cpu ->
    /// cpu,cpuacct`). Read-only, the binds and then the tmpfs. A hierarchy the init may
    /// not bind is left out, said with `--verbose`: the container runs without it.
    fn mount_cgroups(
        &self,
        steps: &Steps,
        arg: &crate::mounts::CgroupMountArg,
        hierarchies: &[reexec::MountedHierarchy],
    ) -> Result<(), String> {
        let target = self
            .made_target(&arg.target, false)
            .map_err(|error| error.to_string())?;
        let tmpfs = new_mount(
            c"tmpfs",
            &[(c"mode", c"0755")],
            &[],
            CGROUP_TMPFS_ATTRIBUTES,
        )?;
        // Attached before the binds go in: binding onto a detached mount needs Linux 6.15.
        mount_api::attach(tmpfs.as_fd(), target.as_fd())
            .map_err(|errno| call_failed("move_mount tmpfs", &arg.target, errno))?;
        let mut bound = Vec::new();
        for hierarchy in hierarchies {
            let Some(name) = hierarchy
                .mount_point
                .file_name()
                .and_then(|name| name.to_str())
            else {
                continue;
            };
            let inside = arg.target.join(name);
            if bound.iter().any(|known: &String| known == name) {
                steps.skip(
                    &format!("binding {}", hierarchy.own.display()),
                    &format!("{} is bound already", inside.display()),
                );
                continue;
            }
            match bind_cgroup(tmpfs.as_fd(), name, &inside, hierarchy, arg.read_only) {
                Ok(()) => bound.push(name.to_owned()),
                Err(why) => steps.skip(
                    &format!(
                        "binding the cgroup {} on {}",
                        hierarchy.own.display(),
                        inside.display()
                    ),
                    &why,
                ),
            }
        }
        // runc's links for co-mounted controllers: each one's own name leads to their
        // directory, where a tool looks for it.
        for name in &bound {
            for controller in name.split(',') {
                if controller.is_empty() || bound.iter().any(|known| known == controller) {
                    continue;
                }
                match symlinkat(name.as_str(), tmpfs.as_fd(), controller) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => {
                        return Err(describe("symlink", &arg.target.join(controller), errno));
                    }
                }
            }
        }
        if arg.read_only {
            mount_api::set_attributes(tmpfs.as_fd(), libc::MOUNT_ATTR_RDONLY, false).map_err(
                |errno| call_failed("mount_setattr MOUNT_ATTR_RDONLY", &arg.target, errno),
            )?;
        }
        Ok(())
    }
}

/// Binds the host's cgroup directory `hierarchy.own` on a new directory `name` of the
/// tmpfs `dir` (shown as `inside`); the directory is taken out again if the bind fails.
fn bind_cgroup(
    dir: BorrowedFd<'_>,
    name: &str,
    inside: &Path,
    hierarchy: &reexec::MountedHierarchy,
    read_only: bool,
) -> Result<(), String> {
    let own = &hierarchy.own;
    let source = open(
        own,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| describe("open", own, errno))?;
    let tree = mount_api::clone_tree(source.as_fd(), c"", false)
        .map_err(|errno| call_failed("open_tree OPEN_TREE_CLONE", own, errno))?;
    let mut attributes = CGROUP_TMPFS_ATTRIBUTES;
    if read_only {
        attributes |= libc::MOUNT_ATTR_RDONLY;
    }
    mount_api::set_attributes(tree.as_fd(), attributes, false)
        .map_err(|errno| call_failed("mount_setattr", own, errno))?;
    mkdirat(dir, name, Mode::from_bits_truncate(0o755))
        .map_err(|errno| describe("mkdir", inside, errno))?;
    let attached = openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|errno| describe("open", inside, errno))
    .and_then(|target| {
        mount_api::attach(tree.as_fd(), target.as_fd())
            .map_err(|errno| call_failed("move_mount (bind)", inside, errno))
    });
    if attached.is_err() {
        let _ = nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::RemoveDir);
    }
    attached
}

/// How deep `tmpcopyup` copies: a tree deeper than this in a directory a tmpfs covers is
/// a mistake, or an attempt to exhaust the init's stack.
const COPY_UP_DEPTH: usize = 32;

/// `tmpcopyup`: copies the directory `from` (of the rootfs, its owner's: read through
/// descriptors, never following a link) into `to`, the fresh tmpfs — directories, regular
/// files and symbolic links with their modes, and owners where this user namespace maps
/// them; other kinds (device nodes, sockets, fifos) are not copied.
fn copy_tree(from: OwnedFd, to: BorrowedFd<'_>, shown: &Path, depth: usize) -> Result<(), String> {
    use nix::sys::stat::{FchmodatFlags, SFlag, fchmodat, fstatat};
    if depth > COPY_UP_DEPTH {
        return Err(format!(
            "{}: deeper than {COPY_UP_DEPTH} directories; tmpcopyup copies no more",
            shown.display()
        ));
    }
    // The listing reads through a copy of the descriptor; the *at calls use `from`.
    let listing = from
        .try_clone()
        .map_err(|error| format!("dup of {}: {error}", shown.display()))?;
    let mut dir =
        nix::dir::Dir::from_fd(listing).map_err(|errno| describe("opendir", shown, errno))?;
    let names: Vec<CString> = dir
        .iter()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_owned())
        .filter(|name| name.as_bytes() != b"." && name.as_bytes() != b"..")
        .collect();
    let from = from.as_fd();
    for name in names {
        let path = shown.join(std::ffi::OsStr::from_bytes(name.as_bytes()));
        let name = name.as_c_str();
        let stat = fstatat(from, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|errno| describe("fstatat", &path, errno))?;
        let mode = Mode::from_bits_truncate(stat.st_mode & 0o7777);
        let kind = SFlag::from_bits_truncate(stat.st_mode & libc::S_IFMT);
        let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        if kind == SFlag::S_IFDIR {
            mkdirat(to, name, Mode::from_bits_truncate(0o700))
                .map_err(|errno| describe("mkdir", &path, errno))?;
            let inner_from = openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
                Mode::empty(),
            )
            .map_err(|errno| describe("open", &path, errno))?;
            let inner_to = openat(
                to,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
                Mode::empty(),
            )
            .map_err(|errno| describe("open", &path, errno))?;
            copy_tree(inner_from, inner_to.as_fd(), &path, depth + 1)?;
        } else if kind == SFlag::S_IFREG {
            // O_NONBLOCK: a fifo swapped in since the fstatat opens at once (and is refused
            // just below) instead of hanging the init.
            let source = openat(
                from,
                name,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK | nofollow,
                Mode::empty(),
            )
            .map_err(|errno| describe("open", &path, errno))?;
            let opened = nix::sys::stat::fstat(source.as_fd())
                .map_err(|errno| describe("fstat", &path, errno))?;
            if opened.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(format!(
                    "{} changed while it was copied (it is no longer a regular file)",
                    path.display()
                ));
            }
            let copy = openat(
                to,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow,
                Mode::from_bits_truncate(0o600),
            )
            .map_err(|errno| describe("creating", &path, errno))?;
            std::io::copy(
                &mut std::fs::File::from(source),
                &mut std::fs::File::from(copy),
            )
            .map_err(|error| format!("copying {}: {error}", path.display()))?;
        } else if kind == SFlag::S_IFLNK {
            let target = nix::fcntl::readlinkat(from, name)
                .map_err(|errno| describe("readlink", &path, errno))?;
            symlinkat(target.as_os_str(), to, name)
                .map_err(|errno| describe("symlink", &path, errno))?;
            continue;
        } else {
            continue;
        }
        // An owner this user namespace does not map stays root's; the mode is set after,
        // since a change of owner clears set-user-ID bits.
        let _ = nix::unistd::fchownat(
            to,
            name,
            Some(nix::unistd::Uid::from_raw(stat.st_uid)),
            Some(nix::unistd::Gid::from_raw(stat.st_gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        fchmodat(to, name, mode, FchmodatFlags::FollowSymlink)
            .map_err(|errno| describe("chmod", &path, errno))?;
    }
    Ok(())
}

const PROC_ATTRIBUTES: u64 =
    libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
const DEV_ATTRIBUTES: u64 = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_STRICTATIME;
const DEVPTS_ATTRIBUTES: u64 = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOEXEC;
const SHM_ATTRIBUTES: u64 =
    libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;
const SYS_ATTRIBUTES: u64 = libc::MOUNT_ATTR_RDONLY | PROC_ATTRIBUTES;
const TMP_ATTRIBUTES: u64 = libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV;
/// The tmpfs of `--internal-cgroup-mount` and the cgroups bound in it, as runc's.
const CGROUP_TMPFS_ATTRIBUTES: u64 =
    libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC;

/// A new, detached mount of a `fstype` filesystem, named after it in the mount table,
/// with string `options`, the options without a value `flags`, and mount `attributes`.
fn new_mount(
    fstype: &CStr,
    options: &[(&CStr, &CStr)],
    flags: &[&CStr],
    attributes: u64,
) -> Result<OwnedFd, String> {
    let name = fstype.to_string_lossy();
    let failed = |call: &str, errno: Errno| call_failed(call, Path::new(name.as_ref()), errno);
    let fs = mount_api::fsopen(fstype).map_err(|errno| failed("fsopen", errno))?;
    for (key, value) in std::iter::once((c"source", fstype)).chain(options.iter().copied()) {
        mount_api::fsconfig_set_string(fs.as_fd(), key, value).map_err(|errno| {
            failed(
                &format!(
                    "fsconfig {}={}",
                    key.to_string_lossy(),
                    value.to_string_lossy()
                ),
                errno,
            )
        })?;
    }
    for flag in flags {
        mount_api::fsconfig_set_flag(fs.as_fd(), flag)
            .map_err(|errno| failed(&format!("fsconfig {}", flag.to_string_lossy()), errno))?;
    }
    mount_api::fsconfig_create(fs.as_fd())
        .map_err(|errno| failed("fsconfig FSCONFIG_CMD_CREATE", errno))?;
    mount_api::fsmount(fs.as_fd(), attributes).map_err(|errno| failed("fsmount", errno))
}

/// The device nodes a shell and most tools expect, bound from the host onto a fresh
/// tmpfs, as bubblewrap's `--dev` does; creating nodes needs a privilege we don't have.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Fills the fresh tmpfs whose root `dev` is open on.
fn populate_dev(dev: BorrowedFd<'_>) -> Result<(), String> {
    for device in DEVICES {
        let host = Path::new("/dev").join(device);
        if host.exists() {
            bind_file(dev, device, &host)?;
        }
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlinkat(target, dev, link)
            .map_err(|errno| describe("symlink", &Path::new("/dev").join(link), errno))?;
    }
    Ok(())
}

/// Binds the host's file `source` onto a new file `name` of the tmpfs whose root `dir` is
/// open on. The file is made with O_EXCL|O_NOFOLLOW: nothing that exists is ever
/// truncated or followed, and the mount goes onto the very file made.
fn bind_file(dir: BorrowedFd<'_>, name: &str, source: &Path) -> Result<(), String> {
    let inside = Path::new("/dev").join(name);
    let node = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(|errno| describe("creating", &inside, errno))?;
    let source_fd = open(source, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|errno| describe("open", source, errno))?;
    let tree = mount_api::clone_tree(source_fd.as_fd(), c"", false)
        .map_err(|errno| call_failed("open_tree OPEN_TREE_CLONE", source, errno))?;
    mount_api::attach(tree.as_fd(), node.as_fd())
        .map_err(|errno| call_failed("move_mount (bind)", &inside, errno))
}

/// With a pty of the command's own, binds it on /dev/console (`bind` gets the pty's path
/// in this mount namespace); skipped where there is no /dev/console to take over.
fn bind_console(
    steps: &Steps,
    options: &Options,
    bind: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), SetupError> {
    if !options.internal_take_terminal {
        return Ok(());
    }
    if options.rootfs.is_none() && !Path::new("/dev/console").exists() {
        steps.skip(
            "binding the pty on /dev/console",
            "there is no /dev/console",
        );
        return Ok(());
    }
    steps.run("binding the command's pty on /dev/console", || {
        bind(&crate::terminal::pty_path()?)
    })
}
