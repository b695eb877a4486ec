//! [`Cgroup`]: a control group below the caller's own, with the differences between
//! cgroup v1 (one hierarchy per controller) and cgroup v2 (one hierarchy) kept out of the
//! caller's code.
//!
//! Runs in the parent, as ordinary Rust: the child never touches a cgroup itself. On a
//! cgroup v2 hierarchy clone3 creates the child in the cgroup; otherwise the parent
//! writes the child's pid into each `cgroup.procs` while the child waits
//! ([`Command::cgroup`](crate::Command::cgroup)).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Step};

/// A cgroup controller that [`Cgroup`] can set limits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Controller {
    /// Memory, and memory plus swap: `memory.max`, `memory.limit_in_bytes`, ….
    Memory,
    /// The number of processes and threads: `pids.max`.
    Pids,
    /// CPU bandwidth: `cpu.max`, `cpu.cfs_quota_us`.
    Cpu,
    /// The CPUs and memory nodes the processes may use: `cpuset.cpus`, `cpuset.mems`.
    Cpuset,
    /// The device nodes the processes may open or make: `devices.allow`, `devices.deny`
    /// (cgroup v1 only: v2 does it with a BPF program, which [`Cgroup`] does not load).
    Devices,
    /// Stopping every process at once: `freezer.state` on v1 (on v2 every cgroup has
    /// `cgroup.freeze`, and this controller is not needed).
    Freezer,
}

impl Controller {
    /// The controller of a kernel name, if it is one of these.
    fn named(name: &str) -> Option<Controller> {
        [
            Controller::Memory,
            Controller::Pids,
            Controller::Cpu,
            Controller::Cpuset,
            Controller::Devices,
            Controller::Freezer,
        ]
        .into_iter()
        .find(|controller| controller.name() == name)
    }

    /// The kernel's name of the controller.
    ///
    /// ```
    /// assert_eq!(reexec::Controller::Pids.name(), "pids");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Cpuset => "cpuset",
            Controller::Devices => "devices",
            Controller::Freezer => "freezer",
        }
    }
}

/// A cgroup created below the caller's own — in each controller's hierarchy on cgroup
/// v1, as one directory on cgroup v2 — whose limits are set, and usage read, without
/// caring which version the host has. Removed by [`remove`](Self::remove), or, at the
/// least, tried again when dropped.
///
/// It is only ever created *below* the cgroup the calling process is in, in every
/// hierarchy it uses (read from `/proc/self/cgroup`), and a process is only ever moved
/// into it: never out of the caller's subtree. Creating one needs write access to the
/// caller's own cgroup directories — root's, or a cgroup delegated to the caller — and
/// fails with [`Error::Cgroup`] naming the file and what is needed otherwise.
///
/// ```no_run
/// use reexec::{Cgroup, Command, Controller};
///
/// #[reexec::entry("in-a-cgroup")]
/// fn in_a_cgroup() {
///     print!("{}", std::fs::read_to_string("/proc/self/cgroup").unwrap());
/// }
///
/// reexec::main! {
///     fn main() -> Result<(), reexec::Error> {
///         let all = [Controller::Memory, Controller::Pids, Controller::Cpu];
///         let cgroup = Cgroup::create("limited-example", &all)?;
///         cgroup.set_memory_max(64 << 20)?;
///         cgroup.set_memory_swap_max(128 << 20)?;
///         cgroup.set_pids_max(32)?;
///         // Half a CPU: 50 ms of each 100 ms.
///         let period = std::time::Duration::from_millis(100);
///         cgroup.set_cpu_max(period / 2, period)?;
///         for dir in cgroup.paths() {
///             println!("made {}", dir.display());
///         }
///         // The child is in the cgroup before it runs anything of its own.
///         let mut child = Command::new("in-a-cgroup").cgroup(&cgroup).spawn()?;
///         println!("in it: {:?}", cgroup.processes()?);
///         println!("{} bytes, {} tasks", cgroup.memory_usage()?, cgroup.pids_current()?);
///         let status = child.wait()?;
///         println!("{status}, OOM kills: {}", cgroup.oom_kills()?);
///         cgroup.remove()
///     }
/// }
/// ```
#[derive(Debug)]
pub struct Cgroup {
    /// One per hierarchy: each controller's on v1 (co-mounted ones share one), the
    /// single one on v2.
    dirs: Vec<CgroupDir>,
    /// Whether `remove` succeeded: then drop has nothing to do.
    removed: bool,
}

/// A directory of the cgroup in one hierarchy.
#[derive(Debug, Clone)]
struct CgroupDir {
    path: PathBuf,
    v2: bool,
    controllers: Vec<Controller>,
    /// What removing the cgroup takes back here, in the order it was made: the
    /// directory itself, after the parents [`Cgroup::create_at`] had to make for it;
    /// nothing for a directory that was there already.
    made: Vec<PathBuf>,
}

/// A cgroup hierarchy mounted in this mount namespace, and the caller's cgroup in it:
/// what [`Cgroup::mounted_hierarchies`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MountedHierarchy {
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub mount_point: PathBuf,
    /// The caller's own cgroup directory in it, `mount_point` or below it.
    pub own: PathBuf,
    /// Whether it is the cgroup v2 hierarchy.
    pub v2: bool,
    /// A v1 hierarchy's controllers (`cpu`, `cpuacct`), or its name (`name=systemd`);
    /// empty on v2.
    pub controllers: Vec<String>,
}

/// One mounted cgroup hierarchy, and the caller's cgroup in it.
#[derive(Debug, Clone)]
struct Hierarchy {
    v2: bool,
    /// The v1 controllers mounted there (names, `name=systemd` left out); empty on v2.
    controllers: Vec<String>,
    /// The caller's own cgroup directory in it.
    own: PathBuf,
    /// Where it is mounted, and which of its cgroups that shows (`/` but in a
    /// container that was given a subtree of it).
    mount_point: PathBuf,
    root: PathBuf,
}

