//! The init's setup, as named steps run in order inside the new namespaces. A failure
//! says which step and why; nothing reaches the host, since every mount happens in a
//! mount namespace made private first.

use std::fmt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, pivot_root, sethostname};

use crate::cli::{NetMode, Options, Shareable};

/// A setup step that failed.
#[derive(Debug)]
pub(crate) struct SetupError {
    step: String,
    error: String,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.step, self.error)
    }
}

/// Runs the steps one by one, printing each with `--verbose`.
struct Steps {
    verbose: bool,
}

impl Steps {
    fn run(
        &self,
        step: impl Into<String>,
        work: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), SetupError> {
        let step = step.into();
        if self.verbose {
            eprintln!("ns-process: {step}");
        }
        work().map_err(|error| SetupError { step, error })
    }

    fn skip(&self, step: &str, why: &str) {
        if self.verbose {
            eprintln!("ns-process: not {step}: {why}");
        }
    }
}

fn describe(call: &str, path: &Path, errno: nix::Error) -> String {
    format!("{call}({}): {}", path.display(), errno.desc())
}

/// Everything between the clone and the command, in the order the series does it.
pub(crate) fn prepare(options: &Options) -> Result<(), SetupError> {
    let steps = Steps {
        verbose: options.verbose,
    };
    let own_mounts = !options.shares(Shareable::Mount);

    if own_mounts {
        // Without this, mounts made below would propagate back to the host's namespace
        // wherever / is a shared mount (systemd makes it one): mount_namespaces(7).
        steps.run("making every mount private", || {
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|errno| describe("mount MS_REC|MS_PRIVATE", Path::new("/"), errno))
        })?;
    } else {
        steps.skip(
            "making mounts private",
            "the mount namespace is shared (--share mount)",
        );
    }

    if !options.shares(Shareable::Uts) {
        steps.run(
            format!("setting the hostname to {}", options.hostname),
            || {
                sethostname(&options.hostname)
                    .map_err(|errno| format!("sethostname: {}", errno.desc()))
            },
        )?;
    }

    let proc_dir = options
        .rootfs
        .as_ref()
        .map_or_else(|| PathBuf::from("/proc"), |rootfs| rootfs.join("proc"));
    if !own_mounts {
        steps.skip("mounting /proc", "the mount namespace is shared");
    } else if options.shares(Shareable::Pid) {
        steps.skip(
            "mounting /proc",
            "the PID namespace is shared (--share pid)",
        );
    } else {
        steps.run(
            format!("mounting a new proc on {}", proc_dir.display()),
            || mount_proc(&proc_dir),
        )?;
    }

    if let Some(rootfs) = &options.rootfs {
        steps.run(format!("populating {}/dev", rootfs.display()), || {
            populate_dev(rootfs)
        })?;
        bind_console(&steps, options, &rootfs.join("dev/console"))?;
        steps.run(format!("pivoting into {}", rootfs.display()), || {
            pivot_into(rootfs)
        })?;
    } else if own_mounts {
        bind_console(&steps, options, Path::new("/dev/console"))?;
    }

    if !options.shares(Shareable::Net) {
        steps.run("bringing lo up", || crate::net::set_up("lo"))?;
    }
    if options.net == NetMode::Bridge {
        steps.run(
            format!(
                "configuring {} in {}",
                crate::net::INSIDE_NAME,
                options.subnet
            ),
            || crate::net::configure_inside(options.subnet),
        )?;
    }
    // Nothing the command runs may gain privileges through set-user-ID binaries or file
    // capabilities: what is root here stays only as powerful as the namespaces allow.
    steps.run("setting no_new_privs", || {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|errno| format!("prctl(PR_SET_NO_NEW_PRIVS): {}", errno.desc()))
    })?;
    Ok(())
}

fn mount_proc(target: &Path) -> Result<(), String> {
    if !target.is_dir() {
        std::fs::create_dir(target)
            .map_err(|error| format!("creating {}: {error}", target.display()))?;
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), target, Some("proc"), flags, None::<&str>)
        .map_err(|errno| describe("mount proc", target, errno))
}

/// The device nodes a shell and most tools expect, bound from the host onto a fresh
/// tmpfs, as bubblewrap's `--dev` does; creating nodes needs a privilege we don't have.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn populate_dev(rootfs: &Path) -> Result<(), String> {
    let dev = rootfs.join("dev");
    if !dev.is_dir() {
        return Err(format!(
            "{} is missing: create it, or rebuild the rootfs with scripts/make-rootfs",
            dev.display()
        ));
    }
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME;
    mount(Some("tmpfs"), &dev, Some("tmpfs"), flags, Some("mode=0755"))
        .map_err(|errno| describe("mount tmpfs", &dev, errno))?;
    for device in DEVICES {
        let host = Path::new("/dev").join(device);
        if !host.exists() {
            continue;
        }
        let node = dev.join(device);
        std::fs::File::create(&node)
            .map_err(|error| format!("creating {}: {error}", node.display()))?;
        mount(
            Some(&host),
            &node,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|errno| describe("bind mount", &node, errno))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .map_err(|error| format!("linking /dev/{link}: {error}"))?;
    }
    Ok(())
}

/// With a pty of the command's own, binds it on `console`: created on a rootfs's fresh
/// `/dev`, taken over where it exists otherwise (bound in our own mount namespace only).
/// Before any pivot: the slave's devpts must still be a mount of this namespace.
fn bind_console(steps: &Steps, options: &Options, console: &Path) -> Result<(), SetupError> {
    if !options.internal_take_terminal {
        return Ok(());
    }
    let create = options.rootfs.is_some();
    if !create && !console.exists() {
        steps.skip(
            "binding the pty on /dev/console",
            "there is no /dev/console",
        );
        return Ok(());
    }
    steps.run(
        format!("binding the command's pty on {}", console.display()),
        || crate::terminal::bind_console(console, create),
    )
}

/// pivot_root(2) into `rootfs` and detach the old root.
///
/// The series binds the rootfs on itself, creates `.pivot_root` in it and removes it
/// afterwards. Here `pivot_root(".", ".")` stacks the old root on the new one and
/// unmounts it at once (runc's way): nothing is created inside the rootfs, so a rootfs
/// the caller can't write works too, and no `/.pivot_root` can be left behind.
fn pivot_into(rootfs: &Path) -> Result<(), String> {
    // pivot_root needs the new root to be a mount point.
    mount(
        Some(rootfs),
        rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|errno| describe("bind mount", rootfs, errno))?;
    chdir(rootfs).map_err(|errno| describe("chdir", rootfs, errno))?;
    pivot_root(".", ".").map_err(|errno| describe("pivot_root", rootfs, errno))?;
    umount2(".", MntFlags::MNT_DETACH)
        .map_err(|errno| describe("umount2 MNT_DETACH (old root)", Path::new("."), errno))?;
    chdir("/").map_err(|errno| describe("chdir", Path::new("/"), errno))
}
