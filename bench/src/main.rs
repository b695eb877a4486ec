//! `reexec-bench`: what a re-exec and a namespaced spawn cost, each against a baseline
//! measured in the same run (issue 6). `scripts/bench` builds it with the binaries it
//! compares against and runs it; `BENCHMARKS.md` explains every row of its table.
//!
//! The binary measures itself: `reexec::Command` re-executes this very program, so the
//! baseline, `std::process::Command`, runs this program too, with a flag that exits at once.

mod runtimes;
mod spawns;
mod stats;
mod typed_calls;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use spawns::{EXIT_NOW, Kind, fail};
use stats::{Samples, field};

const USAGE: &str = "\
usage: reexec-bench [--quick | --once KIND [COUNT] | --runtimes [--quick]]

Prints one Markdown table: each figure with the baseline measured in the same run and
their ratio. --quick runs a few samples of everything (a smoke test, not figures).
--once KIND [COUNT] spawns COUNT children of one KIND (std, plain, ns, ns-no-net, or
typed: a typed call of item 7) and nothing else, for profilers. --runtimes measures
items 10 and 11 alone (OCI runtimes; as root).";

reexec::main! {
    fn main() -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.first().map(String::as_str) {
            Some(EXIT_NOW) => ExitCode::SUCCESS,
            None => run(false, false),
            Some("--quick") => run(true, false),
            Some("--runtimes") => run(args.get(1).is_some_and(|arg| arg == "--quick"), true),
            // For profilers: `strace -f reexec-bench --once plain` shows one spawn alone.
            Some("--once") if args.get(1).is_some_and(|name| name == "typed") => {
                let count = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
                typed_calls::once(count);
                ExitCode::SUCCESS
            }
            Some("--once") => {
                let kind = args.get(1).and_then(|name| Kind::parse(name));
                let kind = kind.unwrap_or_else(|| fail("--once takes std, plain, ns or ns-no-net"));
                let count = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1);
                for _ in 0..count {
                    kind.run_once();
                }
                ExitCode::SUCCESS
            }
            Some(_) => {
                eprintln!("{USAGE}");
                ExitCode::from(2)
            }
        }
    }
}

/// How much of everything to measure.
struct Plan {
    /// Rounds of spawns; each round spawns every kind a few times in each of the two
    /// workers.
    spawn_rounds: usize,
    /// How long each threads worker spawns.
    threads_millis: usize,
    /// Repeats of each threads measurement.
    threads_repeats: usize,
    /// Runs of `ns-process -- true` and of `unshare` each.
    tool_runs: usize,
    /// Process starts of each dispatch binary.
    dispatch_starts: usize,
    /// Whole runs of each round-trip program against its Go twin (items 7, 9 and 12), and
    /// of the fork-server round trips against `posix_spawn` (item 13).
    peer_runs: usize,
    /// Round trips per run of the round-trip programs: plain, and namespaced.
    peer_round_trips: [usize; 2],
    /// Rounds of typed calls: one plain round trip, one typed call, ten pool calls each.
    typed_rounds: usize,
    /// Create+start+delete cycles of each OCI runtime (item 10).
    runtime_runs: usize,
    /// `podman run --rm` with each OCI runtime (item 11).
    podman_runs: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                spawn_rounds: 1,
                threads_millis: 100,
                threads_repeats: 1,
                tool_runs: 4,
                dispatch_starts: 4,
                peer_runs: 1,
                peer_round_trips: [20, 10],
                typed_rounds: 4,
                runtime_runs: 3,
                podman_runs: 1,
            }
        } else {
            Plan {
                spawn_rounds: 24,
                threads_millis: 1000,
                threads_repeats: 5,
                tool_runs: 80,
                dispatch_starts: 100,
                peer_runs: 15,
                peer_round_trips: [400, 200],
                typed_rounds: 200,
                runtime_runs: 40,
                podman_runs: 5,
            }
        }
    }
}

/// The whole benchmark, or with `only_runtimes` items 10 and 11 alone.
fn run(quick: bool, only_runtimes: bool) -> ExitCode {
    let idle = idle_percent();
    let started = Instant::now();
    let plan = Plan::new(quick);
    let mut table = Table::default();
    if !only_runtimes {
        every_item_but_runtimes(&plan, &mut table);
    }
    progress("OCI runtimes: create+start+delete, and podman run --rm (items 10 and 11)");
    runtimes::runtime_rows(&plan, &mut table);

    println!("{}", machine_line());
    println!(
        "idle before the run: {idle:.0} % of CPU time over one second{}",
        if idle < 80.0 {
            " — the machine was busy: figures are not to be quoted"
        } else {
            ""
        }
    );
    println!();
    table.print();
    println!();
    println!(
        "took {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if quick {
            " (--quick: too few samples to quote)"
        } else {
            ""
        }
    );
    ExitCode::SUCCESS
}

