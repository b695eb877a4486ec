//! Which Linux namespaces a child gets, and how ids map into a new user namespace.

use std::fmt::{self, Write};
use std::io;
use std::os::fd::AsFd;

/// A set of Linux namespaces to create for a child; combine them with `|`.
///
/// ```
/// use reexec::Namespaces;
///
/// let set = Namespaces::USER | Namespaces::MOUNT | Namespaces::PID;
/// assert!(set.contains(Namespaces::PID));
/// assert!(!set.contains(Namespaces::NET));
/// assert_eq!(set.to_string(), "user, mount, pid");
/// ```
///
/// It is a [`bitflags`](https://docs.rs/bitflags) type, so the set operations of that crate
/// work on it too: `&`, `-`, `all()`, `difference`, `iter()`…
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Namespaces(u32);

// Declared user namespace first, because it is created first and owns all the others
// (youki and runc order them the same way): `iter()` and `Display` follow this order.
bitflags::bitflags! {
    impl Namespaces: u32 {
        /// A user namespace (`CLONE_NEWUSER`): ids of its own, with the maps given by
        /// [`Command::uid_map`](crate::Command::uid_map) and
        /// [`gid_map`](crate::Command::gid_map). Lets an unprivileged caller create all
        /// others.
        const USER = libc::CLONE_NEWUSER as u32;
        /// A mount namespace (`CLONE_NEWNS`): a copy of the mount table of its own.
        const MOUNT = libc::CLONE_NEWNS as u32;
        /// A UTS namespace (`CLONE_NEWUTS`): hostname and domain name of its own.
        const UTS = libc::CLONE_NEWUTS as u32;
        /// An IPC namespace (`CLONE_NEWIPC`): System V IPC and POSIX message queues of its
        /// own.
        const IPC = libc::CLONE_NEWIPC as u32;
        /// A PID namespace (`CLONE_NEWPID`): the child is its PID 1.
        const PID = libc::CLONE_NEWPID as u32;
        /// A network namespace (`CLONE_NEWNET`): only a loopback device, down.
        const NET = libc::CLONE_NEWNET as u32;
        /// A cgroup namespace (`CLONE_NEWCGROUP`): its cgroup becomes the root it sees.
        const CGROUP = libc::CLONE_NEWCGROUP as u32;
        /// A time namespace (`CLONE_NEWTIME`, Linux 5.6): monotonic and boot-time clocks of
        /// its own. The child enters it with `unshare(2)` just before `execve`, so the
        /// entry runs inside it.
        const TIME = libc::CLONE_NEWTIME as u32;
    }
}

impl Namespaces {
    /// No new namespace: the same as [`Namespaces::empty()`].
    pub const NONE: Namespaces = Namespaces::empty();

    /// `self` without the namespaces of `other`: the same as
    /// [`difference`](Namespaces::difference) and `-`.
    pub const fn without(self, other: Namespaces) -> Namespaces {
        self.difference(other)
    }

    /// The kind of namespace an open namespace file (`/proc/PID/ns/net`, or a bind mount
    /// of one) holds, as the kernel says (`ioctl(NS_GET_NSTYPE)`, Linux 4.11): what
    /// [`Command::join`](crate::Command::join) checks a descriptor against. Fails with
    /// `ENOTTY` or `EINVAL` for a file that is no namespace.
    ///
    /// ```
    /// use reexec::Namespaces;
    ///
    /// let net = std::fs::File::open("/proc/self/ns/net")?;
    /// assert_eq!(Namespaces::of_file(&net)?, Namespaces::NET);
    /// assert!(Namespaces::of_file(&std::fs::File::open("/proc/self/stat")?).is_err());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn of_file(file: impl AsFd) -> io::Result<Namespaces> {
        crate::sys::pidfd::namespace_type(file.as_fd())
            .map(|nstype| Namespaces::from_bits_retain(nstype as u32))
    }

    /// The flags for `clone(2)`: all but the time namespace, which clone can't take.
    /// Bits that name no namespace (`from_bits_retain` keeps them) never reach clone.
    pub(crate) fn clone_flags(self) -> libc::c_int {
        self.intersection(Namespaces::all())
            .without(Namespaces::TIME)
            .bits() as libc::c_int
    }
}

impl fmt::Display for Namespaces {
    /// `user, mount, pid`: the flags' names in lower case, user namespace first; `none`
    /// for the empty set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let mut separator = "";
        for (name, _) in self.iter_names() {
            f.write_str(separator)?;
            for letter in name.chars() {
                f.write_char(letter.to_ascii_lowercase())?;
            }
            separator = ", ";
        }
        let unnamed = self.bits() & !Namespaces::all().bits();
        if unnamed != 0 {
            write!(f, "{separator}{unnamed:#x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Namespaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespaces({self})")
    }
}

/// One range of an id map: `count` ids starting at `inside` in the new user namespace
/// are the ids starting at `outside` in the caller's.
///
/// ```
/// use reexec::IdMap;
///
/// // Root inside is uid 1000 outside.
/// let map = IdMap::new(0, 1000, 1);
/// assert_eq!(map.to_string(), "0 1000 1");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IdMap {
    /// First id inside the new user namespace.
    pub inside: u32,
    /// First id in the caller's user namespace.
    pub outside: u32,
    /// How many consecutive ids.
    pub count: u32,
}

impl IdMap {
    /// A range of `count` ids from `inside` (new namespace) to `outside` (the caller's).
    pub const fn new(inside: u32, outside: u32, count: u32) -> IdMap {
        IdMap {
            inside,
            outside,
            count,
        }
    }
}

impl fmt::Display for IdMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.inside, self.outside, self.count)
    }
}

