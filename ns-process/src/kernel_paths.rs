//! The kernel's knobs and secrets under `/proc` and `/sys`, out of the command's reach.
//!
//! A `/proc` mounted in our namespaces still shows the whole machine's sysctls, and with
//! root mapped to host root (ns-process run by root) the kernel lets root inside write
//! them: `/proc/sys/kernel/core_pattern` names a program the host runs as root on every
//! crash. So, as Docker, podman and runc do by default: the paths that change the host
//! are made read-only, the ones that show its secrets (`/proc/kcore`, `/proc/keys`, …)
//! are covered — a file by `/dev/null`, a directory by an empty read-only tmpfs — and
//! without `CAP_SYS_ADMIN` (see `capabilities`) the command can neither unmount nor
//! remount these, nor mount a `proc` or `sysfs` of its own: the kernel allows a new one
//! only where one is already fully visible (mount_too_revealing), and ours are not.

use std::path::Path;

use nix::libc;
use nix::mount::{MsFlags, mount};

/// Covered: files by /dev/null, directories by an empty read-only tmpfs.
pub(crate) const MASKED: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Readable, but never writable.
pub(crate) const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn describe(call: &str, path: &str, errno: nix::Error) -> String {
    crate::setup::describe(call, Path::new(path), errno)
}

/// The sysfs whose paths of [`MASKED`] are covered.
pub(crate) enum Sys<'a> {
    /// The host's own `/sys`, kept without --rootfs: its files are host root's to write,
    /// so it is made read-only first, with every mount below it.
    Host,
    /// A sysfs already read-only, reached at this path (a descriptor's
    /// `/proc/self/fd/N`).
    ReadOnlyAt(&'a str),
}

/// Makes every path of [`READ_ONLY`] read-only and covers every path of [`MASKED`] that
/// exists; a path that does not exist is left alone, since there is nothing to reach
/// through it. Runs in the command's own mount namespace.
///
/// `proc` is where the proc to protect is reached, for the `/proc` of the lists, and
/// `sys` the sysfs for the `/sys` ones; either may be absent (not mounted). Without
/// --rootfs that is `/proc` and the host's `/sys`, after the setup. With --rootfs it runs
/// before the pivot, on the proc and sysfs mounted in the rootfs as their descriptors
/// reach them (`/proc/self/fd/N` of the host's proc, which no one but root can redirect),
/// never by the names `proc` and `sys` in the rootfs: its owner can swap those for links
/// to a decoy at any moment, and a protection done through the link would leave the real
/// ones writable or unmasked under another name.
///
/// The lists are [`MASKED`] and [`READ_ONLY`] unless ns-runtime gave config.json's own
/// (`paths`, #16).
pub(crate) fn protect(
    proc: Option<&str>,
    sys: Option<Sys<'_>>,
    paths: &crate::mounts::KernelPaths,
) -> Result<(), String> {
    let sys_path = match &sys {
        Some(Sys::Host) => Some("/sys"),
        Some(Sys::ReadOnlyAt(path)) => Some(*path),
        None => None,
    };
    let place = |path: &String| {
        if let Some(below) = path.strip_prefix("/proc") {
            proc.map(|proc| format!("{proc}{below}"))
        } else {
            let below = path.strip_prefix("/sys")?;
            sys_path.map(|sys| format!("{sys}{below}"))
        }
    };
    if matches!(sys, Some(Sys::Host)) && Path::new("/sys/kernel").is_dir() {
        read_only_with_everything_below("/sys")?;
    }
    for path in paths.read_only.iter().filter_map(place) {
        if Path::new(&path).symlink_metadata().is_ok() {
            read_only(&path)?;
        }
    }
    for path in paths.masked.iter().filter_map(place) {
        match Path::new(&path).symlink_metadata() {
            Ok(metadata) if metadata.is_dir() => cover_directory(&path)?,
            Ok(_) => cover_file(&path)?,
            Err(_) => {}
        }
    }
    Ok(())
}

/// A bind of `path` onto itself, so that it is a mount point of its own, made read-only.
fn read_only(path: &str) -> Result<(), String> {
    mount(
        Some(path),
        path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| describe("bind mount", path, errno))?;
    set_read_only(path, false)
}

/// `path`, already a mount point, and every mount below it, read-only.
fn read_only_with_everything_below(path: &str) -> Result<(), String> {
    set_read_only(path, true)
}

/// mount_setattr(2) rather than a remount: it changes only the read-only flag, where a
/// remount must repeat each flag it keeps (in a user namespace the kernel refuses one
/// that would clear nosuid, nodev, noexec or an atime flag of a mount from the parent's
/// namespace), and it takes a whole tree in one call where a remount takes one mount.
fn set_read_only(path: &str, recursive: bool) -> Result<(), String> {
    let c_path = std::ffi::CString::new(path)
        .map_err(|_| format!("{path:?}: a path with a NUL byte can't be mounted"))?;
    crate::sys::mount_api::set_attributes_at(&c_path, libc::MOUNT_ATTR_RDONLY, recursive)
        .map_err(|errno| describe("mount_setattr MOUNT_ATTR_RDONLY", path, errno))
}

fn cover_file(path: &str) -> Result<(), String> {
    mount(
        Some("/dev/null"),
        path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|errno| describe("bind mount /dev/null", path, errno))
}

fn cover_directory(path: &str) -> Result<(), String> {
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("tmpfs"), path, Some("tmpfs"), flags, Some("size=0"))
        .map_err(|errno| describe("mount tmpfs", path, errno))
}