impl Cgroup {
    /// Creates the cgroup `name` below the caller's own cgroup in the hierarchy of each
    /// of `controllers`. On cgroup v1 that is one directory per hierarchy (a controller
    /// co-mounted with another shares its directory); on v2, one directory, whose
    /// controllers the caller's cgroup must have enabled in its `cgroup.subtree_control`.
    /// With no controllers, it is one directory in the v2 hierarchy, which groups
    /// processes without limiting them.
    ///
    /// Fails with [`Error::Cgroup`] when a directory exists already, cannot be made (no
    /// delegation: the message says what is needed), or a controller is not available;
    /// a failure removes what this call made. `name` is one path component.
    pub fn create(name: &str, controllers: &[Controller]) -> Result<Cgroup, Error> {
        check_name(name)?;
        let hierarchies = Hierarchy::of_self()?;
        let dirs = plan(&hierarchies, controllers, true, |hierarchy| {
            Ok(hierarchy.own.join(name))
        })?
        .into_iter()
        .map(|(dir, _)| dir);
        let mut cgroup = Cgroup {
            dirs: Vec::with_capacity(dirs.len()),
            removed: false,
        };
        for dir in dirs {
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&dir.path)
                .map_err(|error| {
                    let hint = hint(&error, &dir.path, Action::Create);
                    cgroup_error("creating the cgroup", &dir.path.display(), error, hint)
                })?;
            // Pushed once made: a failure for the next removes it on drop.
            cgroup.dirs.push(dir);
        }
        Ok(cgroup)
    }

    /// Creates a cgroup as [`create`](Self::create) does, named
    /// `PREFIX-PIDNS-PID-N`: this process's PID namespace and pid, and a number unique in
    /// this process. [`remove_leftovers`](Self::remove_leftovers) with the same prefix
    /// then finds the ones a process that died before removing them left behind.
    pub fn create_owned(prefix: &str, controllers: &[Controller]) -> Result<Cgroup, Error> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        check_name(prefix)?;
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{prefix}-{}-{}-{number}",
            pid_namespace(),
            std::process::id()
        );
        Cgroup::create(&name, controllers)
    }

    /// Removes the empty cgroups that [`create_owned`](Self::create_owned) made with
    /// `prefix`, below the caller's own cgroup in the hierarchies of `controllers` (the
    /// v2 one for none), for processes of this PID namespace that no longer run: what a
    /// process killed before it could remove its cgroups leaves. Returns the directories
    /// removed.
    ///
    /// A cgroup that still has processes, or of a pid that is in use again, is left
    /// alone; so is one that cannot be removed (no delegation). Nothing here fails: a
    /// hierarchy that cannot be read is skipped.
    ///
    /// ```no_run
    /// use reexec::{Cgroup, Controller};
    ///
    /// // At start: what an earlier run, killed with SIGKILL, could not remove.
    /// for gone in Cgroup::remove_leftovers("my-tool", &[Controller::Pids]) {
    ///     eprintln!("removed {}", gone.display());
    /// }
    /// let cgroup = Cgroup::create_owned("my-tool", &[Controller::Pids])?;
    /// assert!(cgroup.path(Controller::Pids).is_some());
    /// # Ok::<(), reexec::Error>(())
    /// ```
    pub fn remove_leftovers(prefix: &str, controllers: &[Controller]) -> Vec<PathBuf> {
        let Ok(hierarchies) = Hierarchy::of_self() else {
            return Vec::new();
        };
        let ours = format!("{prefix}-{}-", pid_namespace());
        let mut removed = Vec::new();
        for hierarchy in hierarchies.iter().filter(|hierarchy| {
            if controllers.is_empty() {
                hierarchy.v2
            } else {
                controllers.iter().any(|controller| {
                    hierarchy.v2 || hierarchy.controllers.iter().any(|c| c == controller.name())
                })
            }
        }) {
            let Ok(entries) = fs::read_dir(&hierarchy.own) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(rest) = name.to_str().and_then(|name| name.strip_prefix(&ours)) else {
                    continue;
                };
                let Some(pid) = rest
                    .split_once('-')
                    .and_then(|(pid, number)| {
                        number.bytes().all(|b| b.is_ascii_digit()).then_some(pid)
                    })
                    .and_then(|pid| pid.parse::<i32>().ok())
                else {
                    continue;
                };
                if pid > 0 && !is_running(pid) && fs::remove_dir(entry.path()).is_ok() {
                    removed.push(entry.path());
                }
            }
        }
        removed
    }

    /// The cgroup's directories: one per hierarchy it was made in.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.dirs.iter().map(|dir| dir.path.as_path())
    }

    /// The cgroup's directory in the hierarchy of `controller`, if it was made for it.
    pub fn path(&self, controller: Controller) -> Option<&Path> {
        self.dir(controller).map(|dir| dir.path.as_path())
    }

    /// The `cgroup.procs` files a process is written into to join the cgroup.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .map(|dir| dir.path.join("cgroup.procs"))
            .collect()
    }

    /// The cgroup's directory when it is its only one and on a cgroup v2 hierarchy: the
    /// one clone3 can create a child in (`CLONE_INTO_CGROUP`).
    pub(crate) fn v2_only_dir(&self) -> Option<&Path> {
        match &self.dirs[..] {
            [dir] if dir.v2 => Some(&dir.path),
            _ => None,
        }
    }

    /// Limits the memory of the cgroup's processes to `bytes` (`memory.max` on v2,
    /// `memory.limit_in_bytes` on v1); past it the kernel reclaims, then kills a process
    /// in the cgroup (see [`oom_kills`](Self::oom_kills)).
    pub fn set_memory_max(&self, bytes: u64) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Memory)?;
        let file = if dir.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        write_value(&dir.path.join(file), &bytes.to_string())
    }

    /// Limits memory plus swap to `bytes` in all, as podman's `--memory-swap` does: on
    /// v1 `memory.memsw.limit_in_bytes`, on v2 `memory.swap.max` set to `bytes` less the
    /// memory limit, which must be set first. `bytes` is not below the memory limit.
    ///
    /// Fails with [`Error::Cgroup`] when the kernel does not account swap (no
    /// `memory.memsw.*` or `memory.swap.*` file: on v1 it needs the boot option
    /// `swapaccount=1`).
    pub fn set_memory_swap_max(&self, bytes: u64) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Memory)?;
        if !dir.v2 {
            return write_value(
                &dir.path.join("memory.memsw.limit_in_bytes"),
                &bytes.to_string(),
            );
        }
        let memory_file = dir.path.join("memory.max");
        let memory = read_text(&memory_file)?;
        let Ok(memory) = memory.trim().parse::<u64>() else {
            return Err(cgroup_error(
                "reading",
                &memory_file.display(),
                io::ErrorKind::InvalidInput.into(),
                "memory plus swap is bounded only with a memory limit: set the memory limit first"
                    .into(),
            ));
        };
        let swap = bytes.checked_sub(memory).ok_or_else(|| {
            cgroup_error(
                "checking",
                &format!("memory plus swap {bytes} against {}", memory_file.display()),
                io::ErrorKind::InvalidInput.into(),
                format!("memory plus swap can't be below the memory limit, {memory}"),
            )
        })?;
        write_value(&dir.path.join("memory.swap.max"), &swap.to_string())
    }

    /// Limits the number of processes and threads in the cgroup to `count` (`pids.max`):
    /// a fork or clone past it fails with `EAGAIN`.
    pub fn set_pids_max(&self, count: u64) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Pids)?;
        write_value(&dir.path.join("pids.max"), &count.to_string())
    }

    /// Limits the cgroup's processes together to `quota` of CPU time in each `period`
    /// (`cpu.max` on v2, `cpu.cfs_period_us` and `cpu.cfs_quota_us` on v1): half a CPU is
    /// 50 ms in 100 ms. The kernel takes periods from 1 ms to 1 s, and quotas of 1 ms or
    /// more.
    pub fn set_cpu_max(&self, quota: Duration, period: Duration) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Cpu)?;
        let (quota, period) = (quota.as_micros(), period.as_micros());
        if dir.v2 {
            return write_value(&dir.path.join("cpu.max"), &format!("{quota} {period}"));
        }
        write_value(&dir.path.join("cpu.cfs_period_us"), &period.to_string())?;
        write_value(&dir.path.join("cpu.cfs_quota_us"), &quota.to_string())
    }

    /// The memory the cgroup's processes use now, in bytes (`memory.current`,
    /// `memory.usage_in_bytes`).
    pub fn memory_usage(&self) -> Result<u64, Error> {
        let dir = self.dir_for(Controller::Memory)?;
        let file = if dir.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        read_number(&dir.path.join(file))
    }

    /// How many processes of the cgroup the kernel's OOM killer has killed because the
    /// cgroup reached its memory limit: the `oom_kill` line of `memory.events` on v2, of
    /// `memory.oom_control` on v1.
    pub fn oom_kills(&self) -> Result<u64, Error> {
        let dir = self.dir_for(Controller::Memory)?;
        let file = dir.path.join(if dir.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        });
        let text = read_text(&file)?;
        text.lines()
            .find_map(|line| line.strip_prefix("oom_kill "))
            .and_then(|count| count.trim().parse().ok())
            .ok_or_else(|| {
                cgroup_error(
                    "reading",
                    &file.display(),
                    io::ErrorKind::InvalidData.into(),
                    "it has no oom_kill line: this kernel (before 4.13) does not count OOM kills"
                        .into(),
                )
            })
    }

    /// The number of processes and threads in the cgroup now (`pids.current`).
    pub fn pids_current(&self) -> Result<u64, Error> {
        let dir = self.dir_for(Controller::Pids)?;
        read_number(&dir.path.join("pids.current"))
    }

    /// The processes in the cgroup, in any of its directories (`cgroup.procs`).
    pub fn processes(&self) -> Result<Vec<u32>, Error> {
        let mut pids = Vec::new();
        for file in self.procs_files() {
            for line in read_text(&file)?.lines() {
                if let Ok(pid) = line.trim().parse() {
                    if !pids.contains(&pid) {
                        pids.push(pid);
                    }
                }
            }
        }
        Ok(pids)
    }

    /// Removes the cgroup's directories, once its processes have ended: a process that
    /// is ending can keep the cgroup busy for a moment, so a busy one is tried again for
    /// up to a second. Fails with [`Error::Cgroup`] if processes are still in it then
    /// (each directory left is tried once more as the cgroup drops, here).
    pub fn remove(mut self) -> Result<(), Error> {
        let result = self.remove_dirs(Duration::from_secs(1));
        self.removed = result.is_ok();
        result
    }

    fn remove_dirs(&mut self, patience: Duration) -> Result<(), Error> {
        let deadline = Instant::now() + patience;
        let mut first_error = None;
        let mut kept = Vec::new();
        // In reverse order of creation; those that stay are tried again on drop.
        while let Some(dir) = self.dirs.pop() {
            let mut made = dir.made.iter().rev();
            if dir.made.last() == Some(&dir.path) {
                made.next();
                if let Some(error) = remove_busy_dir(&dir.path, deadline) {
                    let hint = hint(&error, &dir.path, Action::Remove);
                    first_error.get_or_insert_with(|| {
                        cgroup_error("removing the cgroup", &dir.path.display(), error, hint)
                    });
                    kept.push(dir);
                    continue;
                }
            }
            // The parents made for it: one that another cgroup was made in since stays.
            for parent in made {
                if fs::remove_dir(parent).is_err() {
                    break;
                }
            }
        }
        kept.reverse();
        self.dirs = kept;
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn dir(&self, controller: Controller) -> Option<&CgroupDir> {
        self.dirs
            .iter()
            .find(|dir| dir.controllers.contains(&controller))
    }

    fn dir_for(&self, controller: Controller) -> Result<&CgroupDir, Error> {
        self.dir(controller).ok_or_else(|| {
            cgroup_error(
                "finding",
                &format!("the {} controller of the cgroup", controller.name()),
                io::ErrorKind::NotFound.into(),
                format!(
                    "the cgroup was not created for it: pass Controller::{controller:?} to \
                     Cgroup::create"
                ),
            )
        })
    }
}

