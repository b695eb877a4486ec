//! `--net bridge`, never on the machine's real network: each test first makes a network
//! namespace of its own that plays the host (`unshare --net`, or `unshare -Urn` without
//! privilege), and runs ns-process inside it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use reexec_tests::{Unprivileged, describe, field, is_root, output_with_timeout, stdout_text};

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

/// Runs `script` as uid 65534 in a network namespace of its own (`unshare -Urn`), with
/// `$NS_PROCESS` the copy of ns-process it may read.
fn in_unprivileged_fake_host(copy: &Path, script: &str) -> Output {
    let script = format!(
        "set -e; ip link set lo up; NS_PROCESS={}; {script}",
        copy.display()
    );
    output_with_timeout(
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
    )
}

/// Runs `script` in a fake host as the test's own user and, when that is root, once more
/// as uid 65534; `check` gets each output with a label.
fn in_fake_hosts(script: &str, check: impl Fn(&str, &Output)) {
    check(
        if is_root() { "root" } else { "unprivileged" },
        &in_fake_host(script),
    );
    if !is_root() {
        println!("skipped the second run: the tests run unprivileged already");
        return;
    }
    match Unprivileged::prepare(NS_PROCESS) {
        Ok(Unprivileged::Setpriv(_dir, copy)) => {
            check("uid 65534", &in_unprivileged_fake_host(&copy, script));
        }
        Ok(Unprivileged::AlreadyUnprivileged) => unreachable!("the tests run as root"),
        Err(reason) => println!("skipped the unprivileged run: {reason}"),
    }
}

/// A shell function printing the fake host's addresses, routes (every table) and links
/// (admin state and bridge), without what the kernel changes on its own: lifetimes,
/// carrier, counters.
const SNAPSHOT: &str = r#"snapshot() {
    ip -o addr | awk '{print $2, $3, $4}'
    ip -o route show table all | sed 's/ linkdown//'
    ip -o link | awk '{up = ($3 ~ /[<,]UP[,>]/) ? "up" : "down"; m = ""
        for (i = 4; i < NF; i++) if ($i == "master") m = " master " $(i + 1)
        print $2, up m}'
}
"#;

/// A rootfs that passes ns-process's own checks but fails the init's setup: its `dev` is
/// a file, where the init mounts a tmpfs. `$rootfs`, removed when the script ends.
const BAD_ROOTFS: &str = r#"rootfs=$(mktemp -d); trap 'rm -rf "$rootfs"' EXIT
mkdir "$rootfs/proc"; : > "$rootfs/dev"
"#;

