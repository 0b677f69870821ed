//! How often a client may ask. Token buckets per identity and per client address, and a far stricter limiter on
//! failed logins per address. All of it is per instance, in memory, bounded: behind a load balancer each instance
//! counts on its own.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{DefaultKeyedRateLimiter, Quota as GovernorQuota};
use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};

use super::context::{ClientAddress, resolved};
use super::error::ApiError;
use super::layer::Layer;
use crate::domain::Principal;

/// Whose bucket a request takes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Caller {
    /// Requests that do not authenticate (or fail to), per client address.
    Address(ClientAddress),
    Admin,
    ApiUser(i64),
}

impl Caller {
    /// The identity an authenticated caller is counted as.
    pub fn of(principal: &Principal) -> Self {
        match principal {
            Principal::Admin { .. } => Caller::Admin,
            Principal::ApiUser { id, .. } => Caller::ApiUser(*id),
        }
    }

    fn scope(self) -> &'static str {
        match self {
            Caller::Address(_) => "address",
            Caller::Admin | Caller::ApiUser(_) => "identity",
        }
    }
}

/// What a caller's bucket holds once a request has taken from it (or been refused): the `RateLimit-Limit`,
/// `RateLimit-Remaining` and `RateLimit-Reset` headers of the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The burst the bucket holds when full.
    pub limit: u32,
    /// Requests the caller may still make at once.
    pub remaining: u32,
    /// Whole seconds (rounded up) until the bucket is full again.
    pub reset: u64,
}

impl Quota {
    /// `taken` requests' worth of tokens refill in whole seconds, rounded up.
    fn new(quota: GovernorQuota, remaining: u32, until_full: Duration) -> Self {
        Self {
            limit: quota.burst_size().get(),
            remaining,
            reset: until_full.as_secs() + u64::from(until_full.subsec_nanos() > 0),
        }
    }

    fn write(self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert("ratelimit-limit", HeaderValue::from(self.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(self.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(self.reset));
    }
}

/// Where the one bucket a request took from leaves its [`Quota`], for the answer.
#[derive(Clone, Default)]
pub(super) struct QuotaSlot(Arc<OnceLock<Quota>>);

impl QuotaSlot {
    /// Writes the caller's [`Quota`] on the answer, whatever it is (a 429 of its own bucket, a 403, a 503 ...),
    /// once the error has its JSON shape (`front::Front` calls it last). Answers no bucket counted (liveness,
    /// failed logins, rate limiting off) carry none.
    pub(super) fn announce(&self, response: &mut Response) {
        if let Some(quota) = self.0.get() {
            quota.write(response);
        }
    }
}

/// Keyed token buckets for requests.
pub struct RateLimits {
    limiter: Option<DefaultKeyedRateLimiter<Caller, StateInformationMiddleware>>,
    clock: DefaultClock,
}

impl RateLimits {
    /// `per_second` sustained requests with bursts of `burst`; 0 turns limiting off.
    pub fn new(per_second: u32, burst: u32) -> Arc<Self> {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            DefaultKeyedRateLimiter::keyed(GovernorQuota::per_second(rate).allow_burst(burst))
                .with_middleware::<StateInformationMiddleware>()
        });
        let limits = Arc::new(Self {
            limiter,
            clock: DefaultClock::default(),
        });
        if limits.limiter.is_some() {
            // Forget idle keys now and then, so memory stays bounded whatever the number of clients.
            let weak = Arc::downgrade(&limits);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(60));
                loop {
                    tick.tick().await;
                    let Some(limits) = weak.upgrade() else { break };
                    if let Some(limiter) = &limits.limiter {
                        limiter.retain_recent();
                        limiter.shrink_to_fit();
                    }
                }
            });
        }
        limits
    }

    /// Takes one request from the caller's bucket, or says when to retry; either way, what the bucket holds
    /// (`None` when rate limiting is off).
    pub fn check(&self, caller: Caller) -> (Option<Quota>, Result<(), ApiError>) {
        let Some(limiter) = &self.limiter else {
            return (None, Ok(()));
        };
        match limiter.check_key(&caller) {
            Ok(state) => {
                let (quota, remaining) = (state.quota(), state.remaining_burst_capacity());
                // Each missing token refills in one interval; the last one may be partly refilled already.
                let missing = quota.burst_size().get().saturating_sub(remaining);
                let until_full = quota.replenish_interval() * missing;
                (Some(Quota::new(quota, remaining, until_full)), Ok(()))
            }
            Err(not_until) => {
                metrics::counter!("roster_rate_limited_total", "scope" => caller.scope())
                    .increment(1);
                let (quota, wait) = (
                    not_until.quota(),
                    not_until.wait_time_from(self.clock.now()),
                );
                // Full once the next token has come and every other one after it.
                let until_full = wait + quota.replenish_interval() * (quota.burst_size().get() - 1);
                (
                    Some(Quota::new(quota, 0, until_full)),
                    Err(ApiError::too_many_requests(wait)),
                )
            }
        }
    }

    /// [`Self::check`] for a request: its [`Quota`] is left in its [`QuotaSlot`] to be written on the answer.
    pub fn take(&self, req: &Request, caller: Caller) -> Result<(), ApiError> {
        let (quota, result) = self.check(caller);
        Self::record(req, quota);
        result
    }

    /// Leaves `quota` (from [`Self::check`]) in the request's [`QuotaSlot`], to be written on its answer.
    pub fn record(req: &Request, quota: Option<Quota>) {
        if let (Some(quota), Some(slot)) = (quota, req.extensions().get::<QuotaSlot>()) {
            // A request takes from one bucket only, once: the first quota is the one.
            let _ = slot.0.set(quota);
        }
    }
}