/// The most lines `/proc/PID/uid_map` accepts (Linux 4.15 and later).
const MAX_MAP_LINES: usize = 340;

/// The text written to `uid_map` or `gid_map`, or why the ranges can't be written.
pub(crate) fn map_file_text(maps: &[IdMap]) -> Result<String, String> {
    if maps.len() > MAX_MAP_LINES {
        return Err(format!(
            "the kernel accepts at most {MAX_MAP_LINES} ranges, got {}",
            maps.len()
        ));
    }
    for (index, map) in maps.iter().enumerate() {
        let end = |start: u32| u64::from(start) + u64::from(map.count);
        if map.count == 0 {
            return Err(format!("the range {map} maps no id (count 0)"));
        }
        if end(map.inside) > u64::from(u32::MAX) || end(map.outside) > u64::from(u32::MAX) {
            return Err(format!(
                "the range {map} runs past the largest id, 4294967294"
            ));
        }
        for other in &maps[..index] {
            let overlap = |a: u32, b: u32| {
                a < b.saturating_add(other.count) && b < a.saturating_add(map.count)
            };
            if overlap(map.inside, other.inside) {
                return Err(format!("the ranges {other} and {map} overlap inside"));
            }
            if overlap(map.outside, other.outside) {
                return Err(format!("the ranges {other} and {map} overlap outside"));
            }
        }
    }
    Ok(maps.iter().map(|map| format!("{map}\n")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_lists_user_first() {
        let set = Namespaces::PID | Namespaces::USER | Namespaces::NET;
        assert_eq!(set.to_string(), "user, pid, net");
        assert_eq!(Namespaces::NONE.to_string(), "none");
        assert_eq!(set.iter().count(), 3);
    }

    #[test]
    fn every_namespace_has_its_name_in_creation_order() {
        assert_eq!(
            Namespaces::all().to_string(),
            "user, mount, uts, ipc, pid, net, cgroup, time"
        );
        assert_eq!(format!("{:?}", Namespaces::UTS), "Namespaces(uts)");
        assert_eq!(Namespaces::default(), Namespaces::NONE);
    }

    #[test]
    fn time_is_not_a_clone_flag() {
        assert_eq!(
            (Namespaces::TIME | Namespaces::UTS).clone_flags(),
            libc::CLONE_NEWUTS
        );
    }

    #[test]
    fn bits_that_name_no_namespace_never_reach_clone() {
        let set = Namespaces::from_bits_retain((libc::CLONE_VM | libc::CLONE_NEWUTS) as u32);
        assert_eq!(set.clone_flags(), libc::CLONE_NEWUTS);
        assert_eq!(set.to_string(), format!("uts, {:#x}", libc::CLONE_VM));
    }

    #[test]
    fn map_text_and_its_checks() {
        assert_eq!(
            map_file_text(&[IdMap::new(0, 1000, 1), IdMap::new(1, 100_000, 65536)]).unwrap(),
            "0 1000 1\n1 100000 65536\n"
        );
        assert!(
            map_file_text(&[IdMap::new(0, 0, 0)])
                .unwrap_err()
                .contains("count 0")
        );
        assert!(
            map_file_text(&[IdMap::new(0, 0, 10), IdMap::new(5, 100, 1)])
                .unwrap_err()
                .contains("overlap inside")
        );
        assert!(
            map_file_text(&[IdMap::new(0, 0, 10), IdMap::new(50, 9, 1)])
                .unwrap_err()
                .contains("overlap outside")
        );
        assert!(
            map_file_text(&[IdMap::new(u32::MAX, 0, 2)])
                .unwrap_err()
                .contains("largest id")
        );
        assert!(
            map_file_text(&vec![IdMap::new(0, 0, 1); 341])
                .unwrap_err()
                .contains("at most 340")
        );
    }

    /// An independent statement of the kernel's rules for a map.
    fn is_valid(maps: &[IdMap]) -> bool {
        let ends_ok = |map: &IdMap| {
            u64::from(map.inside) + u64::from(map.count) <= u64::from(u32::MAX)
                && u64::from(map.outside) + u64::from(map.count) <= u64::from(u32::MAX)
        };
        let disjoint = |a: u32, b: u32, a_len: u32, b_len: u32| {
            u64::from(a) + u64::from(a_len) <= u64::from(b)
                || u64::from(b) + u64::from(b_len) <= u64::from(a)
        };
        maps.len() <= 340
            && maps.iter().all(|map| map.count > 0 && ends_ok(map))
            && maps.iter().enumerate().all(|(i, a)| {
                maps[..i].iter().all(|b| {
                    disjoint(a.inside, b.inside, a.count, b.count)
                        && disjoint(a.outside, b.outside, a.count, b.count)
                })
            })
    }

    fn small_or_any() -> impl proptest::strategy::Strategy<Value = u32> {
        use proptest::prelude::*;
        prop_oneof![0u32..64, any::<u32>(), (u32::MAX - 64)..=u32::MAX]
    }

    proptest::proptest! {
        #[test]
        fn map_text_is_written_exactly_for_valid_maps(
            ranges in proptest::collection::vec((small_or_any(), small_or_any(), 0u32..80), 0..6)
        ) {
            let maps: Vec<IdMap> = ranges.into_iter().map(|(inside, outside, count)| IdMap::new(inside, outside, count)).collect();
            match map_file_text(&maps) {
                Ok(text) => {
                    proptest::prop_assert!(is_valid(&maps), "accepted {:?}", maps);
                    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
                    let expected: Vec<String> = maps.iter().map(ToString::to_string).collect();
                    proptest::prop_assert_eq!(lines, expected);
                }
                Err(why) => {
                    proptest::prop_assert!(!is_valid(&maps), "refused {:?}: {}", maps, why);
                }
            }
        }
    }
}
