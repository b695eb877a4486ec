//! `--mount` and the kernel paths config.json lists (#16): what an OCI bundle mounts
//! beyond ns-process's own filesystem, in the OCI runtime spec's terms, and which paths
//! of `/proc` and `/sys` it masks or makes read-only.
//!
//! A `--mount` is made through the rootfs's descriptor as `--bind` and `--tmpfs` are
//! (setup.rs's `Rootfs`): its destination is resolved inside the rootfs, one component at
//! a time, and never through a symbolic link.

use std::path::PathBuf;

use nix::libc;

use crate::cli::Options;

/// One `--mount`.
#[derive(Debug, Clone)]
pub(crate) struct MountArg {
    pub(crate) kind: MountKind,
    /// Absolute, without `.` or `..`.
    pub(crate) target: PathBuf,
    /// `MOUNT_ATTR_*` flags set on the mount: ro, nosuid, nodev, noexec, and for a tmpfs
    /// the atime ones.
    pub(crate) attributes: u64,
    /// A tmpfs's own options (`size`, `mode`, …), as key and value.
    pub(crate) data: Vec<(String, String)>,
}

/// What a `--mount` mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MountKind {
    /// A file or directory of the caller's; `recursive` with every mount below it.
    Bind { source: PathBuf, recursive: bool },
    /// A fresh tmpfs; `copy_up`: filled first with what the rootfs has at its
    /// destination (`tmpcopyup`, as podman asks for a `--read-only` rootfs's `/run`).
    Tmpfs { copy_up: bool },
}

/// The options `--mount` takes beyond the tmpfs ones, as `ns-runtime features` lists
/// them.
pub(crate) const OPTIONS: [&str; 18] = [
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "relatime",
    "noatime",
    "strictatime",
    "nodiratime",
    "bind",
    "rbind",
    "private",
    "rprivate",
    "readonly",
    "tmpcopyup",
];

/// The tmpfs options `--mount type=tmpfs` passes on to the filesystem.
const TMPFS_DATA: [&str; 6] = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"];

impl MountArg {
    /// Takes `type=bind,source=SRC,destination=DST[,OPTION…]` or
    /// `type=tmpfs,destination=DST[,OPTION…]`; `src`, `dst` and `target` are also read, as
    /// podman writes them.
    pub(crate) fn parse(text: &str) -> Result<MountArg, String> {
        let invalid = |why: String| {
            format!(
                "invalid --mount {text:?}: {why}; write type=bind,source=SRC,destination=DST or \
                 type=tmpfs,destination=DST, then options such as ro,nosuid,size=64m \
                 (paths with ',' can't be given)"
            )
        };
        let (mut fstype, mut source, mut target) = (None, None, None);
        let mut attributes = 0;
        let mut recursive = false;
        let mut copy_up = false;
        let mut data = Vec::new();
        for part in text.split(',') {
            let (key, value) = match part.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (part, None),
            };
            match (key, value) {
                ("type", Some(value)) => fstype = Some(value),
                ("source" | "src", Some(value)) => source = Some(value),
                ("destination" | "dst" | "target", Some(value)) => target = Some(value),
                ("ro" | "readonly", None) => attributes |= libc::MOUNT_ATTR_RDONLY,
                ("nosuid", None) => attributes |= libc::MOUNT_ATTR_NOSUID,
                ("nodev", None) => attributes |= libc::MOUNT_ATTR_NODEV,
                ("noexec", None) => attributes |= libc::MOUNT_ATTR_NOEXEC,
                ("noatime", None) => attributes |= libc::MOUNT_ATTR_NOATIME,
                ("strictatime", None) => attributes |= libc::MOUNT_ATTR_STRICTATIME,
                ("nodiratime", None) => attributes |= libc::MOUNT_ATTR_NODIRATIME,
                // The defaults of a new mount, or of every mount in the command's private
                // mount namespace.
                ("rw" | "suid" | "dev" | "exec" | "relatime" | "private" | "rprivate", None) => {}
                ("bind", None) => recursive = false,
                ("tmpcopyup", None) => copy_up = true,
                ("rbind", None) => recursive = true,
                (
                    "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable",
                    None,
                ) => {
                    return Err(invalid(format!(
                        "propagation {key:?} is not supported: every mount of the command's \
                         namespace is private to it; use private or rprivate"
                    )));
                }
                (key, Some(value)) if TMPFS_DATA.contains(&key) => {
                    if value.is_empty() || value.contains('\0') {
                        return Err(invalid(format!("{key}= needs a value")));
                    }
                    data.push((key.to_owned(), value.to_owned()));
                }
                _ => {
                    return Err(invalid(format!(
                        "{part:?} is not an option ns-process knows; it takes ro, rw, nosuid, \
                         nodev, noexec, bind, rbind, private, rprivate, relatime, noatime, \
                         strictatime, nodiratime and, for tmpfs, tmpcopyup, {}",
                        TMPFS_DATA.map(|key| format!("{key}=")).join(", ")
                    )));
                }
            }
        }
        let target = target.ok_or_else(|| invalid("it has no destination=".into()))?;
        let target = crate::cli::inside_path(target).map_err(&invalid)?;
        let kind = match fstype {
            Some("bind") => {
                let source = source
                    .filter(|source| !source.is_empty())
                    .ok_or_else(|| invalid("a bind needs source=".into()))?;
                if !data.is_empty() || copy_up {
                    return Err(invalid(
                        "size=, mode=, uid=, gid=, nr_inodes= and tmpcopyup are tmpfs options"
                            .into(),
                    ));
                }
                MountKind::Bind {
                    source: source.into(),
                    recursive,
                }
            }
            Some("tmpfs") => {
                if source.is_some_and(|source| source != "tmpfs") {
                    return Err(invalid("a tmpfs has no source".into()));
                }
                MountKind::Tmpfs { copy_up }
            }
            Some(other) => {
                return Err(invalid(format!(
                    "type {other:?} is not supported; --mount takes bind and tmpfs"
                )));
            }
            None => return Err(invalid("it has no type=".into())),
        };
        Ok(MountArg {
            kind,
            target,
            attributes,
            data,
        })
    }
}