/// Items 1 to 9, 12 and 13.
fn every_item_but_runtimes(plan: &Plan, table: &mut Table) {
    progress("spawns from a parent of 16 MiB and of 2 GiB resident (items 1, 2, 3)");
    spawn_rows(plan, table);
    progress("spawns per second from 1, 2 and 8 threads (item 4)");
    thread_rows(plan, table);
    progress("dispatch with 1 and 10,000 entries (item 5)");
    dispatch_rows(plan, table);
    progress("ns-process -- true against unshare -Urmunpif --mount-proc true (item 6)");
    tool_rows(plan, table);
    progress("round trips against Go's reexec, from whole programs (items 7, 9 and 12)");
    peer_rows(plan, table);
    progress("fork-server round trips against posix_spawn of a static C program (item 13)");
    lean_rows(plan, table);
    progress("typed calls and pool calls against a plain round trip (item 8)");
    typed_rows(plan, table);
}

fn progress(what: &str) {
    eprintln!("reexec-bench: {what}…");
}

/// Runs this binary's `bench-worker` entry with `args`; its standard output.
fn worker(args: &[String]) -> String {
    let output = reexec::Command::new("bench-worker")
        .args(args)
        .stderr(reexec::Stdio::inherit())
        .output()
        .unwrap_or_else(|error| fail(&format!("starting a worker: {error}")));
    if !output.status.success() {
        fail(&format!("worker {args:?} ended with {}", output.status));
    }
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Items 1, 2 and 3: every kind of spawn from two workers alive at once, one of 16 MiB
/// and one of 2 GiB resident, taking turns round by round.
fn spawn_rows(plan: &Plan, table: &mut Table) {
    use std::io::{BufRead, BufReader, Write};

    const SIZES: [usize; 2] = [16, 2048];
    let mut workers: Vec<_> = SIZES
        .into_iter()
        .map(|mib| {
            let mut child = reexec::Command::new("bench-worker")
                .args(["spawn".to_owned(), mib.to_string()])
                .stdin(reexec::Stdio::piped())
                .stdout(reexec::Stdio::piped())
                .spawn()
                .unwrap_or_else(|error| fail(&format!("starting a worker: {error}")));
            let input = child
                .stdin
                .take()
                .unwrap_or_else(|| fail("no worker stdin"));
            let output = child
                .stdout
                .take()
                .unwrap_or_else(|| fail("no worker stdout"));
            (child, input, BufReader::new(output))
        })
        .collect();
    let expect = |reader: &mut BufReader<std::process::ChildStdout>, word: &str| {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim() != word {
            fail(&format!("a worker said {line:?} instead of {word:?}"));
        }
    };
    for (_, _, output) in &mut workers {
        expect(output, "ready");
    }
    for round in 0..plan.spawn_rounds {
        // Which size goes first turns too.
        for turn in 0..workers.len() {
            let (_, input, output) = &mut workers[(round + turn) % SIZES.len()];
            if writeln!(input, "round {round}").is_err() {
                fail("a worker stopped listening");
            }
            expect(output, "done");
        }
    }
    let mut samples = [(); 2].map(|()| [(); 4].map(|()| Samples::default()));
    let mut rss_kib = [0usize; 2];
    for (size, (mut child, input, mut output)) in workers.into_iter().enumerate() {
        drop(input);
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut output, &mut text);
        if !child.wait().is_ok_and(|status| status.success()) {
            fail("a spawn worker failed");
        }
        for line in text.lines() {
            let kind = field(line, "kind").and_then(Kind::parse);
            let list = field(line, "samples");
            if let (Some(kind), Some(list)) = (kind, list) {
                let index = Kind::ALL.iter().position(|&k| k == kind).unwrap_or(0);
                samples[size][index].extend(&Samples::decode(list));
                rss_kib[size] = field(line, "rss_kib")
                    .and_then(|kib| kib.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    let [small, big] = &samples;
    let [std_small, plain_small, ns_small, nonet_small] = small;
    let [std_big, plain_big, ns_big, nonet_big] = big;
    let small_label = format!("{} MiB", rss_kib[0] >> 10);
    let big_label = format!("{} MiB", rss_kib[1] >> 10);

    table.timed(
        "1",
        "`std::process::Command`, this binary with a flag that exits at once",
        std_small,
        None,
    );
    table.timed(
        "1",
        "`reexec::Command` into an entry that returns at once",
        plain_small,
        Some(Ratio::new(std_small, "1 std", Target::AtMost(1.05))),
    );
    table.timed(
        "2",
        "… in new user (root mapped), mount, UTS, IPC, PID, net namespaces; sets the hostname",
        ns_small,
        Some(Ratio::new(plain_small, "1 reexec", Target::None)),
    );
    table.timed(
        "2",
        "… the same without the network namespace",
        nonet_small,
        Some(Ratio::new(plain_small, "1 reexec", Target::None)),
    );
    for (what, big, small) in [
        ("std", std_big, std_small),
        ("plain", plain_big, plain_small),
        ("namespaced", ns_big, ns_small),
        ("namespaced, no net", nonet_big, nonet_small),
    ] {
        let target = if what == "std" {
            Target::None
        } else {
            Target::AtMost(1.10)
        };
        table.timed(
            "3",
            &format!("{what} spawn from a parent of {big_label} resident"),
            big,
            Some(Ratio::new(small, &format!("same at {small_label}"), target)),
        );
    }
}

/// Item 4: spawns per second from 1, 2 and 8 threads at once, each thread waiting for
/// its own children; the median of a few repeats.
fn thread_rows(plan: &Plan, table: &mut Table) {
    for threads in [1usize, 2, 8] {
        let mut rates = [Vec::new(), Vec::new(), Vec::new()];
        let kinds = [Kind::Std, Kind::Plain, Kind::Ns];
        for _ in 0..plan.threads_repeats {
            for (rate, kind) in rates.iter_mut().zip(kinds) {
                let out = worker(&[
                    "threads".into(),
                    threads.to_string(),
                    kind.name().into(),
                    plan.threads_millis.to_string(),
                ]);
                let spawns: f64 = field(&out, "spawns")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0.0);
                let nanos: f64 = field(&out, "nanos")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(f64::NAN);
                rate.push(spawns / (nanos / 1e9));
            }
        }
        let [std_rate, plain_rate, ns_rate] = rates.map(|mut rate| {
            rate.sort_by(f64::total_cmp);
            rate[rate.len() / 2]
        });
        let label = if threads == 1 { "thread" } else { "threads" };
        table.rate(
            "4",
            &format!("`std::process::Command` from {threads} {label}"),
            std_rate,
            None,
        );
        table.rate(
            "4",
            &format!("`reexec::Command`, no namespaces, from {threads} {label}"),
            plain_rate,
            Some((std_rate, format!("4 std, {threads} {label}"))),
        );
        table.rate(
            "4",
            &format!("`reexec::Command`, namespaced (item 2), from {threads} {label}"),
            ns_rate,
            Some((plain_rate, format!("4 reexec, {threads} {label}"))),
        );
    }
}

/// A binary built next to this one, if it is there.
fn sibling(name: &str) -> Option<PathBuf> {
    let path = std::env::current_exe().ok()?.with_file_name(name);
    path.exists().then_some(path)
}

/// Item 5: the first call of `reexec::dispatch()`, finding no entry, in a binary with
/// one entry and in one with 10,000 — timed inside each start — and the whole start.
fn dispatch_rows(plan: &Plan, table: &mut Table) {
    let (Some(one), Some(many)) = (sibling("dispatch-one"), sibling("dispatch-many")) else {
        table.missing("5", "dispatch-one and dispatch-many");
        return;
    };
    // The first call's nanoseconds and page faults, from each start.
    let start = |binary: &PathBuf, first_call: &mut Samples, faults: &mut Samples| {
        let output = std::process::Command::new(binary)
            .arg("--report")
            .output()
            .unwrap_or_else(|error| fail(&format!("{}: {error}", binary.display())));
        let text = String::from_utf8_lossy(&output.stdout);
        let number = |key| field(&text, key).and_then(|n| n.parse().ok());
        match (number("first_call_ns"), number("faults")) {
            (Some(ns), Some(count)) if output.status.success() => {
                first_call.0.push(ns);
                faults.0.push(count);
            }
            _ => fail(&format!("{}: no figure in {text:?}", binary.display())),
        }
    };
    let [mut one_call, mut many_call, mut one_faults, mut many_faults] =
        [(); 4].map(|()| Samples::default());
    let [mut one_start, mut many_start] = [(); 2].map(|()| Samples::default());
    for _ in 0..plan.dispatch_starts {
        one_start.time(|| start(&one, &mut one_call, &mut one_faults));
        many_start.time(|| start(&many, &mut many_call, &mut many_faults));
    }
    table.nanos(
        "5",
        &format!(
            "first `reexec::dispatch()` of a start, finding no entry, 1 entry registered \
             ({:.0} page faults)",
            one_faults.median()
        ),
        &one_call,
        Some(Ratio::fixed(1000.0, "1 µs", Target::Below(1.0))),
    );
    table.nanos(
        "5",
        &format!(
            "… 10,000 entries registered ({:.0} page faults)",
            many_faults.median()
        ),
        &many_call,
        Some(Ratio::new(&one_call, "1 entry", Target::None)),
    );
    let instructions = [&one, &many].map(callgrind_dispatch_instructions);
    match instructions {
        [Some(one_count), Some(many_count)] => {
            table.count(
                "5",
                "instructions of that call, 1 entry (callgrind)",
                one_count,
                None,
            );
            table.count(
                "5",
                "instructions of that call, 10,000 entries (callgrind)",
                many_count,
                Some(Ratio::fixed(one_count as f64, "1 entry", Target::None)),
            );
        }
        _ => table.missing("5", "instruction counts: valgrind"),
    }
    table.timed(
        "5",
        "whole start and exit of the 1-entry binary",
        &one_start,
        None,
    );
    table.timed(
        "5",
        "whole start and exit of the 10,000-entry binary",
        &many_start,
        Some(Ratio::new(&one_start, "1 entry", Target::None)),
    );
}

/// The instructions `reexec::dispatch()` runs in one start of `binary`, as callgrind
/// counts them: a figure that, unlike nanoseconds, the machine's caches and neighbours
/// don't change. `None` without valgrind.
fn callgrind_dispatch_instructions(binary: &PathBuf) -> Option<u64> {
    let output = std::process::Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            "--toggle-collect=reexec::dispatch::dispatch",
        ])
        .arg(binary)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stderr);
    let line = text.lines().find(|line| line.contains("Collected :"))?;
    line.rsplit(':')
        .next()?
        .trim()
        .replace(',', "")
        .parse()
        .ok()
}