/// A cgroup at a path of the caller's choosing — an OCI runtime's `cgroupsPath` — which
/// may outlive the process that made it, and be opened again by path later.
impl Cgroup {
    /// Creates the cgroup at `path` in the hierarchy of each of `controllers` (the v2 one
    /// for none, as [`create`](Self::create)), with the parents it is missing. A relative
    /// `path` is below the caller's own cgroup in each hierarchy; an absolute one is from
    /// each hierarchy's root, as a container runtime's `cgroupsPath` is, and may be
    /// outside the caller's subtree: the caller chose it.
    ///
    /// On cgroup v1 it is made in the hierarchies of `controllers` only, not in every
    /// mounted one as runc does: a hierarchy that limits nothing would only be one more
    /// directory to leave behind. The parents made in the cpuset hierarchy get their
    /// parent's `cpuset.cpus` and `cpuset.mems` (empty ones take no process); on v2 the
    /// parents made get the controllers enabled for their children, and a parent that
    /// was there must have them enabled already.
    ///
    /// A directory that exists already is taken as it is. What this call made — the
    /// directory, and the parents — is what [`remove`](Self::remove) and the drop take
    /// back, the parents only while empty; [`keep`](Self::keep) leaves it all for a later
    /// [`open`](Self::open). A failure removes what this call made.
    ///
    /// ```no_run
    /// use std::path::Path;
    /// use reexec::{Cgroup, Controller};
    ///
    /// // Made in a process that then ends...
    /// let mut cgroup = Cgroup::create_at(Path::new("tool/job-7"), &[Controller::Pids])?;
    /// cgroup.set_pids_max(64)?;
    /// cgroup.keep();
    /// drop(cgroup);
    /// // ...and found again by another, which removes it.
    /// let again = Cgroup::open(Path::new("tool/job-7"))?;
    /// assert!(again.processes()?.is_empty());
    /// again.remove()?;
    /// # Ok::<(), reexec::Error>(())
    /// ```
    pub fn create_at(path: &Path, controllers: &[Controller]) -> Result<Cgroup, Error> {
        check_path(path)?;
        let hierarchies = Hierarchy::of_self()?;
        let planned = plan(&hierarchies, controllers, false, |hierarchy| {
            hierarchy.resolve(path)
        })?;
        let mut cgroup = Cgroup {
            dirs: Vec::with_capacity(planned.len()),
            removed: false,
        };
        for (mut dir, hierarchy) in planned {
            let base = if path.is_absolute() {
                &hierarchy.mount_point
            } else {
                &hierarchy.own
            };
            let mut made = Vec::new();
            let result = make_with_parents(&dir, base, &mut made);
            dir.made = made;
            // Pushed also on failure: what was made for it goes as the cgroup drops.
            cgroup.dirs.push(dir);
            result?;
        }
        Ok(cgroup)
    }

