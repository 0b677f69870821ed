//! One caller cannot take the database from the others: a gate in front of every operation that counts the
//! requests each caller (API user, admin, or client address without credentials) has in flight, against the
//! database pool's size. Per instance, in memory, bounded by the requests in flight.
//!
//! - A caller may hold at most the pool less a reserve (1 in 8 connections, none below 4), so a newcomer always
//!   finds a connection free at once, even while one caller's statements run to their timeout. Below that a
//!   caller alone uses the pool as it likes: its requests never wait here while the pool has room.
//! - Once the pool is full, each caller active in the gate may hold its fair share (the pool divided by the callers
//!   holding requests, at least one); a caller over it waits for its own requests to finish, so every connection
//!   that frees goes to a caller under its share.
//! - A request that cannot enter within `wait` is answered 429 with `Retry-After`, and counted in
//!   `roster_fair_share_refused_total`.
//! - A request's operation runs in a task of its own holding its place, so a client that leaves does not give the
//!   place back while the operation's statement still holds a connection.

use std::collections::HashMap;
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

/// Requests in flight, per caller and in all.
#[derive(Default)]
struct Held {
    total: usize,
    by: HashMap<Caller, usize>,
}

/// The gate: how many requests may hold the database at once, and who holds them.
pub struct Gate {
    capacity: usize,
    /// Most requests one caller may have in flight.
    most: usize,
    wait: Duration,
    held: Mutex<Held>,
    freed: Notify,
}

/// A request's place in the gate, given back when it is dropped.
pub struct Permit {
    gate: Arc<Gate>,
    caller: Caller,
}

impl Gate {
    /// A gate for a pool of `capacity` connections, where a request waits at most `wait` to enter.
    pub fn new(capacity: usize, wait: Duration) -> Arc<Self> {
        let capacity = capacity.max(1);
        let reserve = if capacity >= 4 {
            capacity.div_ceil(8)
        } else {
            0
        };
        Arc::new(Self {
            capacity,
            most: capacity - reserve,
            wait,
            held: Mutex::default(),
            freed: Notify::new(),
        })
    }

    fn try_enter(&self, caller: Caller) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let mine = held.by.get(&caller).copied().unwrap_or(0);
        let limit = if held.total < self.capacity {
            self.most
        } else {
            let callers = held.by.len() + usize::from(mine == 0);
            (self.capacity / callers).clamp(1, self.most)
        };
        if mine >= limit {
            return false;
        }
        held.total += 1;
        *held.by.entry(caller).or_default() += 1;
        true
    }

    /// Enters the gate, waiting up to `wait`; on refusal, how long to wait before retrying.
    pub async fn enter(self: &Arc<Self>, caller: Caller) -> Result<Permit, Duration> {
        let deadline = Instant::now() + self.wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_enter(caller) {
                return Ok(Permit {
                    gate: self.clone(),
                    caller,
                });
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(Duration::from_secs(1));
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut held = self.gate.held.lock().unwrap_or_else(|e| e.into_inner());
            held.total -= 1;
            if let Some(mine) = held.by.get_mut(&self.caller) {
                *mine -= 1;
                if *mine == 0 {
                    held.by.remove(&self.caller);
                }
            }
        }
        self.gate.freed.notify_waiters();
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
    use super::*;

    fn user(id: i64) -> Caller {
        Caller::ApiUser(id)
    }

    #[tokio::test]
    async fn a_caller_alone_may_use_the_pool_less_its_reserve() {
        let gate = Gate::new(16, Duration::from_millis(20));
        let mut held = Vec::new();
        for _ in 0..14 {
            held.push(gate.enter(user(1)).await.unwrap());
        }
        assert!(
            gate.enter(user(1)).await.is_err(),
            "the 15th waits, then is refused"
        );
        let other = gate.enter(user(2)).await;
        assert!(other.is_ok(), "a newcomer finds a connection at once");
        drop(held.pop());
        assert!(
            gate.enter(user(1)).await.is_ok(),
            "a freed place is the caller's again"
        );
    }

    #[tokio::test]
    async fn once_the_pool_is_full_each_caller_holds_its_share() {
        let gate = Gate::new(16, Duration::from_millis(20));
        let mut first: Vec<Permit> = Vec::new();
        for _ in 0..14 {
            first.push(gate.enter(user(1)).await.unwrap());
        }
        let mut second = vec![
            gate.enter(user(2)).await.unwrap(),
            gate.enter(user(2)).await.unwrap(),
        ];
        // Full: 16 in flight. Two callers, a share of 8 each: the first is over, the second under.
        assert!(gate.enter(user(1)).await.is_err());
        // A place freed by the first caller goes to the second, who is under its share.
        drop(first.pop());
        second.push(gate.enter(user(2)).await.unwrap());
        assert!(gate.enter(user(1)).await.is_err(), "still over its share");
    }

    #[tokio::test]
    async fn a_waiting_request_enters_when_a_place_frees() {
        let gate = Gate::new(1, Duration::from_secs(5));
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
    async fn a_single_connection_alternates_between_callers() {
        let gate = Gate::new(1, Duration::from_millis(20));
        let _first = gate.enter(user(1)).await.unwrap();
        assert!(gate.enter(user(1)).await.is_err(), "over its share of one");
        // Another caller is under its share: it enters and queues at the pool itself.
        assert!(gate.enter(user(2)).await.is_ok());
    }
}