/// Item 8: a typed call of a small value, and a call on a pool's worker, against a plain
/// re-exec round trip, all from this process in turns.
fn typed_rows(plan: &Plan, table: &mut Table) {
    let [plain, typed, pooled] = typed_calls::measure(plan.typed_rounds);
    table.timed(
        "8",
        "`reexec::Command` round trip into an entry that returns at once",
        &plain,
        None,
    );
    table.timed(
        "8",
        "typed call of a small struct (`reexec::call`), answer decoded",
        &typed,
        Some(Ratio::new(&plain, "8 plain", Target::AtMost(1.10))),
    );
    table.timed(
        "8",
        "the same call on a `reexec::Pool` worker",
        &pooled,
        Some(Ratio::new(&plain, "8 plain", Target::AtMost(0.10))),
    );
}

/// Item 6: `ns-process -- true` against `unshare -Urmunpif --mount-proc true`, which
/// create the same namespaces, and against bubblewrap's closest equivalent when it is
/// installed, interleaved; each with its page faults (those of everything it waited for).
fn tool_rows(plan: &Plan, table: &mut Table) {
    let Some(ns_process) = sibling("ns-process") else {
        table.missing("6", "ns-process");
        return;
    };
    let words = |line: &str| -> Vec<String> { line.split(' ').map(str::to_owned).collect() };
    let unshare = (
        PathBuf::from("unshare"),
        words("-Urmunpif --mount-proc true"),
    );
    let bwrap = (
        PathBuf::from("bwrap"),
        words("--unshare-all --uid 0 --gid 0 --dev-bind / / --proc /proc true"),
    );
    let ours = (ns_process, words("-- true"));
    let has_bwrap = std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    let mut programs = vec![(unshare, "`unshare -Urmunpif --mount-proc true`")];
    if has_bwrap {
        programs.push((
            bwrap,
            "`bwrap --unshare-all --uid 0 --gid 0 --dev-bind / / --proc /proc true`",
        ));
    }
    // The same run with the init re-executed, as before it was a copy of ns-process
    // (issue 14, item 3): what the copy saves, measured in the same turns.
    let reexecuted = programs.len();
    programs.push((
        ours.clone(),
        "`ns-process -- true`, init re-executed (`NS_PROCESS_INIT=exec`)",
    ));
    // The same, built static-pie (scripts/bench), for information: no loader, no
    // relocations of libc's (issue 14, item 2).
    let static_pie = sibling("ns-process-static").map(|program| {
        programs.push((
            (program, words("-- true")),
            "`ns-process -- true`, built static-pie",
        ));
        programs.len() - 1
    });
    programs.push((ours, "`ns-process -- true`"));
    let environment = |index: usize| -> &[(&str, &str)] {
        if index == reexecuted {
            &[("NS_PROCESS_INIT", "exec")]
        } else {
            &[]
        }
    };
    let mut times = vec![Samples::default(); programs.len()];
    let mut faults = vec![Samples::default(); programs.len()];
    for (index, ((program, args), _)) in programs.iter().enumerate() {
        run_counting_faults_with(program, args, environment(index));
    }
    for _ in 0..plan.tool_runs {
        for (index, ((program, args), _)) in programs.iter().enumerate() {
            times[index].time(|| {
                faults[index]
                    .0
                    .push(run_counting_faults_with(program, args, environment(index)))
            });
        }
    }
    let ours = programs.len() - 1;
    for (index, (_, what)) in programs.iter().enumerate() {
        let what = format!("{what} ({:.0} page faults)", faults[index].median());
        let ratio = match index {
            0 => None,
            _ if index == ours => Some(Ratio::new(&times[0], "6 unshare", Target::Below(1.0))),
            _ => Some(Ratio::new(&times[0], "6 unshare", Target::None)),
        };
        table.timed("6", &what, &times[index], ratio);
    }
    table.timed(
        "6",
        "`ns-process -- true`, init a copy, against re-executed",
        &times[ours],
        Some(Ratio::new(
            &times[reexecuted],
            "6 re-executed init",
            Target::None,
        )),
    );
    match static_pie {
        Some(index) => table.timed(
            "6",
            "`ns-process -- true` built static-pie, against the default build",
            &times[index],
            Some(Ratio::new(&times[ours], "6 ns-process", Target::None)),
        ),
        None => table.not_measured(
            "6",
            "ns-process built static-pie: no ns-process-static (scripts/bench builds it)",
        ),
    }
    if has_bwrap {
        table.timed(
            "6",
            "`ns-process -- true`, against bubblewrap",
            &times[ours],
            Some(Ratio::new(&times[1], "6 bwrap", Target::None)),
        );
    } else {
        table.not_measured("6", "against bubblewrap: no bwrap (Debian: bubblewrap)");
    }
}

