//! Which address a request comes from. Behind a load balancer or reverse proxy every request
//! comes from the proxy, and the client's own address is in `X-Forwarded-For`; but any client
//! can write that header, so it is believed only from the proxies the operator names
//! (`--trusted-proxy`). Everything that judges or records an address (sign-in throttling, the
//! audit log) sees the address this module gives.

use std::net::{IpAddr, SocketAddr};

use hyper::HeaderMap;

/// An address or a network (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    pub fn parse(text: &str) -> Result<Network, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("'{text}' is not an address or a network such as 10.0.0.0/8"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => match prefix.trim().parse::<u8>() {
                Ok(prefix) if prefix <= bits => prefix,
                _ => return Err(format!("'{text}' has a prefix length that is not 0 to {bits}")),
            },
        };
        Ok(Network { address, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        // IPv4 in the top 32 bits, so one mask serves both.
        let (network, candidate) = match (self.address, address) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(u32::from(n)) << 96, u128::from(u32::from(a)) << 96),
            (IpAddr::V6(n), IpAddr::V6(a)) => (u128::from(n), u128::from(a)),
            _ => return false,
        };
        let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
        network & mask == candidate & mask
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(pub Vec<Network>);

impl TrustedProxies {
    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    /// The client's address: the connection's, unless that is a trusted proxy, then the
    /// nearest address in `X-Forwarded-For` that is not one (read from the right: each proxy
    /// appends the address it got the request from).
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        for hop in forwarded.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else { return peer };
            if !self.trusts(address) {
                return SocketAddr::new(address, 0);
            }
        }
        peer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in forwarded {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    #[test]
    fn networks() {
        let private = Network::parse("10.0.0.0/8").unwrap();
        assert!(private.contains("10.1.2.3".parse().unwrap()));
        assert!(private.contains("::ffff:10.1.2.3".parse().unwrap()));
        assert!(!private.contains("11.0.0.1".parse().unwrap()));
        assert!(Network::parse("2001:db8::/32").unwrap().contains("2001:db8:1::5".parse().unwrap()));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains("203.0.113.9".parse().unwrap()));
        assert!(Network::parse("192.0.2.7").unwrap().contains("192.0.2.7".parse().unwrap()));
        assert!(!Network::parse("192.0.2.7").unwrap().contains("192.0.2.8".parse().unwrap()));
        assert!(Network::parse("10.0.0.0/33").unwrap_err().contains("prefix length"));
        assert!(Network::parse("proxy.example").unwrap_err().contains("not an address"));
    }

    #[test]
    fn forwarded_addresses_are_believed_from_trusted_proxies_only() {
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let untrusting = TrustedProxies::default();
        assert_eq!(untrusting.client(peer, &headers(&["203.0.113.7"])), peer);
        let trusting =
            TrustedProxies(vec![Network::parse("127.0.0.1").unwrap(), Network::parse("10.0.0.0/8").unwrap()]);
        assert_eq!(trusting.client(peer, &headers(&["203.0.113.7"])).ip().to_string(), "203.0.113.7");
        // A client's own claim to the left of what the proxies appended is not believed.
        let chain = headers(&["198.51.100.1, 203.0.113.7, 10.0.0.5"]);
        assert_eq!(trusting.client(peer, &chain).ip().to_string(), "203.0.113.7");
        assert_eq!(trusting.client(peer, &headers(&[])), peer);
        assert_eq!(trusting.client(peer, &headers(&["garbage"])), peer);
    }
}
