//! A process that holds namespaces for a test to join: `unshare … sleep`, killed by its
//! pid and reaped when dropped.

use std::fs::File;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A process in namespaces of its own, made by the `unshare` command it was started with,
/// sleeping until it is dropped.
///
/// ```no_run
/// let mut unshare = std::process::Command::new("unshare");
/// unshare.args(["-Urn", "sleep", "60"]);
/// let holder = reexec_tests::NamespaceHolder::start(unshare).unwrap();
/// println!("its network namespace: {}", holder.path("net"));
/// ```
#[derive(Debug)]
pub struct NamespaceHolder {
    child: Child,
}

/// The namespaces whose change tells that `unshare` has entered its new ones.
const WATCHED: [&str; 4] = ["user", "net", "mnt", "uts"];

impl NamespaceHolder {
    /// Starts `unshare` (with its options and the program that holds the namespaces,
    /// such as `sleep 60`; run as whichever user the command says) and waits until it has
    /// entered a namespace other than ours and executed that program: only then is its
    /// setup done — `unshare -r` writes the id maps after entering the user namespace, and
    /// a process joining before that is nobody (65534) there. `Err` says why not.
    pub fn start(mut unshare: Command) -> Result<NamespaceHolder, String> {
        let child = unshare
            .spawn()
            .map_err(|error| format!("starting {unshare:?}: {error}"))?;
        let holder = NamespaceHolder { child };
        let ours: Vec<_> = WATCHED.iter().map(|name| own_link(name)).collect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let theirs: Vec<_> = WATCHED.iter().map(|name| holder.link(name)).collect();
            let executed = std::fs::read_to_string(format!("/proc/{}/comm", holder.pid()))
                .is_ok_and(|comm| comm.trim_end() != "unshare");
            if executed && theirs.iter().all(Option::is_some) && theirs != ours {
                return Ok(holder);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{unshare:?} entered no new namespace, or did not execute its program, within 10 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The holder's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `/proc/PID/ns/NAME` of the holder.
    pub fn path(&self, name: &str) -> String {
        format!("/proc/{}/ns/{name}", self.pid())
    }

    /// The holder's namespace file `name` (`net`, `user`…), open.
    pub fn open(&self, name: &str) -> File {
        File::open(self.path(name)).unwrap_or_else(|error| panic!("{}: {error}", self.path(name)))
    }

    /// What `/proc/PID/ns/NAME` of the holder reads as: `net:[4026532177]`.
    pub fn link(&self, name: &str) -> Option<String> {
        std::fs::read_link(self.path(name))
            .ok()
            .map(|link| link.display().to_string())
    }
}

/// What `/proc/self/ns/NAME` reads as.
fn own_link(name: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/self/ns/{name}"))
        .ok()
        .map(|link| link.display().to_string())
}

impl Drop for NamespaceHolder {
    fn drop(&mut self) {
        // Our own unreaped child: its pid can't have been reused.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
