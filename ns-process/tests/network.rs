//! `--net bridge`, never on the machine's real network: each test first makes a network
//! namespace of its own that plays the host (`unshare --net`, or `unshare -Urn` without
//! privilege), and runs ns-process inside it.

use std::process::{Command, Output};
use std::time::Duration;

use reexec_tests::{Unprivileged, describe, is_root, output_with_timeout};

const NS_PROCESS: &str = env!("CARGO_BIN_EXE_ns-process");
const TIMEOUT: Duration = Duration::from_secs(60);

fn have(tool: &str, args: &[&str]) -> bool {
    let present = Command::new(tool)
        .args(args)
        .output()
        .is_ok_and(|output| output.status.success());
    if !present {
        println!("skipped: {tool} is missing (scripts/install-test-deps installs it)");
    }
    present
}

/// Runs `script` with `sh` in a new network namespace standing in for the host:
/// `unshare --net` as root, `unshare -Urn` (a user namespace too) otherwise.
fn in_fake_host(script: &str) -> Output {
    let flags = if is_root() { "--net" } else { "-Urn" };
    let script = format!("set -e; ip link set lo up; NS_PROCESS={NS_PROCESS}; {script}");
    output_with_timeout(
        Command::new("unshare").args([flags, "sh", "-c", &script]),
        TIMEOUT,
    )
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_child_gets_an_address_a_route_and_reaches_the_gateway() {
    if !have("busybox", &["true"]) || !have("unshare", &["--version"]) {
        return;
    }
    let output = in_fake_host(
        r#"$NS_PROCESS --net bridge -- sh -c 'ip -o -4 addr show veth1; ip route; busybox ping -c1 -W5 10.10.10.1 >/dev/null && echo gateway-reachable'
           echo links-after: $(ip -o link | cut -d: -f2)
           ip -o -4 addr show brg0"#,
    );
    let out = text(&output);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(out.contains("veth1    inet 10.10.10.2/24"), "{out}");
    assert!(out.contains("default via 10.10.10.1 dev veth1"), "{out}");
    assert!(out.contains("gateway-reachable"), "{out}");
    assert!(
        out.contains("links-after: lo brg0\n"),
        "the host side must be gone: {out}"
    );
    assert!(out.contains("brg0    inet 10.10.10.1/24"), "{out}");
}

#[test]
fn an_unprivileged_user_bridges_inside_a_network_namespace_it_owns() {
    if !is_root() {
        println!("skipped: the tests already run unprivileged, and the test above covered that");
        return;
    }
    if !have("busybox", &["true"]) || !have("unshare", &["--version"]) {
        return;
    }
    let Ok(Unprivileged::Setpriv(_dir, copy)) = Unprivileged::prepare(NS_PROCESS) else {
        println!("skipped: can't run unprivileged here");
        return;
    };
    let script = format!(
        "set -e; ip link set lo up; {} --net bridge -- sh -c 'ip -o -4 addr show veth1; busybox ping -c1 -W5 10.10.10.1 >/dev/null && echo gateway-reachable'",
        copy.display()
    );
    let output = output_with_timeout(
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "unshare",
                "-Urn",
                "sh",
                "-c",
                &script,
            ])
            .current_dir("/"),
        TIMEOUT,
    );
    let out = text(&output);
    assert!(
        out.contains("veth1    inet 10.10.10.2/24"),
        "{}",
        describe(&output)
    );
    assert!(out.contains("gateway-reachable"), "{}", describe(&output));
}