    /// The cgroup at `path` (relative: below the caller's own; absolute: from each
    /// hierarchy's root, as for [`create_at`](Self::create_at)), in every mounted
    /// hierarchy that has a directory there: what a later process — a runtime's
    /// `delete`, `ps` or `kill --all` — finds of a cgroup an earlier one made and kept.
    ///
    /// The opened cgroup is left as it is when dropped; [`remove`](Self::remove) removes
    /// its directories (not their parents). Fails with [`Error::Cgroup`] when no
    /// hierarchy has it.
    pub fn open(path: &Path) -> Result<Cgroup, Error> {
        check_path(path)?;
        let mut dirs = Vec::new();
        for hierarchy in Hierarchy::of_self()? {
            let Ok(dir) = hierarchy.resolve(path) else {
                continue;
            };
            if !dir.is_dir() {
                continue;
            }
            let names = if hierarchy.v2 {
                read_text(&dir.join("cgroup.controllers")).unwrap_or_default()
            } else {
                hierarchy.controllers.join(" ")
            };
            let controllers = names
                .split([' ', '\n'])
                .filter_map(Controller::named)
                .collect();
            dirs.push(CgroupDir {
                made: vec![dir.clone()],
                path: dir,
                v2: hierarchy.v2,
                controllers,
            });
        }
        if dirs.is_empty() {
            return Err(cgroup_error(
                "opening",
                &format!("the cgroup {}", path.display()),
                io::ErrorKind::NotFound.into(),
                "no mounted cgroup hierarchy has it: it was removed, or never made".into(),
            ));
        }
        Ok(Cgroup {
            dirs,
            removed: true,
        })
    }

    /// The controllers a cgroup below the caller's own can have here: those mounted as
    /// cgroup v1 hierarchies, and on v2 those the caller's cgroup enables for its
    /// children (`cgroup.subtree_control`).
    ///
    /// ```
    /// let controllers = reexec::Cgroup::available();
    /// println!("{controllers:?}");
    /// ```
    pub fn available() -> Vec<Controller> {
        let Ok(hierarchies) = Hierarchy::of_self() else {
            return Vec::new();
        };
        let mut available: Vec<Controller> = Vec::new();
        for hierarchy in &hierarchies {
            let names = if hierarchy.v2 {
                read_text(&hierarchy.own.join("cgroup.subtree_control")).unwrap_or_default()
            } else {
                hierarchy.controllers.join(" ")
            };
            for controller in names.split([' ', '\n']).filter_map(Controller::named) {
                if !available.contains(&controller) {
                    available.push(controller);
                }
            }
        }
        available
    }

    /// Every cgroup hierarchy mounted in this mount namespace, with the calling process's
    /// own cgroup in each: the v1 controller hierarchies, the named ones (`name=systemd`)
    /// and the v2 one, from `/proc/self/mountinfo` and `/proc/self/cgroup`. What a
    /// container runtime binds on the container's `/sys/fs/cgroup`, so that its own
    /// cgroup is the root of each hierarchy there. A hierarchy whose mount does not show
    /// the caller's cgroup (a bind of another subtree, or one above the root of the
    /// caller's cgroup namespace) is left out; one mounted twice is listed once.
    ///
    /// ```
    /// for hierarchy in reexec::Cgroup::mounted_hierarchies()? {
    ///     println!("{:?}: mine is {}", hierarchy.controllers, hierarchy.own.display());
    /// }
    /// # Ok::<(), reexec::Error>(())
    /// ```
    pub fn mounted_hierarchies() -> Result<Vec<MountedHierarchy>, Error> {
        Ok(Hierarchy::of_self_with(true)?
            .into_iter()
            .map(|hierarchy| MountedHierarchy {
                mount_point: hierarchy.mount_point,
                own: hierarchy.own,
                v2: hierarchy.v2,
                controllers: hierarchy.controllers,
            })
            .collect())
    }

    /// Lets the cgroup's processes use the devices of `rule`, in the kernel's form
    /// `TYPE MAJOR:MINOR ACCESS` (`c 1:3 rwm`; `a` for all; `*` for any number):
    /// `devices.allow` of cgroup v1. [`deny_device`](Self::deny_device)`("a")` first,
    /// then the allowed ones, gives a list of exactly those.
    pub fn allow_device(&self, rule: &str) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Devices)?;
        write_value(&dir.path.join("devices.allow"), rule)
    }

    /// Forbids the devices of `rule` (as [`allow_device`](Self::allow_device)'s):
    /// `devices.deny` of cgroup v1.
    pub fn deny_device(&self, rule: &str) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Devices)?;
        write_value(&dir.path.join("devices.deny"), rule)
    }

    /// Stops every process of the cgroup at once, and returns once they all are stopped
    /// (up to a second): what lets a signal reach each of them before any can fork one
    /// more. `freezer.state` on v1 (made with [`Controller::Freezer`]), `cgroup.freeze`
    /// on v2. [`thaw`](Self::thaw) lets them run again; a `SIGKILL` sent meanwhile kills
    /// them as they thaw.
    pub fn freeze(&self) -> Result<(), Error> {
        self.set_frozen(true)
    }

    /// Lets the processes of a cgroup [`freeze`](Self::freeze) stopped run again.
    pub fn thaw(&self) -> Result<(), Error> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), Error> {
        let (file, value, done_file, done) = match (self.dir(Controller::Freezer), self.v2_dir()) {
            (Some(dir), _) if !dir.v2 => {
                let state = dir.path.join("freezer.state");
                let value = if frozen { "FROZEN" } else { "THAWED" };
                (state.clone(), value, state, value)
            }
            (_, Some(dir)) => (
                dir.path.join("cgroup.freeze"),
                if frozen { "1" } else { "0" },
                dir.path.join("cgroup.events"),
                if frozen { "frozen 1" } else { "frozen 0" },
            ),
            _ => {
                return Err(self.dir_for(Controller::Freezer).err().unwrap_or_else(|| {
                    cgroup_error(
                        "finding",
                        &"the freezer of the cgroup",
                        io::ErrorKind::NotFound.into(),
                        "pass Controller::Freezer to Cgroup::create".into(),
                    )
                }));
            }
        };
        write_value(&file, value)?;
        // The kernel stops them one by one: v1 says FREEZING, v2 frozen 0, meanwhile.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            let text = read_text(&done_file)?;
            if text.lines().any(|line| line.trim() == done) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(cgroup_error(
                    "waiting for",
                    &done_file.display(),
                    io::ErrorKind::TimedOut.into(),
                    format!("it did not say {done:?} within a second"),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn v2_dir(&self) -> Option<&CgroupDir> {
        self.dirs.iter().find(|dir| dir.v2)
    }

    /// Leaves the cgroup in place when it drops: for a cgroup that outlives its creator,
    /// found again with [`open`](Self::open). [`remove`](Self::remove) still removes it.
    pub fn keep(&mut self) {
        self.removed = true;
    }

    /// Sets the memory the kernel tries to leave the cgroup under pressure — OCI's
    /// `memory.reservation`: `memory.soft_limit_in_bytes` on v1, `memory.low` on v2.
    pub fn set_memory_reservation(&self, bytes: u64) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Memory)?;
        let file = if dir.v2 {
            "memory.low"
        } else {
            "memory.soft_limit_in_bytes"
        };
        write_value(&dir.path.join(file), &bytes.to_string())
    }

    /// Sets the cgroup's share of CPU time against its siblings when they compete —
    /// OCI's `cpu.shares`, 1024 being the default: `cpu.shares` on v1; on v2 the
    /// equivalent `cpu.weight` (2..262144 mapped onto 1..10000, 1024 to 39).
    pub fn set_cpu_shares(&self, shares: u64) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Cpu)?;
        if dir.v2 {
            let weight = weight_of_shares(shares);
            return write_value(&dir.path.join("cpu.weight"), &weight.to_string());
        }
        write_value(&dir.path.join("cpu.shares"), &shares.to_string())
    }

    /// Sets the CPU period alone, keeping the quota (none: no bound): `cpu.cfs_period_us`
    /// on v1, the second number of `cpu.max` on v2.
    pub fn set_cpu_period(&self, period: Duration) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Cpu)?;
        let period = period.as_micros();
        if !dir.v2 {
            return write_value(&dir.path.join("cpu.cfs_period_us"), &period.to_string());
        }
        let file = dir.path.join("cpu.max");
        let current = read_text(&file)?;
        let quota = current.split_whitespace().next().unwrap_or("max");
        write_value(&file, &format!("{quota} {period}"))
    }

    /// Restricts the cgroup's processes to the CPUs of `list` (the kernel's list
    /// format: `0-3,6`), in `cpuset.cpus`.
    pub fn set_cpuset_cpus(&self, list: &str) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Cpuset)?;
        write_value(&dir.path.join("cpuset.cpus"), list)
    }

    /// Restricts the cgroup's processes to the memory nodes of `list`, in `cpuset.mems`.
    pub fn set_cpuset_mems(&self, list: &str) -> Result<(), Error> {
        let dir = self.dir_for(Controller::Cpuset)?;
        write_value(&dir.path.join("cpuset.mems"), list)
    }
}

