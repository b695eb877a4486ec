//! The root filesystems the ns-process tests run commands in: busybox, and Debian.

use std::path::{Path, PathBuf};

use crate::output::stderr_text;

/// The project's `scripts/make-rootfs`.
pub const MAKE_ROOTFS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/make-rootfs");

/// A busybox root filesystem built by `scripts/make-rootfs` once per test binary, in
/// `target_tmpdir` (the test's `env!("CARGO_TARGET_TMPDIR")`); `Err` says why there is
/// none. make-rootfs builds only in a directory it creates, so what a previous run of the
/// same binary left there is removed first.
pub fn busybox_rootfs(target_tmpdir: &str) -> Result<&'static Path, String> {
    static ROOTFS: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let binary = std::env::current_exe().map_err(|error| error.to_string())?;
            let name = binary.file_name().unwrap().to_string_lossy();
            let dir = Path::new(target_tmpdir).join(format!("busybox-rootfs-{name}"));
            match std::fs::remove_dir_all(&dir) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(format!("removing {}: {error}", dir.display()));
                }
                _ => {}
            }
            let output = std::process::Command::new("bash")
                .arg(MAKE_ROOTFS)
                .arg(&dir)
                .output()
                .map_err(|error| error.to_string())?;
            if output.status.success() {
                Ok(dir)
            } else {
                Err(format!(
                    "scripts/make-rootfs failed: {}",
                    stderr_text(&output)
                ))
            }
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

/// A Debian root filesystem built by `scripts/make-rootfs --debian` (mmdebstrap: a minute
/// and the downloads), shared by every test binary and kept between runs: built once in
/// `target_tmpdir` (the test's `env!("CARGO_TARGET_TMPDIR")`), under a name that changes
/// with the script's content, so that a changed script builds a new one. It is built
/// under another name and renamed when complete, under a lock, so that an interrupted or
/// concurrent build is never used. `Err` says why there is none: the Debian archive
/// unreachable, or a user other than root without what an unprivileged build needs; any
/// other failure of the build panics.
pub fn debian_rootfs(target_tmpdir: &str) -> Result<&'static Path, String> {
    static ROOTFS: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    ROOTFS
        .get_or_init(|| build_debian_rootfs(Path::new(target_tmpdir)))
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

fn build_debian_rootfs(target_tmpdir: &Path) -> Result<PathBuf, String> {
    use std::hash::{Hash, Hasher};
    let script = std::fs::read(MAKE_ROOTFS).map_err(|error| format!("{MAKE_ROOTFS}: {error}"))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    script.hash(&mut hasher);
    let key = format!("{:016x}", hasher.finish());
    let dir = target_tmpdir.join(format!("debian-rootfs-{key}"));
    let building = target_tmpdir.join(format!("debian-rootfs-{key}.building"));
    std::fs::create_dir_all(target_tmpdir)
        .map_err(|error| format!("{}: {error}", target_tmpdir.display()))?;
    let lock = std::fs::File::create(target_tmpdir.join("debian-rootfs.lock"))
        .map_err(|error| format!("the lock: {error}"))?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| format!("flock: {}", errno.desc()))?;
    if dir.join("etc/ns-process-rootfs").exists() {
        return Ok(dir);
    }
    // What an interrupted build left (make-rootfs builds only in a directory it creates),
    // and the rootfs of an older script: 240 MB each.
    let stale = std::fs::read_dir(target_tmpdir)
        .map_err(|error| format!("{}: {error}", target_tmpdir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_dir()
                && path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with("debian-rootfs-"))
        });
    for old in stale {
        std::fs::remove_dir_all(&old)
            .map_err(|error| format!("removing {}: {error}", old.display()))?;
    }
    println!("building a Debian rootfs in {} (once)", dir.display());
    let output = std::process::Command::new("bash")
        .arg(MAKE_ROOTFS)
        .arg("--debian")
        .arg(&building)
        .output()
        .map_err(|error| error.to_string())?;
    if !output.status.success() {
        let why = format!(
            "scripts/make-rootfs --debian failed: {}",
            stderr_text(&output)
        );
        if let Err(unreachable) = debian_archive_reachable() {
            return Err(format!("{unreachable}; {why}"));
        }
        if !crate::is_root() {
            return Err(why);
        }
        panic!("{why}");
    }
    std::fs::rename(&building, &dir).map_err(|error| format!("renaming: {error}"))?;
    Ok(dir)
}

/// Whether deb.debian.org answers on port 80 within 10 s.
fn debian_archive_reachable() -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let unreachable = |error: std::io::Error| format!("the Debian archive is unreachable: {error}");
    let address = ("deb.debian.org", 80)
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| {
            "the Debian archive is unreachable: deb.debian.org has no address".to_owned()
        })?;
    std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(10))
        .map(drop)
        .map_err(unreachable)
}

/// A copy of the busybox rootfs ([`busybox_rootfs`]) at `to`, which must not exist yet,
/// every file of it owned by `owner` (uid, gid) where the tests run as root: the rootfs a
/// user built for themselves, which root inside may change. `Err` says why there is none.
pub fn busybox_rootfs_copy(
    target_tmpdir: &str,
    to: &Path,
    owner: (u32, u32),
) -> Result<(), String> {
    let rootfs = busybox_rootfs(target_tmpdir)?;
    let run = |command: &mut std::process::Command| {
        let output = command.output().map_err(|error| error.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!("{command:?}: {}", stderr_text(&output)))
        }
    };
    run(std::process::Command::new("cp")
        .arg("-a")
        .arg(rootfs)
        .arg(to))?;
    if crate::is_root() {
        let owner = format!("{}:{}", owner.0, owner.1);
        run(std::process::Command::new("chown")
            .args(["-R", "-h", &owner])
            .arg(to))?;
    }
    Ok(())
}
