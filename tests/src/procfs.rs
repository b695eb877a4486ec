//! What `/proc` says: a process's state, parent, children and environment, what it waits
//! in, this process's descriptors, threads, namespaces and mounts. See proc(5).

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

/// This process's command line as /proc/self/cmdline shows it to other processes, and
/// as ps(1) and pgrep(1) read it: without its trailing NULs, each other NUL shown as `|`.
/// Whatever else follows the arguments there — a space, an empty argument — shows.
pub fn own_cmdline() -> String {
    let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
    let end = cmdline
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last + 1);
    String::from_utf8_lossy(&cmdline[..end]).replace('\0', "|")
}

/// The words of a command line as /proc/PID/cmdline gives it, NUL-separated, the empty
/// ones left out: what a process wiped of its arguments shows there as zeros.
pub fn cmdline_words(cmdline: &[u8]) -> Vec<String> {
    cmdline
        .split(|&byte| byte == 0)
        .filter(|word| !word.is_empty())
        .map(|word| String::from_utf8_lossy(word).into_owned())
        .collect()
}

/// This process's open descriptors, sorted, without the one that lists them; with
/// `inheritable_only`, only those without close-on-exec.
pub fn open_fds(inheritable_only: bool) -> Vec<String> {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    use std::os::fd::BorrowedFd;

    let mut fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.unwrap();
            let target = std::fs::read_link(entry.path()).ok()?;
            let listing_itself = target.starts_with("/proc") && target.ends_with("fd");
            (!listing_itself).then(|| entry.file_name().to_string_lossy().parse().unwrap())
        })
        .filter(|&fd| {
            // SAFETY: F_GETFD only reads flags; should the descriptor have been closed
            // since it was listed, fcntl answers EBADF and it is left out.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            match fcntl(fd, FcntlArg::F_GETFD) {
                Ok(flags) => {
                    !inheritable_only
                        || !FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC)
                }
                Err(_) => false,
            }
        })
        .collect();
    fds.sort();
    fds.iter().map(i32::to_string).collect()
}

/// This process's mount table (`/proc/self/mountinfo`): a test compares it before and
/// after to show that nothing was left mounted.
pub fn mount_table() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// The inode that identifies this process's namespace of kind `name` (`user`, `mnt`,
/// `uts`…, as in `/proc/self/ns`); `None` where the kernel has no such kind.
pub fn namespace_id(name: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/self/ns/{name}"))
        .ok()
        .map(|metadata| metadata.ino())
}

/// How many threads this process has.
pub fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// `name state wchan` of each of this process's threads: where each one waits.
pub fn thread_states() -> Vec<String> {
    let mut states = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten() {
        let path = task.unwrap().path();
        let read = |file: &str| std::fs::read_to_string(path.join(file)).unwrap_or_default();
        let state = Stat::parse(&read("stat")).map_or('?', |stat| stat.state);
        states.push(format!("{} {state} {}", read("comm").trim(), read("wchan")));
    }
    states
}

/// The few fields of `/proc/PID/stat` the tests use.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    /// `R`, `S`, `D`, `Z` (a zombie), `T`…
    pub state: char,
    /// The parent's pid.
    pub ppid: u32,
}

impl Stat {
    /// The stat of process `pid`, or `None` if there is no such process.
    pub fn of(pid: u32) -> Option<Stat> {
        Stat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    fn parse(stat: &str) -> Option<Stat> {
        // The command name may hold spaces and parentheses: the fields start after the
        // last ')'.
        let mut fields = stat.rsplit_once(") ")?.1.split(' ');
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        Some(Stat { state, ppid })
    }
}

/// Whether process `pid` exists and has not ended (is no zombie).
pub fn is_running(pid: u32) -> bool {
    Stat::of(pid).is_some_and(|stat| stat.state != 'Z')
}

/// Waits until process `pid` has ended (is gone, or a zombie); `false` if it still runs
/// at `deadline`.
pub fn wait_until_ended(pid: u32, deadline: Instant) -> bool {
    while is_running(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The field `name` of this process's /proc/self/status, trimmed; `missing` when the
/// kernel has no such field.
pub fn own_status_field(name: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(|value| value.trim().to_owned())
        .unwrap_or_else(|| "missing".into())
}

/// Every process `filter` accepts, given its pid and stat, with a description of each for
/// reports (see [`describe_process`]).
pub fn processes_where(filter: impl Fn(u32, &Stat) -> bool) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse().ok())
        else {
            continue;
        };
        if let Some(stat) = Stat::of(pid)
            && filter(pid, &stat)
        {
            found.push((pid, describe_process(pid)));
        }
    }
    found
}

/// Whether the environment of process `pid` holds `variable` (`NAME=value`, whole). Other
/// users' processes are unreadable without privilege: for them, `false`.
pub fn environment_has(pid: u32, variable: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
        environ
            .split(|&byte| byte == 0)
            .any(|var| var == variable.as_bytes())
    })
}

