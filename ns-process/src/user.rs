//! The user the command runs as inside (`--user`), and its environment: `HOME`, `USER`,
//! `SHELL` from `/etc/passwd` as seen inside — the rootfs's own file under `--rootfs`.
//!
//! That file is the rootfs owner's, who may put anything there: a FIFO that would block
//! the init, a link into `/proc`, a file of gigabytes, lines of any length. So it is read
//! once, through no magic link, only if it is a regular file, and at most
//! [`MAX_PASSWD_BYTES`] of it; an entry whose fields make no sense is ignored.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{SFlag, fstat};

/// A user or a group as `--user` gives it: a number, as the kernel knows it inside, or a
/// name, looked up in the files of the rootfs (`/etc/passwd`, `/etc/group`) as podman
/// does, never in the host's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Id {
    Number(u32),
    Name(String),
}

/// `--user USER[:GROUP]`, each a number or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserArg {
    pub(crate) user: Id,
    pub(crate) group: Option<Id>,
    /// As the caller wrote it, for messages.
    pub(crate) text: String,
}

/// The longest user or group name taken: longer than any system allows (32 on Linux's
/// shadow tools), short enough for a message.
const MAX_NAME_BYTES: usize = 256;

impl UserArg {
    /// Takes `USER` or `USER:GROUP`: digits are a numeric id (-1, 4294967295, means
    /// "unchanged" to the kernel, so it is no id); anything else a name, as `useradd`
    /// would make it: not starting with `-`, without blanks, control characters, `/`,
    /// `:` or `,`.
    pub(crate) fn parse(text: &str) -> Result<UserArg, String> {
        let id = |part: &str, what: &str| {
            let bad = |why: &str| {
                format!(
                    "{text:?}: the {what} {part:?} {why}; write USER or USER:GROUP, each a \
                     name inside or a numeric id, such as root, 1000:1000 or nobody:nogroup"
                )
            };
            if !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()) {
                return part
                    .parse::<u32>()
                    .ok()
                    .filter(|&id| id != u32::MAX)
                    .map(Id::Number)
                    .ok_or_else(|| bad("is not a number from 0 to 4294967294"));
            }
            let name_ok = !part.is_empty()
                && part.len() <= MAX_NAME_BYTES
                && !part.starts_with('-')
                && !part
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | ':' | ','));
            if name_ok {
                Ok(Id::Name(part.to_owned()))
            } else {
                Err(bad(
                    "is neither a number from 0 to 4294967294 nor a user or group name",
                ))
            }
        };
        let (user, group) = match text.split_once(':') {
            Some((user, group)) => (id(user, "user")?, Some(id(group, "group")?)),
            None => (id(text, "user")?, None),
        };
        Ok(UserArg {
            user,
            group,
            text: text.to_owned(),
        })
    }
}

/// One line of an id map (`/proc/self/uid_map`): `count` ids from `inside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    inside: u32,
    count: u32,
}

/// The ids mapped in this user namespace, of one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdMap {
    kind: &'static str,
    ranges: Vec<Range>,
}

impl IdMap {
    /// The map of `kind` (`uid` or `gid`) of this process's user namespace. Read from the
    /// caller's `/proc` before the pivot: the kernel's file, not the rootfs's.
    pub(crate) fn of_this_namespace(kind: &'static str) -> Result<IdMap, String> {
        let path = format!("/proc/self/{kind}_map");
        let text = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
        Ok(IdMap::parse(kind, &text))
    }