/// Makes `dir`'s directory and the parents it lacks below `base`, pushing each made
/// one on `made` in order; see [`Cgroup::create_at`].
fn make_with_parents(dir: &CgroupDir, base: &Path, made: &mut Vec<PathBuf>) -> Result<(), Error> {
    let below = dir.path.strip_prefix(base).unwrap_or(&dir.path);
    let mut at = base.to_path_buf();
    for component in below.components() {
        let parent = at.clone();
        at.push(component);
        if dir.v2 {
            // Controllers reach a v2 cgroup only if each parent enables them.
            let ours = made.last() == Some(&parent);
            for &controller in &dir.controllers {
                if ours {
                    write_value(
                        &parent.join("cgroup.subtree_control"),
                        &format!("+{}", controller.name()),
                    )?;
                } else {
                    check_enabled_v2(&parent, controller)?;
                }
            }
        }
        match fs::DirBuilder::new().mode(0o755).create(&at) {
            Ok(()) => made.push(at.clone()),
            // There already, or made meanwhile by another process: taken, not owned.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                let hint = hint(&error, &at, Action::Create);
                return Err(cgroup_error(
                    "creating the cgroup",
                    &at.display(),
                    error,
                    hint,
                ));
            }
        }
        if !dir.v2 && dir.controllers.contains(&Controller::Cpuset) {
            // A v1 cpuset cgroup starts with no CPUs and no memory nodes.
            for file in ["cpuset.cpus", "cpuset.mems"] {
                let inherited = read_text(&parent.join(file))?;
                if read_text(&at.join(file))?.trim().is_empty() {
                    write_value(&at.join(file), inherited.trim())?;
                }
            }
        }
    }
    Ok(())
}

/// cgroup v1's `cpu.shares` (2..262144) as v2's `cpu.weight` (1..10000), linearly.
fn weight_of_shares(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + (shares - 2) * 9999 / 262_142
}

/// A cgroup path is made of names: no `..` (which would leave the hierarchy or the
/// caller's cgroup), no `.`, nothing empty.
fn check_path(path: &Path) -> Result<(), Error> {
    use std::path::Component;
    let text = path.to_string_lossy();
    let why = if path.components().all(|c| c == Component::RootDir) {
        "a cgroup path needs at least one name"
    } else if path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
        || text.split('/').any(|name| name == "." || name == "..")
    {
        "a cgroup path can't have '.' or '..' in it"
    } else if text.contains(['\0', '\n']) {
        "a cgroup path can't have NUL or a newline in it"
    } else {
        return Ok(());
    };
    Err(Error::InvalidInput {
        what: "cgroup path",
        value: text.into_owned().into(),
        why: why.into(),
    })
}

/// Removes the cgroup directory `path`, trying again while it is busy until `deadline`: a
/// process that is ending keeps it busy for a moment. A directory already gone is fine.
fn remove_busy_dir(path: &Path, deadline: Instant) -> Option<io::Error> {
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return None,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
            Err(error)
                if error.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(error) => return Some(error),
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.removed {
            for made in self.dirs.iter().rev().flat_map(|dir| dir.made.iter().rev()) {
                // Best effort: one that still has processes stays, and its parents too.
                let _ = fs::remove_dir(made);
            }
        }
    }
}

impl Hierarchy {
    /// Where the cgroup `path` is in this hierarchy: below the caller's own cgroup when
    /// relative, from the hierarchy's root when absolute (which the mount must show).
    fn resolve(&self, path: &Path) -> Result<PathBuf, Error> {
        let Ok(from_root) = path.strip_prefix("/") else {
            return Ok(self.own.join(path));
        };
        let below_mount = Path::new("/")
            .join(from_root)
            .strip_prefix(&self.root)
            .map(Path::to_path_buf);
        below_mount
            .map(|below| self.mount_point.join(below))
            .map_err(|_| {
                cgroup_error(
                    "finding",
                    &format!(
                        "the cgroup {} below {}",
                        path.display(),
                        self.mount_point.display()
                    ),
                    io::ErrorKind::NotFound.into(),
                    format!(
                        "this mount shows only the cgroup {} of its hierarchy (a cgroup \
                         namespace or a bind): give a path below it, or a relative one",
                        self.root.display()
                    ),
                )
            })
    }

    /// The cgroup hierarchies mounted in this mount namespace, each with this process's
    /// cgroup there, from `/proc/self/mountinfo` and `/proc/self/cgroup`. A hierarchy
    /// whose mount does not show this process's cgroup (a bind of another subtree) is
    /// left out.
    fn of_self() -> Result<Vec<Hierarchy>, Error> {
        Hierarchy::of_self_with(false)
    }

