//! A cgroup path below the test process's own, for a container manager (podman's
//! `--cgroup-parent`, `ctr run --cgroup`) to create its cgroups in, and to leave none
//! behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The directories of cgroup hierarchies that did not exist when a [`CgroupParent`] was
/// made: the ones its container manager will cause. Kept for the whole test binary, as a
/// parent may be shared by the parents of several tests at once; each drop removes those
/// that are empty by then, so the last one leaves none.
static CAUSED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// A cgroup path of the test's own: `/<the test process's cgroup>/reexec-LABEL-PID-N`,
/// the same path in every hierarchy, as podman and runc use a cgroup parent.
///
/// On a v1 machine the test process sits in a memory cgroup (here
/// `/process_api/…`) and at the root of the other hierarchies; podman creates the path in
/// every hierarchy mounted (cpu, pids, `name=systemd`, the v2 one…), so the directories
/// above the path that did not exist there are caused by the test too. On drop, the path's
/// whole subtree is removed in every hierarchy (runc removes a container's own cgroup, not
/// podman's `conmon` one beside it), then the caused parents that are empty.
///
/// ```no_run
/// let parent = reexec_tests::CgroupParent::below_own("podman").unwrap();
/// println!("podman run --cgroup-parent {} …", parent.path());
/// ```
#[derive(Debug)]
pub struct CgroupParent {
    path: String,
    hierarchies: Vec<PathBuf>,
}

impl CgroupParent {
    /// A new path below the test process's own cgroup (its memory cgroup on a v1 or
    /// hybrid machine, its v2 cgroup on a v2 one); `Err` says why there is none. Nothing is
    /// created: the container manager creates what it needs.
    pub fn below_own(label: &str) -> Result<CgroupParent, String> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let membership = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|error| format!("/proc/self/cgroup: {error}"))?;
        let own = membership
            .lines()
            .find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                controllers
                    .split(',')
                    .any(|controller| controller == "memory")
                    .then_some(path)
            })
            .or_else(|| membership.lines().find_map(|line| line.strip_prefix("0::")))
            .ok_or("/proc/self/cgroup names neither a memory cgroup nor a v2 one")?;
        let path = format!(
            "{}/reexec-{label}-{}-{}",
            own.trim_end_matches('/'),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let hierarchies = cgroup_mount_points()?;
        let mut caused = CAUSED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for hierarchy in &hierarchies {
            let mut dir = hierarchy.clone();
            for component in Path::new(&path).components().skip(1) {
                dir.push(component);
                if !dir.exists() {
                    caused.insert(dir.clone());
                }
            }
        }
        Ok(CgroupParent { path, hierarchies })
    }

    /// The path, absolute from the root of each hierarchy, as `--cgroup-parent` takes it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The directories below the path, in every hierarchy, that exist now: the cgroups the
    /// container manager and the runtime have left so far.
    pub fn cgroups_below(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for hierarchy in &self.hierarchies {
            let top = hierarchy.join(self.path.trim_start_matches('/'));
            collect_dirs(&top, &mut found);
            found.retain(|dir| dir != &top);
        }
        found
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for hierarchy in &self.hierarchies {
            let mut dirs = Vec::new();
            collect_dirs(
                &hierarchy.join(self.path.trim_start_matches('/')),
                &mut dirs,
            );
            // Deepest first: a cgroup with children can't be removed.
            dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
            for dir in dirs {
                if let Err(error) = remove_cgroup(&dir) {
                    eprintln!("CgroupParent: left {}: {error}", dir.display());
                }
            }
        }
        let caused = CAUSED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut dirs: Vec<&PathBuf> = caused.iter().collect();
        dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
        for dir in dirs {
            // Another test's cgroups may still be below it: the last drop removes it.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Removes the cgroup `dir`, waiting up to 10 s while processes are still leaving it (a
/// conmon ends a moment after its container is removed).
fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match std::fs::remove_dir(dir) {
            Err(error)
                if error.raw_os_error() == Some(nix::libc::EBUSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// `dir` and every directory below it, if it exists.
fn collect_dirs(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    found.push(dir.to_owned());
    for entry in entries.filter_map(Result::ok) {
        if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            collect_dirs(&entry.path(), found);
        }
    }
}

/// Where every cgroup hierarchy (v1 and v2) is mounted, from `/proc/self/mountinfo`.
fn cgroup_mount_points() -> Result<Vec<PathBuf>, String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|error| format!("/proc/self/mountinfo: {error}"))?;
    let mut points: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            let (before, after) = line.split_once(" - ")?;
            let fstype = after.split(' ').next()?;
            let mount_point = before.split(' ').nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .collect();
    points.dedup();
    if points.is_empty() {
        return Err("no cgroup hierarchy is mounted".into());
    }
    Ok(points)
}
