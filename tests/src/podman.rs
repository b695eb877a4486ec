//! podman (Debian's 4.3.1, with conmon) as a real client of an OCI runtime, isolated from
//! the host's own podman, network and cgroups.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;

use crate::cgroup_parent::CgroupParent;
use crate::output::{describe, stdout_text};
use crate::rootfs::busybox_rootfs;
use crate::run::{output_with_timeout, temp_dir};

/// How long one podman command may take before the test fails: a `run` is half a second
/// here, an `import` of the busybox rootfs one.
const PODMAN_TIMEOUT: Duration = Duration::from_secs(120);

/// The image every [`Podman`] has: the busybox rootfs of [`busybox_rootfs`], imported
/// offline (`podman import`), under a name no registry is asked for.
pub const BUSYBOX_IMAGE: &str = "localhost/reexec-busybox:test";

/// A podman of the test's own, running containers with the OCI runtime given, as root.
///
/// Everything podman and the runtime keep is in one temporary directory: storage
/// (`--root`, `--runroot`, `--storage-driver vfs`: no overlay or fuse mounts), podman's
/// temporary files (`--tmpdir`, `TMPDIR`), its events (`--events-backend file`), its locks
/// (file locks instead of the shared memory segment every podman of the host shares),
/// its `containers.conf`, `storage.conf` and `registries.conf` (through
/// `CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`, `CONTAINERS_REGISTRIES_CONF`: no search
/// registry, so nothing is ever pulled), the runtime's state (`--root` given to the
/// runtime by a wrapper script, see below), and the working directory podman and conmon
/// run from (conmon writes a file named `oom` there when a container is OOM-killed).
///
/// What the host would otherwise see, and how it is kept away:
/// - cgroups: `--cgroup-manager cgroupfs` and `--cgroup-parent` below the test's own
///   cgroup ([`CgroupParent`], which removes what podman and the runtime leave).
/// - network: [`Podman::run_args`] holds `--network none`; podman's default network
///   would add a bridge and firewall rules to the host (and needs CNI plugins).
/// - the runtime's state: podman passes `--runtime-flag` to the runtime in its own
///   calls but not in the `podman container cleanup` that conmon runs when a container
///   ends, whose `runc delete` would then look in (and create) `/run/runc`. So podman is
///   given a wrapper named like the runtime (podman recognises a runtime by its name) that
///   adds `--root DIR`.
/// - `/var/lib/containers/cache`: `podman import` (containers/image) keeps a blob cache
///   there whatever `--root` says; the import runs in a mount namespace of its own with a
///   tmpfs on `/var/lib`.
///
/// On drop: every container removed (`podman rm --all --force`), the directory removed
/// (the vfs storage holds only root's files, as no user namespace is used), the cgroups
/// removed. No mount is left: vfs mounts nothing, and the containers' `/dev/shm` mounts go
/// with `podman rm`.
///
/// ```no_run
/// let podman = reexec_tests::Podman::new(
///     std::path::Path::new("/usr/sbin/runc"),
///     // In a test: env!("CARGO_TARGET_TMPDIR").
///     "target/tmp",
/// )
/// .unwrap();
/// let output = podman.run(&[], &["echo", "hi"]);
/// assert_eq!(reexec_tests::stdout_text(&output), "hi\n");
/// ```
#[derive(Debug)]
pub struct Podman {
    // Declared first, so dropped first, while podman's files are still there: nothing of
    // the cgroup parent is in use once the containers are gone.
    cgroup_parent: CgroupParent,
    dir: TempDir,
    runtime: PathBuf,
}

