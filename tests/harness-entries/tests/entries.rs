//! Entries defined in an integration test, spawned from its `#[test]`s: this file is its
//! own test binary, with its own entries, and no `main` or `harness = false` anywhere.

use std::process::{ExitCode, Output};

use reexec::{Command, Namespaces};
use reexec_harness_entries::{
    assert_exit_code, assert_passes_under_one_harness, assert_passes_unprivileged, describe,
    effective_ids, harness_lines, is_inner_run,
};
use reexec_tests::skip_unless;

#[reexec::entry("it-shout")]
fn it_shout() {
    let words: Vec<String> = std::env::args().skip(1).collect();
    println!("{}", words.join(" ").to_uppercase());
}

/// Registered under the function's own name: `it_count_args`.
#[reexec::entry]
fn it_count_args() -> ExitCode {
    ExitCode::from(u8::try_from(std::env::args().count()).unwrap_or(255))
}

/// Starts `it-shout` itself and reports what it said: a child that spawns a child.
#[reexec::entry("it-relay")]
fn it_relay() -> Result<(), reexec::Error> {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let inner = Command::new("it-shout").args(&words).output()?;
    print!("relayed {}", String::from_utf8_lossy(&inner.stdout));
    Ok(())
}

/// Sees itself as root and PID 1 in its namespaces, and sets a hostname only it sees.
#[reexec::entry("it-ns")]
fn it_ns() -> std::io::Result<()> {
    let (uid, gid) = effective_ids();
    let map = std::fs::read_to_string("/proc/self/gid_map")?;
    let map: Vec<&str> = map.split_whitespace().collect();
    println!("uid={uid} gid={gid} pid={}", std::process::id());
    println!("gid_map={}", map.join(" "));
    // /proc/self/ns links name the namespaces; the parent compares them with its own.
    for name in ["user", "pid", "uts"] {
        println!(
            "{name}={}",
            std::fs::read_link(format!("/proc/self/ns/{name}"))?.display()
        );
    }
    Ok(())
}

/// Says whether the file named by its argument, which its parent's setup hook creates,
/// was there when it started, and leaves `ARGUMENT.ran` behind.
#[reexec::entry("it-after-setup")]
fn it_after_setup() -> std::io::Result<()> {
    let marker = std::env::args().nth(1).unwrap_or_default();
    println!("hook_ran_first={}", std::path::Path::new(&marker).exists());
    std::fs::write(format!("{marker}.ran"), "")
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).unwrap()
}

