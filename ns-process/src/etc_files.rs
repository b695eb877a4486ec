//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` under `--rootfs`, as podman makes
//! them for the network mode: written by ns-process on a small tmpfs of its own and bound
//! read-only over the rootfs's, which are never edited. A program inside then resolves
//! its own hostname, and finds name servers only where they can be reached.

use crate::cli::NetMode;

/// The three files' names under `/etc` and contents.
pub(crate) fn contents(
    net: NetMode,
    hostname: &str,
    host_hosts: Option<&str>,
    host_resolv_conf: Option<&str>,
) -> [(&'static str, String); 3] {
    [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts(net, hostname, host_hosts)),
        ("resolv.conf", resolv_conf(net, host_resolv_conf)),
    ]
}

/// The loopback names and the hostname, on 127.0.1.1 as Debian has it (the bridge
/// address is only known once the init configured it, after the pivot); with the host's
/// network, the host's own file, whose names are all reachable there.
fn hosts(net: NetMode, hostname: &str, host_hosts: Option<&str>) -> String {
    if let (NetMode::Host, Some(host)) = (net, host_hosts) {
        return host.to_owned();
    }
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    )
}

/// The host's name servers, where the command's network reaches them: all of them with
/// the host's network; with a bridge, those not on the host's loopback (a local resolver
/// such as systemd-resolved's 127.0.0.53 listens in the host's namespace only); none
/// with no network.
fn resolv_conf(net: NetMode, host: Option<&str>) -> String {
    let host = host.unwrap_or_default();
    match net {
        NetMode::Host => host.to_owned(),
        NetMode::None => "# ns-process --net none: no network, no name server\n".to_owned(),
        NetMode::Bridge => {
            let mut kept = String::new();
            for line in host.lines() {
                let mut words = line.split_whitespace();
                let on_loopback = words.next() == Some("nameserver")
                    && words
                        .next()
                        .and_then(|address| address.parse::<std::net::IpAddr>().ok())
                        .is_some_and(|address| address.is_loopback());
                if on_loopback {
                    kept.push_str(&format!(
                        "# ns-process: left out, on the host's loopback: {line}\n"
                    ));
                } else {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            kept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_network_mode_gets_what_it_can_reach() {
        let host = "search example\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver ::1\n";
        assert_eq!(
            resolv_conf(NetMode::Bridge, Some(host)),
            "search example\n# ns-process: left out, on the host's loopback: nameserver \
             127.0.0.53\nnameserver 192.0.2.1\n# ns-process: left out, on the host's \
             loopback: nameserver ::1\n"
        );
        assert_eq!(resolv_conf(NetMode::Host, Some(host)), host);
        assert!(!resolv_conf(NetMode::None, Some(host)).contains("nameserver"));
        assert!(hosts(NetMode::None, "box", Some("x")).ends_with("127.0.1.1\tbox\n"));
        assert_eq!(
            hosts(NetMode::Host, "box", Some("host file\n")),
            "host file\n"
        );
    }
}