    fn parse(kind: &'static str, text: &str) -> IdMap {
        let ranges = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace().map(str::parse::<u32>);
                match (fields.next(), fields.next(), fields.next()) {
                    (Some(Ok(inside)), Some(Ok(_)), Some(Ok(count))) => {
                        Some(Range { inside, count })
                    }
                    _ => None,
                }
            })
            .collect();
        IdMap { kind, ranges }
    }

    /// Each mapped id below `end` mapped to itself: what root, whose namespace has them,
    /// may give a new user namespace of its own ids.
    pub(crate) fn to_themselves_below(&self, end: u32) -> Vec<reexec::IdMap> {
        self.ranges
            .iter()
            .filter_map(|range| {
                let last = (u64::from(range.inside) + u64::from(range.count)).min(u64::from(end));
                let count = u32::try_from(last.checked_sub(u64::from(range.inside))?).ok()?;
                (count > 0).then(|| reexec::IdMap::new(range.inside, range.inside, count))
            })
            .collect()
    }

    pub(crate) fn contains(&self, id: u32) -> bool {
        self.ranges.iter().any(|range| {
            id >= range.inside && u64::from(id - range.inside) < u64::from(range.count)
        })
    }

    /// The mapped ids, as `0`, `0-65535` or `0, 1000-1999`.
    fn describe(&self) -> String {
        let ranges: Vec<String> = self
            .ranges
            .iter()
            .map(|range| match range.count {
                1 => range.inside.to_string(),
                count => format!(
                    "{}-{}",
                    range.inside,
                    u64::from(range.inside) + u64::from(count) - 1
                ),
            })
            .collect();
        if ranges.is_empty() {
            "none".into()
        } else {
            ranges.join(", ")
        }
    }

    /// Refuses an id the namespace does not map: the kernel would refuse to switch to it
    /// (EINVAL), and the command would not start.
    pub(crate) fn check(&self, id: u32, given_as: &str) -> Result<(), String> {
        if self.contains(id) {
            return Ok(());
        }
        Err(format!(
            "{given_as}: {} {id} is not mapped in the command's user namespace (mapped {}s: \
             {}); give ids it maps, as --user UID:GID (0:0 is root inside)",
            self.kind,
            self.kind,
            self.describe()
        ))
    }
}

/// The part of a passwd entry the command's environment is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: OsString,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: PathBuf,
    pub(crate) shell: PathBuf,
}

/// How much of `/etc/passwd` or `/etc/group` is read: far more than any real one (a line
/// is under 200 bytes), and little enough for the init to hold.
pub(crate) const MAX_PASSWD_BYTES: u64 = 1 << 20;

/// The longest field taken from an entry: a path the kernel could still resolve.
const MAX_FIELD_BYTES: usize = 4096;

/// `/etc/passwd`, where users are looked up.
pub(crate) const PASSWD: &str = "/etc/passwd";
/// `/etc/group`, where `--user`'s group names are looked up.
pub(crate) const GROUP: &str = "/etc/group";

/// The content of `path` (`/etc/passwd` or `/etc/group`) as seen by this process:
/// `Ok(None)` when there is no such file; `Err` says why it was not read.
fn read_database(path: &str) -> Result<Option<Vec<u8>>, String> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let file: OwnedFd = match openat2(nix::fcntl::AT_FDCWD, path, how) {
        Ok(file) => file,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(errno) => return Err(format!("open {path}: {}", errno.desc())),
    };
    let stat = fstat(&file).map_err(|errno| format!("fstat {path}: {}", errno.desc()))?;
    if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(format!("{path} is not a regular file"));
    }
    let mut text = Vec::new();
    std::fs::File::from(file)
        .take(MAX_PASSWD_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|error| format!("reading {path}: {error}"))?;
    if text.len() as u64 > MAX_PASSWD_BYTES {
        return Err(format!("{path} is longer than {MAX_PASSWD_BYTES} bytes"));
    }
    Ok(Some(text))
}

/// The entry of `uid` in `/etc/passwd`, as seen by this process: `Ok(None)` when there is
/// no such file or entry; `Err` says why the file was not read, for a warning.
pub(crate) fn passwd_entry(uid: u32) -> Result<Option<Entry>, String> {
    Ok(read_database(PASSWD)?.and_then(|text| find_entry(&text, |entry| entry.uid == uid)))
}

/// The entry of the user `name` in `/etc/passwd`, as [`passwd_entry`] reads it.
pub(crate) fn passwd_entry_named(name: &str) -> Result<Option<Entry>, String> {
    Ok(read_database(PASSWD)?.and_then(|text| {
        find_entry(&text, |entry| {
            entry.name.as_encoded_bytes() == name.as_bytes()
        })
    }))
}

/// The gid of the group `name` in `/etc/group`, read as `/etc/passwd` is.
pub(crate) fn group_named(name: &str) -> Result<Option<u32>, String> {
    Ok(read_database(GROUP)?.and_then(|text| find_group(&text, name)))
}