/// Runs `program` with `args` to its end and returns its minor page faults, those of the
/// processes it waited for included; a failure ends the benchmark.
fn run_counting_faults(program: &std::path::Path, args: &[String]) -> u64 {
    run_counting_faults_with(program, args, &[])
}

/// A program's timed runs and the page faults of each, which always go together.
#[derive(Default)]
struct Runs {
    times: Samples,
    faults: Samples,
}

impl Runs {
    /// One timed run of `program` with `args`, its page faults counted.
    fn run(&mut self, program: &std::path::Path, args: &[String]) {
        let faults = &mut self.faults;
        self.times
            .time(|| faults.0.push(run_counting_faults(program, args)));
    }

    /// The median run's page faults, per one of its `count` round trips.
    fn faults_per(&self, count: usize) -> f64 {
        self.faults.median() / count as f64
    }
}

/// [`run_counting_faults`] with `environment` added to the program's.
fn run_counting_faults_with(
    program: &std::path::Path,
    args: &[String],
    environment: &[(&str, &str)],
) -> u64 {
    let faults = || {
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
            .map_or(0, |usage| usage.minor_page_faults() as u64)
    };
    let before = faults();
    let output = std::process::Command::new(program)
        .args(args)
        .envs(environment.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|error| fail(&format!("{}: {error}", program.display())));
    if !output.status.success() {
        fail(&format!(
            "{} {args:?} ended with {}: {}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    faults() - before
}

/// Item 7: the same round trips from a `#[tokio::main]` program with `reexec` and from a
/// Go program with moby's `pkg/reexec` (`bench/go/roundtrips`), each timed as a whole
/// process, alternating, with the page faults of each run beside the time: on these
/// machines a start costs what it faults, and faults don't vary with the neighbours.
///
/// Item 9: the same Rust program built static-pie (`-C target-feature=+crt-static`,
/// `roundtrips-static`, which `scripts/bench` builds beside it), taking turns with the two
/// others: what the fastest build a user can choose gives (BENCHMARKS.md, "The fastest
/// binary").
///
/// Item 12: the same default build with `--fork-server`, its children started by
/// `reexec::ForkServer` instead of an execve, in the same turns, and the static-pie build
/// with it too; and, for the plain round trips, the floor of any fork server on the
/// machine: a minimal one in C (`fork-server-floor`, `bench/c/fork_server.c`) whose
/// children only exit, built static, and linked as a default Rust binary is
/// (`fork-server-floor-dynamic`: libc, libm, libgcc_s), the floor of the default build.
fn peer_rows(plan: &Plan, table: &mut Table) {
    let (Some(ours), Some(go)) = (sibling("roundtrips"), sibling("roundtrips-go")) else {
        table.missing("7", "roundtrips and roundtrips-go (Go: golang-go)");
        return;
    };
    let ours_static = sibling("roundtrips-static");
    let floor = sibling("fork-server-floor");
    let dynamic_floor = sibling("fork-server-floor-dynamic");
    for (mode, count, what, target, forked_target) in [
        (
            "plain",
            plan.peer_round_trips[0],
            "into an entry that returns",
            0.60,
            Target::AtMost(0.25),
        ),
        (
            "ns",
            plan.peer_round_trips[1],
            "in new user (root mapped), mount, UTS, IPC, PID, net namespaces; sets the hostname",
            0.70,
            Target::None,
        ),
    ] {
        let args = [mode.to_owned(), count.to_string()];
        let forked_args = [
            "--fork-server".to_owned(),
            mode.to_owned(),
            count.to_string(),
        ];
        let (mut theirs, mut mine, mut mine_static) =
            (Runs::default(), Runs::default(), Runs::default());
        let (mut forked, mut forked_static) = (Runs::default(), Runs::default());
        let (mut floors, mut dynamic_floors) = (Runs::default(), Runs::default());
        let floor = floor.as_ref().filter(|_| mode == "plain");
        let dynamic_floor = dynamic_floor.as_ref().filter(|_| mode == "plain");
        let floor_args = [count.to_string()];
        run_counting_faults(&go, &args);
        run_counting_faults(&ours, &args);
        run_counting_faults(&ours, &forked_args);
        if let Some(ours_static) = &ours_static {
            run_counting_faults(ours_static, &args);
            run_counting_faults(ours_static, &forked_args);
        }
        for floor in floor.into_iter().chain(dynamic_floor) {
            run_counting_faults(floor, &floor_args);
        }
        for _ in 0..plan.peer_runs {
            theirs.run(&go, &args);
            mine.run(&ours, &args);
            if let Some(ours_static) = &ours_static {
                mine_static.run(ours_static, &args);
            }
            forked.run(&ours, &forked_args);
            if let Some(ours_static) = &ours_static {
                forked_static.run(ours_static, &forked_args);
            }
            if let Some(floor) = floor {
                floors.run(floor, &floor_args);
            }
            if let Some(floor) = dynamic_floor {
                dynamic_floors.run(floor, &floor_args);
            }
        }
        table.timed(
            "7",
            &format!(
                "Go `reexec.Command(…).Run()`, {count} round trips {what} ({:.0} page faults each)",
                theirs.faults_per(count)
            ),
            &theirs.times,
            None,
        );
        table.timed(
            "7",
            &format!(
                "`reexec::Command` from `#[tokio::main]`, the same ({:.0} page faults each)",
                mine.faults_per(count)
            ),
            &mine.times,
            Some(Ratio::new(&theirs.times, "7 Go", Target::AtMost(target))),
        );
        if ours_static.is_none() {
            table.missing("9", "roundtrips-static (static-pie, glibc's libc.a)");
        } else {
            table.timed(
                "9",
                &format!(
                    "… the same program built static-pie ({:.0} page faults each)",
                    mine_static.faults_per(count)
                ),
                &mine_static.times,
                Some(Ratio::new(&mine.times, "7 reexec", Target::None)),
            );
            table.timed(
                "9",
                "… static-pie, against Go",
                &mine_static.times,
                Some(Ratio::new(&theirs.times, "7 Go", Target::AtMost(target))),
            );
        }
        table.timed(
            "12",
            &format!(
                "… the default build, children started by its fork server ({:.1} page faults each)",
                forked.faults_per(count)
            ),
            &forked.times,
            Some(Ratio::new(&mine.times, "7 reexec", Target::None)),
        );
        table.timed(
            "12",
            "… fork server, against Go",
            &forked.times,
            Some(Ratio::new(&theirs.times, "7 Go", forked_target)),
        );
        if ours_static.is_some() {
            table.timed(
                "12",
                &format!(
                    "… built static-pie, children started by its fork server, against Go \
                     ({:.1} page faults each)",
                    forked_static.faults_per(count)
                ),
                &forked_static.times,
                Some(Ratio::new(&theirs.times, "7 Go", forked_target)),
            );
        }
        if mode != "plain" {
            continue;
        }
        if floor.is_none() {
            table.missing("12", "fork-server-floor (a C compiler, glibc's libc.a)");
        } else {
            table.timed(
                "12",
                &format!(
                    "a minimal fork server in C, the same count, children that only exit: \
                     the floor ({:.1} page faults each)",
                    floors.faults_per(count)
                ),
                &floors.times,
                Some(Ratio::new(&theirs.times, "7 Go", Target::None)),
            );
            table.timed(
                "12",
                "… our fork server, against that floor",
                &forked.times,
                Some(Ratio::new(&floors.times, "12 C floor", Target::None)),
            );
            if ours_static.is_some() {
                table.timed(
                    "12",
                    "… our fork server built static-pie, against that floor",
                    &forked_static.times,
                    Some(Ratio::new(&floors.times, "12 C floor", Target::None)),
                );
            }
        }
        if dynamic_floor.is_none() {
            table.missing("12", "fork-server-floor-dynamic (a C compiler)");
            continue;
        }
        table.timed(
            "12",
            &format!(
                "the same C fork server linked as a default Rust binary is (libc, libm, \
                 libgcc_s): the default build's floor ({:.1} page faults each)",
                dynamic_floors.faults_per(count)
            ),
            &dynamic_floors.times,
            Some(Ratio::new(&theirs.times, "7 Go", Target::None)),
        );
        table.timed(
            "12",
            "… our fork server (default build), against that floor",
            &forked.times,
            Some(Ratio::new(
                &dynamic_floors.times,
                "12 C floor, dynamic",
                Target::None,
            )),
        );
    }
}

/// Item 13: fork-server round trips against the floor of a process start — `posix_spawn`
/// and `waitpid` of a static C program that exits at once (`exit-static`, which
/// `scripts/bench` builds with `cc -static -O2`) — the same count from the same
/// `#[tokio::main]` program, so that both runs pay the same start-up, alternated.
fn lean_rows(plan: &Plan, table: &mut Table) {
    let (Some(ours), Some(floor)) = (sibling("roundtrips"), sibling("exit-static")) else {
        table.missing(
            "13",
            "roundtrips and exit-static (a C compiler, glibc's libc.a)",
        );
        return;
    };
    let count = plan.peer_round_trips[0];
    let spawn_args = [
        "posix-spawn".to_owned(),
        count.to_string(),
        floor.to_string_lossy().into_owned(),
    ];
    let forked_args = [
        "--fork-server".to_owned(),
        "plain".to_owned(),
        count.to_string(),
    ];
    let (mut spawns, mut forked) = (Runs::default(), Runs::default());
    run_counting_faults(&ours, &spawn_args);
    run_counting_faults(&ours, &forked_args);
    for _ in 0..plan.peer_runs {
        spawns.run(&ours, &spawn_args);
        forked.run(&ours, &forked_args);
    }
    table.timed(
        "13",
        &format!(
            "`posix_spawn`+`waitpid` of a static C program that exits at once, {count} from \
             `#[tokio::main]` ({:.1} page faults each)",
            spawns.faults_per(count)
        ),
        &spawns.times,
        None,
    );
    table.timed(
        "13",
        &format!(
            "fork-server round trips into an entry that returns, the same count ({:.1} page \
             faults each)",
            forked.faults_per(count)
        ),
        &forked.times,
        Some(Ratio::new(
            &spawns.times,
            "13 posix_spawn",
            Target::AtMost(2.0),
        )),
    );
}

/// The share of CPU time the whole machine spent idle over one second, from `/proc/stat`:
/// other work on the machine skews every figure, so the table says how quiet it was.
fn idle_percent() -> f64 {
    let sample = || -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let times: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        Some((times.get(3)? + times.get(4)?, times.iter().sum()))
    };
    let before = sample();
    std::thread::sleep(std::time::Duration::from_secs(1));
    match (before, sample()) {
        (Some((idle0, total0)), Some((idle1, total1))) if total1 > total0 => {
            100.0 * (idle1 - idle0) as f64 / (total1 - total0) as f64
        }
        _ => f64::NAN,
    }
}

fn machine_line() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let load = read("/proc/loadavg");
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "machine: {cpus} CPUs, Linux {}, load average {} at the end of the run",
        kernel.trim(),
        load.join(" ")
    )
}

