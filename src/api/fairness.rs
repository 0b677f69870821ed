//! One caller cannot take the database from the others: a gate in front of every operation that counts the
//! requests each caller (API user, admin, or client address without credentials) has in flight, against the
//! database pool's size. Per instance, in memory, bounded by the requests in flight.
//!
//! - The gate never admits more requests than the pool has connections, so nothing it lets in waits for the
//!   pool (and times out there as 503).
//! - Callers holding requests may hold together at most the pool less a reserve (1 in 8 connections, at least
//!   2; none below 4); only a caller holding nothing may take the reserve, so a newcomer finds a connection free at once, even
//!   while the callers already in flight run their statements to their timeout. Exhausting the reserve takes as
//!   many identities as it has places, each holding a request.
//! - A caller alone may hold all of the pool outside the reserve; with others in flight, its share of it (divided
//!   by the callers holding requests, at least one each). A place that frees goes to the admissible waiting
//!   caller holding least (the longest waiting among equals), not to whichever request asks first.
//! - A request that cannot enter within `wait` is answered 429 with `Retry-After`, and counted in
//!   `roster_fair_share_refused_total`.
//! - A request's operation runs in a task of its own holding its place, so a client that leaves does not give the
//!   place back while the operation's statement still holds a connection.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Instrument;

use super::context::{caller, deadline, resolved};
use super::error::ApiError;
use super::limits::Caller;
use super::stream::Streaming;
use crate::service::Background;

/// Requests in flight, per caller and in all, and the callers waiting to enter.
#[derive(Default)]
struct Held {
    total: usize,
    by: HashMap<Caller, usize>,
    /// Per caller with requests waiting, their tickets (the order they arrived in) and how to wake each.
    waiting: HashMap<Caller, BTreeMap<u64, Arc<Notify>>>,
    /// The callers waiting, in the order they are let in: fewest requests held, then longest waiting, as
    /// `(held, first ticket, caller)`. Kept up to date with every change, so finding the first costs a look at
    /// one entry, however many wait.
    line: BTreeSet<(usize, u64, Caller)>,
}

impl Held {
    /// The requests `caller` has in flight.
    fn of(&self, caller: Caller) -> usize {
        self.by.get(&caller).copied().unwrap_or(0)
    }

    /// `caller`'s place in the line, if it waits.
    fn place(&self, caller: Caller) -> Option<(usize, u64, Caller)> {
        let first = *self.waiting.get(&caller)?.keys().next()?;
        Some((self.of(caller), first, caller))
    }

    /// Changes what `caller` holds or waits for with `change`, moving it in the line accordingly.
    fn update<R>(&mut self, caller: Caller, change: impl FnOnce(&mut Self) -> R) -> R {
        let before = self.place(caller);
        let result = change(self);
        let after = self.place(caller);
        if before != after {
            if let Some(before) = before {
                self.line.remove(&before);
            }
            if let Some(after) = after {
                self.line.insert(after);
            }
        }
        result
    }

    /// The waiting caller first in line.
    fn first_in_line(&self) -> Option<(usize, u64, Caller)> {
        self.line.first().copied()
    }
}

/// The gate: how many requests may hold the database at once, and who holds them.
pub struct Gate {
    /// Connections the requests may hold, before what background work holds.
    capacity: usize,
    /// Connections this instance's background work (an import job) holds now, left out of `capacity`.
    background: Background,
    wait: Duration,
    held: Mutex<Held>,
    /// The order requests arrived in.
    tickets: AtomicU64,
}

/// A request's place in the gate, given back when it is dropped.
pub struct Permit {
    gate: Arc<Gate>,
    caller: Caller,
}

/// A request waiting to enter, taken off the waiting callers when it enters, gives up, or is dropped (its client
/// left): a stale entry would make others defer to a request that no longer exists.
struct Waiting<'a> {
    gate: &'a Gate,
    caller: Caller,
    ticket: u64,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut held = self.gate.lock();
        let (caller, ticket) = (self.caller, self.ticket);
        held.update(caller, |held| {
            if let Some(tickets) = held.waiting.get_mut(&caller) {
                tickets.remove(&ticket);
                if tickets.is_empty() {
                    held.waiting.remove(&caller);
                }
            }
        });
        // Whoever was next after this request (it entered, or gave up) may enter now.
        self.gate.wake_first(&held);
    }
}

