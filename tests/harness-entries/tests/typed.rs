//! Typed entries (reexec's `typed` feature) defined in an integration test and called
//! from its `#[test]`s under libtest, through `early-dispatch`: values in; values, `Err`s
//! and panics out; and each way a call can end without a value, told apart.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use reexec::{Command, Error, Namespaces, Stdio, TypedCommand};
use reexec_harness_entries::{assert_passes_unprivileged, describe, effective_ids};
use reexec_tests::procfs::open_fds;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Request {
    text: String,
    repeat: u32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Parsed {
    words: Vec<String>,
    pid: u32,
}

#[reexec::entry("typed-split")]
fn split(request: Request) -> Parsed {
    Parsed {
        words: request
            .text
            .split_whitespace()
            .flat_map(|word| std::iter::repeat_n(word.to_owned(), request.repeat as usize))
            .collect(),
        pid: std::process::id(),
    }
}

#[test]
fn a_struct_goes_in_and_a_struct_comes_back() {
    let request = Request {
        text: "a b".into(),
        repeat: 2,
    };
    let parsed = reexec::call::<split>(&request).unwrap();
    assert_eq!(parsed.words, ["a", "a", "b", "b"]);
    assert_ne!(parsed.pid, std::process::id(), "ran in a child");
}

#[test]
fn a_typed_call_through_the_fork_server_comes_back_as_a_re_executed_one_does() {
    reexec::ForkServer::start().unwrap();
    let server = reexec::ForkServer::pid().expect("the server runs");
    let request = Request {
        text: "x yz".into(),
        repeat: 3,
    };
    let mut call = TypedCommand::new::<split>();
    call.command().fork_server(true);
    let parsed = call.call(&request).unwrap();
    assert_eq!(parsed.words, ["x", "x", "x", "yz", "yz", "yz"]);
    assert_ne!(parsed.pid, std::process::id(), "ran in a child");
    assert_ne!(
        parsed.pid, server,
        "ran in a child of the server, not in it"
    );
    // A panic in the entry arrives as a re-executed one's does.
    let mut failing = TypedCommand::<Request, Parsed>::by_name("typed-panics-on-empty");
    failing.command().fork_server(true);
    let error = failing
        .call(&Request {
            text: String::new(),
            repeat: 0,
        })
        .unwrap_err();
    let mut plain = TypedCommand::<Request, Parsed>::by_name("typed-panics-on-empty");
    let plain_error = plain
        .call(&Request {
            text: String::new(),
            repeat: 0,
        })
        .unwrap_err();
    assert_eq!(error.to_string(), plain_error.to_string());
    reexec::ForkServer::stop();
}

#[reexec::entry("typed-panics-on-empty")]
fn panics_on_empty(request: Request) -> Parsed {
    assert!(
        !request.text.is_empty(),
        "typed-panics-on-empty: empty text"
    );
    split(request)
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Shape {
    Point,
    Circle { radius: f64 },
    Polygon(Vec<(i32, i32)>),
}

#[reexec::entry("typed-describe-shape")]
fn describe_shape(shape: Shape) -> (Shape, Option<usize>) {
    let corners = match &shape {
        Shape::Point | Shape::Circle { .. } => None,
        Shape::Polygon(points) => Some(points.len()),
    };
    (shape, corners)
}

#[test]
fn every_kind_of_enum_variant_round_trips() {
    let shapes = [
        Shape::Point,
        Shape::Circle { radius: 2.5 },
        Shape::Polygon(vec![(0, 0), (-1, 5), (i32::MAX, i32::MIN)]),
    ];
    for shape in shapes {
        let (back, corners) = reexec::call::<describe_shape>(&shape).unwrap();
        assert_eq!(back, shape);
        assert_eq!(corners, matches!(shape, Shape::Polygon(_)).then_some(3));
    }
}

const LARGE: usize = 64 << 20;

/// Text of `length` bytes whose period, 4093 bytes (a prime), divides no power of two:
/// a lost, doubled or reordered pipe-sized chunk shows in the comparison.
fn large_text(length: usize) -> String {
    let period: String = (0..4093u32)
        .map(|index| char::from(b'a' + (index * 7 % 26) as u8))
        .collect();
    let mut text = period.repeat(length / period.len() + 1);
    text.truncate(length);
    text
}

/// Takes 64 MiB and returns 64 MiB: each way, far more than a pipe holds. What comes back
/// is what went in, with its first and last bytes swapped: the child read all of it.
#[reexec::entry("typed-swap-ends")]
fn swap_ends(text: String) -> String {
    let mut bytes = text.into_bytes();
    let last = bytes.len() - 1;
    bytes.swap(0, last);
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_64_mib_value_goes_each_way() {
    let text = large_text(LARGE);
    let started = Instant::now();
    let back = reexec::call::<swap_ends>(&text).unwrap();
    println!("64 MiB in and out in {:?}", started.elapsed());
    assert_eq!(back.len(), LARGE);
    assert_eq!(back.as_bytes()[0], text.as_bytes()[LARGE - 1]);
    assert_eq!(back.as_bytes()[LARGE - 1], text.as_bytes()[0]);
    assert!(
        back[1..LARGE - 1] == text[1..LARGE - 1],
        "the 64 MiB came back changed"
    );
}

/// Returns `length` bytes of [`large_text`]: a small input, as large an answer as asked.
#[reexec::entry("typed-make-text")]
fn make_text(length: usize) -> String {
    large_text(length)
}

#[test]
fn the_child_answers_and_exits_before_its_parent_reads() {
    // 1 MiB, sixteen times what a pipe holds by default: a child answering on a pipe
    // would wait, the pipe full, until its parent read, and could not exit first.
    const SIZE: usize = 1 << 20;
    let mut call = TypedCommand::new::<make_text>().spawn(&SIZE).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = call.child().try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child has not exited in 60 s: it waits for its parent to read the answer"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        call.join().unwrap() == large_text(SIZE),
        "the answer came back changed"
    );
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum ParseError {
    Empty,
    NotANumber { text: String, at: usize },
}

#[reexec::entry("typed-parse-number")]
fn parse_number(text: String) -> Result<i64, ParseError> {
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    text.parse().map_err(|_| ParseError::NotANumber {
        at: text.find(|c: char| !c.is_ascii_digit()).unwrap_or(0),
        text,
    })
}

#[test]
fn the_entrys_err_is_the_inner_err_not_a_failed_call() {
    assert_eq!(
        reexec::call::<parse_number>(&"-42".to_owned()).unwrap(),
        Ok(-42)
    );
    assert_eq!(
        reexec::call::<parse_number>(&String::new()).unwrap(),
        Err(ParseError::Empty)
    );
    assert_eq!(
        reexec::call::<parse_number>(&"12x".to_owned()).unwrap(),
        Err(ParseError::NotANumber {
            text: "12x".into(),
            at: 2
        })
    );
}

/// The line of the `panic!` below, for the location the parent must get.
const PANIC_LINE: u32 = line!() + 4;

#[reexec::entry("typed-panic")]
fn panics(code: u32) -> u32 {
    panic!("refusing {code} on purpose");
}

#[test]
fn a_panic_comes_back_with_its_message_and_place() {
    let mut call = TypedCommand::new::<panics>();
    call.command().stderr(Stdio::piped());
    let output = call.spawn(&7).unwrap().join_with_output(None);
    match output.value {
        Err(Error::Panicked {
            entry,
            message,
            file,
            line,
            column,
        }) => {
            assert_eq!(entry, "typed-panic");
            assert_eq!(message, "refusing 7 on purpose");
            assert_eq!(file, file!());
            assert_eq!(line, PANIC_LINE);
            assert_eq!(column, 5);
        }
        other => panic!("expected Panicked, got {other:?}"),
    }
    // The hook printed it too, as for any panic; the child ended as a panicking main.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing 7 on purpose"), "{stderr}");
    assert_eq!(output.status.and_then(|status| status.code()), Some(101));
}

/// Says it started on stdout, then waits to be killed.
#[reexec::entry("typed-wait-forever")]
fn wait_forever(seconds: u64) -> u64 {
    println!("started");
    std::thread::sleep(Duration::from_secs(seconds));
    seconds
}

#[test]
fn a_child_killed_mid_call_is_killed_not_garbage() {
    let mut call = TypedCommand::new::<wait_forever>();
    call.command().stdout(Stdio::piped());
    let mut child = call.spawn(&600).unwrap();
    let stdout = child.child().stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert_eq!(line, "started\n", "the entry is running");
    child.child().signal(libc_sigkill()).unwrap();
    match child.join() {
        Err(Error::Killed { entry, signal }) => {
            assert_eq!(entry, "typed-wait-forever");
            assert_eq!(signal, libc_sigkill());
        }
        other => panic!("expected Killed, got {other:?}"),
    }
}

fn libc_sigkill() -> i32 {
    9
}

#[test]
fn a_timeout_kills_and_reaps_the_child() {
    let mut call = TypedCommand::new::<wait_forever>();
    call.command().stdout(Stdio::null());
    let child = call.spawn(&600).unwrap();
    let pid = child.id();
    let started = Instant::now();
    match child.join_timeout(Duration::from_millis(300)) {
        Err(Error::Timeout { entry, timeout }) => {
            assert_eq!(entry, "typed-wait-forever");
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // Reaped, not a zombie: the pid names no process (nothing else can have taken it
    // so soon on a machine that does not wrap pids within a test).
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the child {pid} is still there"
    );
}

#[test]
fn dropping_an_unjoined_call_kills_and_reaps_its_child() {
    let mut call = TypedCommand::new::<wait_forever>();
    call.command().stdout(Stdio::null());
    let child = call.spawn(&600).unwrap();
    let pid = child.id();
    assert!(pid_exists(pid));
    drop(child);
    assert!(!pid_exists(pid), "the child {pid} is still there");
}

#[test]
fn a_typed_call_gets_the_death_signal_of_its_command() {
    // The spawning thread ends at once: the kernel sends the death signal (SIGTERM by
    // default) to the child, mid-call; the join, on another thread, sees it.
    let child = std::thread::spawn(|| {
        let mut call = TypedCommand::new::<wait_forever>();
        call.command().stdout(Stdio::null());
        call.spawn(&600).unwrap()
    })
    .join()
    .unwrap();
    match child.join_timeout(Duration::from_secs(60)) {
        Err(Error::Killed { signal, .. }) => assert_eq!(signal, 15, "SIGTERM"),
        other => panic!("expected Killed by SIGTERM, got {other:?}"),
    }
}

#[test]
fn a_call_that_ends_in_time_is_not_a_timeout() {
    let child = TypedCommand::new::<wait_forever>().spawn(&0).unwrap();
    assert_eq!(child.join_timeout(Duration::from_secs(60)).unwrap(), 0);
}

#[reexec::entry("typed-exit")]
fn exits(code: i32) -> String {
    std::process::exit(code)
}

#[test]
fn a_child_that_exits_without_answering_says_its_status() {
    match reexec::call::<exits>(&7) {
        Err(Error::NoAnswer { entry, code }) => {
            assert_eq!(entry, "typed-exit");
            assert_eq!(code, Some(7));
        }
        other => panic!("expected NoAnswer, got {other:?}"),
    }
    // Status 0 without an answer is no value either.
    assert!(matches!(
        reexec::call::<exits>(&0),
        Err(Error::NoAnswer { code: Some(0), .. })
    ));
}

#[test]
fn a_string_name_with_the_wrong_types_is_a_mismatch_and_the_entry_does_not_run() {
    // The entry takes a Request; the caller claims it takes a String.
    let mut call = TypedCommand::<String, Parsed>::by_name("typed-split");
    call.command().stderr(Stdio::piped());
    let output = call
        .spawn(&"a b".to_owned())
        .unwrap()
        .join_with_output(None);
    match output.value {
        Err(Error::TypeMismatch {
            entry,
            entry_types,
            call_types,
        }) => {
            assert_eq!(entry, "typed-split");
            assert!(
                entry_types.starts_with("typed::Request -> "),
                "{entry_types}"
            );
            assert!(
                call_types.starts_with("alloc::string::String -> "),
                "{call_types}"
            );
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    assert_eq!(output.status.and_then(|status| status.code()), Some(0));

    // Only the output wrong: refused as well, although the input would read.
    let wrong_output = TypedCommand::<Request, String>::by_name("typed-split").call(&Request {
        text: "a".into(),
        repeat: 1,
    });
    assert!(
        matches!(wrong_output, Err(Error::TypeMismatch { .. })),
        "{wrong_output:?}"
    );

    // The right types by name: the value.
    let parsed = TypedCommand::<Request, Parsed>::by_name("typed-split")
        .call(&Request {
            text: "x".into(),
            repeat: 1,
        })
        .unwrap();
    assert_eq!(parsed.words, ["x"]);
}

#[test]
fn a_string_name_of_no_entry_or_a_plain_entry_has_no_answer() {
    let missing = TypedCommand::<u8, u8>::by_name("typed-no-such-entry").call(&1);
    assert!(
        matches!(
            missing,
            Err(Error::NoAnswer {
                code: Some(121),
                ..
            })
        ),
        "{missing:?}"
    );
    let plain = TypedCommand::<u8, u8>::by_name("typed-plain").call(&1);
    assert!(
        matches!(plain, Err(Error::NoAnswer { code: Some(0), .. })),
        "{plain:?}"
    );
}

#[reexec::entry("typed-plain")]
fn plain() {}

#[test]
fn a_typed_entry_started_by_a_plain_command_refuses() {
    let output = Command::new("typed-split").output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(i32::from(reexec::EXIT_NOT_A_TYPED_CALL)),
        "{}",
        describe(&output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("reexec::TypedCommand"), "{stderr}");
}

/// What a child sees of the command it was started with.
#[derive(Serialize, Deserialize, Debug)]
struct Seen {
    uid: u32,
    gid: u32,
    pid: u32,
    args: Vec<String>,
    env: Option<String>,
    cwd: String,
    typed_env: bool,
    namespaces: Vec<String>,
    descriptors: Vec<String>,
    /// What the descriptors above 2 with close-on-exec are: the call's own.
    call_descriptors: Vec<String>,
}

#[reexec::entry("typed-what-do-you-see")]
fn what_do_you_see(greeting: String) -> Seen {
    let (uid, gid) = effective_ids();
    let inheritable = open_fds(true);
    println!("{greeting} from the child");
    Seen {
        uid,
        gid,
        pid: std::process::id(),
        args: std::env::args().skip(1).collect(),
        env: std::env::var("TYPED_TEST_VALUE").ok(),
        cwd: std::env::current_dir().unwrap().display().to_string(),
        typed_env: std::env::vars().any(|(key, _)| key.starts_with("REEXEC_")),
        namespaces: ["user", "pid", "net", "uts"]
            .iter()
            .map(|name| {
                std::fs::read_link(format!("/proc/self/ns/{name}"))
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect(),
        // Only those without close-on-exec: what a program the entry runs would get.
        descriptors: inheritable.clone(),
        call_descriptors: open_fds(false)
            .into_iter()
            .filter(|fd| !inheritable.contains(fd) && fd.parse::<i32>().is_ok_and(|fd| fd > 2))
            .filter_map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
            .map(|target| target.display().to_string())
            .collect(),
    }
}

#[test]
fn a_typed_call_takes_everything_a_command_offers() {
    let dir = std::env::temp_dir();
    let mut call = TypedCommand::new::<what_do_you_see>();
    call.command()
        .args(["one", "two"])
        .env("TYPED_TEST_VALUE", "set")
        .current_dir(&dir)
        .stdout(Stdio::piped())
        // A descriptor of the caller's at 3: the call's own take other numbers.
        .fd(3, std::fs::File::open("/dev/null").unwrap());
    let output = call
        .spawn(&"hello".to_owned())
        .unwrap()
        .join_with_output(Some(Duration::from_secs(60)));
    let seen = output.value.unwrap();
    assert_eq!(seen.args, ["one", "two"]);
    assert_eq!(seen.env.as_deref(), Some("set"));
    assert_eq!(seen.cwd, dir.canonicalize().unwrap().display().to_string());
    assert!(
        !seen.typed_env,
        "the call's variable is gone before the entry runs"
    );
    // 0-2 and the caller's 3 reach a program the entry runs; the call's own do not.
    assert_eq!(seen.descriptors, ["0", "1", "2", "3"]);
    // One file holds the call and then the answer: no pipe whose other end waits.
    assert_eq!(
        seen.call_descriptors,
        ["/memfd:reexec-typed-call (deleted)"]
    );
    assert_eq!(output.stdout, b"hello from the child\n");
}

#[test]
fn a_typed_call_in_new_user_pid_net_and_uts_namespaces() {
    let (uid, gid) = effective_ids();
    let mut call = TypedCommand::new::<what_do_you_see>();
    call.command()
        .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::NET | Namespaces::UTS)
        .map_root_to_caller()
        .stdout(Stdio::null());
    let seen = call
        .call(&"hi".to_owned())
        .unwrap_or_else(|error| panic!("as uid {uid} gid {gid}: {error}"));
    assert_eq!((seen.uid, seen.gid), (0, 0), "as uid {uid}: {seen:?}");
    assert_eq!(seen.pid, 1, "PID 1 of its namespace: {seen:?}");
    for (name, theirs) in ["user", "pid", "net", "uts"].iter().zip(&seen.namespaces) {
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap();
        assert_ne!(
            &ours.display().to_string(),
            theirs,
            "the {name} namespace is new"
        );
    }
}

#[test]
fn a_typed_call_in_new_namespaces_works_unprivileged() {
    assert_passes_unprivileged("a_typed_call_in_new_user_pid_net_and_uts_namespaces");
}

// ---- reexec::Pool ----

/// Squares, and says which worker did it; 0 crashes the worker, 1 panics, 2 exits.
#[reexec::entry("typed-pool-square")]
fn pool_square(value: u64) -> (u64, u32) {
    match value {
        0 => std::process::abort(),
        1 => panic!("one is not squared here"),
        2 => std::process::exit(3),
        _ => (value * value, std::process::id()),
    }
}

fn pid_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_pool_serves_calls_from_many_threads_on_the_same_workers() {
    let pool = reexec::Pool::new::<pool_square>(2).unwrap();
    let workers = pool.idle_worker_ids();
    assert_eq!(workers.len(), 2);
    let seen: Vec<u32> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4u64)
            .map(|thread| {
                let pool = &pool;
                scope.spawn(move || {
                    (0..25u64)
                        .map(|index| {
                            let value = 3 + thread * 100 + index;
                            let (square, pid) = pool.call(&value).unwrap();
                            assert_eq!(square, value * value);
                            pid
                        })
                        .collect::<Vec<u32>>()
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|thread| thread.join().unwrap())
            .collect()
    });
    assert_eq!(seen.len(), 100);
    assert!(
        seen.iter().all(|pid| workers.contains(pid)),
        "100 calls, served by the two workers started first: {workers:?}"
    );
    drop(pool);
    for pid in workers {
        assert!(!pid_exists(pid), "worker {pid} is reaped with the pool");
    }
}

#[test]
fn a_pool_survives_a_worker_crash_and_replaces_it() {
    let pool = reexec::Pool::new::<pool_square>(1).unwrap();
    let [first] = pool.idle_worker_ids()[..] else {
        panic!("one worker")
    };
    match pool.call(&0) {
        Err(Error::Killed { entry, signal }) => {
            assert_eq!(entry, "typed-pool-square");
            assert_eq!(signal, 6, "SIGABRT");
        }
        other => panic!("expected Killed, got {other:?}"),
    }
    let [second] = pool.idle_worker_ids()[..] else {
        panic!("still one worker")
    };
    assert_ne!(second, first, "a new worker");
    assert!(!pid_exists(first), "the crashed worker {first} is reaped");
    assert_eq!(pool.call(&5).unwrap(), (25, second));

    // A worker that exits: its status, and a replacement.
    assert!(matches!(
        pool.call(&2),
        Err(Error::NoAnswer { code: Some(3), .. })
    ));
    let [third] = pool.idle_worker_ids()[..] else {
        panic!("still one worker")
    };
    assert_ne!(third, second);

    // A panic is answered, and the worker serves on.
    assert!(matches!(
        pool.call(&1),
        Err(Error::Panicked { ref message, .. }) if message == "one is not squared here"
    ));
    assert_eq!(pool.call(&4).unwrap(), (16, third));

    // A worker that died while idle is replaced before the next call reaches it. (`kill`
    // returns before the worker is dead: wait until it is a zombie, unreaped.)
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &third.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(format!("/proc/{third}/stat"))
        .unwrap()
        .contains(") Z ")
    {
        assert!(Instant::now() < deadline, "worker {third} never died");
        std::thread::sleep(Duration::from_millis(5));
    }
    let (square, fourth) = pool.call(&6).unwrap();
    assert_eq!(square, 36);
    assert_ne!(fourth, third);
    assert!(!pid_exists(third), "the killed worker {third} is reaped");
}

/// Sleeps the milliseconds it is given, then answers with its pid.
#[reexec::entry("typed-pool-sleep")]
fn pool_sleep(millis: u64) -> u32 {
    std::thread::sleep(Duration::from_millis(millis));
    std::process::id()
}

#[test]
fn a_pool_call_past_its_timeout_kills_its_worker_and_the_pool_serves_on() {
    let pool = reexec::Pool::new::<pool_sleep>(1).unwrap();
    let [first] = pool.idle_worker_ids()[..] else {
        panic!("one worker")
    };
    // In time: the value, from the same worker.
    assert_eq!(
        pool.call_timeout(&0, Duration::from_secs(60)).unwrap(),
        first
    );
    let started = Instant::now();
    match pool.call_timeout(&600_000, Duration::from_millis(300)) {
        Err(Error::Timeout { entry, timeout }) => {
            assert_eq!(entry, "typed-pool-sleep");
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        took < Duration::from_secs(300),
        "it waited for the worker: {took:?}"
    );
    assert!(
        !pid_exists(first),
        "the worker {first} is killed and reaped"
    );
    let [second] = pool.idle_worker_ids()[..] else {
        panic!("a worker again")
    };
    assert_ne!(second, first);
    assert_eq!(pool.call(&0).unwrap(), second);
}

#[test]
fn a_pool_call_that_finds_no_idle_worker_in_time_leaves_the_busy_one_alone() {
    let pool = reexec::Pool::new::<pool_sleep>(1).unwrap();
    let [worker] = pool.idle_worker_ids()[..] else {
        panic!("one worker")
    };
    std::thread::scope(|scope| {
        // Busy until the timed call below has given up, which starts once it is busy.
        let long = scope.spawn(|| pool.call(&3_000));
        while !pool.idle_worker_ids().is_empty() {
            std::thread::yield_now();
        }
        assert!(matches!(
            pool.call_timeout(&0, Duration::from_millis(100)),
            Err(Error::Timeout { .. })
        ));
        assert_eq!(
            long.join().unwrap().unwrap(),
            worker,
            "its call ran on, whole"
        );
    });
    assert_eq!(pool.idle_worker_ids(), [worker]);
}

#[test]
fn a_pool_of_workers_in_new_user_and_net_namespaces() {
    let pool = reexec::Pool::<String, Seen>::with_command::<what_do_you_see>(2, |command| {
        command
            .namespaces(Namespaces::USER | Namespaces::NET)
            .map_root_to_caller()
            .stdout(Stdio::null());
    })
    .unwrap();
    for _ in 0..3 {
        let seen = pool.call(&"hi".to_owned()).unwrap();
        assert_eq!((seen.uid, seen.gid), (0, 0), "{seen:?}");
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        assert_ne!(ours.display().to_string(), seen.namespaces[2]);
    }
}

#[test]
fn a_pool_in_new_namespaces_works_unprivileged() {
    assert_passes_unprivileged("a_pool_of_workers_in_new_user_and_net_namespaces");
}

// ---- a child that lies ----

/// What a compromised child writes on its answer descriptor instead of an answer.
#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
enum Lie {
    /// A value frame claiming 1 TiB, then nothing.
    HugeLength,
    /// A value frame claiming 256 MiB, and the file made that long without a write: a
    /// hole, which reads as zeros and costs the child nothing.
    SparseLength,
    /// A frame of a kind that does not exist.
    UnknownTag,
    /// A value frame holding a string, where the call expects a `u64`.
    AnotherType,
}

/// Finds its answer descriptor as an attacker would — the one above 2 it may write (a
/// memfd, open for reading and writing) — writes `lie` on it and exits without a real
/// answer.
#[reexec::entry("typed-liar")]
fn liar(lie: Lie) -> u64 {
    let answer = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| {
            entry
                .ok()?
                .file_name()
                .into_string()
                .ok()?
                .parse::<i32>()
                .ok()
        })
        .find(|&fd| {
            // The access mode, the flags' last octal digit: 1 write only, 2 both.
            fd > 2
                && std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
                    .unwrap_or_default()
                    .lines()
                    .any(|line| {
                        line.strip_prefix("flags:")
                            .is_some_and(|f| f.trim().ends_with(['1', '2']))
                    })
        })
        .expect("the answer descriptor is open for writing");
    let mut frame = Vec::new();
    match lie {
        Lie::HugeLength => {
            frame.push(b'V');
            frame.extend_from_slice(&(1u64 << 40).to_le_bytes());
            frame.extend_from_slice(&[0; 100]);
        }
        Lie::SparseLength => {
            frame.push(b'V');
            frame.extend_from_slice(&SPARSE_CLAIM.to_le_bytes());
            frame.extend_from_slice(&[0; 100]);
        }
        Lie::UnknownTag => {
            frame.push(b'Z');
            frame.extend_from_slice(&1u64.to_le_bytes());
            frame.push(0);
        }
        Lie::AnotherType => {
            // postcard of the string "abcdefghijklmnopqrstuvwxyz": a length, the bytes.
            frame.push(b'V');
            frame.extend_from_slice(&27u64.to_le_bytes());
            frame.push(26);
            frame.extend_from_slice(b"abcdefghijklmnopqrstuvwxyz");
        }
    }
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: the descriptor found above is open, and only this code uses it from here on.
    let mut answer = unsafe { std::fs::File::from_raw_fd(answer) };
    answer.write_all(&frame).unwrap();
    if let Lie::SparseLength = lie {
        use std::io::Seek;
        let end = answer.stream_position().unwrap() + SPARSE_CLAIM;
        answer.set_len(end).unwrap();
    }
    std::process::exit(0)
}

/// What [`Lie::SparseLength`] claims, and makes its file's hole as long as.
const SPARSE_CLAIM: u64 = 256 << 20;

/// Set for [`lying_length_probe`], run by
/// [`a_lying_length_costs_its_parent_no_more_memory_than_was_written`].
const LYING_LENGTH_PROBE: &str = "TYPED_LYING_LENGTH_PROBE";

/// This process's peak resident memory, `VmHWM` in /proc/self/status, in KiB.
fn peak_resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Not a test of its own: does nothing unless [`LYING_LENGTH_PROBE`] is set, and then,
/// alone in its process, makes two calls whose children claim a huge answer and write
/// 109 bytes — one of them with a 256 MiB hole after them — and prints how much the
/// process's peak resident memory grew.
#[test]
fn lying_length_probe() {
    if std::env::var_os(LYING_LENGTH_PROBE).is_none() {
        return;
    }
    let before = peak_resident_kib();
    for lie in [Lie::HugeLength, Lie::SparseLength] {
        let result = reexec::call::<liar>(&lie);
        assert!(
            matches!(result, Err(Error::NoAnswer { .. })),
            "{lie:?}: {result:?}"
        );
    }
    println!("peak_growth_kib={}", peak_resident_kib() - before);
}

#[test]
fn a_lying_length_costs_its_parent_no_more_memory_than_was_written() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lying_length_probe",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LYING_LENGTH_PROBE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let growth: u64 = stdout
        .lines()
        .find_map(|line| line.split_once("peak_growth_kib=").map(|(_, kib)| kib))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no figure from the probe: {}", describe(&output)));
    // The answer's file holds 109 bytes: a parent that believed the length would make
    // room for 64 MiB of it at once; one that believed the file's length, for the hole.
    assert!(
        growth < 8 * 1024,
        "the peak grew {growth} KiB for a 109-byte answer"
    );
}

#[test]
fn a_lying_child_gets_an_error_never_a_value() {
    match reexec::call::<liar>(&Lie::HugeLength) {
        // Half a frame is no answer; what arrived was kept, not what it claimed.
        Err(Error::NoAnswer { code: Some(0), .. }) => {}
        other => panic!("a claimed 1 TiB: expected NoAnswer, got {other:?}"),
    }
    match reexec::call::<liar>(&Lie::UnknownTag) {
        Err(Error::Encoding { what, message, .. }) => {
            assert_eq!(what, "reading the child's answer");
            assert!(message.contains("unknown kind"), "{message}");
        }
        other => panic!("an unknown tag: expected Encoding, got {other:?}"),
    }
    match reexec::call::<liar>(&Lie::AnotherType) {
        Err(Error::Encoding { what, .. }) => {
            assert_eq!(what, "reading the entry's value with postcard");
        }
        other => panic!("a string for a u64: expected Encoding, got {other:?}"),
    }
}
