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

/// The first pair of entries sharing a name, or `None` when every name is unique.
///
/// Sorting keeps this O(n log n): a binary with thousands of entries pays well under a
/// millisecond, and the common case of a handful pays nothing worth measuring.
pub(crate) fn find_duplicate() -> Option<Duplicate> {
    let entries: &'static [Entry] = &ENTRIES;
    if entries.len() < 2 {
        return None;
    }
    let mut sorted: Vec<&'static Entry> = entries.iter().collect();
    sorted.sort_unstable_by_key(|entry| entry.name);
    sorted.windows(2).find_map(|pair| {
        (pair[0].name == pair[1].name).then(|| {
            // Report in source order so the message reads the same on every build.
            let (first, second) = if (pair[0].file, pair[0].line) <= (pair[1].file, pair[1].line) {
                (pair[0], pair[1])
            } else {
                (pair[1], pair[0])
            };
            Duplicate { first, second }
        })
    })
}