#[test]
fn two_instances_get_distinct_addresses_and_reach_each_other() {
    if !have("busybox", &["true"]) || !have("unshare", &["--version"]) {
        return;
    }
    // The first waits until the second has pinged it; the second pings both addresses,
    // its own and the first's, whichever order they were handed out in.
    let output = in_fake_host(
        r#"$NS_PROCESS --net bridge -- sh -c 'echo first=$(ip -o -4 addr show veth1 | tr -s " " | cut -d" " -f4); sleep 3' &
           sleep 1
           $NS_PROCESS --net bridge -- sh -c 'echo second=$(ip -o -4 addr show veth1 | tr -s " " | cut -d" " -f4); busybox ping -c1 -W5 10.10.10.2 >/dev/null && busybox ping -c1 -W5 10.10.10.3 >/dev/null && echo reach-each-other'
           wait
           echo links-after: $(ip -o link | cut -d: -f2)"#,
    );
    let out = text(&output);
    assert!(output.status.success(), "{}", describe(&output));
    let address = |who: &str| {
        out.lines()
            .find_map(|line| line.strip_prefix(&format!("{who}=")))
            .map(str::to_owned)
    };
    let (first, second) = (address("first"), address("second"));
    assert!(first.is_some() && second.is_some(), "{out}");
    assert_ne!(first, second, "two instances got one address: {out}");
    assert!(out.contains("reach-each-other"), "{out}");
    assert!(out.contains("links-after: lo brg0\n"), "{out}");
}

#[test]
fn killing_ns_process_removes_the_host_side() {
    if !have("unshare", &["--version"]) {
        return;
    }
    let output = in_fake_host(
        r#"$NS_PROCESS --net bridge -- sleep 30 &
           pid=$!
           for i in $(seq 50); do ip -o link | grep -q 'brg0-2@if' && break; sleep 0.1; done
           echo before: $(ip -o link | cut -d: -f2)
           kill -KILL $pid
           for i in $(seq 100); do ip -o link | grep -q 'brg0-' || break; sleep 0.05; done
           echo after: $(ip -o link | cut -d: -f2)"#,
    );
    let out = text(&output);
    assert!(
        out.contains("before: lo brg0 brg0-2@if"),
        "{}",
        describe(&output)
    );
    assert!(out.contains("after: lo brg0\n"), "{}", describe(&output));
}

#[test]
fn without_privilege_on_the_host_bridge_mode_is_refused() {
    let Ok(unprivileged) = Unprivileged::prepare(NS_PROCESS) else {
        println!("skipped: can't run unprivileged here");
        return;
    };
    if !is_root() {
        println!("note: the tests run unprivileged; this checks the caller's own refusal");
    }
    let output = output_with_timeout(
        &mut unprivileged.command(NS_PROCESS, &["--net", "bridge", "--", "true"]),
        TIMEOUT,
    );
    assert_eq!(output.status.code(), Some(125), "{}", describe(&output));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("needs root or CAP_NET_ADMIN"),
        "{}",
        describe(&output)
    );
}

#[test]
fn bad_bridge_options_are_refused() {
    for (args, expected) in [
        (
            &["--net", "bridge", "--bridge", "name-too-long"][..],
            "invalid --bridge",
        ),
        (
            &["--net", "bridge", "--subnet", "10.10.10.1/24"][..],
            "host bits are set",
        ),
        (
            &["--net", "bridge", "--share", "net"][..],
            "drop --share net",
        ),
    ] {
        reexec_tests::assert_refused(NS_PROCESS, args, 125, expected);
    }
}

#[test]
fn killed_at_any_point_of_its_start_ns_process_leaves_no_link_behind() {
    if !have("unshare", &["--version"]) {
        return;
    }
    // SIGKILL at delays spread over the start: before the bridge, around the clone, while
    // the pair is created, after the command started.
    let output = in_fake_host(
        r#"for delay in 0 0.001 0.002 0.003 0.005 0.008 0.012 0.02 0.03 0.05 0.08 0.12; do
             $NS_PROCESS --net bridge -- sleep 30 &
             pid=$!
             sleep $delay
             kill -KILL $pid
             wait $pid 2>/dev/null || true
           done
           for i in $(seq 100); do ip -o link | grep -q 'brg0-' || break; sleep 0.05; done
           echo after: $(ip -o link | cut -d: -f2)"#,
    );
    let out = text(&output);
    assert!(
        out.contains("after: lo brg0\n") || out.contains("after: lo\n"),
        "{}",
        describe(&output)
    );
}