impl Gate {
    /// A gate letting in requests for `capacity` connections, less those `background` holds; a request waits at
    /// most `wait` to enter.
    pub fn new(capacity: usize, wait: Duration, background: Background) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            background,
            wait,
            held: Mutex::default(),
            tickets: AtomicU64::new(0),
        })
    }

    /// The connections requests may hold now, and how many of them callers already holding requests may hold
    /// together (the rest is the reserve: 1 in 8, at least 2 so that one identity beside a flooding caller
    /// cannot take it all; none below 4).
    fn room(&self) -> (usize, usize) {
        let capacity = self.capacity.saturating_sub(self.background.count()).max(1);
        let reserve = if capacity >= 4 {
            capacity.div_ceil(8).max(2)
        } else {
            0
        };
        (capacity, capacity - reserve)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the request first in line if it may enter now: only that one, so that a place that frees costs a
    /// wake-up, not one per waiting request. It wakes the next in turn when it enters or gives up.
    fn wake_first(&self, held: &Held) {
        if let Some((_, ticket, caller)) = held.first_in_line()
            && self.admissible(held, caller)
            && let Some(wake) = held.waiting.get(&caller).and_then(|t| t.get(&ticket))
        {
            wake.notify_one();
        }
    }

    /// Whether `caller` may have one more request in flight now, by the pool's room alone: never past the pool; a
    /// caller holding nothing may take the reserve; one holding requests may not, and holds at most its share
    /// (the room outside the reserve divided by the callers holding requests).
    fn admissible(&self, held: &Held, caller: Caller) -> bool {
        let (capacity, most) = self.room();
        match held.of(caller) {
            0 => held.total < capacity,
            mine => held.total < most && mine < (most / held.by.len()).max(1),
        }
    }

    /// Enters if `caller` is admissible and no other admissible caller waits ahead of it: one holding fewer
    /// requests, or as many and waiting since before `ticket`. So a place that frees goes to the caller holding
    /// least (the longest waiting among equals), not to whichever request happens to ask first. Only the first
    /// in line needs looking at: a caller holding more is admissible only if one holding fewer is.
    fn try_enter(&self, caller: Caller, ticket: u64) -> bool {
        let mut held = self.lock();
        if !self.admissible(&held, caller) {
            return false;
        }
        let mine = held.of(caller);
        if let Some((theirs, first, other)) = held.first_in_line()
            && other != caller
            && (theirs, first) < (mine, ticket)
            && self.admissible(&held, other)
        {
            return false;
        }
        held.total += 1;
        held.update(caller, |held| *held.by.entry(caller).or_default() += 1);
        true
    }

    /// Enters the gate, waiting up to `wait`; on refusal, how long to wait before retrying.
    pub async fn enter(self: &Arc<Self>, caller: Caller) -> Result<Permit, Duration> {
        let deadline = Instant::now() + self.wait;
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        let permit = || Permit {
            gate: self.clone(),
            caller,
        };
        if self.try_enter(caller, ticket) {
            return Ok(permit());
        }
        let wake = Arc::new(Notify::new());
        {
            let mut held = self.lock();
            held.update(caller, |held| {
                held.waiting
                    .entry(caller)
                    .or_default()
                    .insert(ticket, wake.clone())
            });
        }
        let _waiting = Waiting {
            gate: self,
            caller,
            ticket,
        };
        loop {
            // A wake-up given between the try and the wait is kept by the `Notify` (`notify_one`), not lost.
            if self.try_enter(caller, ticket) {
                // Dropping `_waiting` wakes the next in line: room may be left for it too.
                return Ok(permit());
            }
            if tokio::time::timeout_at(deadline, wake.notified())
                .await
                .is_err()
            {
                return Err(Duration::from_secs(1));
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut held = self.gate.lock();
            held.total -= 1;
            let caller = self.caller;
            held.update(caller, |held| {
                if let Some(mine) = held.by.get_mut(&caller) {
                    *mine -= 1;
                    if *mine == 0 {
                        held.by.remove(&caller);
                    }
                }
            });
            self.gate.wake_first(&held);
        }
    }
}

/// The gate in front of the operations, inside authentication (it needs to know the caller).
pub struct ShareDatabase(pub Arc<Gate>);

impl<E: Endpoint + 'static> Middleware<E> for ShareDatabase {
    type Output = SharedDatabase<E>;

    fn transform(&self, next: E) -> Self::Output {
        SharedDatabase {
            gate: self.0.clone(),
            next: Arc::new(next),
        }
    }
}