impl MountArg {
    /// What it mounts, for the setup step's name.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            MountKind::Bind { source, recursive } => format!(
                "{} of {}",
                if *recursive {
                    "a recursive bind"
                } else {
                    "a bind"
                },
                source.display()
            ),
            MountKind::Tmpfs { copy_up: false } => "a tmpfs".to_owned(),
            MountKind::Tmpfs { copy_up: true } => {
                "a tmpfs holding a copy of what it covers".to_owned()
            }
        }
    }
}

/// One `--device HOST[:DEST]`.
#[derive(Debug, Clone)]
pub(crate) struct DeviceArg {
    /// The host's node.
    pub(crate) host: PathBuf,
    /// Absolute, without `.` or `..`.
    pub(crate) target: PathBuf,
}

impl DeviceArg {
    pub(crate) fn parse(text: &str) -> Result<DeviceArg, String> {
        let invalid = |why: String| {
            format!("invalid --device {text:?}: {why}; write HOST or HOST:DEST, e.g. /dev/fuse")
        };
        let (host, target) = match text.split(':').collect::<Vec<_>>()[..] {
            [host] => (host, host),
            [host, target] => (host, target),
            _ => return Err(invalid("it has more than two parts".into())),
        };
        if !host.starts_with('/') {
            return Err(invalid(format!("{host:?} is not an absolute path")));
        }
        let target = crate::cli::inside_path(target).map_err(&invalid)?;
        Ok(DeviceArg {
            host: host.into(),
            target,
        })
    }

    /// The host's node: `Err` unless it is a character or block device.
    fn check(&self) -> Result<(), String> {
        use std::os::unix::fs::FileTypeExt;
        let shown = self.host.display();
        let metadata = std::fs::metadata(&self.host).map_err(|error| {
            format!("--device {shown}: {error}; give a device node of the host")
        })?;
        let kind = metadata.file_type();
        if kind.is_char_device() || kind.is_block_device() {
            Ok(())
        } else {
            Err(format!(
                "--device {shown} is not a device node; give a character or block device such \
                 as /dev/fuse"
            ))
        }
    }
}

/// `--internal-cgroup-mount DEST[:ro|rw]` (config.json's mount of type `cgroup`): the
/// init's own cgroup of each hierarchy the host mounts, bound on a tmpfs at DEST inside
/// the rootfs, as runc shows a container its cgroups. Read-only unless `:rw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CgroupMountArg {
    /// Absolute, without `.` or `..`.
    pub(crate) target: PathBuf,
    pub(crate) read_only: bool,
}

impl CgroupMountArg {
    pub(crate) fn parse(text: &str) -> Result<CgroupMountArg, String> {
        let invalid = |why: String| {
            format!(
                "invalid --internal-cgroup-mount {text:?}: {why}; write DEST, DEST:ro or \
                 DEST:rw, e.g. /sys/fs/cgroup:ro"
            )
        };
        let (target, read_only) = match text.rsplit_once(':') {
            Some((target, "ro")) => (target, true),
            Some((target, "rw")) => (target, false),
            Some((_, other)) => return Err(invalid(format!("{other:?} is neither ro nor rw"))),
            None => (text, true),
        };
        let target = crate::cli::inside_path(target).map_err(&invalid)?;
        Ok(CgroupMountArg { target, read_only })
    }
}

/// `--internal-masked-path` and `--internal-readonly-path`: a path under `/proc` or
/// `/sys`, absolute, without `.` or `..`.
pub(crate) fn kernel_path(text: &str) -> Result<String, String> {
    let under = ["/proc/", "/sys/"]
        .iter()
        .any(|prefix| text.starts_with(prefix));
    if !under || text.contains('\0') || text.split('/').any(|part| part == "." || part == "..") {
        return Err(format!(
            "{text:?}: ns-process masks and makes read-only paths under /proc and /sys only, \
             given absolute, without . or .."
        ));
    }
    Ok(text.trim_end_matches('/').to_owned())
}

