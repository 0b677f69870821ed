//! What Roster knows about one request beyond the request itself: which operation it is for and who sent it (the
//! TCP peer), both resolved once by the outermost layer (`front::Front`), and who it is (the caller established by
//! authentication). Depends only on the catalog's `Operation`.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use poem::Request;

use super::catalog::Operation;
use crate::domain::Principal;

/// What the outermost layer resolved about the request, for every layer inside it to read instead of looking it up
/// again.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The operation it is for; none for the documents, `/metrics`, unknown paths and undocumented methods.
    pub operation: Option<Arc<Operation>>,
    /// The TCP peer.
    pub address: ClientAddress,
    /// Whether it carries an `Authorization` header.
    pub authorization: bool,
}

impl Resolved {
    /// Whether the operation needs credentials.
    pub fn authenticates(&self) -> bool {
        self.operation.as_ref().is_some_and(|op| op.authenticated)
    }
}

/// What a request without [`Resolved`] is taken for (a layer tested without the front): no operation.
static UNRESOLVED: Resolved = Resolved {
    operation: None,
    address: ClientAddress(None),
    authorization: false,
};

/// What the outermost layer resolved about this request.
pub fn resolved(req: &Request) -> &Resolved {
    req.extensions().get::<Resolved>().unwrap_or(&UNRESOLVED)
}

/// A client's address as a limiter key: an IPv4 address, or the /64 network of an IPv6 address (a single host is
/// usually given a whole /64, so keying on full IPv6 addresses would let it take 2^64 fresh keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