/// After `setup` in a fake host (as root and as uid 65534), runs ns-process with `args`
/// and checks its exit status, that each of `expected` is in its stderr, and that the
/// host's addresses, routes and links are as they were before it ran.
fn assert_host_unchanged(setup: &str, args: &str, code: i32, expected: &[&str]) {
    let script = format!(
        r#"{SNAPSHOT}{BAD_ROOTFS}{setup}
        before=$(snapshot)
        code=0; $NS_PROCESS {args} || code=$?
        echo "code=$code"
        after=$(snapshot)
        if [ "$before" = "$after" ]; then echo host=unchanged
        else printf 'host=changed\n--- before\n%s\n--- after\n%s\n' "$before" "$after"; fi"#
    );
    in_fake_hosts(&script, |label, output| {
        let context = format!("{label}: {args}: {}", describe(output));
        assert_eq!(field(output, "code"), Some(&*code.to_string()), "{context}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for part in expected {
            assert!(stderr.contains(part), "{part:?} missing; {context}");
        }
        assert_eq!(field(output, "host"), Some("unchanged"), "{context}");
    });
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
    let out = stdout_text(&output);
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
    let output = in_unprivileged_fake_host(
        &copy,
        "$NS_PROCESS --net bridge -- sh -c 'ip -o -4 addr show veth1; busybox ping -c1 -W5 10.10.10.1 >/dev/null && echo gateway-reachable'",
    );
    let out = stdout_text(&output);
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
    let out = stdout_text(&output);
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
fn etc_hosts_gives_the_hostname_the_address_the_bridge_gave() {
    if !have("unshare", &["--version"]) {
        return;
    }
    // A copy readable by uid 65534, with the files ns-process binds over already there:
    // a user may not create them in a rootfs of root's.
    let dir = reexec_tests::temp_dir("bridge-hosts");
    let rootfs = dir.path().join("rootfs");
    reexec_tests::or_skip!(
        reexec_tests::busybox_rootfs_copy(env!("CARGO_TARGET_TMPDIR"), &rootfs, (0, 0)),
        "no root filesystem"
    );
    for file in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        std::fs::write(rootfs.join(file), "the rootfs's own\n").unwrap();
    }
    // A first run holds 10.20.30.2 (its link appears once it has its address), so the
    // second gets another: the file follows the address handed out, whatever it is.
    let script = format!(
        r#"$NS_PROCESS --net bridge --subnet 10.20.30.0/24 -- sleep 30 & first=$!
           i=0; until ip link show brg0-2 >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || exit 9; sleep 0.1; done
           $NS_PROCESS --rootfs {rootfs} --net bridge --subnet 10.20.30.0/24 --hostname boxy -- \
               sh -c 'echo "iface=$(ip -o -4 addr show veth1 | tr -s " " | cut -d" " -f4 | cut -d/ -f1)"; cat /etc/hosts'
           kill $first; wait $first || true"#,
        rootfs = rootfs.display()
    );
    in_fake_hosts(&script, |label, output| {
        let out = stdout_text(output);
        assert!(output.status.success(), "{label}: {}", describe(output));
        assert_eq!(field(output, "iface"), Some("10.20.30.3"), "{label}: {out}");
        assert!(
            out.ends_with(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                 10.20.30.3\tboxy\n"
            ),
            "{label}: /etc/hosts: {out}"
        );
    });
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/hosts")).unwrap(),
        "the rootfs's own\n",
        "the rootfs's file is never written"
    );
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
    let out = stdout_text(&output);
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
    let out = stdout_text(&output);
    assert!(
        out.contains("after: lo brg0\n") || out.contains("after: lo\n"),
        "{}",
        describe(&output)
    );
}

#[test]
fn a_link_that_is_not_a_bridge_is_refused_before_anything_changes() {
    if !have("unshare", &["--version"]) {
        return;
    }
    // This machine has no `dummy` link type; one end of a veth pair is as good a
    // non-bridge, up or down.
    assert_host_unchanged(
        "ip link add nsv0 type veth peer name nsv1; ip link set nsv0 up",
        "--net bridge --bridge nsv0 -- true",
        125,
        &[
            "--bridge nsv0 is a veth link, not a bridge",
            "give the name of a bridge",
        ],
    );
}

#[test]
fn a_bridge_that_serves_another_subnet_is_refused_before_anything_changes() {
    if !have("unshare", &["--version"]) {
        return;
    }
    let bridge = "ip link add brg0 type bridge; ip link set brg0 up;";
    assert_host_unchanged(
        &format!("{bridge} ip addr add 10.10.10.1/24 dev brg0"),
        "--net bridge --subnet 10.20.0.0/16 -- true",
        125,
        &[
            "--bridge brg0 already serves 10.10.10.0/24 (it has 10.10.10.1/24), not the asked \
             --subnet 10.20.0.0/16",
            "give --subnet 10.10.10.0/24 to join it",
        ],
    );
    // The same network with another prefix is another subnet too.
    assert_host_unchanged(
        &format!("{bridge} ip addr add 10.10.10.1/16 dev brg0"),
        "--net bridge -- true",
        125,
        &["brg0 already serves 10.10.0.0/16"],
    );
    // A host of the subnet but not its gateway: the children would route through nothing.
    assert_host_unchanged(
        &format!("{bridge} ip addr add 10.10.10.7/24 dev brg0"),
        "--net bridge -- true",
        125,
        &["--bridge brg0 has 10.10.10.7/24, not the gateway 10.10.10.1/24"],
    );
}

