//! The link-time table of entries and the checks made on it.

use std::process::ExitCode;

/// One function registered with [`#[reexec::entry]`](crate::entry).
///
/// The attribute builds these; user code only reads them, through [`entries`].
#[derive(Debug)]
pub struct Entry {
    name: &'static str,
    file: &'static str,
    line: u32,
    run: fn() -> ExitCode,
}

impl Entry {
    #[doc(hidden)]
    pub const fn new(
        name: &'static str,
        file: &'static str,
        line: u32,
        run: fn() -> ExitCode,
    ) -> Self {
        Entry {
            name,
            file,
            line,
            run,
        }
    }

    /// The name a child is started under: its `argv[0]`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The source file that defines the entry.
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The line of [`file`](Self::file) where the attribute stands.
    pub fn line(&self) -> u32 {
        self.line
    }

    pub(crate) fn run(&self) -> ExitCode {
        (self.run)()
    }
}

// Every `#[reexec::entry]` adds one element here at link time.
#[linkme::distributed_slice]
#[doc(hidden)]
pub static ENTRIES: [Entry];

/// Every entry linked into this binary, in no particular order.
///
/// ```
/// #[reexec::entry("hello")]
/// fn hello() {}
///
/// assert!(reexec::entries().any(|entry| entry.name() == "hello"));
/// ```
pub fn entries() -> impl ExactSizeIterator<Item = &'static Entry> {
    ENTRIES.iter()
}

/// The entry registered under `name`, if any.
///
/// ```
/// #[reexec::entry]
/// fn cleanup() {}
///
/// assert!(reexec::lookup("cleanup").is_some());
/// assert!(reexec::lookup("nothing-by-that-name").is_none());
/// ```
pub fn lookup(name: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|entry| entry.name == name)
}

/// Two entries that claim one name, found by [`find_duplicate`].
pub(crate) struct Duplicate {
    pub(crate) first: &'static Entry,
    pub(crate) second: &'static Entry,
}

/// A pair of entries sharing a name, or `None` when every name is unique.
///
/// Runs at every start of a binary with `main!` and of every child, so it must cost little
/// even with thousands of entries, whatever order the linker left them in. Each name is
/// hashed to one word, which also holds the entry's index in its low bits; the words are
/// sorted as plain numbers, and only names whose hashes agree are compared. 10,000
/// entries: about 1 M instructions (a sort of the names themselves, a `memcmp` a step,
/// took 6.5 M when the linker's order was not already theirs; BENCHMARKS.md, item 5).
pub(crate) fn find_duplicate() -> Option<Duplicate> {
    first_duplicate(&ENTRIES, name_hash)
}

/// Up to this many entries, every pair is compared.
const FEW: usize = 16;

/// [`find_duplicate`] on `entries`, hashing names with `hash`.
fn first_duplicate(entries: &'static [Entry], hash: fn(&str) -> u64) -> Option<Duplicate> {
    if entries.len() <= FEW {
        // The usual table: each pair compared costs less than the words' allocation.
        return entries.iter().enumerate().find_map(|(position, one)| {
            let other = entries[position + 1..]
                .iter()
                .find(|other| other.name == one.name)?;
            Some(in_source_order(one, other))
        });
    }
    let index_bits = usize::BITS - (entries.len() - 1).leading_zeros();
    let index_mask = (1u64 << index_bits) - 1;
    let mut keys: Vec<u64> = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| (hash(entry.name) & !index_mask) | index as u64)
        .collect();
    keys.sort_unstable();
    let entry = |key: u64| &entries[(key & index_mask) as usize];
    let mut keys = keys.as_slice();
    while let Some((&first, rest)) = keys.split_first() {
        let same_hash = rest
            .iter()
            .take_while(|&&key| key & !index_mask == first & !index_mask)
            .count();
        // Names with one hash: almost always one alone, and otherwise a handful.
        let run = &keys[..=same_hash];
        for (position, &one) in run.iter().enumerate() {
            for &other in &run[position + 1..] {
                if entry(one).name == entry(other).name {
                    return Some(in_source_order(entry(one), entry(other)));
                }
            }
        }
        keys = &keys[same_hash + 1..];
    }
    None
}

/// The pair in source order, so that the message reads the same on every build.
fn in_source_order(one: &'static Entry, other: &'static Entry) -> Duplicate {
    let (first, second) = if (one.file, one.line) <= (other.file, other.line) {
        (one, other)
    } else {
        (other, one)
    };
    Duplicate { first, second }
}

/// A 64-bit hash of `name` whose every bit depends on every byte: FNV-1a, then the
/// finishing mix of MurmurHash3, so that names differing in their last byte differ in the
/// high bits too, which [`find_duplicate`] keeps.
fn name_hash(name: &str) -> u64 {
    let mut hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn returns() -> ExitCode {
        ExitCode::SUCCESS
    }

    /// Entries named `names`, in that order, each on a line of its own.
    fn table(names: &[&str]) -> &'static [Entry] {
        let entries: Vec<Entry> = names
            .iter()
            .enumerate()
            .map(|(line, name)| {
                let name: &'static str = Box::leak(name.to_string().into_boxed_str());
                Entry::new(name, "table.rs", line as u32 + 1, returns)
            })
            .collect();
        Box::leak(entries.into_boxed_slice())
    }

    fn found(entries: &'static [Entry], hash: fn(&str) -> u64) -> Option<(String, u32, u32)> {
        first_duplicate(entries, hash).map(|pair| {
            assert_eq!(pair.first.name, pair.second.name);
            (
                pair.first.name.to_owned(),
                pair.first.line,
                pair.second.line,
            )
        })
    }

    #[test]
    fn a_shared_name_is_found_wherever_it_is_and_told_in_source_order() {
        let many: Vec<String> = (0..3000).map(|index| format!("many-{index:05}")).collect();
        let mut names: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(found(table(&names), name_hash), None);
        // The second copy before the first in the table: still told first-defined first.
        names.insert(10, "many-02999");
        assert_eq!(
            found(table(&names), name_hash),
            Some(("many-02999".to_owned(), 11, 3001))
        );
        assert_eq!(found(table(&["a"]), name_hash), None);
        assert_eq!(found(table(&["a", "b"]), name_hash), None);
        assert_eq!(
            found(table(&["a", "a"]), name_hash),
            Some(("a".to_owned(), 1, 2))
        );
    }

    #[test]
    fn names_whose_hashes_agree_are_told_apart_by_name() {
        // Every hash alike, or alike but for one bit: the names decide, in runs of all.
        let distinct: Vec<String> = (0..FEW * 2).map(|index| format!("n{index}")).collect();
        let mut names: Vec<&str> = distinct.iter().map(String::as_str).collect();
        let coarse = |name: &str| name_hash(name) & (1 << 63);
        for hash in [|_: &str| 7, coarse] {
            assert_eq!(found(table(&names), hash), None);
        }
        names.push("n3");
        for hash in [|_: &str| 7, coarse] {
            let last = names.len() as u32;
            assert_eq!(found(table(&names), hash), Some(("n3".to_owned(), 4, last)));
        }
    }

    #[test]
    fn the_hash_spreads_names_that_differ_in_their_last_byte_over_the_high_bits() {
        let high_bits = |name: String| name_hash(&name) >> 50;
        let mut seen: Vec<u64> = (0..1000)
            .map(|index| high_bits(format!("many-{index:05}")))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        // 1000 names into 16384 values: a few collide by chance, not hundreds.
        assert!(seen.len() > 950, "{} distinct of 1000", seen.len());
    }
}
