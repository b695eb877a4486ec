//! The state directory: one directory per container, what `state`, `kill`, `delete`,
//! `exec` and `list` read.
//!
//! `<root>/<id>/` holds `state.json` (what `create` saved: the init's pid and the start
//! time that tells it from a later process given the same pid, the bundle, ...) and, until
//! `start`, the FIFO `exec.fifo` (see `created.rs`). The status is never saved: it is read
//! from the live process each time — created while the init lives and the FIFO is there,
//! running once the FIFO is gone, stopped once the init is.
//!
//! Each container directory is locked (`flock`) by whoever changes it. `create` makes it
//! as `.new-<id>-<pid>`, locked, with a file `creating` in it, then renames it into place,
//! failing if the id exists: two creates of one id can't both succeed. `creating` goes
//! once the init was told it is saved, and lives on. A directory that nobody holds locked
//! and that has no `state.json`, or still has `creating` and no live init, is what a
//! killed `create` left (its init ended with it): the next call that meets it removes it.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use oci_spec::runtime::{ContainerState, State};
use serde::{Deserialize, Serialize};

use super::{Failure, Global};

/// The file of what `create` saved.
const STATE_FILE: &str = "state.json";
/// The FIFO `start` writes into.
pub(crate) const FIFO: &str = "exec.fifo";
/// The prefix of a container directory still being made.
const NEW_PREFIX: &str = ".new-";
/// In a container's directory until its init was told it is saved: with it, the
/// directory is a create's that may have been killed.
const CREATING: &str = "creating";

/// The state directory: `--root`, else `/run/ns-runtime` for root, else
/// `$XDG_RUNTIME_DIR/ns-runtime` (or `/run/user/UID/ns-runtime` where it is not set).
pub(crate) fn root_dir(global: &Global) -> PathBuf {
    if let Some(root) = &global.root {
        return root.clone();
    }
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/ns-runtime");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("ns-runtime"),
        None => PathBuf::from(format!("/run/user/{uid}/ns-runtime")),
    }
}

/// Refuses an id that could name anything but one directory below the root: runc's
/// alphabet (letters, digits, `_ + - .`), not `.` or `..`.
pub(crate) fn check_id(id: &str) -> Result<(), Failure> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+-.".contains(c);
    if id.is_empty() || id == "." || id == ".." || id.len() > 1024 || !id.chars().all(allowed) {
        return Err(Failure::bad_input(format!(
            "invalid container id {id:?}: use letters, digits and _ + - . (not . or .. alone)"
        )));
    }
    Ok(())
}

/// A container as `create` saved it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Container {
    pub(crate) id: String,
    /// The init's pid on the host.
    pub(crate) pid: i32,
    /// The init's start time (field 22 of `/proc/PID/stat`), which a later process
    /// given the same pid does not have.
    pub(crate) start_time: u64,
    pub(crate) bundle: PathBuf,
    pub(crate) rootfs: PathBuf,
    /// RFC 3339, UTC.
    pub(crate) created: String,
    /// The uid that created it.
    pub(crate) owner: u32,
    #[serde(default)]
    pub(crate) annotations: HashMap<String, String>,
    /// Its directory; not saved.
    #[serde(skip)]
    pub(crate) dir: PathBuf,
}

impl Container {
    /// The container `id` under `root`; the message names what is missing.
    #[allow(dead_code, reason = "the interface exec16 and cg16 call")]
    pub(crate) fn load(root: &Path, id: &str) -> Result<Container, String> {
        Container::find(root, id).map_err(|failure| failure.message)
    }

