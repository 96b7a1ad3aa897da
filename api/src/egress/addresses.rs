//! Which addresses a sprite may never reach, whatever its rules: loopback, private,
//! link-local (the cloud metadata service among them), CGNAT, multicast, reserved, and
//! the host's own addresses — checked on the address actually dialled, so a name that
//! resolves to one (DNS rebinding) is refused too. Tests and development widen this only
//! through `CORRAL_EGRESS_ALLOW_RANGES`, and map names with `CORRAL_EGRESS_RESOLVE`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// An address range, `10.0.0.0/8` or `::1/128`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    base: IpAddr,
    bits: u8,
}

impl Range {
    /// Parses `ADDR/BITS` (a bare address is a single one).
    pub fn parse(text: &str) -> Option<Range> {
        let (addr, bits) = match text.trim().split_once('/') {
            Some((a, b)) => (a.parse::<IpAddr>().ok()?, b.parse::<u8>().ok()?),
            None => {
                let a = text.trim().parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (bits <= max).then_some(Range { base: addr, bits })
    }

    /// Whether `ip` is in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip) {
            (IpAddr::V4(b), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(b) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(b), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(b) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Why an address is never dialled, or `None` when it is public.
pub fn never(ip: IpAddr) -> Option<&'static str> {
    let v4 = |a: Ipv4Addr| -> Option<&'static str> {
        let [x, y, ..] = a.octets();
        Some(match (x, y) {
            (127, _) => "loopback",
            (10, _) | (192, 168) => "private",
            (172, 16..=31) => "private",
            (169, 254) => "link-local (the metadata service lives there)",
            (100, 64..=127) => "shared (CGNAT)",
            (0, _) => "this network",
            (192, 0) if a.octets()[2] == 0 => "IETF protocol assignments",
            (198, 18..=19) => "benchmarking",
            (224..=239, _) => "multicast",
            (240..=255, _) => "reserved",
            _ => return None,
        })
    };
    match ip {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => {
            if let Some(mapped) = a.to_ipv4_mapped() {
                return v4(mapped);
            }
            let first = a.segments()[0];
            Some(match () {
                _ if a == Ipv6Addr::LOCALHOST => "loopback",
                _ if a == Ipv6Addr::UNSPECIFIED => "unspecified",
                _ if first & 0xfe00 == 0xfc00 => "private (unique local)",
                _ if first & 0xffc0 == 0xfe80 => "link-local",
                _ if first & 0xff00 == 0xff00 => "multicast",
                _ => return None,
            })
        }
    }
}

/// The host's own addresses (a sprite must not reach services on its host).
pub fn host_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we free with freeifaddrs; every pointer read is
    // checked for null and points into that list.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return out;
        }
        let mut cur = list;
        while !cur.is_null() {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(addr as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                            sin.sin_addr.s_addr,
                        ))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(addr as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(list);
    }
    out
}

/// The operator's exceptions: ranges allowed despite [`never`], and names resolved to
/// fixed addresses (`host=ip[:port]`, like curl's `--resolve`).
#[derive(Clone, Debug, Default)]
pub struct Exceptions {
    pub allow: Vec<Range>,
    pub resolve: HashMap<String, (IpAddr, Option<u16>)>,
}

impl Exceptions {
    /// Parses `CORRAL_EGRESS_ALLOW_RANGES` (comma-separated ranges) and
    /// `CORRAL_EGRESS_RESOLVE` (comma-separated `host=ip[:port]`).
    pub fn parse(allow: Option<&str>, resolve: Option<&str>) -> Result<Exceptions, String> {
        let mut out = Exceptions::default();
        for item in allow
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.trim().is_empty())
        {
            out.allow.push(
                Range::parse(item).ok_or_else(|| {
                    format!("CORRAL_EGRESS_ALLOW_RANGES: {item:?} is not ADDR/BITS")
                })?,
            );
        }
        for item in resolve
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.trim().is_empty())
        {
            let bad = || format!("CORRAL_EGRESS_RESOLVE: {item:?} is not host=ip[:port]");
            let (host, target) = item.trim().split_once('=').ok_or_else(bad)?;
            let (ip, port) = match target.parse::<SocketAddr>() {
                Ok(sa) => (sa.ip(), Some(sa.port())),
                Err(_) => (target.parse::<IpAddr>().map_err(|_| bad())?, None),
            };
            out.resolve.insert(host.to_ascii_lowercase(), (ip, port));
        }
        Ok(out)
    }

    /// Whether the operator allowed `ip` despite [`never`].
    pub fn allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|r| r.contains(ip))
    }

    /// Whether any exception is set (said loudly in the logs).
    pub fn any(&self) -> bool {
        !self.allow.is_empty() || !self.resolve.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_never_dialled() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(never(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["151.101.0.223", "172.32.0.1", "2a04:4e42::223", "8.8.8.8"] {
            assert!(never(ip.parse().unwrap()).is_none(), "{ip}");
        }
    }

    #[test]
    fn exceptions_parse_and_match() {
        let e = Exceptions::parse(
            Some("127.0.0.0/8, ::1"),
            Some("pypi.test=127.0.0.1:8443,x.test=127.0.0.2"),
        )
        .unwrap();
        assert!(e.allowed("127.0.0.9".parse().unwrap()) && e.allowed("::1".parse().unwrap()));
        assert!(!e.allowed("10.0.0.1".parse().unwrap()));
        assert_eq!(
            e.resolve["pypi.test"],
            ("127.0.0.1".parse().unwrap(), Some(8443))
        );
        assert_eq!(e.resolve["x.test"], ("127.0.0.2".parse().unwrap(), None));
        assert!(Exceptions::parse(Some("nope"), None).is_err());
        assert!(Exceptions::parse(None, Some("x")).is_err());
        assert!(Range::parse("10.0.0.0/33").is_none());
    }
}
