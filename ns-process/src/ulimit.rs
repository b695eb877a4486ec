//! `--ulimit NAME=SOFT[:HARD]`: resource limits, with podman's and docker's names and
//! syntax.
//!
//! They are set on the init, through `reexec::Command::rlimit`, and every process inside
//! inherits them: the command, and whatever it starts. So `docker run --init` and podman
//! do too, their init being the container's first process; and so the limits are in
//! force before anything inside runs, a hard limit the caller can't raise is refused by
//! the library before the init ran (exit status 125, naming the limit and the cause),
//! and nothing in the init's own code has to be trusted to apply them. The init counts
//! as a process of root inside for `nproc`, and its own setup needs a few descriptors
//! under `nofile`. The kernel never enforces `nproc` on host root's processes (fork(2)
//! exempts them), so it binds an ns-process run by a user, or a `--user` other than root
//! inside an ns-process run by root.

use reexec::{RLIM_INFINITY, Resource};

/// One `--ulimit`: the resource and its soft and hard limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ulimit {
    pub(crate) resource: Resource,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

impl Ulimit {
    /// Takes `NAME=SOFT[:HARD]` as podman does: the hard limit is the soft one when not
    /// given, and a limit is a number, `unlimited` or `-1`.
    pub(crate) fn parse(text: &str) -> Result<Ulimit, String> {
        let invalid = |why: String| {
            format!(
                "invalid --ulimit {text:?}: {why}; write NAME=SOFT[:HARD], e.g. nofile=1024:4096"
            )
        };
        let (name, values) = text
            .split_once('=')
            .ok_or_else(|| invalid("it has no '='".into()))?;
        let resource: Resource = name.parse().map_err(|error| invalid(format!("{error}")))?;
        let (soft, hard) = match values.split_once(':') {
            Some((soft, hard)) => (soft, hard),
            None => (values, values),
        };
        let value = |which: &str, word: &str| {
            limit_value(word).ok_or_else(|| {
                invalid(format!(
                    "the {which} limit {word:?} is not a number from 0 up, unlimited or -1"
                ))
            })
        };
        let (soft, hard) = (value("soft", soft)?, value("hard", hard)?);
        if soft > hard {
            return Err(invalid(format!(
                "the soft limit {} is above the hard limit {}; the soft limit may only be \
                 raised up to the hard one",
                show(soft),
                show(hard)
            )));
        }
        Ok(Ulimit {
            resource,
            soft,
            hard,
        })
    }

    /// Sets each limit on `command`, the init's; a later one for the same resource
    /// replaces an earlier one, as the library does.
    pub(crate) fn apply_to(limits: &[Ulimit], command: &mut reexec::Command) {
        for limit in limits {
            command.rlimit(limit.resource, limit.soft, limit.hard);
        }
    }
}

/// What ns-process says of a failed start: the library's message, said to come from
/// `--ulimit` when setting a limit failed.
pub(crate) fn with_flag_named(error: &reexec::Error) -> String {
    if error.step() == Some(reexec::Step::SetResourceLimit) {
        format!("--ulimit: {error}")
    } else {
        error.to_string()
    }
}

/// A limit as `ulimit` writes it.
fn show(value: u64) -> String {
    if value == RLIM_INFINITY {
        "unlimited".into()
    } else {
        value.to_string()
    }
}

/// A number, or `unlimited` / `-1` for no limit.
fn limit_value(word: &str) -> Option<u64> {
    match word {
        "unlimited" | "-1" => Some(RLIM_INFINITY),
        _ if !word.is_empty() && word.bytes().all(|byte| byte.is_ascii_digit()) => {
            word.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podmans_syntax_and_names() {
        let limit = |resource, soft, hard| Ulimit {
            resource,
            soft,
            hard,
        };
        assert_eq!(
            Ulimit::parse("nofile=1024:4096"),
            Ok(limit(Resource::NoFile, 1024, 4096))
        );
        assert_eq!(Ulimit::parse("core=0"), Ok(limit(Resource::Core, 0, 0)));
        assert_eq!(
            Ulimit::parse("as=unlimited"),
            Ok(limit(Resource::AddressSpace, RLIM_INFINITY, RLIM_INFINITY))
        );
        assert_eq!(
            Ulimit::parse("rttime=5:-1"),
            Ok(limit(Resource::RtTime, 5, RLIM_INFINITY))
        );
        for name in [
            "core",
            "cpu",
            "data",
            "fsize",
            "locks",
            "memlock",
            "msgqueue",
            "nice",
            "nofile",
            "nproc",
            "rss",
            "rtprio",
            "rttime",
            "sigpending",
            "stack",
            "as",
        ] {
            assert_eq!(
                Ulimit::parse(&format!("{name}=1:2")).map(|limit| limit.resource.name()),
                Ok(name)
            );
        }
    }

    #[test]
    fn bad_limits_say_what_is_wrong() {
        for (bad, why) in [
            ("nofile", "it has no '='"),
            (
                "nofiles=1",
                "unknown resource \"nofiles\"; use one of: core, cpu",
            ),
            ("nofile=abc", "the soft limit \"abc\" is not a number"),
            ("nofile=1:x", "the hard limit \"x\" is not a number"),
            ("nofile=", "the soft limit \"\" is not a number"),
            ("nofile=-2", "the soft limit \"-2\" is not a number"),
            ("nofile=1:2:3", "the hard limit \"2:3\" is not a number"),
            ("nofile=99999999999999999999", "is not a number"),
            ("nofile=10:5", "the soft limit 10 is above the hard limit 5"),
            (
                "nofile=unlimited:5",
                "soft limit unlimited is above the hard limit 5",
            ),
        ] {
            let error = Ulimit::parse(bad).unwrap_err();
            assert!(
                error.contains(why) && error.contains("write NAME=SOFT[:HARD]"),
                "{bad}: {error}"
            );
        }
    }
}