/// The first well-formed entry in passwd(5) text that `wanted` takes: `name:password:uid:
/// gid:gecos:home:shell`, a non-empty name, an absolute home, an absolute or empty shell
/// (empty means `/bin/sh`), no NUL and no control character anywhere.
fn find_entry(text: &[u8], wanted: impl Fn(&Entry) -> bool) -> Option<Entry> {
    text.split(|&byte| byte == b'\n').find_map(|line| {
        let entry = parse_entry(line)?;
        wanted(&entry).then_some(entry)
    })
}

fn parse_entry(line: &[u8]) -> Option<Entry> {
    if line.iter().any(|&byte| byte.is_ascii_control()) {
        return None;
    }
    let fields: Vec<&[u8]> = line.split(|&byte| byte == b':').collect();
    let [name, _, uid, gid, _, home, shell] = fields[..] else {
        return None;
    };
    if name.is_empty()
        || !home.starts_with(b"/")
        || !(shell.is_empty() || shell.starts_with(b"/"))
        || [name, home, shell]
            .iter()
            .any(|field| field.len() > MAX_FIELD_BYTES)
    {
        return None;
    }
    let shell = if shell.is_empty() { b"/bin/sh" } else { shell };
    Some(Entry {
        name: OsString::from_vec(name.to_vec()),
        uid: number(uid)?,
        gid: number(gid)?,
        home: PathBuf::from(OsString::from_vec(home.to_vec())),
        shell: PathBuf::from(OsString::from_vec(shell.to_vec())),
    })
}

fn number(field: &[u8]) -> Option<u32> {
    std::str::from_utf8(field).ok()?.parse::<u32>().ok()
}

/// The gid of the first well-formed entry of the group `name` in group(5) text:
/// `name:password:gid:members`, no control character.
fn find_group(text: &[u8], name: &str) -> Option<u32> {
    text.split(|&byte| byte == b'\n').find_map(|line| {
        if line.iter().any(|&byte| byte.is_ascii_control()) {
            return None;
        }
        let fields: Vec<&[u8]> = line.split(|&byte| byte == b':').collect();
        let [group, _, gid, _] = fields[..] else {
            return None;
        };
        (group == name.as_bytes()).then(|| number(gid)).flatten()
    })
}

