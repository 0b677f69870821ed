//! Exact totals of searches and tag filters without counting on every request.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};

/// Match counts of searches and tag filters, each with the lists' version (the sum of `list_counts.changes`,
/// which database triggers grow with every change to `lists`) it was counted at. A count is reused while the
/// version is unchanged, that is while no list has been inserted, updated or deleted by any instance, and by
/// requests whose page was read before the count started; either way the reused total is exact. Per instance, in
/// memory, bounded; losing it costs only a recount.
///
/// Counts of one filter run one at a time: a burst of requests that all miss (the first requests for a search,
/// or the first after a write) waits for one count instead of running the same expensive count side by side. When
/// that count fails, the requests that were waiting for it fail at once with [`CountFailed`] rather than each
/// trying the same count again in turn.
pub struct TotalsCache<K> {
    counted: Mutex<Entries<K>>,
    /// Per filter: its turn, holding when the last failed count of the filter started.
    turns: Mutex<HashMap<K, Arc<TurnLock<Option<Instant>>>>>,
}

/// The bytes a cache key holds, so that the cache is bounded in memory and not only in entries.
pub trait Weigh {
    fn weight(&self) -> usize;
}

/// A listing: its filter, ordering field and direction.
impl<F: Weigh, O, D> Weigh for (F, O, D) {
    fn weight(&self) -> usize {
        self.0.weight() + std::mem::size_of::<(O, D)>()
    }
}

impl Weigh for &str {
    fn weight(&self) -> usize {
        self.len()
    }
}

impl Weigh for String {
    fn weight(&self) -> usize {
        self.len() + std::mem::size_of::<String>()
    }
}

/// The counted totals, with the bytes their keys hold.
struct Entries<K> {
    map: HashMap<K, Counted>,
    bytes: usize,
}

impl<K> Default for Entries<K> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            bytes: 0,
        }
    }
}

/// A count that this request was waiting for failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountFailed;

#[derive(Clone, Copy)]
struct Counted {
    version: i64,
    total: u64,
    started: Instant,
}

impl Counted {
    /// Whether this total may be served with a page read at `version`, whose statement had returned by
    /// `page_read`. Either the lists are unchanged since it was counted, or it was counted by a statement that
    /// started after the page had been read and so saw every change the page saw: as exact as counting now.
    fn serves(&self, version: i64, page_read: Instant) -> bool {
        self.version == version || self.started > page_read
    }
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<K: Hash + Eq + Clone + Weigh> Default for TotalsCache<K> {
    fn default() -> Self {
        Self {
            counted: Mutex::default(),
            turns: Mutex::default(),
        }
    }
}

impl<K: Hash + Eq + Clone + Weigh> TotalsCache<K> {
    /// Enough for the searches being paged through at any one time; beyond it the cache starts afresh.
    const CAPACITY: usize = 1024;
    /// Most bytes the keys may hold (each key also costs [`Self::ENTRY_BYTES`]); beyond it the cache starts
    /// afresh.
    const MAX_BYTES: usize = 4 << 20;
    /// What an entry costs besides its key's own bytes (map slot, `Counted`, allocation headers).
    const ENTRY_BYTES: usize = 128;

    /// The total for `key` to serve with a page read at `version` (its statement returned by `page_read`):
    /// reused when it may be, else counted by `count`, which returns the version it counted at and the total.
    pub async fn total<E, F>(
        &self,
        key: &K,
        version: i64,
        page_read: Instant,
        count: F,
    ) -> Result<u64, E>
    where
        E: From<CountFailed>,
        F: Future<Output = Result<(i64, u64), E>>,
    {
        if let Some(total) = self.reusable(key, version, page_read) {
            return Ok(total);
        }
        let mut turn = self.turn(key).await;
        // Whoever held the turn before may just have counted what this request needs, or failed to.
        if let Some(total) = self.reusable(key, version, page_read) {
            return Ok(total);
        }
        if turn.last_failure().is_some_and(|failed| failed > page_read) {
            return Err(CountFailed.into());
        }
        let started = Instant::now();
        let (version, total) = match count.await {
            Ok(counted) => counted,
            Err(err) => {
                turn.failed(started);
                return Err(err);
            }
        };
        let mut counted = locked(&self.counted);
        if !counted.map.contains_key(key) {
            let weight = key.weight() + Self::ENTRY_BYTES;
            if counted.map.len() >= Self::CAPACITY || counted.bytes + weight > Self::MAX_BYTES {
                *counted = Entries::default();
            }
            counted.bytes += weight;
        }
        counted.map.insert(
            key.clone(),
            Counted {
                version,
                total,
                started,
            },
        );
        Ok(total)
    }

