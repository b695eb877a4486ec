//! What descriptors a child of `reexec::Command` starts with: 0, 1, 2 and those given with
//! `Command::fd`, at the numbers asked for, never what the parent left open without
//! close-on-exec. Prints what it saw as `key=value` lines, which tests/tests/fds.rs reads.
//!
//! ```text
//! probe-fds given KIND     KIND: plain (vfork), userpid (PID 1, no maps, vfork),
//!                          seed (user, PID and mount namespaces, root mapped: the child
//!                          waits for its parent); each without a seccomp filter, then
//!                          with close_range(2) failing with ENOSYS, then with EINVAL
//! probe-fds taken          a spawn takes what it was given: closed after a failed
//!                          spawn, not passed again by a second one
//! ```

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::libc;
use reexec::{Command, Namespaces, Stdio};
use reexec_tests::faults::SeccompFilter;
use reexec_tests::{open_fds, status_text, step_name};

/// What the parent writes into the descriptor the child reads, and the child writes back.
const TO_CHILD: &str = "to-child";
const FROM_CHILD: &str = "from-child";

/// `check-fds NAME=FD…`: lists its descriptors first, before it opens any, then for each
/// given one: whether it closes on exec, and what reading it gives (`to_child`, `marked`,
/// `far`, `same`) or that writing to it worked (`from_child`).
#[reexec::entry("check-fds")]
fn check_fds() {
    println!("fds={}", open_fds(false).join(","));
    for arg in std::env::args().skip(1) {
        let (name, fd) = arg.split_once('=').unwrap();
        let fd: RawFd = fd.parse().unwrap();
        // SAFETY: F_GETFD only reads flags; a closed descriptor answers EBADF.
        let flags = fcntl(
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            FcntlArg::F_GETFD,
        );
        let Ok(flags) = flags else {
            println!("{name}=not open: {flags:?}");
            continue;
        };
        let cloexec = FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC);
        println!("{name}_cloexec={cloexec}");
        // SAFETY: the parent gave us this descriptor and nothing else here uses it; the
        // file closes it when done.
        let mut file = unsafe { File::from_raw_fd(fd) };
        if name == "from_child" {
            let written = file.write_all(FROM_CHILD.as_bytes());
            println!(
                "{name}={}",
                written.map_or_else(|e| e.to_string(), |()| "written".into())
            );
        } else {
            let mut text = String::new();
            match file.read_to_string(&mut text) {
                Ok(_) => println!("{name}={text}"),
                Err(error) => println!("{name}=unreadable: {error}"),
            }
        }
    }
}

/// A pipe without close-on-exec on either end, as a careless parent leaves one.
fn inheritable_pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe().unwrap()
}

/// The read end of a close-on-exec pipe that holds `text` and whose write end is closed.
fn pipe_holding(text: &str) -> OwnedFd {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    File::from(write).write_all(text.as_bytes()).unwrap();
    read
}