/// What a report says of process `pid`: its state, where it waits, its command line,
/// whether it is PID 1 of a namespace (`NSpid`) and what signals it blocks and catches.
pub fn describe_process(pid: u32) -> String {
    let read = |file: &str| std::fs::read(format!("/proc/{pid}/{file}")).unwrap_or_default();
    let cmdline = cmdline_words(&read("cmdline"));
    let state = Stat::of(pid).map_or('?', |stat| stat.state);
    let status = String::from_utf8_lossy(&read("status")).into_owned();
    let status_fields: Vec<String> = status
        .lines()
        .filter(|line| {
            ["NSpid:", "SigBlk:", "SigCgt:"]
                .iter()
                .any(|key| line.starts_with(key))
        })
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    format!(
        "state={state} wchan={} cmdline={} {}",
        String::from_utf8_lossy(&read("wchan")),
        cmdline.join(" "),
        status_fields.join(" ")
    )
}

/// The children of process `pid`, from the kernel's lists of each of its threads; none
/// once it has ended.
pub fn children(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return children;
    };
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(
            list.split_whitespace()
                .filter_map(|pid| pid.parse::<u32>().ok()),
        );
    }
    children
}

/// Every descendant of process `pid`: its children, theirs, and so on.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        for child in children(parent) {
            found.push(child);
            queue.push(child);
        }
    }
    found
}

/// Waits until process `pid` is blocked in system call `number` (`libc::SYS_…`), as its
/// `/proc/PID/syscall` says; `Err` if that file can't be read, or `deadline` passes first.
pub fn wait_until_in_syscall(pid: u32, number: i64, deadline: Instant) -> Result<(), String> {
    let number = number.to_string();
    loop {
        let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .map_err(|error| format!("/proc/{pid}/syscall: {error}"))?;
        if syscall.split(' ').next() == Some(number.as_str()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "pid {pid} never blocked in system call {number}: {}",
                syscall.trim()
            ));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// The descriptors process `pid` holds: each number with what it leads to (a path,
/// `pipe:[…]`, `socket:[…]`…).
pub fn descriptors(pid: u32) -> Result<Vec<(String, std::path::PathBuf)>, String> {
    let dir = format!("/proc/{pid}/fd");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|error| format!("{dir}: {error}"))? {
        let entry = entry.map_err(|error| format!("{dir}: {error}"))?;
        let target = std::fs::read_link(entry.path()).unwrap_or_default();
        found.push((entry.file_name().to_string_lossy().into_owned(), target));
    }
    Ok(found)
}

/// Whether descriptor `fd` of process `pid` and descriptor `ours` of this process are
/// one open file (`kcmp(2)`, `KCMP_FILE`): the same pipe end, say, whatever their
/// numbers — unlike a path in `/proc/PID/fd`, which two opens of `/dev/null` share.
pub fn same_open_file(pid: u32, fd: i32, ours: i32) -> Result<bool, String> {
    const KCMP_FILE: nix::libc::c_long = 0;
    // SAFETY: kcmp(2) takes numbers only and touches no memory of ours.
    let order = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_kcmp,
            nix::libc::c_long::from(std::process::id() as i32),
            nix::libc::c_long::from(pid as i32),
            KCMP_FILE,
            nix::libc::c_long::from(ours),
            nix::libc::c_long::from(fd),
        )
    };
    match order {
        0 => Ok(true),
        1..=2 => Ok(false),
        _ => Err(format!(
            "kcmp(KCMP_FILE) of our {ours} and {fd} of {pid}: {}",
            std::io::Error::last_os_error()
        )),
    }
}

/// The resources as `/proc/PID/limits` lists them, in the kernel's order (0 to 15), by
/// the names podman's `--ulimit` and `reexec::Resource::name` give them.
pub const LIMIT_NAMES: [&str; 16] = [
    "cpu",
    "fsize",
    "data",
    "stack",
    "core",
    "rss",
    "nproc",
    "nofile",
    "memlock",
    "as",
    "locks",
    "sigpending",
    "msgqueue",
    "nice",
    "rtprio",
    "rttime",
];

/// Each resource's soft and hard limit in the text of a `/proc/PID/limits` (found in
/// `text` after its heading line, so other output may come before), as written there
/// (`1024`, `unlimited`), in the order of [`LIMIT_NAMES`].
pub fn limits_in(text: &str) -> Vec<(&'static str, String, String)> {
    let lines = text
        .lines()
        .skip_while(|line| !line.starts_with("Limit "))
        .skip(1);
    // "Max open files            1024                 1048576              files": the
    // name takes 26 columns.
    LIMIT_NAMES
        .iter()
        .zip(lines)
        .map(|(&name, line)| {
            let mut words = line.get(26..).unwrap_or_default().split_whitespace();
            let mut next = || words.next().unwrap_or_default().to_owned();
            (name, next(), next())
        })
        .collect()
}

/// This process's limits, as [`limits_in`] reads them.
pub fn own_limits() -> Vec<(&'static str, String, String)> {
    limits_in(&std::fs::read_to_string("/proc/self/limits").unwrap())
}