/// What a row's ratio must be for its target to be met.
#[derive(Clone, Copy)]
enum Target {
    None,
    AtMost(f64),
    Below(f64),
}

impl Target {
    /// Whether `ratio`, whose bootstrap interval is `interval` where there is one, meets
    /// the target: "met" or "missed" when the whole interval is on one side of the limit,
    /// "within noise" when it holds the limit.
    fn verdict(self, ratio: f64, interval: Option<(f64, f64)>) -> String {
        let (sign, limit, meets): (&str, f64, fn(f64, f64) -> bool) = match self {
            Target::None => return String::new(),
            Target::AtMost(limit) => ("≤", limit, |ratio, limit| ratio <= limit),
            Target::Below(limit) => ("<", limit, |ratio, limit| ratio < limit),
        };
        let (low, high) = interval.unwrap_or((ratio, ratio));
        let word = match (meets(high, limit), meets(low, limit)) {
            (true, _) => "met",
            (false, false) => "**missed**",
            (false, true) => "within noise",
        };
        format!("{sign} {limit:.2}: {word}")
    }
}

/// A row's figure divided by its baseline's.
struct Ratio {
    baseline: f64,
    /// The baseline's samples, for the ratio's interval; `None` for a fixed baseline.
    baseline_samples: Option<Samples>,
    against: String,
    target: Target,
}

