//! `--sysctl KEY=VALUE` (#16): kernel parameters that belong to one of the command's own
//! namespaces, written through the proc the init mounted for it, before `/proc/sys` is
//! made read-only. A parameter of the whole machine is refused, whoever runs ns-process:
//! writing it would change the host.

use std::io::Write;

use crate::cli::{Options, Shareable};

/// One `--sysctl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sysctl {
    /// Dotted, as sysctl(8) writes it: `net.ipv4.ip_forward`.
    pub(crate) key: String,
    pub(crate) value: String,
    /// The namespace it belongs to.
    pub(crate) owner: Shareable,
}

/// The kernel.* parameters of the IPC namespace (ipc_sysctl.c).
const IPC_KERNEL: [&str; 11] = [
    "kernel.shmmax",
    "kernel.shmall",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
    "kernel.shm_next_id",
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.msg_next_id",
    "kernel.sem",
    "kernel.sem_next_id",
];

impl Sysctl {
    pub(crate) fn parse(text: &str) -> Result<Sysctl, String> {
        let invalid = |why: String| format!("invalid --sysctl {text:?}: {why}");
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| invalid("it has no '='; write KEY=VALUE".into()))?;
        let key = key.trim().replace('/', ".");
        let valid = !key.is_empty()
            && key.split('.').all(|part| !part.is_empty())
            && key
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"._-".contains(&byte));
        if !valid {
            return Err(invalid(format!(
                "{key:?} is not a parameter name such as net.ipv4.ip_forward"
            )));
        }
        if value.contains(['\0', '\n']) {
            return Err(invalid("the value holds a NUL byte or a newline".into()));
        }
        let owner = if IPC_KERNEL.contains(&key.as_str()) || key.starts_with("fs.mqueue.") {
            Shareable::Ipc
        } else if key.starts_with("net.") {
            Shareable::Net
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            Shareable::Uts
        } else {
            return Err(invalid(format!(
                "{key} belongs to no namespace: setting it would change the whole machine; \
                 ns-process sets only kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.* \
                 (IPC), net.* (network), kernel.hostname and kernel.domainname (UTS)"
            )));
        };
        Ok(Sysctl {
            key,
            value: value.to_owned(),
            owner,
        })
    }

    /// The file of the parameter under a proc reached at `proc`.
    fn path(&self, proc: &str) -> String {
        format!("{proc}/sys/{}", self.key.replace('.', "/"))
    }

    /// Writes the value through the proc reached at `proc` (the init's, whose `sys`
    /// shows the namespaces of the process reading it: the command's).
    pub(crate) fn write(&self, proc: &str) -> Result<(), String> {
        let path = self.path(proc);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(|error| match error.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "{}: this kernel has no such parameter (no /proc/sys/{})",
                    self.key,
                    self.key.replace('.', "/")
                ),
                _ => format!("opening {path}: {error}"),
            })?;
        file.write_all(self.value.as_bytes())
            .map_err(|error| format!("writing {:?} to {}: {error}", self.value, self.key))
    }
}

/// A parameter of a namespace the command shares is the caller's: refused.
pub(crate) fn validate(options: &Options) -> Result<(), String> {
    for sysctl in &options.sysctl {
        if options.shares(sysctl.owner) {
            let name = match sysctl.owner {
                Shareable::Ipc => "ipc",
                Shareable::Net => "net",
                _ => "uts",
            };
            return Err(format!(
                "--sysctl {}: it belongs to the {name} namespace, which is not the command's \
                 own here (--share {name}, --join {name} or --net host): setting it would \
                 change that one; drop it, or the option that keeps the namespace",
                sysctl.key
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_parameters_of_a_namespace_are_taken() {
        let forward = Sysctl::parse("net/ipv4/ip_forward=1").unwrap();
        assert_eq!(
            (forward.key.as_str(), forward.owner),
            ("net.ipv4.ip_forward", Shareable::Net)
        );
        assert_eq!(
            forward.path("/proc"),
            "/proc/sys/net/ipv4/ip_forward".to_owned()
        );
        assert_eq!(
            Sysctl::parse("kernel.shmmax=1").unwrap().owner,
            Shareable::Ipc
        );
        assert_eq!(
            Sysctl::parse("fs.mqueue.queues_max=1").unwrap().owner,
            Shareable::Ipc
        );
        for (bad, expected) in [
            ("kernel.core_pattern=|/x", "belongs to no namespace"),
            ("vm.overcommit_memory=1", "belongs to no namespace"),
            ("net..x=1", "not a parameter name"),
            ("net.ipv4.ip_forward", "no '='"),
            ("net.x=1\n2", "newline"),
        ] {
            let error = Sysctl::parse(bad).unwrap_err();
            assert!(error.contains(expected), "{bad}: {error}");
        }
    }
}