    fn reusable(&self, key: &K, version: i64, page_read: Instant) -> Option<u64> {
        locked(&self.counted)
            .map
            .get(key)
            .filter(|counted| counted.serves(version, page_read))
            .map(|counted| counted.total)
    }

    /// Waits until no other count of `key` runs on this instance.
    async fn turn(&self, key: &K) -> Turn<'_, K> {
        let lock = {
            let mut turns = locked(&self.turns);
            if turns.len() >= Self::CAPACITY {
                // Entries left by waiters that gave up (a timed-out request); nobody holds or waits on them.
                turns.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            turns.entry(key.clone()).or_default().clone()
        };
        Turn {
            guard: Some(lock.lock_owned().await),
            cache: self,
            key: key.clone(),
        }
    }

    #[cfg(test)]
    fn turns_in_use(&self) -> usize {
        locked(&self.turns).len()
    }
}

/// A filter's turn to count; the last one out removes the filter's lock.
struct Turn<'a, K: Hash + Eq + Clone> {
    guard: Option<OwnedMutexGuard<Option<Instant>>>,
    cache: &'a TotalsCache<K>,
    key: K,
}

impl<K: Hash + Eq + Clone> Turn<'_, K> {
    /// When the last failed count of this filter started, if one failed while this turn was awaited.
    fn last_failure(&self) -> Option<Instant> {
        self.guard.as_deref().copied().flatten()
    }

    fn failed(&mut self, started: Instant) {
        if let Some(guard) = self.guard.as_mut() {
            **guard = Some(started);
        }
    }
}