    /// [`Hierarchy::of_self`], with the named v1 hierarchies too when `named`.
    fn of_self_with(named: bool) -> Result<Vec<Hierarchy>, Error> {
        let mountinfo = read_text(Path::new("/proc/self/mountinfo"))?;
        let membership = read_text(Path::new("/proc/self/cgroup"))?;
        Ok(Hierarchy::parse_with(&mountinfo, &membership, named))
    }

    /// The hierarchies of `mountinfo` (as `/proc/self/mountinfo`), each with the cgroup
    /// `membership` (as `/proc/self/cgroup`) gives there.
    #[cfg(test)]
    fn parse(mountinfo: &str, membership: &str) -> Vec<Hierarchy> {
        Hierarchy::parse_with(mountinfo, membership, false)
    }

    /// [`Hierarchy::parse`]; with `named`, a named v1 hierarchy (`name=systemd`) is kept
    /// too, its one "controller" being that name.
    fn parse_with(mountinfo: &str, membership: &str, named: bool) -> Vec<Hierarchy> {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        for line in mountinfo.lines() {
            let Some((before, after)) = line.split_once(" - ") else {
                continue;
            };
            let fields: Vec<&str> = before.split(' ').collect();
            let after: Vec<&str> = after.split(' ').collect();
            let (Some(root), Some(mount_point), Some(fstype), Some(options)) =
                (fields.get(3), fields.get(4), after.first(), after.get(2))
            else {
                continue;
            };
            let v2 = match *fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => continue,
            };
            // The super options of a v1 mount name its controllers among flags such as
            // `xattr` or `noprefix`: the controllers are those of the line of
            // /proc/self/cgroup that all appear there. A named hierarchy (name=systemd)
            // has none to limit with, and is passed over.
            let mounted: Vec<&str> = options.split(',').collect();
            let Some((listed, path)) = membership.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, listed, path) = (parts.next()?, parts.next()?, parts.next()?);
                let matches = if v2 {
                    listed.is_empty()
                } else if listed.starts_with("name=") {
                    named && mounted.contains(&listed)
                } else {
                    !listed.is_empty()
                        && !listed.starts_with("name=")
                        && listed
                            .split(',')
                            .all(|controller| mounted.contains(&controller))
                };
                matches.then_some((listed, path))
            }) else {
                continue;
            };
            let controllers: Vec<String> = if v2 {
                Vec::new()
            } else {
                listed.split(',').map(str::to_owned).collect()
            };
            let root = PathBuf::from(unescape(root));
            let Some(below_root) = Path::new(path).strip_prefix(&root).ok() else {
                continue;
            };
            let mount_point = PathBuf::from(unescape(mount_point));
            let own = mount_point.join(below_root);
            let same = |known: &Hierarchy| known.v2 == v2 && known.controllers == controllers;
            if !hierarchies.iter().any(same) {
                hierarchies.push(Hierarchy {
                    v2,
                    controllers,
                    own,
                    mount_point,
                    root,
                });
            }
        }
        hierarchies
    }
}

/// The directories of a cgroup for `controllers` in `hierarchies`, each at `dir_of` its
/// hierarchy, with the hierarchy: one per v1 hierarchy of the controllers (co-mounted ones
/// share it), or the v2 one, which with no controllers groups processes without limiting
/// them. `check_own_v2`: the caller's own v2 cgroup must have the controllers enabled.
fn plan<'a>(
    hierarchies: &'a [Hierarchy],
    controllers: &[Controller],
    check_own_v2: bool,
    dir_of: impl Fn(&Hierarchy) -> Result<PathBuf, Error>,
) -> Result<Vec<(CgroupDir, &'a Hierarchy)>, Error> {
    let mut dirs: Vec<(CgroupDir, &Hierarchy)> = Vec::new();
    let mut add = |hierarchy: &'a Hierarchy, controller: Option<Controller>| {
        let path = dir_of(hierarchy)?;
        match dirs.iter_mut().find(|(dir, _)| dir.path == path) {
            Some((dir, _)) => dir.controllers.extend(controller),
            None => dirs.push((
                CgroupDir {
                    made: vec![path.clone()],
                    path,
                    v2: hierarchy.v2,
                    controllers: controller.into_iter().collect(),
                },
                hierarchy,
            )),
        }
        Ok::<(), Error>(())
    };
    let v2 = hierarchies.iter().find(|hierarchy| hierarchy.v2);
    if controllers.is_empty() {
        let v2 = v2.ok_or_else(|| {
            cgroup_error(
                "finding",
                &"the cgroup v2 hierarchy",
                io::ErrorKind::NotFound.into(),
                "this host mounts no cgroup v2 (cgroup2 in /proc/self/mountinfo): name \
                 the controllers the cgroup is for"
                    .into(),
            )
        })?;
        add(v2, None)?;
    }
    for &controller in controllers {
        let v1 = hierarchies.iter().find(|hierarchy| {
            !hierarchy.v2 && hierarchy.controllers.iter().any(|c| c == controller.name())
        });
        match (v1, v2) {
            (Some(v1), _) => add(v1, Some(controller))?,
            (None, Some(v2)) => {
                if check_own_v2 {
                    check_enabled_v2(&v2.own, controller)?;
                }
                add(v2, Some(controller))?;
            }
            (None, None) => {
                return Err(cgroup_error(
                    "finding",
                    &format!("the {} controller", controller.name()),
                    io::ErrorKind::NotFound.into(),
                    format!(
                        "no cgroup hierarchy with the {} controller is mounted (see \
                         /proc/self/mountinfo): mount one, or leave this limit out",
                        controller.name()
                    ),
                ));
            }
        }
    }
    Ok(dirs)
}

/// On v2, a controller must be enabled for the children of the caller's cgroup.
fn check_enabled_v2(own: &Path, controller: Controller) -> Result<(), Error> {
    let file = own.join("cgroup.subtree_control");
    let enabled = read_text(&file)?;
    if enabled
        .split_whitespace()
        .any(|name| name == controller.name())
    {
        return Ok(());
    }
    let available = read_text(&own.join("cgroup.controllers")).unwrap_or_default();
    let what_to_do = if available
        .split_whitespace()
        .any(|name| name == controller.name())
    {
        format!(
            "enable it for the children of this cgroup: `echo +{0} > {1}` (which the kernel \
             allows only while no process is in {2} itself: move them to a child cgroup first)",
            controller.name(),
            file.display(),
            own.display()
        )
    } else {
        format!(
            "it is not even available to this cgroup ({}): whoever manages the parent cgroup \
             must enable it there (its cgroup.subtree_control), or delegate a cgroup with it",
            own.join("cgroup.controllers").display()
        )
    };
    Err(cgroup_error(
        "finding",
        &format!("the {} controller in {}", controller.name(), file.display()),
        io::ErrorKind::NotFound.into(),
        what_to_do,
    ))
}

/// Writes the child `pid` into each of `procs`: it joins the cgroup, while it waits.
pub(crate) fn join(procs: &[PathBuf], pid: u32) -> Result<(), Error> {
    let pid = pid.to_string();
    for file in procs {
        write_value_as(Step::JoinCgroup, file, &pid)?;
    }
    Ok(())
}

