//! `/etc/hostname`, `/etc/hosts` and `/etc/resolv.conf` under `--rootfs`, as podman makes
//! them for the network mode: written by ns-process on a small tmpfs of its own and bound
//! read-only over the rootfs's, which are never edited. A program inside then resolves
//! its own hostname, and finds name servers only where they can be reached.

use std::net::Ipv4Addr;

use crate::cli::NetMode;

/// The three files' names under `/etc` and contents.
pub(crate) fn contents(
    net: NetMode,
    hostname: &str,
    bridge_address: Option<Ipv4Addr>,
    host_hosts: Option<&str>,
    host_resolv_conf: Option<&str>,
) -> [(&'static str, String); 3] {
    [
        ("hostname", format!("{hostname}\n")),
        ("hosts", hosts(net, hostname, bridge_address, host_hosts)),
        ("resolv.conf", resolv_conf(net, host_resolv_conf)),
    ]
}

/// The loopback names, and the hostname on the command's own address: with a bridge,
/// the address its interface gets (as podman writes it, so that other hosts on the bridge
/// and the command agree on it); without one, 127.0.1.1 as Debian has it. With the
/// host's network, the host's own file, whose names are all reachable there.
fn hosts(
    net: NetMode,
    hostname: &str,
    bridge_address: Option<Ipv4Addr>,
    host_hosts: Option<&str>,
) -> String {
    if let (NetMode::Host, Some(host)) = (net, host_hosts) {
        return host.to_owned();
    }
    let own = match (net, bridge_address) {
        (NetMode::Bridge, Some(address)) => address.to_string(),
        _ => "127.0.1.1".to_owned(),
    };
    format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{own}\t{hostname}\n")
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
        assert!(hosts(NetMode::None, "box", None, Some("x")).ends_with("127.0.1.1\tbox\n"));
        let address = Some(Ipv4Addr::new(10, 10, 10, 2));
        assert_eq!(
            hosts(NetMode::Bridge, "box", address, Some("x")),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.10.10.2\tbox\n"
        );
        assert_eq!(
            hosts(NetMode::Host, "box", None, Some("host file\n")),
            "host file\n"
        );
    }
}