impl Ratio {
    fn new(baseline: &Samples, against: &str, target: Target) -> Ratio {
        Ratio {
            baseline_samples: Some(baseline.clone()),
            ..Ratio::fixed(baseline.median(), against, target)
        }
    }

    fn fixed(baseline: f64, against: &str, target: Target) -> Ratio {
        Ratio {
            baseline,
            baseline_samples: None,
            against: against.into(),
            target,
        }
    }

    /// The 90 % interval of `samples`' median over this baseline (see
    /// [`stats::ratio_interval`]); a fixed baseline divides the row's own interval.
    fn interval(&self, samples: &Samples) -> Option<(f64, f64)> {
        match &self.baseline_samples {
            Some(baseline) => stats::ratio_interval(samples, baseline),
            None => stats::ratio_interval(samples, &Samples(vec![1]))
                .map(|(low, high)| (low / self.baseline, high / self.baseline)),
        }
    }
}

/// The rows printed at the end, as a Markdown table.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 7]>,
}

impl Table {
    fn timed(&mut self, item: &str, what: &str, samples: &Samples, ratio: Option<Ratio>) {
        let micros = |ns: f64| format!("{:.0} µs", ns / 1e3);
        let spread = format!(
            "{:.0}–{:.0}",
            samples.quantile(0.25) / 1e3,
            samples.quantile(0.75) / 1e3
        );
        let median = samples.median();
        self.push(
            item,
            what,
            format!("{} (n={})", micros(median), samples.0.len()),
            format!("{} / {spread}", micros(samples.min())),
            (median, Some(samples)),
            ratio,
        );
    }