/// The error of a clone3 that could not create the child in the cgroup v2 directory `dir`
/// for a reason of the cgroup's (the refusals of clone3 itself fall back to the write).
pub(crate) fn clone_refusal(dir: &Path, error: io::Error) -> Error {
    let hint = match error.raw_os_error() {
        Some(libc::EAGAIN) => "the cgroup's pids.max is reached (or this user's process \
                               limit, RLIMIT_NPROC): no process more can start in it"
            .into(),
        Some(libc::EBUSY) => "the cgroup has controllers enabled for cgroups below it \
                              (cgroup.subtree_control), and cgroup v2 puts processes only in \
                              leaves: give a cgroup below it"
            .into(),
        Some(libc::EOPNOTSUPP) => "the cgroup is a threaded one or an invalid domain \
                                   (cgroup.type): a process can't start in it"
            .into(),
        Some(libc::ENOENT | libc::ENODEV) => "the cgroup is gone, or outside this process's \
                                              cgroup namespace"
            .into(),
        _ => hint(&error, &dir.join("cgroup.procs"), Action::Write),
    };
    cgroup_error_as(
        Step::JoinCgroup,
        "starting the child (clone3 CLONE_INTO_CGROUP) in",
        &dir.display(),
        error,
        hint,
    )
}

fn check_name(name: &str) -> Result<(), Error> {
    let why = if name.is_empty() {
        "a cgroup name can't be empty"
    } else if name == "." || name == ".." {
        "a cgroup name can't be '.' or '..'"
    } else if name.contains(['/', '\0', '\n']) {
        "a cgroup name is one path component: no '/', NUL or newline"
    } else {
        return Ok(());
    };
    Err(Error::InvalidInput {
        what: "cgroup name",
        value: name.into(),
        why: why.into(),
    })
}

/// What was being done to a cgroup, for the hint of a failure.
#[derive(Clone, Copy, PartialEq)]
enum Action {
    Create,
    Write,
    Read,
    Remove,
}

/// What a failure with `error` on `path` usually means, and what to do.
fn hint(error: &io::Error, path: &Path, action: Action) -> String {
    let parent = path.parent().unwrap_or(path);
    match error.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => format!(
            "no delegation: uid {} may not {} there; a caller without privilege needs a \
             cgroup delegated to it (the directory {} and its files owned by it, as \
             `systemd-run --user --scope -p Delegate=yes` or an administrator gives), or \
             root",
            nix::unistd::geteuid(),
            if action == Action::Create {
                "create cgroups"
            } else {
                "change this cgroup"
            },
            parent.display()
        ),
        Some(libc::EROFS) => "the cgroup filesystem is mounted read-only here (as in a \
                              container that was given no cgroup of its own): the container's \
                              manager must delegate a writable cgroup"
            .into(),
        Some(libc::EEXIST) => "a cgroup of that name exists already: choose another name, or \
                               remove it if it is a leftover"
            .into(),
        Some(libc::ENOENT) if action == Action::Create => {
            "the parent cgroup does not exist (any more)".into()
        }
        Some(libc::ENOENT) if path.ends_with("cgroup.procs") => {
            "the cgroup is gone: it was removed before the process could join it".into()
        }
        Some(libc::ENOENT) => "the file is missing: the kernel lacks that feature, or the \
                               controller is not enabled for this cgroup"
            .into(),
        Some(libc::EBUSY) if action == Action::Remove => {
            "processes are still in it, or cgroups below it: end them first".into()
        }
        Some(libc::EINVAL) if action == Action::Write => "the kernel refused the value".into(),
        Some(libc::EAGAIN | libc::ENOSPC) if action == Action::Create => {
            "a limit on the number or depth of cgroups was reached (cgroup.max.descendants, \
             cgroup.max.depth)"
                .into()
        }
        Some(libc::ESRCH) => "the process to move is gone".into(),
        _ => "see the cgroup documentation of the kernel for this file".into(),
    }
}

fn cgroup_error(
    action: &str,
    path: &dyn std::fmt::Display,
    source: io::Error,
    hint: String,
) -> Error {
    cgroup_error_as(Step::ManageCgroup, action, path, source, hint)
}

fn cgroup_error_as(
    step: Step,
    action: &str,
    path: &dyn std::fmt::Display,
    source: io::Error,
    hint: String,
) -> Error {
    Error::Cgroup {
        step,
        action: action.to_owned(),
        target: path.to_string(),
        source,
        hint,
    }
}

/// Writes `value` to a cgroup file in one write(2), as the kernel reads these.
fn write_value(file: &Path, value: &str) -> Result<(), Error> {
    write_value_as(Step::ManageCgroup, file, value)
}

/// [`write_value`], failing as `step`.
fn write_value_as(step: Step, file: &Path, value: &str) -> Result<(), Error> {
    fs::OpenOptions::new()
        .write(true)
        .open(file)
        .and_then(|mut open| open.write_all(value.as_bytes()))
        .map_err(|error| {
            let hint = hint(&error, file, Action::Write);
            cgroup_error_as(
                step,
                &format!("writing {value:?} to"),
                &file.display(),
                error,
                hint,
            )
        })
}

fn read_text(file: &Path) -> Result<String, Error> {
    fs::read_to_string(file).map_err(|error| {
        let hint = hint(&error, file, Action::Read);
        cgroup_error("reading", &file.display(), error, hint)
    })
}

fn read_number(file: &Path) -> Result<u64, Error> {
    let text = read_text(file)?;
    text.trim().parse().map_err(|_| {
        cgroup_error(
            "reading",
            &file.display(),
            io::ErrorKind::InvalidData.into(),
            format!("{:?} is not a number", text.trim()),
        )
    })
}

/// The inode of this process's PID namespace: pids mean something only within one.
fn pid_namespace() -> u64 {
    fs::metadata("/proc/self/ns/pid").map_or(0, |meta| meta.ino())
}

