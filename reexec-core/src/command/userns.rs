//! The id maps of a child's new user namespace: checked before anything is created,
//! written while the child waits.
//!
//! Runs in the parent: `Maps::new` in `Command::spawn` before the clone, `Maps::write`
//! during the spawn, while the child waits for its parent (`sys/spawn.rs`, `Handshake`):
//! by the parent itself, or through `newuidmap` and `newgidmap` (`subordinate.rs`).

use std::fs::File;
use std::io;
use std::path::Path;
use std::process::Stdio;

use nix::unistd::Pid;

use super::subordinate::IdMapHelpers;
use crate::error::{Error, Step};
use crate::namespaces::{IdMap, Namespaces, map_file_text};

/// The maps of a new user namespace, checked, and the texts for `/proc/PID/uid_map` and
/// `gid_map` (empty for no map).
pub(super) struct Maps {
    uid: String,
    gid: String,
    uid_maps: Vec<IdMap>,
    gid_maps: Vec<IdMap>,
    /// The helpers that write the maps instead of the parent, if the command asked.
    helpers: Option<IdMapHelpers>,
}

impl Maps {
    /// The uid_map and gid_map texts of `uid_maps` and `gid_maps`, checked: maps need a
    /// new user namespace among `namespaces`, and each map must be one the kernel takes.
    pub(super) fn new(
        namespaces: Namespaces,
        uid_maps: &[IdMap],
        gid_maps: &[IdMap],
        helpers: Option<IdMapHelpers>,
    ) -> Result<Maps, Error> {
        let has_maps = !uid_maps.is_empty() || !gid_maps.is_empty();
        if has_maps && !namespaces.contains(Namespaces::USER) {
            return Err(Error::InvalidInput {
                what: "id maps",
                value: format!("{uid_maps:?} {gid_maps:?}").into(),
                why: "uid and gid maps apply to a new user namespace: add Namespaces::USER".into(),
            });
        }
        let text = |what, maps: &[IdMap]| {
            map_file_text(maps).map_err(|why| Error::InvalidInput {
                what,
                value: format!("{maps:?}").into(),
                why,
            })
        };
        Ok(Maps {
            uid: text("uid map", uid_maps)?,
            gid: text("gid map", gid_maps)?,
            uid_maps: uid_maps.to_vec(),
            gid_maps: gid_maps.to_vec(),
            helpers,
        })
    }

    /// Whether the child takes uid 0 of its user namespace: when the uid maps give 0 inside
    /// and none of them the caller's own effective uid.
    pub(super) fn takes_root_uid(&self) -> bool {
        takes_root(&self.uid_maps, || nix::unistd::geteuid().as_raw())
    }

    /// Whether the child takes gid 0 of its user namespace, as
    /// [`takes_root_uid`](Self::takes_root_uid) for gids.
    pub(super) fn takes_root_gid(&self) -> bool {
        takes_root(&self.gid_maps, || nix::unistd::getegid().as_raw())
    }

    /// Whether there is no map to write.
    pub(super) fn is_empty(&self) -> bool {
        self.uid.is_empty() && self.gid.is_empty()
    }

    /// Writes the maps of the waiting child `pid`: `deny` to its setgroups first, unless
    /// `allow_setgroups` (the kernel wants it before an unprivileged gid map), then its
    /// uid_map and gid_map. With the helpers, they write the maps, and `newgidmap` alone
    /// decides setgroups: a `deny` written first would make it fail.
    pub(super) fn write(&self, pid: Pid, allow_setgroups: bool) -> Result<(), Error> {
        if let Some(helpers) = &self.helpers {
            run_helper(&helpers.newuidmap, Step::RunNewuidmap, pid, &self.uid_maps)?;
            return run_helper(&helpers.newgidmap, Step::RunNewgidmap, pid, &self.gid_maps);
        }
        let proc_file = |name: &str| format!("/proc/{pid}/{name}");
        if !self.gid.is_empty() && !allow_setgroups {
            write_proc_file(&proc_file("setgroups"), "deny", Step::WriteSetgroups)?;
        }
        if !self.uid.is_empty() {
            write_proc_file(&proc_file("uid_map"), &self.uid, Step::WriteUidMap)?;
        }
        if !self.gid.is_empty() {
            write_proc_file(&proc_file("gid_map"), &self.gid, Step::WriteGidMap)?;
        }
        Ok(())
    }
}

/// Whether `maps` give 0 inside and none of them the caller's `own` id (asked only then).
/// No map (no user namespace, or no map of that kind) takes nothing.
fn takes_root(maps: &[IdMap], own: impl FnOnce() -> u32) -> bool {
    let covers =
        |start: u32, count: u32, id: u32| id >= start && u64::from(id - start) < u64::from(count);
    if !maps.iter().any(|map| covers(map.inside, map.count, 0)) {
        return false;
    }
    let own = own();
    !maps.iter().any(|map| covers(map.outside, map.count, own))
}

/// Runs `program` (`newuidmap` or `newgidmap`, for `step`) on `pid` with `maps`, unless
/// there are none; its standard error comes back in the error when it fails.
fn run_helper(program: &Path, step: Step, pid: Pid, maps: &[IdMap]) -> Result<(), Error> {
    if maps.is_empty() {
        return Ok(());
    }
    // newuidmap PID INSIDE OUTSIDE COUNT [INSIDE OUTSIDE COUNT]...
    let args: Vec<String> = std::iter::once(pid.to_string())
        .chain(
            maps.iter()
                .flat_map(|map| [map.inside, map.outside, map.count].map(|id| id.to_string())),
        )
        .collect();
    let output = std::process::Command::new(program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|source| Error::Os { step, source })?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::IdMapHelper {
        step,
        program: program.to_owned(),
        args: args.join(" "),
        status: output.status,
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

/// Writes a `/proc/PID/` control file in one write(2), as the kernel requires.
fn write_proc_file(path: &str, text: &str, step: Step) -> Result<(), Error> {
    let refused = |source: io::Error| Error::IdMap {
        step,
        map: text.to_owned(),
        hint: crate::diagnose::map_refusal(step, &source),
        source,
    };
    let mut file = File::options().write(true).open(path).map_err(refused)?;
    match io::Write::write(&mut file, text.as_bytes()) {
        Ok(written) if written == text.len() => Ok(()),
        Ok(_) => Err(refused(io::ErrorKind::WriteZero.into())),
        Err(error) => Err(refused(error)),
    }
}
