//! What Roster knows about one request beyond the request itself: who sent it (the TCP peer) and who it is (the
//! caller established by authentication). A leaf: it depends on no other module of the HTTP layer.

use std::fmt;
use std::net::IpAddr;

use poem::Request;

use crate::domain::Principal;

/// A client's address as a limiter key: an IPv4 address, or the /64 network of an IPv6 address (a single host is
/// usually given a whole /64, so keying on full IPv6 addresses would let it take 2^64 fresh keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddress(Option<IpAddr>);

impl ClientAddress {
    pub fn new(ip: IpAddr) -> Self {
        let ip = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
            },
            v4 => v4,
        };
        Self(Some(ip))
    }

    /// The TCP peer's address. Roster does not trust `X-Forwarded-For`.
    pub fn of(req: &Request) -> Self {
        req.remote_addr()
            .as_socket_addr()
            .map_or(Self(None), |addr| Self::new(addr.ip()))
    }
}

impl fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(IpAddr::V6(v6)) => write!(f, "{v6}/64"),
            Some(v4) => write!(f, "{v4}"),
            None => f.write_str("unknown"),
        }
    }
}

/// The caller authentication established for this request, if any.
pub fn caller(req: &Request) -> Option<&Principal> {
    req.extensions().get::<Principal>()
}

/// Records the caller authentication established.
pub fn set_caller(req: &mut Request, principal: Principal) {
    req.extensions_mut().insert(principal);
}

/// When the request's time runs out (`LimitDuration`): an answer written after the handler returns (a streamed
/// one) must end by then too.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub tokio::time::Instant);

/// The request's deadline; an hour from now when no `LimitDuration` is in front (tests of single layers).
pub fn deadline(req: &Request) -> tokio::time::Instant {
    req.extensions().get::<Deadline>().map_or_else(
        || tokio::time::Instant::now() + std::time::Duration::from_secs(3600),
        |d| d.0,
    )
}