pub struct SharedDatabase<E> {
    gate: Arc<Gate>,
    next: Arc<E>,
}

impl<E: Endpoint + 'static> Endpoint for SharedDatabase<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let who = caller(&req).map_or_else(|| Caller::Address(resolved(&req).address), Caller::of);
        let permit = self.gate.enter(who).await.map_err(|retry| {
            metrics::counter!("roster_fair_share_refused_total").increment(1);
            ApiError::too_many_requests(retry)
        })?;
        // The operation runs in a task of its own that holds the caller's place until it ends (or the request's
        // deadline passes): a client that leaves (a reset HTTP/2 stream, a closed connection) would otherwise free
        // its place at once while its statement still ran on a pooled connection, and could take the whole pool by
        // sending and abandoning requests.
        let next = self.next.clone();
        let deadline = deadline(&req);
        let operation = async move {
            let mut response = match tokio::time::timeout_at(deadline, next.call(req)).await {
                Ok(response) => response?.into_response(),
                // `LimitDuration` answers it; what is left here is to stop the work.
                Err(_) => return Err(ApiError::timed_out().into()),
            };
            if response.extensions().get::<Streaming>().is_some() {
                // The body still reads the database as it is sent: the caller keeps its place until it ends.
                let body = response.take_body().into_bytes_stream();
                response.set_body(Body::from_bytes_stream(body.map(move |chunk| {
                    let _held = &permit;
                    chunk
                })));
            }
            Ok::<_, poem::Error>(response)
        };
        match tokio::spawn(operation.in_current_span()).await {
            Ok(result) => result,
            // Raised again here, for `CatchPanic` outside.
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(err) => {
                tracing::error!(error = %err, "an operation's task failed");
                Err(ApiError::internal().into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::future::join_all;

    use super::*;

    fn user(id: i64) -> Caller {
        Caller::ApiUser(id)
    }

    async fn hold(gate: &Arc<Gate>, caller: Caller, n: usize) -> Vec<Permit> {
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(gate.enter(caller).await.unwrap());
        }
        held
    }

    #[tokio::test]
    async fn a_caller_alone_may_use_the_pool_less_its_reserve() {
        let gate = Gate::new(16, Duration::from_millis(20), Background::default());
        let mut held = hold(&gate, user(1), 14).await;
        assert!(
            gate.enter(user(1)).await.is_err(),
            "the 15th waits, then is refused"
        );
        let other = gate.enter(user(2)).await;
        assert!(other.is_ok(), "a newcomer finds a connection at once");
        drop(other);
        drop(held.pop());
        assert!(
            gate.enter(user(1)).await.is_ok(),
            "alone again, a freed place is the caller's again"
        );
    }

    #[tokio::test]
    async fn the_reserve_is_only_for_callers_holding_nothing_and_the_gate_never_admits_past_the_pool()
     {
        let gate = Gate::new(16, Duration::from_millis(20), Background::default());
        let _first = hold(&gate, user(1), 14).await;
        // A second identity takes one place of the reserve, and no more: that would leave none for a third.
        let _second = gate.enter(user(2)).await.unwrap();
        assert!(gate.enter(user(2)).await.is_err());
        assert!(gate.enter(user(1)).await.is_err());
        let _third = gate.enter(user(3)).await.unwrap();
        // 16 in flight: a fourth waits for a connection at the gate (429), not at the pool (503).
        assert!(gate.enter(user(4)).await.is_err());
    }

    #[tokio::test]
    async fn as_places_free_each_caller_holds_its_share() {
        let gate = Gate::new(16, Duration::from_millis(20), Background::default());
        let mut first = hold(&gate, user(1), 14).await;
        let mut second = vec![gate.enter(user(2)).await.unwrap()];
        drop(first.pop());
        assert!(
            gate.enter(user(2)).await.is_err(),
            "callers holding requests hold the pool less the reserve together"
        );
        // Two callers: a share of 14 / 2 = 7 each. The first is over it, so only the second gains what frees.
        for _ in 0..6 {
            drop(first.pop());
            assert!(gate.enter(user(1)).await.is_err(), "over its share");
            second.push(gate.enter(user(2)).await.unwrap());
        }
        assert_eq!((first.len(), second.len()), (7, 7));
        drop(first.pop());
        assert!(gate.enter(user(2)).await.is_err(), "at its share");
        assert!(gate.enter(user(1)).await.is_ok(), "back to its share");
    }

    #[tokio::test]
    async fn connections_held_by_background_work_are_left_out() {
        let background = Background::default();
        let gate = Gate::new(16, Duration::from_millis(20), background.clone());
        let job = background.hold(3);
        // 13 places, 2 of them the reserve.
        let _held = hold(&gate, user(1), 11).await;
        assert!(gate.enter(user(1)).await.is_err());
        let _second = gate.enter(user(2)).await.unwrap();
        let _third = gate.enter(user(3)).await.unwrap();
        assert!(gate.enter(user(4)).await.is_err(), "13 in flight");
        drop(job);
        assert!(
            gate.enter(user(4)).await.is_ok(),
            "the job's places are back"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_waiting_request_enters_in_turn_however_many_wait_and_some_give_up() {
        let gate = Gate::new(16, Duration::from_secs(60), Background::default());
        let first = hold(&gate, user(-1), 14).await;
        let mut tasks = Vec::new();
        for i in 0..2_000 {
            let gate = gate.clone();
            // Distinct callers, one caller with many requests, and requests whose clients leave.
            let caller = if i % 4 == 0 { user(-2) } else { user(i) };
            let gives_up = i % 7 == 0;
            tasks.push(tokio::spawn(async move {
                if gives_up {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(1), gate.enter(caller)).await;
                    return;
                }
                let permit = gate.enter(caller).await.unwrap();
                tokio::task::yield_now().await;
                drop(permit);
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(first);
        // A lost wake-up would leave some request waiting until its 60 s pass.
        tokio::time::timeout(Duration::from_secs(20), join_all(tasks))
            .await
            .expect("every request entered");
        let held = gate.lock();
        assert_eq!((held.total, held.waiting.len(), held.line.len()), (0, 0, 0));
    }

    #[tokio::test]
    async fn a_request_woken_whose_client_left_wakes_the_next_in_line() {
        let gate = Gate::new(1, Duration::from_secs(5), Background::default());
        let first = gate.enter(user(1)).await.unwrap();
        let mut second = Box::pin(gate.enter(user(2)));
        assert!(
            tokio::time::timeout(Duration::from_millis(10), &mut second)
                .await
                .is_err()
        );
        let third = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(user(3)).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The place goes to the second, first in line; its client leaves before it takes it.
        drop(first);
        drop(second);
        let entered = tokio::time::timeout(Duration::from_millis(500), third).await;
        assert!(entered.is_ok_and(|entered| entered.unwrap()));
    }

    #[tokio::test]
    async fn a_waiting_request_enters_when_a_place_frees() {
        let gate = Gate::new(1, Duration::from_secs(5), Background::default());
        let held = gate.enter(user(1)).await.unwrap();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(user(1)).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiting.await.unwrap());
    }

    #[tokio::test]
    async fn a_freed_place_goes_to_the_caller_waiting_not_to_the_one_asking_again_at_once() {
        let gate = Gate::new(1, Duration::from_secs(5), Background::default());
        let first = gate.enter(user(1)).await.unwrap();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter(user(2)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The first caller gives its place back and asks again at once, before the waiting request is polled.
        drop(first);
        let again = Gate::enter(&gate, user(1));
        let again = tokio::time::timeout(Duration::from_millis(200), again).await;
        assert!(again.is_err(), "the first caller must wait its turn");
        let second = waiting.await.unwrap().unwrap();
        assert_eq!(second.caller, user(2));
    }

    #[tokio::test]
    async fn a_request_that_stops_waiting_leaves_no_one_deferring_to_it() {
        let gate = Gate::new(1, Duration::from_secs(5), Background::default());
        let first = gate.enter(user(1)).await.unwrap();
        // A request of another caller waits, then its client leaves (the future is dropped).
        let gone = tokio::time::timeout(Duration::from_millis(20), gate.enter(user(2))).await;
        assert!(gone.is_err());
        drop(first);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), gate.enter(user(1)))
                .await
                .is_ok()
        );
        assert!(gate.lock().waiting.is_empty());
    }
}
