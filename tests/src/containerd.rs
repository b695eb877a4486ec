//! containerd (Debian's 1.6, with its `ctr` and the runc v2 shim) as a real client of an
//! OCI runtime, isolated from the host's own containerd.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::cgroup_parent::CgroupParent;
use crate::output::describe;
use crate::rootfs::busybox_rootfs_copy;
use crate::run::{output_with_timeout, temp_dir};

/// How long one `ctr` command may take before the test fails.
const CTR_TIMEOUT: Duration = Duration::from_secs(60);

/// A containerd of the test's own, as root, and `ctr` commands against it that run
/// containers with the OCI runtime given (`ctr run --runc-binary PATH`: the runc v2 shim's
/// `BinaryName` option).
///
/// Everything containerd, its shims and the runtime keep is in one temporary directory:
/// containerd's `root`, `state`, `temp`, its gRPC and ttrpc sockets, its `opt` plugin's
/// directory (`/opt/containerd` by default), the FIFOs of `ctr` (`--fifo-dir`), the
/// runtime's state (`--runc-root`). No CRI plugin, no CNI, no image: containers run from a
/// copy of the busybox rootfs (`ctr run --rootfs`), with `PATH` set, which no image
/// config gives them then.
///
/// Two paths containerd 1.6 does not let a configuration move: the shim's socket
/// directory, `/run/containerd/s`, and the default runtime state directory
/// `/run/containerd/runc`. containerd runs in a mount namespace of its own
/// (`unshare --mount`) where `/run` is an empty tmpfs, so both are made there; its shims
/// inherit it, and it is gone with the last of them.
///
/// cgroups: containerd's default spec puts a container at `/default/ID` from the root of
/// every hierarchy; [`Containerd::ctr_run_args`] gives `--cgroup` below the test's own
/// instead ([`CgroupParent`]).
///
/// On drop: every task killed and deleted, every container deleted, containerd killed (by
/// its pid) and reaped.
///
/// ```no_run
/// let containerd = reexec_tests::Containerd::new(
///     std::path::Path::new("/usr/sbin/runc"),
///     // In a test: env!("CARGO_TARGET_TMPDIR").
///     "target/tmp",
/// )
/// .unwrap();
/// let mut args = containerd.ctr_run_args("c1");
/// args.extend(["/bin/true".to_owned()]);
/// let args: Vec<&str> = args.iter().map(String::as_str).collect();
/// assert!(containerd.ctr(&args).status.success());
/// ```
#[derive(Debug)]
pub struct Containerd {
    daemon: Child,
    cgroup_parent: CgroupParent,
    dir: TempDir,
    runtime: PathBuf,
    containers: std::cell::RefCell<Vec<String>>,
}