impl Podman {
    /// A podman whose containers run with the OCI runtime at `runtime`, with
    /// [`BUSYBOX_IMAGE`] imported; `target_tmpdir` is the test's
    /// `env!("CARGO_TARGET_TMPDIR")` (where the busybox rootfs is built). `Err` says why
    /// there is none: not root (rootless podman is not covered), podman or conmon not
    /// installed (Debian: podman), no busybox rootfs.
    pub fn new(runtime: &Path, target_tmpdir: &str) -> Result<Podman, String> {
        if !crate::is_root() {
            return Err("podman is tested as root only".into());
        }
        installed(&["podman", "conmon"], "podman")?;
        if !runtime.is_file() {
            return Err(format!("the runtime {} does not exist", runtime.display()));
        }
        let rootfs = busybox_rootfs(target_tmpdir)?;
        let dir = temp_dir("podman");
        let podman = Podman {
            cgroup_parent: CgroupParent::below_own("podman")?,
            runtime: runtime.to_owned(),
            dir,
        };
        podman.write_configuration()?;
        podman.import(rootfs)?;
        Ok(podman)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The runtime's name, as podman knows a runtime: `runc`, `crun`, `ns-runtime`.
    fn runtime_name(&self) -> String {
        self.runtime.file_name().map_or_else(
            || "runtime".into(),
            |name| name.to_string_lossy().into_owned(),
        )
    }

    fn write_configuration(&self) -> Result<(), String> {
        let write = |name: &str, text: String| {
            std::fs::write(self.path(name), text).map_err(|error| format!("{name}: {error}"))
        };
        for subdir in [
            "root",
            "runroot",
            "tmp",
            "work",
            "runtime-state",
            "networks",
            "bin",
        ] {
            std::fs::create_dir(self.path(subdir)).map_err(|error| format!("{subdir}: {error}"))?;
        }
        let name = self.runtime_name();
        let tmp = self.path("tmp");
        // runtime_supports_json: podman passes `--log-format json` only to the runtimes
        // listed, and reads their errors as JSON then.
        write(
            "containers.conf",
            format!(
                "[network]\n\
                 network_config_dir = {networks:?}\n\
                 [engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 lock_type = \"file\"\n\
                 tmp_dir = {tmp:?}\n\
                 image_copy_tmp_dir = {tmp:?}\n\
                 runtime_supports_json = [\"crun\", \"runc\", {name:?}]\n",
                networks = self.path("networks"),
            ),
        )?;
        write(
            "storage.conf",
            format!(
                "[storage]\n\
                 driver = \"vfs\"\n\
                 graphroot = {:?}\n\
                 runroot = {:?}\n",
                self.path("root"),
                self.path("runroot")
            ),
        )?;
        write(
            "registries.conf",
            "unqualified-search-registries = []\n".into(),
        )?;
        let wrapper = self.path("bin").join(&name);
        write(
            &format!("bin/{name}"),
            format!(
                "#!/bin/sh\n\
                 # The runtime under test, with its state in the test's directory.\n\
                 exec {} --root {} \"$@\"\n",
                shell_quote(&self.runtime.to_string_lossy()),
                shell_quote(&self.path("runtime-state").to_string_lossy()),
            ),
        )?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
            .map_err(|error| format!("{}: {error}", wrapper.display()))
    }

    /// The environment and global flags every podman command gets.
    fn environment_and_flags(&self) -> (Vec<(&'static str, PathBuf)>, Vec<OsString>) {
        let environment = vec![
            ("CONTAINERS_CONF", self.path("containers.conf")),
            ("CONTAINERS_STORAGE_CONF", self.path("storage.conf")),
            ("CONTAINERS_REGISTRIES_CONF", self.path("registries.conf")),
            ("TMPDIR", self.path("tmp")),
        ];
        let mut flags: Vec<OsString> = Vec::new();
        for (flag, value) in [
            ("--root", self.path("root").into_os_string()),
            ("--runroot", self.path("runroot").into_os_string()),
            ("--storage-driver", "vfs".into()),
            ("--tmpdir", self.path("tmp").into_os_string()),
            ("--events-backend", "file".into()),
            ("--cgroup-manager", "cgroupfs".into()),
            (
                "--runtime",
                self.path("bin").join(self.runtime_name()).into_os_string(),
            ),
        ] {
            flags.push(flag.into());
            flags.push(value);
        }
        (environment, flags)
    }

    /// `podman` with this podman's environment, global flags and working directory; add
    /// a subcommand and its arguments.
    pub fn command(&self) -> Command {
        let (environment, flags) = self.environment_and_flags();
        let mut command = Command::new("podman");
        command
            .envs(environment)
            .args(flags)
            .current_dir(self.work_dir())
            .stdin(std::process::Stdio::null());
        command
    }

    /// A shell command line running `podman ARGS` as [`Podman::command`] does, for a
    /// terminal ([`crate::TmuxServer`]); it starts with `env`, so `exec` may precede it.
    pub fn command_line(&self, args: &[&str]) -> String {
        let (environment, flags) = self.environment_and_flags();
        let mut words = vec![
            "env".to_owned(),
            format!("--chdir={}", self.work_dir().display()),
        ];
        words.extend(
            environment
                .iter()
                .map(|(name, value)| format!("{name}={}", value.display())),
        );
        words.push("podman".into());
        words.extend(flags.iter().map(|flag| flag.to_string_lossy().into_owned()));
        words.extend(args.iter().map(|arg| (*arg).to_owned()));
        words
            .iter()
            .map(|word| shell_quote(word))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs `podman ARGS` to its end (two minutes at most).
    pub fn podman(&self, args: &[&str]) -> Output {
        output_with_timeout(self.command().args(args), PODMAN_TIMEOUT)
    }

    /// Like [`Podman::podman`], but panics with podman's output unless it succeeds;
    /// returns its standard output, trimmed.
    pub fn podman_ok(&self, args: &[&str]) -> String {
        let output = self.podman(args);
        assert!(
            output.status.success(),
            "podman {args:?}: {}",
            describe(&output)
        );
        stdout_text(&output).trim().to_owned()
    }

    /// The options every `podman run` here needs: `--network none`, the cgroup parent,
    /// and the limits on open files and processes.
    ///
    /// Without explicit `--ulimit`s podman (as root) asks the runtime for RLIMIT_NOFILE and
    /// RLIMIT_NPROC of 1048576 each. Raising a hard limit above the caller's needs
    /// CAP_SYS_RESOURCE, which root lacks on machines like this one (a sandbox: hard limits
    /// of 20000 files and 96364 processes), and runc's create fails: "error setting
    /// rlimit type 7: operation not permitted". What podman itself runs with is the
    /// ceiling: it raises its own RLIMIT_NOFILE as far as it may (here to the hard limit)
    /// and lowers its RLIMIT_NPROC to 32768, soft and hard, at start; conmon and the
    /// runtime inherit that. So: the test's own limit on files, and on processes its own
    /// capped at 32768.
    pub fn run_args(&self) -> Vec<String> {
        use nix::sys::resource::{Resource, getrlimit};
        const PODMAN_NPROC: u64 = 32768;
        let (files_soft, files_hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
        let (processes_soft, processes_hard) =
            getrlimit(Resource::RLIMIT_NPROC).unwrap_or((1024, 1024));
        vec![
            "--network".into(),
            "none".into(),
            "--cgroup-parent".into(),
            self.cgroup_parent.path().into(),
            "--ulimit".into(),
            format!("nofile={files_soft}:{files_hard}"),
            "--ulimit".into(),
            format!(
                "nproc={}:{}",
                processes_soft.min(PODMAN_NPROC),
                processes_hard.min(PODMAN_NPROC)
            ),
        ]
    }

    /// `podman run --rm`, with [`Podman::run_args`], then `options`, [`BUSYBOX_IMAGE`] and
    /// `command`; its output.
    pub fn run(&self, options: &[&str], command: &[&str]) -> Output {
        let run_args = self.run_args();
        let mut args = vec!["run", "--rm"];
        args.extend(run_args.iter().map(String::as_str));
        args.extend(options);
        args.push(BUSYBOX_IMAGE);
        args.extend(command);
        self.podman(&args)
    }

    /// The directory podman and conmon run from: conmon writes a file named `oom` there
    /// when the kernel's OOM killer ends a container (podman 4.3.1 does not find it
    /// there, so `inspect` says `OOMKilled: false`).
    pub fn work_dir(&self) -> PathBuf {
        self.path("work")
    }

    /// The cgroup parent the containers are created under.
    pub fn cgroup_parent(&self) -> &CgroupParent {
        &self.cgroup_parent
    }

    /// `podman import` of `rootfs` as [`BUSYBOX_IMAGE`], in a mount namespace of its own
    /// where `/var/lib` is an empty tmpfs (the blob cache, see [`Podman`]).
    fn import(&self, rootfs: &Path) -> Result<(), String> {
        let tarball = self.path("rootfs.tar");
        let tar = Command::new("tar")
            .arg("-C")
            .arg(rootfs)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .output()
            .map_err(|error| format!("tar: {error}"))?;
        if !tar.status.success() {
            return Err(format!("tar of the busybox rootfs: {}", describe(&tar)));
        }
        let import = self.command_line(&["import", &tarball.to_string_lossy(), BUSYBOX_IMAGE]);
        let output = output_with_timeout(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg(format!(
                    "mount -t tmpfs -o mode=0755 reexec-podman-import /var/lib && exec {import}"
                )),
            PODMAN_TIMEOUT,
        );
        let _ = std::fs::remove_file(&tarball);
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("podman import: {}", describe(&output)))
        }
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let output = self.podman(&["rm", "--all", "--force", "--time", "0"]);
        if !output.status.success() {
            eprintln!("Podman: podman rm --all: {}", describe(&output));
        }
        // What a failed command may have left mounted (the containers' /dev/shm): a lazy
        // unmount, so that removing the directory can't cross into another file system.
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let dir = self.dir.path().to_string_lossy().into_owned();
        let mut mounted: Vec<&str> = table
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .filter(|point| point.starts_with(&dir))
            .collect();
        mounted.sort_by_key(|point| std::cmp::Reverse(point.len()));
        for point in mounted {
            eprintln!("Podman: {point} was still mounted");
            let _ = Command::new("umount").arg("--lazy").arg(point).status();
        }
    }
}

/// `Err` naming the first of `programs` that does not answer `--version`, and the Debian
/// `package` that installs it.
pub(crate) fn installed(programs: &[&str], package: &str) -> Result<(), String> {
    for program in programs {
        let found = Command::new(program).arg("--version").output();
        if !found.is_ok_and(|output| output.status.success()) {
            return Err(format!(
                "{program} is not installed (Debian package {package}; scripts/install-test-deps)"
            ));
        }
    }
    Ok(())
}

/// `word` quoted for a POSIX shell.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