    /// As `load`, with the exit status of the failure: no such container is its own.
    pub(crate) fn find(root: &Path, id: &str) -> Result<Container, Failure> {
        check_id(id)?;
        let dir = root.join(id);
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                // A killed create's directory goes; one still being made is not there yet.
                remove_if_left_over(&dir);
                return Err(Failure::not_found(format!(
                    "container {id:?} does not exist (no {} under {})",
                    STATE_FILE,
                    root.display()
                )));
            }
            Err(error) => {
                return Err(Failure::failed(format!("{}: {error}", path.display())));
            }
        };
        if dir.join(CREATING).exists() && remove_if_left_over(&dir) {
            return Err(Failure::not_found(format!(
                "container {id:?} does not exist (its create was killed half-way)"
            )));
        }
        let mut container: Container = serde_json::from_slice(&text)
            .map_err(|error| Failure::failed(format!("{}: {error}", path.display())))?;
        container.dir = dir;
        Ok(container)
    }

    /// Saves it, whole or not at all (a new file renamed over the old).
    pub(crate) fn save(&self) -> Result<(), String> {
        let text = serde_json::to_vec(self).map_err(|error| error.to_string())?;
        write_atomically(&self.dir.join(STATE_FILE), &text)
    }

    /// Its status, read from the live process.
    pub(crate) fn status(&self) -> ContainerState {
        if !process_is(self.pid, self.start_time) {
            ContainerState::Stopped
        } else if self.dir.join(FIFO).exists() {
            ContainerState::Created
        } else {
            ContainerState::Running
        }
    }

    /// `state`'s JSON, as the OCI runtime spec has it.
    pub(crate) fn oci_state(&self) -> State {
        let status = self.status();
        let mut state = State::default();
        state.set_version(oci_spec::runtime::VERSION.to_owned());
        state.set_id(self.id.clone());
        // 0 for a stopped container, as runc: the number may be another's now.
        state.set_pid(Some(if status == ContainerState::Stopped {
            0
        } else {
            self.pid
        }));
        state.set_status(status);
        state.set_bundle(self.bundle.clone());
        state.set_annotations(Some(self.annotations.clone()));
        state
    }

    /// Locks its directory until the lock drops; waits for whoever holds it.
    pub(crate) fn lock(&self) -> Result<Flock<File>, Failure> {
        lock_dir(&self.dir, FlockArg::LockExclusive)
            .map_err(|why| Failure::failed(format!("locking {}: {why}", self.dir.display())))
    }
}

/// A new container's directory, locked, not yet in place (see `Reserved::commit`).
pub(crate) struct Reserved {
    /// Where it is made.
    new: PathBuf,
    /// Where it goes.
    pub(crate) dir: PathBuf,
    _lock: Flock<File>,
    placed: bool,
}

impl Reserved {
    /// Makes `<root>/<id>`, locked, refusing an id that exists (a killed create's
    /// leftover aside).
    pub(crate) fn make(root: &Path, id: &str) -> Result<Reserved, Failure> {
        check_id(id)?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|error| {
                Failure::failed(format!(
                    "making the state directory {}: {error}; give --root a directory you may \
                     write",
                    root.display()
                ))
            })?;
        sweep(root);
        let new = root.join(format!("{NEW_PREFIX}{id}-{}", std::process::id()));
        let dir = root.join(id);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&new)
            .map_err(|error| Failure::failed(format!("mkdir {}: {error}", new.display())))?;
        let lock = lock_dir(&new, FlockArg::LockExclusiveNonblock).and_then(|lock| {
            File::create(new.join(CREATING))
                .map(|_| lock)
                .map_err(|error| error.to_string())
        });
        let lock = match lock {
            Ok(lock) => lock,
            Err(why) => {
                let _ = std::fs::remove_dir_all(&new);
                return Err(Failure::failed(format!("making {}: {why}", new.display())));
            }
        };
        // In place under its id at once, so that a second create of it fails now; what
        // it holds is saved later. renameat2's RENAME_NOREPLACE: a plain rename would
        // replace an empty directory of the same name.
        let rename = || {
            nix::fcntl::renameat2(
                nix::fcntl::AT_FDCWD,
                &new,
                nix::fcntl::AT_FDCWD,
                &dir,
                nix::fcntl::RenameFlags::RENAME_NOREPLACE,
            )
        };
        let mut renamed = rename();
        if renamed == Err(nix::errno::Errno::EEXIST) && remove_if_left_over(&dir) {
            renamed = rename();
        }
        if let Err(errno) = renamed {
            let _ = std::fs::remove_dir_all(&new);
            return Err(if errno == nix::errno::Errno::EEXIST {
                Failure::wrong_state(format!(
                    "container {id:?} already exists; delete it first (ns-runtime delete {id}) \
                     or choose another id"
                ))
            } else {
                Failure::failed(format!(
                    "rename {} to {}: {}",
                    new.display(),
                    dir.display(),
                    errno.desc()
                ))
            });
        }
        Ok(Reserved {
            new,
            dir,
            _lock: lock,
            placed: false,
        })
    }

    /// The container is saved and its init lives on: its directory stays.
    pub(crate) fn commit(mut self) {
        self.placed = true;
        // Left behind if this process is killed now, it is harmless: the init lives.
        let _ = std::fs::remove_file(self.dir.join(CREATING));
    }
}