/// One spawn of KIND with every arrangement of given descriptors: a swap (the parent's
/// `a` and `b` given as the child's `b` and `a`), one at the number of a descriptor the
/// parent left inheritable, one at its own number, one far above the others.
fn given(kind: &str, filter: &str, inheritable_read: RawFd) {
    let errno = match filter {
        "none" => None,
        "enosys" => Some(libc::ENOSYS),
        "einval" => Some(libc::EINVAL),
        other => panic!("unknown filter {other}"),
    };
    if let Some(errno) = errno {
        if let Err(error) = SeccompFilter::failing(&[libc::SYS_close_range], errno).install() {
            println!("{kind},{filter} skipped=no seccomp filter here: {error}");
            return;
        }
        // The filter is in: close_range over numbers no descriptor has now fails.
        // SAFETY: close_range(2) with numbers only, over a range with no descriptor.
        let result = unsafe { libc::syscall(libc::SYS_close_range, 1u32 << 30, u32::MAX, 0) };
        let seen = std::io::Error::last_os_error().raw_os_error();
        println!(
            "{kind},{filter} close_range_refused={}",
            result == -1 && seen == Some(errno)
        );
    }

    let fds_before = open_fds(false);
    let (to_child_read, to_child_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let (from_child_read, from_child_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let marked = pipe_holding("given-at-marked");
    let same = pipe_holding("given-at-same");
    let far = pipe_holding("given-at-far");
    let swap = (to_child_read.as_raw_fd(), from_child_write.as_raw_fd());
    let same_fd = same.as_raw_fd();
    let far_fd = 100;
    // The child's numbers: the two ends of the swap trade places.
    let targets = [
        ("to_child", swap.1),
        ("from_child", swap.0),
        ("marked", inheritable_read),
        ("same", same_fd),
        ("far", far_fd),
    ];
    let mut expected: Vec<RawFd> = [0, 1, 2]
        .into_iter()
        .chain(targets.iter().map(|(_, fd)| *fd))
        .collect();
    expected.sort();
    println!(
        "{kind},{filter} expected={}",
        expected
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );

    let mut command = Command::new("check-fds");
    command
        .args(targets.iter().map(|(name, fd)| format!("{name}={fd}")))
        .stdout(Stdio::piped())
        .fd(swap.1, to_child_read)
        .fd(swap.0, from_child_write)
        .fd(inheritable_read, marked)
        .fd(same_fd, same)
        .fd(far_fd, far);
    match kind {
        "plain" => {}
        "userpid" => {
            command.namespaces(Namespaces::USER | Namespaces::PID);
        }
        "seed" => {
            command
                .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::MOUNT)
                .map_root_to_caller();
        }
        other => panic!("unknown kind {other}"),
    }
    let child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            println!("{kind},{filter} error={error}");
            return;
        }
    };
    // spawn closed our copies of what it gave, the originals and any copies it made:
    // we hold what we held before, our ends of the three pipes and the child's pidfd,
    // nothing else.
    let ours = [
        to_child_write.as_raw_fd(),
        from_child_read.as_raw_fd(),
        child.stdout.as_ref().unwrap().as_raw_fd(),
        child.pidfd().map_or(-1, |pidfd| pidfd.as_raw_fd()),
    ]
    .map(|fd| fd.to_string());
    let mut fds_after = open_fds(false);
    fds_after.retain(|fd| !ours.contains(fd));
    if fds_after == fds_before {
        println!("{kind},{filter} parent_closed_given=true");
    } else {
        println!(
            "{kind},{filter} parent_closed_given=false: before {fds_before:?}, after {fds_after:?}"
        );
    }
    File::from(to_child_write)
        .write_all(TO_CHILD.as_bytes())
        .unwrap();
    // End-of-file comes only once every write end is closed, ours included.
    let mut from_child = String::new();
    File::from(from_child_read)
        .read_to_string(&mut from_child)
        .unwrap();
    println!("{kind},{filter} parent_read={from_child}");
    let output = child.wait_with_output().unwrap();
    println!("{kind},{filter} {}", status_text(output.status));
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("{kind},{filter} child_{line}");
    }
}

/// `given KIND`: the parent leaves open without close-on-exec, as a careless caller
/// does, a directory (which leads out of any root) and a pipe, which no child may see;
/// then runs each case of [`given`] on a thread of its own, as a seccomp filter stays
/// with its thread.
fn given_cases(kind: &str) {
    let root = nix::fcntl::open(
        "/",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
        nix::sys::stat::Mode::empty(),
    )
    .unwrap();
    let (inheritable_read, inheritable_write) = inheritable_pipe();
    let inheritable = open_fds(true);
    println!("parent_inheritable={}", inheritable.join(","));
    println!("root_dir={}", root.as_raw_fd());
    println!(
        "inheritable_pipe={},{}",
        inheritable_read.as_raw_fd(),
        inheritable_write.as_raw_fd()
    );
    for filter in ["none", "enosys", "einval"] {
        let kind = kind.to_string();
        let marked_at = inheritable_read.as_raw_fd();
        std::thread::spawn(move || given(&kind, filter, marked_at))
            .join()
            .unwrap();
    }
    println!("parent_inheritable_after={}", open_fds(true).join(","));
    drop((root, inheritable_read, inheritable_write));
}

/// `taken`: the parent's copy of a given descriptor closes with the spawn, also one that
/// fails; and spawning the same command again passes it no more.
fn taken() {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).unwrap();
    let error = Command::new("check-fds")
        .fd(5, write)
        .current_dir("/nonexistent/probe-fds")
        .spawn()
        .unwrap_err();
    println!("failed_spawn_step={}", step_name(error.step()));
    // End-of-file, not EAGAIN: no write end is left, neither ours nor a child's.
    let mut byte = [0u8];
    let read = nix::unistd::read(&read, &mut byte);
    println!("failed_spawn_left_a_writer={}", read != Ok(0));

    let (_read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let mut command = Command::new("check-fds");
    command.fd(5, write);
    for round in ["first", "second"] {
        let output = command.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let fds = stdout.lines().find_map(|line| line.strip_prefix("fds="));
        println!("{round}_spawn_fds={}", fds.unwrap_or("?"));
    }
}

reexec::main! {
    fn main() {
        reexec_tests::fork_server::use_fork_server_if_asked();
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            ["given", kind] => given_cases(kind),
            ["taken"] => taken(),
            other => {
                eprintln!("probe-fds: unknown mode {other:?}");
                std::process::exit(2);
            }
        }
    }
}
