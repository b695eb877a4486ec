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

use nix::mount::{MsFlags, mount};
use nix::sys::statvfs::{FsFlags, statvfs};

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

/// The flags a remount must repeat: in a user namespace the kernel refuses to clear
/// nosuid, nodev, noexec or the atime flags of a mount that came from the parent's
/// namespace (mount(2), EPERM), and a remount without them would ask for exactly that.
fn kept_flags(path: &str) -> Result<MsFlags, String> {
    let flags = statvfs(path)
        .map_err(|errno| describe("statvfs", path, errno))?
        .flags();
    Ok([
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|&(has, _)| flags.contains(has))
    .fold(MsFlags::empty(), |all, (_, flag)| all | flag))
}

fn remount_read_only(path: &str) -> Result<(), String> {
    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | kept_flags(path)?;
    mount(None::<&str>, path, None::<&str>, flags, None::<&str>)
        .map_err(|errno| describe("mount MS_REMOUNT|MS_RDONLY", path, errno))
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
    remount_read_only(path)
}

/// `path`, already a mount point, and every mount below it, read-only: a remount is not
/// recursive.
fn read_only_with_everything_below(path: &str) -> Result<(), String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|error| format!("reading /proc/self/mountinfo: {error}"))?;
    let below = format!("{path}/");
    for mount_point in mount_points(&mountinfo) {
        if mount_point == path || mount_point.starts_with(&below) {
            remount_read_only(&mount_point)?;
        }
    }
    Ok(())
}

/// The mount points of a mountinfo text, in its order (parents before children), with
/// the kernel's octal escapes (`\040` for a space) undone.
fn mount_points(mountinfo: &str) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_octal)
        .collect()
}

fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = bytes
            .get(index + 1..index + 4)
            .filter(|digits| bytes[index] == b'\\' && digits.iter().all(u8::is_ascii_digit))
            .and_then(|digits| u8::from_str_radix(std::str::from_utf8(digits).ok()?, 8).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                index += 4;
            }
            None => {
                out.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_read_with_escapes_undone() {
        let mountinfo = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
23 22 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
40 22 0:40 / /mnt/with\\040space rw - tmpfs tmpfs rw
";
        assert_eq!(mount_points(mountinfo), ["/", "/sys", "/mnt/with space"]);
        assert_eq!(unescape_octal("a\\134b\\"), "a\\b\\");
    }
}
