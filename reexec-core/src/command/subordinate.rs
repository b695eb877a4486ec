//! Ids beyond the caller's own: its ranges in `/etc/subuid` and `/etc/subgid`, and the
//! setuid helpers `newuidmap` and `newgidmap` that map them for a caller without
//! privilege.
//!
//! Runs in the parent, before the clone (finding the range and the helpers) and while the
//! child waits (running the helpers, from `userns.rs`).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Step};

/// Where the helpers come from, for the error that says they are missing.
const HELPERS_PACKAGE: &str =
    "Debian and Ubuntu: apt-get install uidmap; Fedora, Arch: the shadow(-utils) package";

/// The PATH searched when the process has none, as execvp(3) does.
const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// One range of a user's subordinate ids: `count` ids from `start`, in the caller's
/// user namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubordinateRange {
    /// The first id of the range.
    pub start: u32,
    /// How many ids.
    pub count: u32,
}

/// A user's ranges in `/etc/subuid` and `/etc/subgid`: the ids an administrator gave
/// the user to map into its user namespaces through `newuidmap(1)` and `newgidmap(1)`.
///
/// ```no_run
/// match reexec::SubordinateIds::of_caller() {
///     Ok(ids) => println!("uids {} to {}", ids.uids.start, ids.uids.start + ids.uids.count - 1),
///     Err(error) => println!("{error}"),
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SubordinateIds {
    /// The user's name, as the files may name it.
    pub user: String,
    /// The first range of `/etc/subuid` for the user.
    pub uids: SubordinateRange,
    /// The first range of `/etc/subgid` for the user.
    pub gids: SubordinateRange,
}

impl SubordinateIds {
    /// The ranges of the caller — its real uid, as `newuidmap` checks — found by its name
    /// or its uid, as `newuidmap` finds them: the first line of each file that names the
    /// user and has a count above 0.
    ///
    /// Fails with [`Error::NoSubordinateIds`] when a file is missing, unreadable or has
    /// no range for the user.
    pub fn of_caller() -> Result<SubordinateIds, Error> {
        let uid = nix::unistd::getuid().as_raw();
        let user = nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |user| user.name);
        let range = |file: &'static str| {
            let text = std::fs::read_to_string(file).map_err(|error| Error::NoSubordinateIds {
                user: user.clone(),
                uid,
                file,
                detail: format!(" (reading it: {error})"),
            })?;
            first_range(&text, &user, uid).ok_or_else(|| Error::NoSubordinateIds {
                user: user.clone(),
                uid,
                file,
                detail: String::new(),
            })
        };
        let uids = range("/etc/subuid")?;
        let gids = range("/etc/subgid")?;
        Ok(SubordinateIds { user, uids, gids })
    }
}

/// The first range of `text` (the format of subuid(5)) for `user` or `uid`.
fn first_range(text: &str, user: &str, uid: u32) -> Option<SubordinateRange> {
    let uid = uid.to_string();
    text.lines().find_map(|line| {
        let mut fields = line.trim().split(':');
        let owner = fields.next()?;
        let start = fields.next()?.parse().ok()?;
        let count = fields.next()?.parse().ok()?;
        let named = owner == user || owner == uid;
        (named && count > 0 && fields.next().is_none()).then_some(SubordinateRange { start, count })
    })
}

/// Where `newuidmap` and `newgidmap` are: the setuid helpers that write a child's maps
/// with ranges of `/etc/subuid` and `/etc/subgid`, for a caller without privilege (Debian
/// package `uidmap`). See [`Command::map_with_helpers`](crate::Command::map_with_helpers).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IdMapHelpers {
    /// The path of `newuidmap`.
    pub newuidmap: PathBuf,
    /// The path of `newgidmap`.
    pub newgidmap: PathBuf,
}

impl IdMapHelpers {
    /// Both helpers, found in `PATH` as a shell finds a command.
    ///
    /// Fails with [`Error::IdMapHelperMissing`], naming the package to install, when
    /// either is not there.
    pub fn find() -> Result<IdMapHelpers, Error> {
        let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        Ok(IdMapHelpers {
            newuidmap: find_in_path("newuidmap", &path, Step::RunNewuidmap)?,
            newgidmap: find_in_path("newgidmap", &path, Step::RunNewgidmap)?,
        })
    }
}

fn find_in_path(program: &'static str, path: &OsString, step: Step) -> Result<PathBuf, Error> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            candidate.is_file()
                && nix::unistd::access(candidate.as_path(), nix::unistd::AccessFlags::X_OK).is_ok()
        })
        .ok_or_else(|| Error::IdMapHelperMissing {
            step,
            program,
            path: path.to_string_lossy().into_owned(),
            package: HELPERS_PACKAGE,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_range_of_the_user_by_name_or_uid() {
        let text =
            "# comment\nalice:100000:65536\nbob:200000:0\nbob:300000:10\n1001:400000:5\nbad line\n";
        let range = |start, count| Some(SubordinateRange { start, count });
        assert_eq!(first_range(text, "alice", 1000), range(100000, 65536));
        assert_eq!(
            first_range(text, "bob", 1002),
            range(300000, 10),
            "count 0 skipped"
        );
        assert_eq!(first_range(text, "carol", 1001), range(400000, 5), "by uid");
        assert_eq!(first_range(text, "carol", 1003), None);
        assert_eq!(
            first_range("alice:1:2:3\n", "alice", 1),
            None,
            "too many fields"
        );
        assert_eq!(first_range("", "alice", 1), None);
    }
}
