//! The background loops' settings and wake-ups (alarm polling, trigger delivery), held in the
//! shared state apart from the loops' code, so that the state depends on none of them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::Notify;

/// Where alarms are evaluated, and how often.
#[derive(Debug, Clone)]
pub struct AlarmSettings {
    /// The Prometheus (or compatible) HTTP API, e.g. `http://127.0.0.1:9090`.
    pub prometheus_url: Option<String>,
    pub poll_interval: Duration,
}

/// How trigger messages are delivered.
#[derive(Debug, Clone)]
pub struct TriggerSettings {
    /// The key of the `X-Landfall-Signature` HMAC.
    pub secret: Vec<u8>,
    /// Where a trigger whose target is an SNS topic ARN delivers: ARN -> URL.
    pub topics: HashMap<String, String>,
    /// How long a message is retried before it is given up on.
    pub expiry: Duration,
    /// Whether a trigger may name a URL itself (else only mapped SNS topic ARNs).
    pub urls_allowed: bool,
    /// Which addresses such a URL may reach.
    pub addresses: AddressPolicy,
}

/// Which addresses a trigger URL that a deployment group names may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressPolicy {
    /// Public addresses only.
    #[default]
    Public,
    /// Also this host (loopback) and private networks (`--trigger-allow-private-addresses`);
    /// never link-local, unspecified or multicast addresses.
    PrivateToo,
}

impl AddressPolicy {
    /// Why `ip` may not be reached, if it may not.
    pub fn refuses(self, ip: IpAddr) -> Option<&'static str> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let (link_local, unspecified, multicast, loopback, private) = match ip {
            IpAddr::V4(v4) => {
                let [a, b, ..] = v4.octets();
                (
                    v4.is_link_local(),
                    v4.is_unspecified() || a == 0,
                    v4.is_multicast() || v4.is_broadcast(),
                    v4.is_loopback(),
                    v4.is_private() || (a == 100 && (64..128).contains(&b)),
                )
            }
            IpAddr::V6(v6) => {
                let first = v6.segments()[0];
                (
                    (first & 0xffc0) == 0xfe80,
                    v6.is_unspecified(),
                    v6.is_multicast(),
                    v6.is_loopback(),
                    (first & 0xfe00) == 0xfc00,
                )
            }
        };
        if link_local {
            Some("a link-local address (where cloud metadata services answer)")
        } else if unspecified {
            Some("an unspecified address")
        } else if multicast {
            Some("a multicast or broadcast address")
        } else if self == AddressPolicy::Public && loopback {
            Some("this host (loopback; landfall server --trigger-allow-private-addresses allows it)")
        } else if self == AddressPolicy::Public && private {
            Some("a private network (landfall server --trigger-allow-private-addresses allows it)")
        } else {
            None
        }
    }
}

/// Wakes the delivery loop when new messages are written.
#[derive(Default)]
pub struct Outbox {
    pub written: Notify,
}