/// Limits per client address every request that is not authenticated: requests for routes that need no
/// credentials, whatever headers they carry, and requests for operations that need credentials but bring none.
/// Requests that bring credentials to an operation that needs them are limited per caller once authenticated
/// (`security::Authenticate`), and their failures by [`LoginFailures`]. Liveness checks are exempt: a load
/// balancer polls them.
pub struct LimitUnauthenticated {
    pub limits: Arc<RateLimits>,
}

impl Layer for LimitUnauthenticated {
    async fn handle<E: Endpoint>(&self, next: &E, req: Request) -> poem::Result<Response> {
        let request = resolved(&req);
        let liveness = request.operation.as_ref().is_some_and(|op| op.liveness);
        let limited_later = request.authorization && request.authenticates();
        if !(liveness || limited_later) {
            self.limits.take(&req, Caller::Address(request.address))?;
        }
        Ok(next.call(req).await?.into_response())
    }
}

/// A login under way, between [`LoginFailures::begin`] and [`LoginFailures::finish`].
#[derive(Debug, Clone, Copy)]
pub struct LoginAttempt {
    address: ClientAddress,
    reserved: bool,
}

/// Failed logins per client address, as a generic cell rate: `burst` failures at once, then one more every
/// `interval`. Checked before any credentials are looked at, so a throttled address cannot learn that a guess was
/// right; keyed by address, so a guesser cannot lock the admin out from anywhere else.
pub struct LoginFailures {
    /// Per address, when its allowance is next whole (the GCRA "theoretical arrival time").
    due: Mutex<HashMap<ClientAddress, Instant>>,
    interval: Duration,
    /// How far ahead of now `due` may run before the address is refused: `(burst - 1) * interval`.
    tolerance: Duration,
}

impl LoginFailures {
    /// Addresses remembered at most; past it, expired entries are dropped, and a new address is not recorded
    /// until there is room (it is then limited only by the request rate).
    const CAPACITY: usize = 100_000;

    /// `per_minute` failures sustained after a burst of `burst`; `per_minute` 0 turns the limiter off.
    pub fn new(per_minute: u32, burst: u32) -> Option<Self> {
        let per_minute = NonZeroU32::new(per_minute)?;
        let interval = Duration::from_secs(60) / per_minute.get();
        Some(Self {
            due: Mutex::default(),
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
        })
    }

    fn due(&self) -> std::sync::MutexGuard<'_, HashMap<ClientAddress, Instant>> {
        self.due.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before credentials are looked at: refuses an address that has used up its failures, with when to retry.
    /// An address with recent failures has one failure reserved now (given back by [`Self::finish`] if the login
    /// succeeds), so that concurrent guesses cannot all pass this check before any of them is counted. Addresses
    /// without recent failures reserve nothing: clients that never fail are never slowed.
    pub fn begin(&self, address: ClientAddress, now: Instant) -> Result<LoginAttempt, ApiError> {
        let mut due = self.due();
        let unreserved = LoginAttempt {
            address,
            reserved: false,
        };
        let Some(at) = due.get_mut(&address) else {
            return Ok(unreserved);
        };
        let allowed_until = now + self.tolerance;
        if *at > allowed_until {
            metrics::counter!("roster_rate_limited_total", "scope" => "login").increment(1);
            return Err(ApiError::too_many_requests(*at - allowed_until));
        }
        if *at <= now {
            due.remove(&address);
            return Ok(unreserved);
        }
        *at += self.interval;
        Ok(LoginAttempt {
            address,
            reserved: true,
        })
    }

    /// After the credentials were checked: counts a failure, or gives back a reserved one.
    pub fn finish(&self, attempt: LoginAttempt, failed: bool, now: Instant) {
        match (attempt.reserved, failed) {
            (false, true) => self.record(attempt.address, now),
            (true, false) => {
                if let Some(at) = self.due().get_mut(&attempt.address) {
                    *at = at.checked_sub(self.interval).unwrap_or(now);
                }
            }
            _ => {}
        }
    }