impl<K: Hash + Eq + Clone> Drop for Turn<'_, K> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut turns = locked(&self.cache.turns);
        // Only the map's own handle left: nobody holds or waits for this turn.
        if turns
            .get(&self.key)
            .is_some_and(|lock| Arc::strong_count(lock) == 1)
        {
            turns.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum TestError {
        Down,
        Shared,
    }

    impl From<CountFailed> for TestError {
        fn from(_: CountFailed) -> Self {
            TestError::Shared
        }
    }

    async fn slow_count(
        counts: &AtomicUsize,
        version: i64,
        total: u64,
    ) -> Result<(i64, u64), TestError> {
        counts.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok((version, total))
    }

    /// `n` concurrent requests for filter `k` with a page read at version 1 by `page_read`, whose count, if they
    /// make it, finds `total`.
    fn concurrent_requests(
        cache: &Arc<TotalsCache<&'static str>>,
        counts: &Arc<AtomicUsize>,
        n: usize,
        page_read: Instant,
        total: u64,
    ) -> Vec<tokio::task::JoinHandle<Result<u64, TestError>>> {
        (0..n)
            .map(|_| {
                let (cache, counts) = (cache.clone(), counts.clone());
                tokio::spawn(async move {
                    let count = slow_count(&counts, 1, total);
                    cache.total(&"k", 1, page_read, count).await
                })
            })
            .collect()
    }

    #[tokio::test]
    async fn a_burst_of_requests_that_miss_together_counts_once() {
        let cache = Arc::new(TotalsCache::<&str>::default());
        let counts = Arc::new(AtomicUsize::new(0));
        let page_read = Instant::now();
        let requests = concurrent_requests(&cache, &counts, 16, page_read, 42);
        for request in requests {
            assert_eq!(request.await.unwrap(), Ok(42));
        }
        assert_eq!(counts.load(Ordering::SeqCst), 1);
        assert_eq!(cache.turns_in_use(), 0, "finished turns are removed");
    }

    #[tokio::test]
    async fn a_total_is_reused_only_at_its_version_or_when_counted_after_the_page() {
        let cache = TotalsCache::<&str>::default();
        let counts = AtomicUsize::new(0);
        // The total served for `key` with a page read at `version` by `page_read`; a count would find `total`.
        let served = |key: &'static &'static str, version, page_read, total| {
            cache.total(key, version, page_read, slow_count(&counts, version, total))
        };
        let before_count = Instant::now();
        assert_eq!(served(&"k", 7, before_count, 42).await, Ok(42));
        let after_count = Instant::now();
        // Same version: the lists are unchanged, whenever the page was read.
        assert_eq!(served(&"k", 7, after_count, 0).await, Ok(42));
        // The lists changed, but the count started after this page was read: it saw every change the page saw.
        assert_eq!(served(&"k", 8, before_count, 0).await, Ok(42));
        assert_eq!(counts.load(Ordering::SeqCst), 1);
        // The lists changed after the count started: count again.
        assert_eq!(served(&"k", 8, after_count, 43).await, Ok(43));
        assert_eq!(counts.load(Ordering::SeqCst), 2);
        // Another filter never borrows this one's total.
        assert_eq!(served(&"other", 8, after_count, 5).await, Ok(5));
    }

    #[tokio::test]
    async fn different_filters_count_side_by_side() {
        let cache = Arc::new(TotalsCache::<&str>::default());
        let both_counting = Arc::new(tokio::sync::Barrier::new(2));
        let request = |key: &'static str| {
            let (cache, both_counting) = (cache.clone(), both_counting.clone());
            tokio::spawn(async move {
                let count = async move {
                    // Completes only when the other filter's count runs at the same time.
                    both_counting.wait().await;
                    Ok::<_, TestError>((1, 1))
                };
                cache.total(&key, 1, Instant::now(), count).await
            })
        };
        let (a, b) = (request("a"), request("b"));
        let both = tokio::time::timeout(Duration::from_secs(5), async { (a.await, b.await) })
            .await
            .expect("one filter's count does not wait for another's");
        assert_eq!((both.0.unwrap(), both.1.unwrap()), (Ok(1), Ok(1)));
    }

    #[tokio::test]
    async fn a_failed_count_is_not_stored_and_frees_the_turn() {
        let cache = TotalsCache::<&str>::default();
        let failed = cache.total(&"k", 1, Instant::now(), async {
            Err::<(i64, u64), _>(TestError::Down)
        });
        assert_eq!(failed.await, Err(TestError::Down));
        assert_eq!(cache.turns_in_use(), 0);
        let counts = AtomicUsize::new(0);
        assert_eq!(
            cache
                .total(&"k", 1, Instant::now(), slow_count(&counts, 1, 3))
                .await,
            Ok(3)
        );
        assert_eq!(
            counts.load(Ordering::SeqCst),
            1,
            "the failure was not cached"
        );
    }

    #[tokio::test]
    async fn requests_waiting_for_a_count_that_fails_fail_with_it_instead_of_counting_again() {
        let cache = Arc::new(TotalsCache::<&str>::default());
        let counts = Arc::new(AtomicUsize::new(0));
        let page_read = Instant::now();
        let failing = {
            let cache = cache.clone();
            tokio::spawn(async move {
                let count = async {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err::<(i64, u64), _>(TestError::Down)
                };
                cache.total(&"k", 1, page_read, count).await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let waiting = concurrent_requests(&cache, &counts, 4, page_read, 9);
        assert_eq!(failing.await.unwrap(), Err(TestError::Down));
        for request in waiting {
            assert_eq!(request.await.unwrap(), Err(TestError::Shared));
        }
        assert_eq!(counts.load(Ordering::SeqCst), 0, "nobody retried the count");
        assert_eq!(cache.turns_in_use(), 0);
        // A page read after the failure is counted afresh.
        let total = cache.total(&"k", 1, Instant::now(), slow_count(&counts, 1, 9));
        assert_eq!(total.await, Ok(9));
    }

    #[tokio::test]
    async fn the_cache_is_bounded_in_bytes_not_only_in_entries() {
        let cache = TotalsCache::<&'static str>::default();
        // Few entries, each as large as a maximal search: far under the entry cap, well over the byte cap.
        let large: &'static str = Box::leak("x".repeat(40_000).into_boxed_str());
        let keys: Vec<&'static str> = (0..200).map(|i| &large[i..]).collect();
        for key in &keys {
            let total = cache
                .total(key, 1, Instant::now(), async { Ok::<_, TestError>((1, 7)) })
                .await
                .unwrap();
            assert_eq!(total, 7);
            let counted = locked(&cache.counted);
            assert!(
                counted.bytes <= TotalsCache::<&str>::MAX_BYTES,
                "{}",
                counted.bytes
            );
            let held: usize = counted
                .map
                .keys()
                .map(|k| k.len() + TotalsCache::<&str>::ENTRY_BYTES)
                .sum();
            assert_eq!(held, counted.bytes, "the count of bytes is exact");
        }
    }
}