/// What the command's environment says of its user: from its entry, or for a user with
/// none, root's defaults for uid 0 (`/root`, `/bin/sh`) and `/` as home for any other
/// uid (as podman), with no `USER`.
pub(crate) fn environment(uid: u32, entry: Option<&Entry>) -> Vec<(&'static str, OsString)> {
    match entry {
        Some(entry) => vec![
            ("HOME", entry.home.clone().into()),
            ("USER", entry.name.clone()),
            ("SHELL", entry.shell.clone().into()),
        ],
        None if uid == 0 => vec![
            ("HOME", "/root".into()),
            ("USER", "root".into()),
            ("SHELL", "/bin/sh".into()),
        ],
        None => vec![("HOME", "/".into()), ("SHELL", "/bin/sh".into())],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn user_arguments() {
        let parsed = |text| UserArg::parse(text).map(|arg| (arg.user, arg.group));
        assert_eq!(
            parsed("1000:100"),
            Ok((Id::Number(1000), Some(Id::Number(100))))
        );
        assert_eq!(parsed("0"), Ok((Id::Number(0), None)));
        assert_eq!(parsed("root"), Ok((Id::Name("root".into()), None)));
        assert_eq!(
            parsed("nobody:nogroup"),
            Ok((Id::Name("nobody".into()), Some(Id::Name("nogroup".into()))))
        );
        assert_eq!(
            parsed("0:crontab"),
            Ok((Id::Number(0), Some(Id::Name("crontab".into()))))
        );
        assert_eq!(UserArg::parse("u1:5").unwrap().text, "u1:5");
        for bad in [
            "",
            "1000:",
            ":1",
            "-1",
            "4294967295",
            "1:2:3",
            "1 ",
            "a/b",
            "a,b",
            "\u{1b}",
            "-x",
        ] {
            assert!(UserArg::parse(bad).is_err(), "{bad:?}");
        }
        assert!(UserArg::parse(&"n".repeat(MAX_NAME_BYTES + 1)).is_err());
        assert!(
            UserArg::parse("4294967295")
                .unwrap_err()
                .contains("is not a number from 0 to 4294967294")
        );
    }

    #[test]
    fn id_maps() {
        let single = IdMap::parse("uid", "         0       1000          1\n");
        assert!(single.contains(0) && !single.contains(1));
        let error = single.check(1000, "--user 1000").unwrap_err();
        assert!(
            error.contains("uid 1000 is not mapped") && error.contains("(mapped uids: 0)"),
            "{error}"
        );
        let many = IdMap::parse("gid", "0 1000 1\n1 100000 65536\n");
        assert!(many.contains(65536) && !many.contains(65537));
        assert_eq!(many.describe(), "0, 1-65536");
        let all = IdMap::parse("uid", "0 0 4294967295\n");
        assert!(all.contains(4_294_967_294));
    }

    #[test]
    fn the_ids_below_an_end_map_to_themselves() {
        let to_themselves = |text| IdMap::parse("uid", text).to_themselves_below(65536);
        // The host's root: all of them.
        assert_eq!(
            to_themselves("0 0 4294967295\n"),
            [reexec::IdMap::new(0, 0, 65536)]
        );
        // A root that is someone else outside: only 0.
        assert_eq!(to_themselves("0 1000 1\n"), [reexec::IdMap::new(0, 0, 1)]);
        // Ranges cut at the end, and those past it left out.
        assert_eq!(
            to_themselves("0 1000 1\n1 100000 70000\n70001 200000 5\n"),
            [reexec::IdMap::new(0, 0, 1), reexec::IdMap::new(1, 1, 65535)]
        );
    }

    #[test]
    fn passwd_entries() {
        let text = b"root:x:0:0:root:/root:/bin/bash\n\
            broken:x:1000\n\
            relative:x:1001:1001::home:/bin/sh\n\
            nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
            noshell:x:1002:50::/home/n:\n\
            ctl\x1b:x:1003:1003::/h:/bin/sh\n\
            first:x:1004:1::/a:/bin/sh\n\
            second:x:1004:2::/b:/bin/sh\n";
        let by_uid = |uid| find_entry(text, |entry| entry.uid == uid);
        let by_name = |name: &str| find_entry(text, |entry| entry.name == name);
        let root = by_uid(0).unwrap();
        assert_eq!(
            (
                root.name.to_str(),
                root.gid,
                root.home.to_str(),
                root.shell.to_str()
            ),
            (Some("root"), 0, Some("/root"), Some("/bin/bash"))
        );
        assert_eq!(by_uid(1000), None);
        assert_eq!(by_uid(1001), None);
        assert_eq!(by_uid(1002).unwrap().shell, Path::new("/bin/sh"));
        assert_eq!(by_uid(1003), None);
        assert_eq!(by_uid(1004).unwrap().gid, 1);
        assert_eq!(by_uid(7), None);
        assert_eq!(
            by_name("second").map(|entry| (entry.uid, entry.gid)),
            Some((1004, 2))
        );
        assert_eq!(by_name("nobody").unwrap().uid, 65534);
        assert_eq!(by_name("broken"), None);
        assert_eq!(by_name("relative"), None);
        assert_eq!(by_name("nosuchuser"), None);
    }

    #[test]
    fn group_entries() {
        let text =
            b"root:x:0:\ntty:x:5:\ncrontab:x:101:a,b\nbad:x:many:\nshort:x:7\nctl\x1b:x:8:\n";
        assert_eq!(find_group(text, "tty"), Some(5));
        assert_eq!(find_group(text, "crontab"), Some(101));
        for missing in ["bad", "short", "ctl\u{1b}", "nogroup", ""] {
            assert_eq!(find_group(text, missing), None, "{missing:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_passwd_text_is_parsed_without_panicking(text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512), uid in 0u32..3) {
            if let Some(entry) = find_entry(&text, |entry| entry.uid == uid) {
                proptest::prop_assert!(entry.home.is_absolute() && entry.shell.is_absolute());
            }
        }
    }
}
