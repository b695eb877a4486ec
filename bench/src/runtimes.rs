//! Items 10 and 11 (issue 16): OCI runtimes, as the programs a container manager runs.
//! Item 10: create+start+delete of one busybox bundle running `/bin/true`, with
//! ns-runtime and the peers that run here (runc, crun), taking turns. Item 11, for
//! information: `podman run --rm` of the same rootfs, end to end, with each.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::spawns::fail;
use crate::stats::Samples;
use crate::{Plan, Ratio, Table, Target, sibling};

/// The project's `scripts/make-rootfs`, which builds the busybox rootfs.
const MAKE_ROOTFS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/make-rootfs");

/// A runtime that may be measured: its name and path.
struct Runtime {
    name: &'static str,
    path: PathBuf,
}

/// The runtimes to measure, peers first, ns-runtime last; one that is missing or fails
/// its first container gets a row saying why.
fn runtimes(bundle: &Bundle, table: &mut Table) -> Vec<Runtime> {
    let mut found = Vec::new();
    for name in ["runc", "crun"] {
        let Some(path) = on_path(name) else {
            table.not_measured("10", &format!("{name}: not installed (Debian: {name})"));
            continue;
        };
        found.push(Runtime { name, path });
    }
    match sibling("ns-runtime") {
        Some(path) => found.push(Runtime {
            name: "ns-runtime",
            path,
        }),
        None => table.not_measured(
            "10",
            "ns-runtime: not built yet (a binary of ns-process, issue 16)",
        ),
    }
    found.retain(|runtime| match bundle.cycle(runtime, "probe") {
        Ok(_) => true,
        Err(why) => {
            let why = why.lines().next().unwrap_or_default().to_owned();
            table.not_measured("10", &format!("{} does not run here: {why}", runtime.name));
            false
        }
    });
    found
}

/// `name`'s path, if it is on `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
}

/// Items 10 and 11.
pub(crate) fn runtime_rows(plan: &Plan, table: &mut Table) {
    if !nix::unistd::geteuid().is_root() {
        table.not_measured(
            "10",
            "OCI runtimes: run as root (rootless runtimes are not measured)",
        );
        return;
    }
    let bundle = match Bundle::new() {
        Ok(bundle) => bundle,
        Err(why) => {
            table.not_measured("10", &why);
            return;
        }
    };
    let runtimes = runtimes(&bundle, table);
    let mut times = vec![Samples::default(); runtimes.len()];
    let mut faults = vec![Samples::default(); runtimes.len()];
    for run in 0..plan.runtime_runs {
        for (index, runtime) in runtimes.iter().enumerate() {
            let id = format!("bench-{run}");
            times[index].time(|| match bundle.cycle(runtime, &id) {
                Ok(count) => faults[index].0.push(count),
                Err(why) => fail(&format!("{}: {why}", runtime.name)),
            });
        }
    }
    let fastest_peer = runtimes
        .iter()
        .enumerate()
        .filter(|(_, runtime)| runtime.name != "ns-runtime")
        .min_by(|(a, _), (b, _)| times[*a].median().total_cmp(&times[*b].median()))
        .map(|(index, runtime)| (index, runtime.name));
    for (index, runtime) in runtimes.iter().enumerate() {
        let what = format!(
            "`{} create`+`start`+`delete --force`, a busybox bundle running /bin/true ({:.0} page faults)",
            runtime.name,
            faults[index].median()
        );
        let ratio = match fastest_peer {
            Some((peer, name)) if runtime.name == "ns-runtime" => Some(Ratio::new(
                &times[peer],
                &format!("10 {name}"),
                Target::AtMost(1.0),
            )),
            Some((peer, name)) if peer != index => Some(Ratio::new(
                &times[peer],
                &format!("10 {name}"),
                Target::None,
            )),
            _ => None,
        };
        table.timed("10", &what, &times[index], ratio);
    }
    podman_rows(plan, &bundle, &runtimes, table);
}

/// A bundle (`config.json` as `runc spec` writes it, with `/bin/true`, no terminal, and
/// a cgroup below the benchmark's own) and a state directory per runtime, in a temporary
/// directory removed on drop with the cgroups the runtimes left.
struct Bundle {
    dir: PathBuf,
    cgroups: Cgroups,
}