/// Whether `pid` names a process (a zombie included) in this PID namespace.
fn is_running(pid: i32) -> bool {
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// A path of `/proc/self/mountinfo`, whose space, tab, newline and backslash are octal
/// escapes there.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let octal = bytes.get(at + 1..at + 4).filter(|digits| {
            bytes[at] == b'\\' && digits.iter().all(|digit| (b'0'..=b'7').contains(digit))
        });
        match octal {
            Some(digits) => {
                out.push(
                    digits
                        .iter()
                        .fold(0u8, |value, digit| value * 8 + (digit - b'0')),
                );
                at += 4;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hierarchies_of_a_hybrid_host() {
        let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 25 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,noprefix,memory
34 25 0:30 /sub /mnt/pids\\040here rw - cgroup cgroup rw,pids
35 25 0:31 /elsewhere /mnt/other rw - cgroup cgroup rw,freezer
36 25 0:32 / /proc rw - proc proc rw
";
        let membership = "\
5:freezer:/mine
4:pids:/sub/mine
3:memory:/a/b
2:cpu,cpuacct:/
1:name=systemd:/user
0::/v2/mine
";
        let found: Vec<(bool, Vec<String>, PathBuf)> = Hierarchy::parse(mountinfo, membership)
            .into_iter()
            .map(|hierarchy| (hierarchy.v2, hierarchy.controllers, hierarchy.own))
            .collect();
        let v1 = |controllers: &[&str], own: &str| {
            (
                false,
                controllers.iter().map(|c| c.to_string()).collect(),
                PathBuf::from(own),
            )
        };
        assert_eq!(
            found,
            vec![
                (
                    true,
                    Vec::new(),
                    PathBuf::from("/sys/fs/cgroup/unified/v2/mine")
                ),
                v1(&["cpu", "cpuacct"], "/sys/fs/cgroup/cpu,cpuacct/"),
                v1(&["memory"], "/sys/fs/cgroup/memory/a/b"),
                // Mounted from /sub: the cgroup below that, at the mount point.
                v1(&["pids"], "/mnt/pids here/mine"),
                // The freezer's mount shows another subtree, not ours: left out.
            ]
        );
    }

    #[test]
    fn named_hierarchies_are_listed_only_when_asked_for() {
        let mountinfo = "\
31 25 0:27 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
32 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
33 25 0:29 /../.. /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
        let membership = "3:memory:/mine\n2:cpu,cpuacct:/\n1:name=systemd:/user\n";
        let names = |named| -> Vec<(Vec<String>, PathBuf)> {
            Hierarchy::parse_with(mountinfo, membership, named)
                .into_iter()
                .map(|hierarchy| (hierarchy.controllers, hierarchy.own))
                .collect()
        };
        let cpu = (
            vec!["cpu".to_owned(), "cpuacct".to_owned()],
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/"),
        );
        // The memory mount's root is above this cgroup namespace's: ours can't be found.
        assert_eq!(names(false), vec![cpu.clone()]);
        assert_eq!(
            names(true),
            vec![
                (
                    vec!["name=systemd".to_owned()],
                    PathBuf::from("/sys/fs/cgroup/systemd/user")
                ),
                cpu
            ]
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape("/plain"), "/plain");
    }

    /// A directory standing in for a cgroup's, with `files`; removed by the caller.
    fn fake_dir(label: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("reexec-cgroup-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        for (name, text) in files {
            fs::write(dir.join(name), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_controller_not_enabled_on_v2_says_what_to_enable() {
        let enabled_not = fake_dir(
            "v2-available",
            &[
                ("cgroup.subtree_control", "pids\n"),
                ("cgroup.controllers", "memory pids\n"),
            ],
        );
        assert!(check_enabled_v2(&enabled_not, Controller::Pids).is_ok());
        let error = check_enabled_v2(&enabled_not, Controller::Memory)
            .unwrap_err()
            .to_string();
        assert!(error.contains("echo +memory >"), "{error}");
        let missing = fake_dir(
            "v2-missing",
            &[("cgroup.subtree_control", ""), ("cgroup.controllers", "")],
        );
        let error = check_enabled_v2(&missing, Controller::Cpu)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not even available"), "{error}");
        fs::remove_dir_all(enabled_not).unwrap();
        fs::remove_dir_all(missing).unwrap();
    }

    #[test]
    fn a_missing_swap_file_and_a_read_only_cgroup_are_named() {
        // A v1 memory cgroup of a kernel without swap accounting: no memory.memsw.* file.
        let dir = fake_dir("no-swap-accounting", &[("memory.limit_in_bytes", "")]);
        let cgroup = Cgroup {
            dirs: vec![CgroupDir {
                path: dir.clone(),
                v2: false,
                controllers: vec![Controller::Memory],
                made: Vec::new(),
            }],
            removed: true,
        };
        cgroup.set_memory_max(64 << 20).unwrap();
        let error = cgroup.set_memory_swap_max(128 << 20).unwrap_err();
        assert_eq!(error.step(), Some(Step::ManageCgroup));
        let text = error.to_string();
        assert!(
            text.contains("memory.memsw.limit_in_bytes") && text.contains("the file is missing"),
            "{text}"
        );
        let error = cgroup.set_pids_max(1).unwrap_err().to_string();
        assert!(error.contains("pass Controller::Pids"), "{error}");
        fs::remove_dir_all(dir).unwrap();

        let read_only = io::Error::from_raw_os_error(libc::EROFS);
        let text = hint(
            &read_only,
            Path::new("/sys/fs/cgroup/pids/x"),
            Action::Create,
        );
        assert!(
            text.contains("read-only") && text.contains("delegate"),
            "{text}"
        );
    }

    #[test]
    fn a_refusal_of_clone3_names_the_cgroup_and_the_cause() {
        let dir = Path::new("/sys/fs/cgroup/unified/job");
        for (errno, cause) in [
            (libc::EAGAIN, "pids.max"),
            (libc::EBUSY, "cgroup.subtree_control"),
            (libc::EOPNOTSUPP, "threaded"),
            (libc::EACCES, "no delegation"),
        ] {
            let error = clone_refusal(dir, io::Error::from_raw_os_error(errno));
            assert_eq!(error.step(), Some(Step::JoinCgroup));
            let text = error.to_string();
            assert!(
                text.contains("CLONE_INTO_CGROUP") && text.contains("/unified/job"),
                "{text}"
            );
            assert!(text.contains(cause), "{errno}: {text}");
        }
    }

    #[test]
    fn cgroup_paths_are_names_only() {
        for bad in ["", "/", "..", "../up", "a/../b", "a/./b", "/a/..", "a\nb"] {
            assert!(check_path(Path::new(bad)).is_err(), "{bad:?}");
        }
        for good in ["a", "a/b/c", "/machine/job-1", "ns-runtime/x"] {
            assert!(check_path(Path::new(good)).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn absolute_paths_are_from_the_root_of_what_the_mount_shows() {
        let hierarchy = Hierarchy {
            v2: false,
            controllers: vec!["pids".into()],
            own: PathBuf::from("/mnt/pids/mine"),
            mount_point: PathBuf::from("/mnt/pids"),
            root: PathBuf::from("/sub"),
        };
        let at = |path: &str| hierarchy.resolve(Path::new(path));
        assert_eq!(at("job").unwrap(), Path::new("/mnt/pids/mine/job"));
        assert_eq!(at("/sub/a/job").unwrap(), Path::new("/mnt/pids/a/job"));
        let error = at("/elsewhere/job").unwrap_err().to_string();
        assert!(error.contains("shows only the cgroup /sub"), "{error}");
    }

    #[test]
    fn shares_become_weights_over_the_same_range() {
        assert_eq!(weight_of_shares(2), 1);
        assert_eq!(weight_of_shares(1024), 39);
        assert_eq!(weight_of_shares(262_144), 10_000);
        assert_eq!(weight_of_shares(0), 1);
    }

    #[test]
    fn names_are_one_component() {
        for bad in ["", ".", "..", "a/b", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name("ns-process-1-2-3").is_ok());
    }
}