    fn nanos(&mut self, item: &str, what: &str, samples: &Samples, ratio: Option<Ratio>) {
        let nanos = |ns: f64| {
            if ns >= 10_000.0 {
                format!("{:.1} µs", ns / 1e3)
            } else {
                format!("{ns:.0} ns")
            }
        };
        let median = samples.median();
        self.push(
            item,
            what,
            format!("{} (n={})", nanos(median), samples.0.len()),
            format!(
                "{} / {}–{}",
                nanos(samples.min()),
                nanos(samples.quantile(0.25)),
                nanos(samples.quantile(0.75))
            ),
            (median, Some(samples)),
            ratio,
        );
    }

    fn count(&mut self, item: &str, what: &str, count: u64, ratio: Option<Ratio>) {
        self.push(
            item,
            what,
            format!("{count} instructions"),
            "exact".into(),
            (count as f64, None),
            ratio,
        );
    }

    /// A rate, where more is better: the ratio printed is baseline time over ours.
    fn rate(&mut self, item: &str, what: &str, per_second: f64, baseline: Option<(f64, String)>) {
        let ratio = baseline
            .map(|(baseline, against)| Ratio::fixed(1.0 / baseline, &against, Target::None));
        self.push(
            item,
            what,
            format!("{per_second:.0} /s"),
            "median of repeats".into(),
            (1.0 / per_second, None),
            ratio,
        );
    }