#[test]
fn an_entry_of_an_integration_test_runs_alone() {
    let output = Command::new("it-shout")
        .args(["quiet", "--nocapture", "--exact"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout(&output), "QUIET --NOCAPTURE --EXACT\n");
    assert!(output.stderr.is_empty(), "{}", describe(&output));
}

#[test]
fn an_entry_named_after_its_function() {
    let status = Command::new("it_count_args")
        .args(["a", "b", "c"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(4), "argv[0] and three arguments");
}

#[test]
fn an_entry_relays_what_another_entry_printed() {
    let output = Command::new("it-relay")
        .args(["from", "--test-threads=1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    assert_eq!(stdout(&output), "relayed FROM --TEST-THREADS=1\n");
}

#[test]
fn entries_of_the_unit_tests_are_not_in_this_binary() {
    let output = Command::new("unit-echo").output().unwrap();
    assert_exit_code("unit-echo", &output, reexec::EXIT_UNKNOWN_ENTRY.into());
    assert!(
        harness_lines(stdout(&output)).is_empty(),
        "{}",
        describe(&output)
    );
}

#[test]
fn parallel_children_from_parallel_tests_one() {
    for word in ["a", "b", "c", "d"] {
        let output = Command::new("it-shout").arg(word).output().unwrap();
        assert_eq!(stdout(&output), format!("{}\n", word.to_uppercase()));
    }
}

#[test]
fn parallel_children_from_parallel_tests_two() {
    for word in ["e", "f", "g", "h"] {
        let output = Command::new("it-relay").arg(word).output().unwrap();
        assert_eq!(
            stdout(&output),
            format!("relayed {}\n", word.to_uppercase())
        );
    }
}

#[test]
fn an_entry_in_new_user_pid_and_uts_namespaces() {
    let (uid, gid) = effective_ids();
    let output = Command::new("it-ns")
        .namespaces(Namespaces::USER | Namespaces::PID | Namespaces::UTS)
        .map_root_to_caller()
        .output()
        .unwrap_or_else(|error| panic!("as uid {uid}: {error}"));
    assert!(output.status.success(), "{}", describe(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("uid=0 gid=0 pid=1\ngid_map=0 {gid} 1\n")),
        "as uid {uid} gid {gid}: {text}"
    );
    for name in ["user", "pid", "uts"] {
        let ours = std::fs::read_link(format!("/proc/self/ns/{name}")).unwrap();
        let theirs = format!("{name}={}", ours.display());
        assert!(
            !text.contains(&theirs),
            "the {name} namespace is not new: {text}"
        );
    }
}

#[test]
fn namespaced_entries_of_an_integration_test_work_unprivileged() {
    assert_passes_unprivileged("an_entry_in_new_user_pid_and_uts_namespaces");
}

#[test]
fn this_binary_under_libtest_flags_and_filters() {
    skip_unless!(!is_inner_run(), "this is the inner run");
    let runs: [&[&str]; 3] = [
        &["parallel_children", "--test-threads=2", "--nocapture"],
        &[
            "--exact",
            "an_entry_of_an_integration_test_runs_alone",
            "--include-ignored",
        ],
        &[
            "relay",
            "--skip",
            "unprivileged",
            "--quiet",
            "--test-threads=1",
        ],
    ];
    for args in runs {
        assert_passes_under_one_harness(args);
    }
}

#[test]
fn a_borrowing_setup_hook_runs_before_the_child_and_can_stop_it() {
    let marker = std::env::temp_dir().join(format!("reexec-it-setup-{}", std::process::id()));
    let ran = marker.with_extension("ran");
    // What the hook writes to: borrowed, neither Send nor 'static.
    let mut seen: Vec<u32> = Vec::new();
    let mut child = Command::new("it-after-setup")
        .arg(&marker)
        .stdout(reexec::Stdio::piped())
        .spawn_with_parent_setup(|pid| {
            seen.push(pid);
            std::fs::write(&marker, "")
        })
        .unwrap();
    assert_eq!(seen, [child.id()]);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut text).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(text, "hook_ran_first=true\n");
    std::fs::remove_file(&marker).unwrap();
    std::fs::remove_file(&ran).unwrap();

    let error = Command::new("it-after-setup")
        .arg(&marker)
        .spawn_with_parent_setup(|_| Err(std::io::Error::other("the hook refuses")))
        .unwrap_err();
    assert_eq!(error.step(), Some(reexec::Step::ParentSetup), "{error}");
    assert!(error.to_string().contains("the hook refuses"), "{error}");
    // The child was killed and reaped before the spawn returned: it never ran.
    assert!(!ran.exists(), "the child ran after a failed hook");
}

#[test]
fn a_command_keeps_its_setup_hook_when_a_spawn_with_it_panics() {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut command = Command::new("it-after-setup");
    command.arg(std::env::temp_dir().join(format!("reexec-it-panic-{}", std::process::id())));
    let counted = std::sync::Arc::clone(&calls);
    command.parent_setup(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    });
    // This spawn's own hook panics after the command's hook ran; the spawn unwinds.
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = command.spawn_with_parent_setup(|_| panic!("the spawn's hook panics"));
    }));
    assert!(unwound.is_err());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    // The command's hook is still there for the next spawn.
    let error = command
        .spawn_with_parent_setup(|_| Err(std::io::Error::other("stop here")))
        .unwrap_err();
    assert_eq!(error.step(), Some(reexec::Step::ParentSetup), "{error}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