impl Drop for Reserved {
    /// A create that failed takes its directory back.
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_dir_all(&self.dir);
            let _ = std::fs::remove_dir_all(&self.new);
        }
    }
}

/// Removes the container directory `dir` if a killed create left it (see above).
/// Whether it did.
fn remove_if_left_over(dir: &Path) -> bool {
    let left_over = || {
        let saved = std::fs::read(dir.join(STATE_FILE))
            .ok()
            .and_then(|text| serde_json::from_slice::<Container>(&text).ok());
        match saved {
            None => true,
            Some(container) => {
                dir.join(CREATING).exists() && !process_is(container.pid, container.start_time)
            }
        }
    };
    if !left_over() {
        return false;
    }
    match lock_dir(dir, FlockArg::LockExclusiveNonblock) {
        // Checked again under the lock: the create may have just finished.
        Ok(_lock) if left_over() => std::fs::remove_dir_all(dir).is_ok(),
        _ => false,
    }
}

/// Removes what killed creates left under `root`.
pub(crate) fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        // One being made is locked only just after it is made: its creator's pid tells.
        let name = entry.file_name();
        let creator = name
            .to_str()
            .and_then(|name| name.strip_prefix(NEW_PREFIX))
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<i32>().ok());
        if creator.is_some_and(|pid| start_time(pid).is_some()) {
            continue;
        }
        remove_if_left_over(&entry.path());
    }
}

/// Every container under `root`, by id; what killed creates left is removed.
pub(crate) fn all(root: &Path) -> Result<Vec<Container>, Failure> {
    sweep(root);
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(Failure::failed(format!("{}: {error}", root.display()))),
    };
    let mut containers = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().filter(|id| !id.starts_with('.')) else {
            continue;
        };
        if let Ok(container) = Container::find(root, id) {
            containers.push(container);
        }
    }
    containers.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(containers)
}

fn lock_dir(dir: &Path, how: FlockArg) -> Result<Flock<File>, String> {
    let file = File::open(dir).map_err(|error| error.to_string())?;
    Flock::lock(file, how).map_err(|(_, errno)| errno.desc().to_owned())
}

/// Writes `path` whole or not at all: a new file beside it, renamed over it.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), String> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let new = path.with_file_name(format!(".{name}.{}", std::process::id()));
    let written = File::create(&new)
        .and_then(|mut file| file.write_all(contents).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&new, path));
    written.map_err(|error| {
        let _ = std::fs::remove_file(&new);
        format!("writing {}: {error}", path.display())
    })
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), if it is alive:
/// `None` once it ended, zombie or reaped.
pub(crate) fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's name in parentheses, which may hold anything.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // fields[0] is field 3, the state; the start time is field 22.
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | Some(&"x")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `start_time`.
pub(crate) fn process_is(pid: i32, start_time: u64) -> bool {
    self::start_time(pid) == Some(start_time)
}

/// The name of user `uid`, for `list`.
pub(crate) fn owner_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(|| format!("#{uid}"), |user| user.name)
}