    fn missing(&mut self, item: &str, binaries: &str) {
        self.not_measured(
            item,
            &format!("{binaries} not built (scripts/bench builds them)"),
        );
    }

    fn not_measured(&mut self, item: &str, why: &str) {
        self.rows.push([
            item.into(),
            format!("not measured: {why}"),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]);
    }

    fn push(
        &mut self,
        item: &str,
        what: &str,
        figure: String,
        spread: String,
        (value, samples): (f64, Option<&Samples>),
        ratio: Option<Ratio>,
    ) {
        let (ratio_text, against, target) = match ratio {
            None => (String::new(), String::new(), String::new()),
            Some(ratio) => {
                let value = value / ratio.baseline;
                let interval = samples.and_then(|samples| ratio.interval(samples));
                let text = match interval {
                    Some((low, high)) if low < high => format!("{value:.3} ({low:.3}–{high:.3})"),
                    _ => format!("{value:.3}"),
                };
                (text, ratio.against, ratio.target.verdict(value, interval))
            }
        };
        self.rows.push([
            item.into(),
            what.into(),
            figure,
            spread,
            ratio_text,
            against,
            target,
        ]);
    }

    fn print(&self) {
        println!(
            "| # | what | median | min / p25–p75 (µs) | ratio (90 % interval) | against | target |"
        );
        println!("|---|---|---:|---:|---:|---|---|");
        for row in &self.rows {
            println!("| {} |", row.join(" | "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    #[test]
    fn a_target_is_met_or_missed_only_by_the_whole_interval() {
        let at_most = Target::AtMost(0.25);
        assert_eq!(at_most.verdict(0.24, Some((0.23, 0.249))), "≤ 0.25: met");
        assert_eq!(
            at_most.verdict(0.24, Some((0.23, 0.26))),
            "≤ 0.25: within noise"
        );
        assert_eq!(
            at_most.verdict(0.26, Some((0.251, 0.27))),
            "≤ 0.25: **missed**"
        );
        // On the limit counts as meeting "at most", not "below".
        assert_eq!(at_most.verdict(0.25, Some((0.25, 0.25))), "≤ 0.25: met");
        let below = Target::Below(1.0);
        assert_eq!(below.verdict(1.0, Some((1.0, 1.0))), "< 1.00: **missed**");
        assert_eq!(
            below.verdict(0.99, Some((0.98, 1.0))),
            "< 1.00: within noise"
        );
    }

    #[test]
    fn without_an_interval_the_ratio_alone_decides() {
        assert_eq!(Target::AtMost(2.0).verdict(1.5, None), "≤ 2.00: met");
        assert_eq!(Target::AtMost(2.0).verdict(2.5, None), "≤ 2.00: **missed**");
        assert_eq!(Target::None.verdict(1.0, Some((0.5, 2.0))), "");
    }
}