impl Bundle {
    fn new() -> Result<Bundle, String> {
        let runc = on_path("runc")
            .ok_or("OCI runtimes: no runc, whose `runc spec` makes the bundle (Debian: runc)")?;
        let dir = std::env::temp_dir().join(format!("reexec-bench-bundle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
        let cgroups = Cgroups::below_own("reexec-bench-runtimes")?;
        let bundle = Bundle { dir, cgroups };
        let made = Command::new("bash")
            .arg(MAKE_ROOTFS)
            .arg(bundle.dir.join("rootfs"))
            .output()
            .map_err(|error| format!("make-rootfs: {error}"))?;
        if !made.status.success() {
            return Err(format!(
                "make-rootfs: {}",
                String::from_utf8_lossy(&made.stderr)
            ));
        }
        let spec = Command::new(runc)
            .arg("spec")
            .current_dir(&bundle.dir)
            .output()
            .map_err(|error| format!("runc spec: {error}"))?;
        if !spec.status.success() {
            return Err(format!(
                "runc spec: {}",
                String::from_utf8_lossy(&spec.stderr)
            ));
        }
        let path = bundle.dir.join("config.json");
        let text =
            std::fs::read_to_string(&path).map_err(|error| format!("config.json: {error}"))?;
        let mut config: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| format!("config.json: {error}"))?;
        config["process"]["terminal"] = false.into();
        config["process"]["args"] = serde_json::json!(["/bin/true"]);
        config["linux"]["cgroupsPath"] = format!("{}/container", bundle.cgroups.path).into();
        std::fs::write(&path, config.to_string())
            .map_err(|error| format!("config.json: {error}"))?;
        Ok(bundle)
    }

    /// One create, start and delete of container `id`; the page faults of the three, or
    /// why one failed (after a `delete --force`, so the next may use the bundle).
    fn cycle(&self, runtime: &Runtime, id: &str) -> Result<u64, String> {
        let state = self.dir.join(format!("state-{}", runtime.name));
        let run = |args: &[&str]| -> Result<u64, String> {
            let mut all = vec!["--root".to_owned(), state.to_string_lossy().into_owned()];
            all.extend(args.iter().map(|arg| (*arg).to_owned()));
            counting_faults(&runtime.path, &all, &self.dir)
        };
        let bundle = self.dir.to_string_lossy().into_owned();
        let result = run(&["create", "--bundle", &bundle, id])
            .and_then(|create| Ok(create + run(&["start", id])?))
            .and_then(|so_far| Ok(so_far + run(&["delete", "--force", id])?));
        if result.is_err() {
            let _ = run(&["delete", "--force", id]);
        }
        result
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Like [`crate::run_counting_faults`], from `dir`, with a failure returned, not fatal.
/// Standard output goes to /dev/null and standard error to a file: `create` hands them to
/// the container's process, which would hold a pipe open until `start`.
fn counting_faults(program: &Path, args: &[String], dir: &Path) -> Result<u64, String> {
    let faults = || {
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
            .map_or(0, |usage| usage.minor_page_faults() as u64)
    };
    let errors = dir.join("stderr");
    let file =
        std::fs::File::create(&errors).map_err(|error| format!("{}: {error}", errors.display()))?;
    let before = faults();
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .status()
        .map_err(|error| format!("{}: {error}", program.display()))?;
    let count = faults() - before;
    if !status.success() {
        let text = std::fs::read_to_string(&errors).unwrap_or_default();
        return Err(format!("{status}: {}", text.trim()));
    }
    Ok(count)
}

/// Item 11, for information: `podman run --rm IMAGE /bin/true` with each runtime, podman
/// kept off the host's own state as the tests' `Podman` keeps it (tests/src/podman.rs
/// says why each setting): storage, configuration, locks and temporary files in a
/// directory of its own, vfs, no network, cgroups below the benchmark's own.
fn podman_rows(plan: &Plan, bundle: &Bundle, runtimes: &[Runtime], table: &mut Table) {
    if on_path("podman").is_none() || on_path("conmon").is_none() {
        table.not_measured(
            "11",
            "podman run --rm: no podman or conmon (Debian: podman)",
        );
        return;
    }
    let dir = bundle.dir.join("podman");
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    for subdir in ["root", "runroot", "tmp", "work", "bin", "networks"] {
        std::fs::create_dir_all(dir.join(subdir)).unwrap_or_else(|error| fail(&error.to_string()));
    }
    let files = [
        (
            "containers.conf",
            format!(
                "[network]\nnetwork_config_dir = {:?}\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\nlock_type = \"file\"\ntmp_dir = {:?}\n\
                 image_copy_tmp_dir = {:?}\nruntime_supports_json = [\"crun\", \"runc\", \"ns-runtime\"]\n",
                path("networks"),
                path("tmp"),
                path("tmp")
            ),
        ),
        (
            "storage.conf",
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = {:?}\nrunroot = {:?}\n",
                path("root"),
                path("runroot")
            ),
        ),
        (
            "registries.conf",
            "unqualified-search-registries = []\n".to_owned(),
        ),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap_or_else(|error| fail(&error.to_string()));
    }
    // The runtime's state beside the rest: conmon's `podman container cleanup` would not
    // pass a `--runtime-flag`, so a wrapper of the runtime's name adds `--root`.
    for runtime in runtimes {
        let script = format!(
            "#!/bin/sh\nexec {} --root {} \"$@\"\n",
            shell_quote(&runtime.path.to_string_lossy()),
            shell_quote(&path(&format!("state-{}", runtime.name)))
        );
        let wrapper = dir.join("bin").join(runtime.name);
        std::fs::write(&wrapper, script).unwrap_or_else(|error| fail(&error.to_string()));
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755));
    }
    let environment = [
        ("CONTAINERS_CONF", path("containers.conf")),
        ("CONTAINERS_STORAGE_CONF", path("storage.conf")),
        ("CONTAINERS_REGISTRIES_CONF", path("registries.conf")),
        ("TMPDIR", path("tmp")),
    ];
    let podman = |runtime: &Runtime, args: &[&str]| -> Vec<String> {
        let mut words: Vec<String> = [
            "podman",
            "--root",
            &path("root"),
            "--runroot",
            &path("runroot"),
            "--storage-driver",
            "vfs",
            "--tmpdir",
            &path("tmp"),
            "--events-backend",
            "file",
            "--cgroup-manager",
            "cgroupfs",
            "--runtime",
            &path(&format!("bin/{}", runtime.name)),
        ]
        .map(str::to_owned)
        .to_vec();
        words.extend(args.iter().map(|arg| (*arg).to_owned()));
        words
    };
    let command = |words: &[String]| {
        let mut command = Command::new(&words[0]);
        command
            .args(&words[1..])
            .envs(environment.clone())
            .current_dir(dir.join("work"))
            .stdin(std::process::Stdio::null());
        command
    };
    let Some(first) = runtimes.first() else {
        table.not_measured("11", "podman run --rm: no runtime runs here");
        return;
    };
    // podman import writes a blob cache to /var/lib/containers/cache whatever --root
    // says: it runs where /var/lib is a tmpfs of its own.
    let tarball = path("rootfs.tar");
    let tar = Command::new("tar")
        .args([
            "-C",
            &bundle.dir.join("rootfs").to_string_lossy(),
            "-cf",
            &tarball,
            ".",
        ])
        .status();
    let import = podman(
        first,
        &["import", &tarball, "localhost/reexec-bench:busybox"],
    );
    let import: Vec<String> = import.iter().map(|word| shell_quote(word)).collect();
    let imported =
        command(&["unshare", "--mount", "--propagation", "private", "sh", "-c"].map(str::to_owned))
            .arg(format!(
                "mount -t tmpfs -o mode=0755 reexec-bench-import /var/lib && exec {}",
                import.join(" ")
            ))
            .output();
    if !tar.is_ok_and(|status| status.success())
        || !imported
            .as_ref()
            .is_ok_and(|output| output.status.success())
    {
        let why = imported.map_or_else(
            |error| error.to_string(),
            |output| String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        table.not_measured(
            "11",
            &format!("podman run --rm: podman import failed: {why}"),
        );
        return;
    }
    // As in tests/src/podman.rs: podman caps its own RLIMIT_NPROC at 32768 and asks for
    // 1048576 without --ulimit, which root without CAP_SYS_RESOURCE can't give.
    let (files, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or((1024, 1024));
    let nofile = format!("nofile={files}:{files}");
    let cgroup = format!("{}/podman", bundle.cgroups.path);
    let run = [
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroup-parent",
        &cgroup,
        "--ulimit",
        &nofile,
        "--ulimit",
        "nproc=1024:1024",
        "localhost/reexec-bench:busybox",
        "/bin/true",
    ];
    let mut times = vec![Samples::default(); runtimes.len()];
    for _ in 0..plan.podman_runs {
        for (index, runtime) in runtimes.iter().enumerate() {
            let mut command = command(&podman(runtime, &run));
            times[index].time(|| {
                let output = command
                    .output()
                    .unwrap_or_else(|error| fail(&error.to_string()));
                if !output.status.success() {
                    fail(&format!(
                        "podman run --rm with {}: {}",
                        runtime.name,
                        String::from_utf8_lossy(&output.stderr)
                    ));
                }
            });
        }
    }
    let _ = command(&podman(first, &["rm", "--all", "--force"])).output();
    for (index, runtime) in runtimes.iter().enumerate() {
        let ratio = (index > 0)
            .then(|| Ratio::new(&times[0], &format!("11 {}", runtimes[0].name), Target::None));
        table.timed(
            "11",
            &format!(
                "`podman run --rm IMAGE /bin/true` with {} (information)",
                runtime.name
            ),
            &times[index],
            ratio,
        );
    }
}

/// The cgroup path the runtimes create their containers' cgroups in, below the
/// benchmark's own (its memory cgroup on a v1 machine), the same in every hierarchy; on
/// drop, what is below it is removed in each, then the directories above it that did not
/// exist before (a runtime makes the path in every hierarchy).
struct Cgroups {
    path: String,
    /// Every hierarchy's mount point, and the directories of the path it lacked.
    hierarchies: Vec<(PathBuf, Vec<PathBuf>)>,
}

impl Cgroups {
    fn below_own(name: &str) -> Result<Cgroups, String> {
        let membership =
            std::fs::read_to_string("/proc/self/cgroup").map_err(|error| error.to_string())?;
        let own = membership
            .lines()
            .find_map(|line| {
                let (_, rest) = line.split_once(':')?;
                let (controllers, path) = rest.split_once(':')?;
                controllers
                    .split(',')
                    .any(|listed| listed == "memory")
                    .then_some(path)
            })
            .or_else(|| membership.lines().find_map(|line| line.strip_prefix("0::")))
            .ok_or("OCI runtimes: no memory cgroup and no v2 cgroup in /proc/self/cgroup")?;
        let path = format!(
            "{}/{name}-{}",
            own.trim_end_matches('/'),
            std::process::id()
        );
        let mountinfo =
            std::fs::read_to_string("/proc/self/mountinfo").map_err(|error| error.to_string())?;
        let hierarchies = mountinfo
            .lines()
            .filter_map(|line| {
                let (before, after) = line.split_once(" - ")?;
                let mount_point = PathBuf::from(before.split(' ').nth(4)?);
                matches!(after.split(' ').next()?, "cgroup" | "cgroup2").then_some(mount_point)
            })
            .map(|mount_point| {
                let mut dir = mount_point.clone();
                let mut lacked = Vec::new();
                for component in Path::new(&path).components().skip(1) {
                    dir.push(component);
                    if !dir.exists() {
                        lacked.push(dir.clone());
                    }
                }
                (mount_point, lacked)
            })
            .collect();
        Ok(Cgroups { path, hierarchies })
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for (mount_point, lacked) in &self.hierarchies {
            let mut dirs = Vec::new();
            let mut pending = vec![mount_point.join(self.path.trim_start_matches('/'))];
            while let Some(dir) = pending.pop() {
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    pending.extend(
                        entries
                            .filter_map(Result::ok)
                            .map(|entry| entry.path())
                            .filter(|path| path.is_dir()),
                    );
                    dirs.push(dir);
                }
            }
            dirs.extend(lacked.iter().cloned());
            dirs.sort_by_key(|dir| std::cmp::Reverse(dir.components().count()));
            dirs.dedup();
            for dir in dirs {
                // A conmon ends a moment after its container: a few tries.
                for _ in 0..250 {
                    match std::fs::remove_dir(&dir) {
                        Err(error) if error.raw_os_error() == Some(nix::libc::EBUSY) => {
                            std::thread::sleep(std::time::Duration::from_millis(20));
                        }
                        _ => break,
                    }
                }
            }
        }
    }
}

/// `word` quoted for a POSIX shell.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