    fn record(&self, address: ClientAddress, now: Instant) {
        let mut due = self.due();
        if due.len() >= Self::CAPACITY && !due.contains_key(&address) {
            due.retain(|_, at| *at > now);
            if due.len() >= Self::CAPACITY {
                tracing::warn!("failed-login limiter full; not recording {address}");
                return;
            }
        }
        let at = due.entry(address).or_insert(now);
        *at = (*at).max(now) + self.interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    fn address(text: &str) -> ClientAddress {
        ClientAddress::new(text.parse().unwrap())
    }

    #[test]
    fn buckets_refuse_past_the_burst_and_say_when_to_retry() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _guard = runtime.enter();
        let limits = RateLimits::new(1, 2);
        let a = Caller::Address(address("10.0.0.1"));
        let quota = |limit, remaining, reset| {
            Some(Quota {
                limit,
                remaining,
                reset,
            })
        };
        assert_eq!(limits.check(a), (quota(2, 1, 1), Ok(())));
        assert_eq!(limits.check(a), (quota(2, 0, 2), Ok(())));
        let (refused_quota, refused) = limits.check(a);
        let refused = refused.unwrap_err();
        assert_eq!(refused.status, poem::http::StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.retry_after, Some(1));
        assert_eq!(
            refused_quota,
            quota(2, 0, 2),
            "full after the next token and one more"
        );
        assert_eq!(
            limits.check(Caller::Admin),
            (quota(2, 1, 1), Ok(())),
            "keys are independent"
        );
        assert_eq!(
            RateLimits::new(0, 0).check(a),
            (None, Ok(())),
            "0 turns limits off"
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_network_and_mapped_ipv4_as_ipv4() {
        assert_eq!(address("2001:db8::1"), address("2001:db8::ffff:1"));
        assert_ne!(address("2001:db8::1"), address("2001:db8:0:1::1"));
        assert_eq!(
            ClientAddress::new(IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped())),
            address("10.0.0.1")
        );
        assert_eq!(address("2001:db8::1").to_string(), "2001:db8::/64");
        assert_eq!(
            ClientAddress::new(IpAddr::V6(Ipv6Addr::LOCALHOST)).to_string(),
            "::/64"
        );
    }

    #[test]
    fn failed_logins_allow_a_burst_then_a_handful_per_minute_per_address() {
        let failures = LoginFailures::new(5, 3).unwrap();
        let (a, b) = (address("10.0.0.1"), address("10.0.0.2"));
        let start = Instant::now();
        let fail = |failures: &LoginFailures, at: Instant| -> bool {
            match failures.begin(a, at) {
                Ok(attempt) => {
                    failures.finish(attempt, true, at);
                    true
                }
                Err(_) => false,
            }
        };
        for _ in 0..3 {
            assert!(fail(&failures, start));
        }
        let refused = failures.begin(a, start).unwrap_err();
        assert_eq!(
            refused.retry_after,
            Some(12),
            "one more every 12 s at 5 a minute"
        );
        assert!(
            failures.begin(b, start).is_ok(),
            "other addresses are unaffected"
        );
        let later = start + Duration::from_secs(12);
        assert!(fail(&failures, later));
        assert!(failures.begin(a, later).is_err());
        // Over a minute of steady guessing, only the burst and five more get through.
        let mut allowed = 0;
        let fresh = LoginFailures::new(5, 3).unwrap();
        for tenth in 0..600 {
            if fail(&fresh, start + Duration::from_millis(100 * tenth)) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 3 + 5 - 1, "burst, then one every 12 s within 60 s");
        assert!(
            LoginFailures::new(0, 10).is_none(),
            "0 turns the limiter off"
        );
    }

    #[test]
    fn concurrent_guesses_cannot_all_pass_before_any_is_counted() {
        let failures = LoginFailures::new(5, 3).unwrap();
        let (a, now) = (address("10.0.0.1"), Instant::now());
        let first = failures.begin(a, now).unwrap();
        failures.finish(first, true, now);
        // Two failures left: of many checks made before any answer, only two get through.
        let started: Vec<_> = (0..10)
            .filter_map(|_| failures.begin(a, now).ok())
            .collect();
        assert_eq!(started.len(), 2);
        for attempt in started {
            failures.finish(attempt, true, now);
        }
        assert!(failures.begin(a, now).is_err());
    }

    #[test]
    fn a_successful_login_gives_back_what_it_reserved() {
        let failures = LoginFailures::new(5, 2).unwrap();
        let (a, now) = (address("10.0.0.1"), Instant::now());
        let failed = failures.begin(a, now).unwrap();
        failures.finish(failed, true, now);
        for _ in 0..10 {
            let ok = failures.begin(a, now).unwrap();
            failures.finish(ok, false, now);
        }
        assert!(
            failures.begin(a, now).is_ok(),
            "one failure is still allowed"
        );
    }
}