#[test]
fn a_start_that_fails_in_the_init_takes_back_what_it_added() {
    if !have("unshare", &["--version"]) {
        return;
    }
    // The run creates the bridge with its gateway; the init then fails its setup.
    assert_host_unchanged(
        "",
        r#"-v --net bridge --rootfs "$rootfs" -- true"#,
        125,
        &[
            "added bridge brg0, 10.10.10.1/24 on brg0",
            "dev",
            "the command never started; took back bridge brg0",
        ],
    );
    // A bridge of the host's, down and without an address, with a link of the host's on
    // it: the run adds the gateway and sets it up, and takes both back. The link that
    // was there before is no user the run must leave them for.
    assert_host_unchanged(
        "ip link add brg0 type bridge; ip link add hp0 type veth peer name hp1
         ip link set hp0 master brg0",
        r#"-v --net bridge --rootfs "$rootfs" -- true"#,
        125,
        &["took back 10.10.10.1/24 on brg0, brg0 up"],
    );
    // The command is not found: it never ran either.
    assert_host_unchanged(
        "",
        "-v --net bridge -- /nonexistent/command",
        127,
        &["not found", "took back bridge brg0"],
    );
}

#[test]
fn a_start_that_fails_in_the_parent_takes_back_what_it_added() {
    if !have("unshare", &["--version"]) {
        return;
    }
    // A /30 has one address for a child, claimed by the link name nsb-2, taken here: the
    // parent_setup hook finds no free address after the run made the bridge.
    assert_host_unchanged(
        "ip link add nsb-2 type veth peer name nsbpeer",
        "-v --net bridge --bridge nsb --subnet 10.30.0.0/30 -- true",
        125,
        &[
            "no free address left in 10.30.0.0/30 on nsb",
            "took back bridge nsb",
        ],
    );
}

#[test]
fn a_failed_start_never_takes_the_bridge_from_a_run_that_uses_it() {
    if !have("busybox", &["true"]) || !have("unshare", &["--version"]) {
        return;
    }
    // A run that will fail in its init creates the bridge; as soon as the bridge is
    // there, a run that needs its gateway starts, and attaches once the failing run has
    // let go of the bridge's lock, before that run's init has failed. The failing run
    // must then leave the bridge and its gateway to it.
    let script = format!(
        r#"{BAD_ROOTFS}
        for i in 1 2 3 4 5 6 7 8 9 10; do
          $NS_PROCESS --net bridge --rootfs "$rootfs" -- true 2>/dev/null &
          failing=$!
          n=0; until ip link show brg0 >/dev/null 2>&1 || [ $n = 3000 ]; do n=$((n + 1)); done
          if $NS_PROCESS --net bridge -- busybox ping -c1 -W3 10.10.10.1 >/dev/null; then
            echo reached=yes
          else
            echo reached=no
          fi
          wait $failing || true
          ip link del brg0 2>/dev/null || true
        done"#
    );
    in_fake_hosts(&script, |label, output| {
        let context = format!("{label}: {}", describe(output));
        let reached = reexec_tests::fields(output, "reached");
        assert_eq!(reached.len(), 10, "{context}");
        assert!(reached.iter().all(|&yes| yes == "yes"), "{context}");
    });
}

#[test]
fn the_start_report_reaches_the_init_and_not_the_command() {
    if !have("unshare", &["--version"]) {
        return;
    }
    // The init gets the pipe's end as 4, after the one descriptor preserved; the command
    // must see 3 only. That the run kept the bridge shows the init did report its start.
    let script = r#"$NS_PROCESS --net bridge --preserve-fds 1 -- sh -c '
          printf "open:"; for fd in 3 4 5 6 7 8 9 10; do [ -e /proc/$$/fd/$fd ] && printf " $fd"; done; echo' 3</dev/null
        echo "bridge=$(ip -o -4 addr show brg0 | awk '{print $4}')""#;
    in_fake_hosts(script, |label, output| {
        let context = format!("{label}: {}", describe(output));
        assert!(stdout_text(output).contains("open: 3\n"), "{context}");
        assert_eq!(field(output, "bridge"), Some("10.10.10.1/24"), "{context}");
    });
}
