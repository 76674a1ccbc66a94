//! Where webhooks may go: https to public addresses, unless an admin allows a host.
//!
//! A webhook URL is chosen by whoever may create subscriptions, and the server POSTs to it from
//! inside the network it runs in. Without a rule, `http://169.254.169.254/…` (cloud metadata),
//! `http://127.0.0.1:…` (the server's own side services) or `http://10.0.0.5/…` would be
//! reachable through vigil. So:
//! - at creation, the scheme must be https and a literal address must be public;
//! - at send time, the host name is resolved once, every address it resolves to is checked, and
//!   the connection goes to those checked addresses only (the dispatcher's HTTP agent resolves
//!   through [`TargetPolicy::resolve`]), so a name that changes its answer between a check and the
//!   connection (DNS rebinding) cannot reach a refused address.
//!
//! Hosts named in the policy (`[webhooks] allowed_hosts`) are exempt from both rules: an
//! on-premises receiver on a private address, or plain http inside a trusted network.

use crate::error::NotifyError;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// The hosts an admin trusts beyond the default rule. Empty: https to public addresses only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Lowercased host names or addresses (IPv6 without brackets), compared with the URL's host.
    allowed_hosts: Vec<String>,
}

/// Why a target was refused; carried inside the resolver's `io::Error` so the dispatcher can
/// log it as a refusal rather than as a DNS failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRefused {
    pub host: String,
    pub address: Option<IpAddr>,
    pub reason: String,
}

impl fmt::Display for TargetRefused {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.address {
            Some(address) if address.to_string() != self.host => write!(
                formatter,
                "refused target: {} resolves to {address}, {}",
                self.host, self.reason
            )?,
            _ => write!(formatter, "refused target: {}, {}", self.host, self.reason)?,
        }
        write!(
            formatter,
            " (an admin can allow the host in [webhooks] allowed_hosts)"
        )
    }
}

impl std::error::Error for TargetRefused {}

impl TargetPolicy {
    /// A policy allowing `hosts` (names or addresses, as written in URLs) over http and on
    /// private addresses.
    pub fn allowing<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        TargetPolicy {
            allowed_hosts: hosts
                .into_iter()
                .map(|host| normalize_host(host.as_ref()))
                .filter(|host| !host.is_empty())
                .collect(),
        }
    }

    /// Whether `host` (as in a URL; IPv6 with or without brackets) is allowed explicitly.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = normalize_host(host);
        self.allowed_hosts.contains(&host)
    }

    /// The creation-time rule: https, and a literal address must be public, unless the host is
    /// allowed. A name is checked again, resolved, at every send.
    pub fn check_url(&self, url: &str) -> Result<(), NotifyError> {
        let parsed = url::Url::parse(url)
            .map_err(|error| NotifyError::Invalid(format!("{url:?} is not a URL: {error}")))?;
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| NotifyError::Invalid(format!("{url:?} names no host")))?;
        if self.allows_host(host) {
            return Ok(());
        }
        if parsed.scheme() != "https" {
            return Err(NotifyError::Invalid(format!(
                "webhook URLs must be https; plain {} to {host} needs the host in \
                 [webhooks] allowed_hosts",
                parsed.scheme()
            )));
        }
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(address)) => Some(IpAddr::V4(address)),
            Some(url::Host::Ipv6(address)) => Some(IpAddr::V6(address)),
            _ => None,
        };
        if let Some(address) = literal {
            if let Some(reason) = forbidden_reason(address) {
                return Err(NotifyError::Invalid(
                    TargetRefused {
                        host: host.to_owned(),
                        address: Some(address),
                        reason: reason.to_owned(),
                    }
                    .to_string(),
                ));
            }
        }
        Ok(())
    }

    /// The send-time rule, as the HTTP agent's resolver: resolves `netloc` (`host:port`) once and
    /// returns its addresses only if every one is allowed, so the agent connects to nothing
    /// but checked addresses. A refusal is an `io::Error` of kind `PermissionDenied` wrapping a
    /// [`TargetRefused`].
    pub fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let addresses: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        let host = netloc.rsplit_once(':').map_or(netloc, |(host, _port)| host);
        if self.allows_host(host) {
            return Ok(addresses);
        }
        // Every address, not just the first: the agent may try any of them.
        for address in &addresses {
            if let Some(reason) = forbidden_reason(address.ip()) {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    TargetRefused {
                        host: normalize_host(host),
                        address: Some(address.ip()),
                        reason: reason.to_owned(),
                    },
                ));
            }
        }
        Ok(addresses)
    }
}

fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Why a webhook may not be sent to `address`, or `None` for a public unicast address.
pub fn forbidden_reason(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [first, second, ..] = address.octets();
    if address.is_loopback() {
        Some("a loopback address")
    } else if address.is_unspecified() || first == 0 {
        Some("an unspecified (this-network) address")
    } else if address.is_private() {
        Some("a private (RFC 1918) address")
    } else if address.is_link_local() {
        // 169.254.169.254 is the metadata service of most clouds.
        Some("a link-local address (cloud metadata lives there)")
    } else if first == 100 && (64..128).contains(&second) {
        // Shared address space (RFC 6598); 100.100.100.200 is a cloud metadata service.
        Some("a shared (carrier-grade NAT) address, where cloud metadata can live")
    } else if address.is_multicast() {
        Some("a multicast address")
    } else if address.is_broadcast() || first >= 240 {
        Some("a reserved or broadcast address")
    } else {
        None
    }
}

fn forbidden_v6(address: Ipv6Addr) -> Option<&'static str> {
    let segments = address.segments();
    if let Some(v4) = address.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    // NAT64 (64:ff9b::/96) reaches the embedded IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., high, low] = segments;
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        return forbidden_v4(Ipv4Addr::new(a, b, c, d));
    }
    if address.is_loopback() {
        Some("a loopback address")
    } else if address.is_unspecified() {
        Some("an unspecified address")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        // fd00:ec2::254 is a cloud metadata address in this range.
        Some("a unique local (fc00::/7) address")
    } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        Some("a link-local address")
    } else if address.is_multicast() {
        Some("a multicast address")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        forbidden_reason(text.parse().expect("an address")).is_some()
    }

    #[test]
    fn private_loopback_link_local_metadata_and_multicast_addresses_are_refused() {
        for address in [
            "127.0.0.1",
            "127.5.5.5",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(refused(address), "{address} should be refused");
        }
        for address in [
            "93.184.216.34",
            "172.32.0.1",
            "1.1.1.1",
            "2606:4700:4700::1111",
        ] {
            assert!(!refused(address), "{address} should be allowed");
        }
    }

    #[test]
    fn creation_needs_https_and_a_public_literal_unless_the_host_is_allowed() {
        let strict = TargetPolicy::default();
        assert!(strict.check_url("https://hooks.example.org/x").is_ok());
        assert!(strict.check_url("https://93.184.216.34/x").is_ok());
        for url in [
            "http://hooks.example.org/x",
            "http://127.0.0.1:9/x",
            "https://127.0.0.1:9/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.5/x",
        ] {
            assert!(strict.check_url(url).is_err(), "{url} should be refused");
        }
        let allowing = TargetPolicy::allowing(["127.0.0.1", "[::1]", "Receiver.Local"]);
        assert!(allowing.check_url("http://127.0.0.1:9/x").is_ok());
        assert!(allowing.check_url("http://[::1]:9/x").is_ok());
        assert!(allowing.check_url("http://receiver.local/x").is_ok());
        assert!(allowing.check_url("http://10.0.0.5/x").is_err());
    }

    #[test]
    fn a_name_resolving_to_loopback_is_refused_at_resolution_with_its_reason() {
        let error = TargetPolicy::default()
            .resolve("localhost:9")
            .expect_err("localhost resolves to loopback");
        assert_eq!(error.kind(), io::ErrorKind::PermissionDenied);
        assert!(error.to_string().contains("loopback"), "{error}");
        let addresses = TargetPolicy::allowing(["localhost"])
            .resolve("localhost:9")
            .expect("allowed");
        assert!(addresses.iter().all(|address| address.ip().is_loopback()));
    }
}