/// The checks made before anything is created.
pub(crate) fn validate(options: &Options) -> Result<(), String> {
    if !options.mount.is_empty() && options.rootfs.is_none() {
        return Err(
            "--mount changes the filesystem of a --rootfs; add --rootfs DIR (without one the \
             command sees the caller's own)"
                .into(),
        );
    }
    if options.internal_cgroup_mount.is_some() && options.rootfs.is_none() {
        return Err(
            "--internal-cgroup-mount (config.json's cgroup mount) binds the command's cgroups \
             into a --rootfs; add --rootfs DIR (without one the command sees the caller's own \
             /sys/fs/cgroup)"
                .into(),
        );
    }
    if !options.device.is_empty() && options.rootfs.is_none() {
        return Err(
            "--device adds a node to the /dev of a --rootfs; add --rootfs DIR (without one the \
             command sees the host's /dev)"
                .into(),
        );
    }
    for device in &options.device {
        device.check()?;
    }
    for mount in &options.mount {
        if let MountKind::Bind { source, .. } = &mount.kind {
            std::fs::metadata(source).map_err(|error| {
                format!(
                    "--mount source={}: {error}; the source is a file or directory of yours, \
                     bound into the rootfs",
                    source.display()
                )
            })?;
        }
    }
    Ok(())
}

/// The paths the init masks and makes read-only: ns-process's own lists, or with
/// `--internal-own-kernel-paths` exactly the ones given.
pub(crate) struct KernelPaths {
    pub(crate) masked: Vec<String>,
    pub(crate) read_only: Vec<String>,
}

impl KernelPaths {
    pub(crate) fn of(options: &Options) -> KernelPaths {
        let (mut masked, mut read_only) = if options.internal_own_kernel_paths {
            (Vec::new(), Vec::new())
        } else {
            let owned = |paths: &[&str]| paths.iter().map(|path| (*path).to_owned()).collect();
            (
                owned(&crate::kernel_paths::MASKED),
                owned(&crate::kernel_paths::READ_ONLY),
            )
        };
        masked.extend(options.internal_masked_path.iter().cloned());
        read_only.extend(options.internal_readonly_path.iter().cloned());
        KernelPaths { masked, read_only }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_parse_in_the_oci_terms() {
        let bind = MountArg::parse("type=bind,source=/a,destination=/b,rbind,ro,nosuid").unwrap();
        assert_eq!(
            bind.kind,
            MountKind::Bind {
                source: "/a".into(),
                recursive: true
            }
        );
        assert_eq!(bind.target, PathBuf::from("/b"));
        assert_eq!(
            bind.attributes,
            libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NOSUID
        );
        let tmpfs = MountArg::parse("type=tmpfs,dst=/t,size=1m,mode=700,noexec").unwrap();
        assert_eq!(tmpfs.kind, MountKind::Tmpfs { copy_up: false });
        assert_eq!(tmpfs.data.len(), 2);
        for (bad, expected) in [
            ("type=bind,destination=/b", "needs source="),
            ("type=bind,source=/a", "no destination="),
            ("type=proc,destination=/p", "type \"proc\""),
            (
                "type=tmpfs,destination=/t,rshared",
                "propagation \"rshared\"",
            ),
            (
                "type=tmpfs,destination=/t,bogus",
                "\"bogus\" is not an option",
            ),
            (
                "type=bind,source=/a,destination=/b,size=1m",
                "tmpfs options",
            ),
            ("type=tmpfs,destination=t", "not an absolute path"),
            ("source=/a,destination=/b", "no type="),
        ] {
            let error = MountArg::parse(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }

    #[test]
    fn cgroup_mounts_are_read_only_unless_rw() {
        for (text, read_only) in [
            ("/sys/fs/cgroup", true),
            ("/sys/fs/cgroup:ro", true),
            ("/sys/fs/cgroup:rw", false),
        ] {
            let parsed = CgroupMountArg::parse(text).unwrap();
            assert_eq!(parsed.target, PathBuf::from("/sys/fs/cgroup"), "{text}");
            assert_eq!(parsed.read_only, read_only, "{text}");
        }
        for (bad, expected) in [
            ("/sys/fs/cgroup:rx", "neither ro nor rw"),
            ("sys/fs/cgroup", "not an absolute path"),
            ("/sys/../etc", ".."),
        ] {
            let error = CgroupMountArg::parse(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }

    #[test]
    fn kernel_paths_stay_under_proc_and_sys() {
        assert_eq!(kernel_path("/proc/kcore").unwrap(), "/proc/kcore");
        for bad in ["/etc/passwd", "/proc/../etc", "proc/kcore", "/proc"] {
            assert!(kernel_path(bad).is_err(), "{bad}");
        }
    }
}