impl Containerd {
    /// A running containerd whose `ctr run`s use the OCI runtime at `runtime`;
    /// `target_tmpdir` is the test's `env!("CARGO_TARGET_TMPDIR")`. `Err` says why there is
    /// none: not root, containerd not installed (Debian: containerd), no busybox rootfs,
    /// or containerd not answering within 30 s (with its log).
    pub fn new(runtime: &Path, target_tmpdir: &str) -> Result<Containerd, String> {
        if !crate::is_root() {
            return Err("containerd is tested as root only".into());
        }
        crate::podman::installed(
            &["containerd", "ctr", "containerd-shim-runc-v2"],
            "containerd",
        )?;
        if !runtime.is_file() {
            return Err(format!("the runtime {} does not exist", runtime.display()));
        }
        let dir = temp_dir("containerd");
        let path = |name: &str| dir.path().join(name);
        busybox_rootfs_copy(target_tmpdir, &path("rootfs"), (0, 0))?;
        for subdir in ["root", "state", "temp", "opt", "fifo", "runtime-state"] {
            std::fs::create_dir(path(subdir)).map_err(|error| format!("{subdir}: {error}"))?;
        }
        // The plugins disabled would look for what is not here (btrfs, zfs, a device
        // mapper pool) or serve what no test uses (CRI, tracing).
        let config = format!(
            "version = 2\n\
             root = {root:?}\n\
             state = {state:?}\n\
             temp = {temp:?}\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \
             \"io.containerd.snapshotter.v1.btrfs\", \"io.containerd.snapshotter.v1.zfs\", \
             \"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.snapshotter.v1.aufs\", \
             \"io.containerd.tracing.processor.v1.otlp\", \"io.containerd.internal.v1.tracing\"]\n\
             [grpc]\n  address = {grpc:?}\n\
             [ttrpc]\n  address = {ttrpc:?}\n\
             [debug]\n  address = \"\"\n\
             [metrics]\n  address = \"\"\n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {opt:?}\n",
            root = path("root"),
            state = path("state"),
            temp = path("temp"),
            grpc = path("containerd.sock"),
            ttrpc = path("containerd.ttrpc.sock"),
            opt = path("opt"),
        );
        std::fs::write(path("config.toml"), config)
            .map_err(|error| format!("config.toml: {error}"))?;
        let log = std::fs::File::create(path("containerd.log"))
            .map_err(|error| format!("containerd.log: {error}"))?;
        let daemon = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o mode=0755 reexec-containerd-run /run && \
                 exec containerd --config \"$1\"",
            )
            .arg("sh")
            .arg(path("config.toml"))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().map_err(|error| error.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|error| format!("unshare … containerd: {error}"))?;
        let containerd = Containerd {
            daemon,
            cgroup_parent: CgroupParent::below_own("containerd")?,
            runtime: runtime.to_owned(),
            dir,
            containers: Default::default(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !containerd.ctr(&["version"]).status.success() {
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(containerd.dir.path().join("containerd.log"))
                    .unwrap_or_default();
                return Err(format!("containerd did not answer within 30 s: {log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(containerd)
    }

    /// Runs `ctr --address SOCKET ARGS` to its end (one minute at most).
    pub fn ctr(&self, args: &[&str]) -> Output {
        output_with_timeout(
            Command::new("ctr")
                .arg("--address")
                .arg(self.dir.path().join("containerd.sock"))
                .args(args)
                .stdin(std::process::Stdio::null()),
            CTR_TIMEOUT,
        )
    }

    /// The arguments of `ctr run` up to the container's command, for a container named
    /// `id`: the runtime (`--runc-binary`), its state directory (`--runc-root`), the FIFOs'
    /// directory, a cgroup below the test's own, `PATH`, and the rootfs copy. The
    /// container is deleted on drop if the test leaves it.
    pub fn ctr_run_args(&self, id: &str) -> Vec<String> {
        self.containers.borrow_mut().push(id.to_owned());
        let path = |name: &str| self.dir.path().join(name).to_string_lossy().into_owned();
        vec![
            "run".into(),
            "--rootfs".into(),
            "--runc-binary".into(),
            self.runtime.to_string_lossy().into_owned(),
            "--runc-root".into(),
            path("runtime-state"),
            "--fifo-dir".into(),
            path("fifo"),
            "--cgroup".into(),
            format!("{}/{id}", self.cgroup_parent.path()),
            "--env".into(),
            "PATH=/bin:/sbin:/usr/bin:/usr/sbin".into(),
            path("rootfs"),
            id.into(),
        ]
    }

    /// The FIFOs' directory, for `ctr task exec --fifo-dir`.
    pub fn fifo_dir(&self) -> PathBuf {
        self.dir.path().join("fifo")
    }

    /// The cgroup parent the containers are created under.
    pub fn cgroup_parent(&self) -> &CgroupParent {
        &self.cgroup_parent
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        for id in self.containers.borrow().iter() {
            // Each fails harmlessly when the test already did it.
            self.ctr(&["task", "kill", "--signal", "SIGKILL", id]);
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.ctr(&["task", "delete", id]).status.success()
                && self
                    .ctr(&["task", "ls", "--quiet"])
                    .stdout
                    .windows(id.len())
                    .any(|window| window == id.as_bytes())
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            self.ctr(&["container", "delete", id]);
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let left = self.ctr(&["version"]);
        if left.status.success() {
            eprintln!(
                "Containerd: still answering after kill: {}",
                describe(&left)
            );
        }
    }
}
