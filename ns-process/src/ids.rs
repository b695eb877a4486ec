//! Which ids the new user namespace has: root is the caller, and 65536 ids after it when
//! the system gives them.
//!
//! - Run by root: ids 0 to 65535 inside are the same ids outside (those of them that
//!   ns-process's own user namespace has), written by ns-process itself, as root may.
//! - Run by a user with a range in `/etc/subuid` and `/etc/subgid`, and `newuidmap` and
//!   `newgidmap` installed: root is the user, ids 1 to 65536 the first ids of its range,
//!   as `unshare --map-auto` and rootless podman map them.
//! - Otherwise root is the user and nothing else is mapped, as before; ns-process says so
//!   on stderr, once, with what the system lacks.
//!
//! `--map-users` and `--map-groups` replace the default of their kind. Runs in the parent.

use reexec::{IdMap, IdMapHelpers, SubordinateIds};

use crate::cli::Options;

/// How many ids after root the default mapping gives, as `unshare --map-auto` and podman.
const IDS_AFTER_ROOT: u32 = 65536;

/// The maps of the new user namespace, chosen before anything is created.
#[derive(Debug)]
pub(crate) struct IdMaps {
    uids: Vec<IdMap>,
    gids: Vec<IdMap>,
    /// Written by `newuidmap` and `newgidmap`, which decide setgroups.
    helpers: bool,
    /// Written by root, who keeps setgroups allowed.
    allow_setgroups: bool,
}

impl IdMaps {
    /// The maps for this caller and `options`; `Err` says why the maps asked for can't
    /// be had. Says on stderr when only root can be mapped.
    pub(crate) fn choose(options: &Options) -> Result<IdMaps, String> {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        if uid == 0 {
            // Root may allow setgroups (the kernel's rule): then `su` and `sg` work
            // inside. Root inside is host root already, with its capabilities over every
            // mapped id: a group it sheds denies it nothing it could not override.
            return Ok(IdMaps {
                uids: given_or(&options.map_users, || identity("uid"))?,
                gids: given_or(&options.map_groups, || identity("gid"))?,
                helpers: false,
                allow_setgroups: true,
            });
        }
        let asked = !options.map_users.is_empty() || !options.map_groups.is_empty();
        let own = |id| vec![IdMap::new(0, id, 1)];
        match SubordinateIds::of_caller().and_then(|ids| IdMapHelpers::find().map(|_| ids)) {
            // newgidmap keeps setgroups allowed for a map of the range, as /etc/subgid
            // grants: the user's processes may choose their groups among those ids.
            Ok(ids) => {
                let after_root =
                    |start, count: u32| IdMap::new(1, start, count.min(IDS_AFTER_ROOT));
                Ok(IdMaps {
                    uids: given_or(&options.map_users, || {
                        Ok(vec![
                            IdMap::new(0, uid, 1),
                            after_root(ids.uids.start, ids.uids.count),
                        ])
                    })?,
                    gids: given_or(&options.map_groups, || {
                        Ok(vec![
                            IdMap::new(0, gid, 1),
                            after_root(ids.gids.start, ids.gids.count),
                        ])
                    })?,
                    helpers: true,
                    allow_setgroups: false,
                })
            }
            Err(why) if !asked => {
                eprintln!("ns-process: only root is mapped (to you), not 65536 ids: {why}");
                Ok(IdMaps {
                    uids: own(uid),
                    gids: own(gid),
                    helpers: false,
                    allow_setgroups: false,
                })
            }
            // The kernel lets anyone map their own id, and nothing else, themselves.
            Err(_)
                if only_own_id(&options.map_users, uid)
                    && only_own_id(&options.map_groups, gid) =>
            {
                Ok(IdMaps {
                    uids: given_or(&options.map_users, || Ok(own(uid)))?,
                    gids: given_or(&options.map_groups, || Ok(own(gid)))?,
                    helpers: false,
                    allow_setgroups: false,
                })
            }
            Err(why) => Err(format!(
                "--map-users and --map-groups map ids other than your own only through \
                 newuidmap and newgidmap: {why}"
            )),
        }
    }

    /// Whether root inside is root of the caller's user namespace: uid and gid 0 map to
    /// 0.
    pub(crate) fn map_root_to_root(&self) -> bool {
        let zero_to_zero = |maps: &[reexec::IdMap]| {
            maps.iter()
                .any(|map| map.inside == 0 && map.outside == 0 && map.count > 0)
        };
        zero_to_zero(&self.uids) && zero_to_zero(&self.gids)
    }

    /// Gives `command` these maps.
    pub(crate) fn apply(&self, command: &mut reexec::Command) {
        command
            .uid_maps(self.uids.iter().copied())
            .gid_maps(self.gids.iter().copied())
            .map_with_helpers(self.helpers)
            .allow_setgroups(self.allow_setgroups);
    }
}

fn given_or(
    given: &[IdMap],
    default: impl FnOnce() -> Result<Vec<IdMap>, String>,
) -> Result<Vec<IdMap>, String> {
    if given.is_empty() {
        default()
    } else {
        Ok(given.to_vec())
    }
}

/// Whether `maps` map nothing but `own`, one id, if anything.
fn only_own_id(maps: &[IdMap], own: u32) -> bool {
    maps.iter().all(|map| map.outside == own && map.count == 1)
}

/// Ids 0 to 65535 mapped to themselves, those of them this process's user namespace has
/// (its map of `kind`, `uid` or `gid`): all for the host's root, only 0 for a root that is
/// someone else outside.
fn identity(kind: &'static str) -> Result<Vec<IdMap>, String> {
    let maps = crate::user::IdMap::of_this_namespace(kind)?.to_themselves_below(IDS_AFTER_ROOT);
    if maps.is_empty() {
        return Err(format!(
            "/proc/self/{kind}_map maps none of the ids 0 to 65535 into this user namespace: \
             nothing to map; give --map-users and --map-groups"
        ));
    }
    Ok(maps)
}

/// `INNER:OUTER:COUNT`, as `unshare --map-users` takes it.
pub(crate) fn parse_id_map(text: &str) -> Result<IdMap, String> {
    let fields: Vec<&str> = text.split(':').collect();
    let [inside, outside, count] = fields[..] else {
        return Err(format!(
            "{text:?} is not INNER:OUTER:COUNT (e.g. 0:100000:65536)"
        ));
    };
    let number = |what: &str, field: &str| {
        field.parse::<u32>().map_err(|_| {
            format!("{what} {field:?} of {text:?} is not a number from 0 to 4294967295")
        })
    };
    let count = number("COUNT", count)?;
    if count == 0 {
        return Err(format!("{text:?} maps no id: COUNT must be 1 or more"));
    }
    Ok(IdMap::new(
        number("INNER", inside)?,
        number("OUTER", outside)?,
        count,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_maps_parse_as_unshare_takes_them() {
        assert_eq!(
            parse_id_map("0:100000:65536"),
            Ok(IdMap::new(0, 100000, 65536))
        );
        for bad in [
            "",
            "1:2",
            "1:2:3:4",
            "a:1:1",
            "1:-1:1",
            "1:1:0",
            "1:1:4294967296",
        ] {
            assert!(parse_id_map(bad).is_err(), "{bad}");
        }
    }
}
