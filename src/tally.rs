//! A count of things held, shared between those who hold them and those who look: each holding is a guard that
//! gives its part back when dropped, also when the task holding it is cancelled. Per instance, in memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Clone, Default)]
pub struct Tally(Arc<AtomicUsize>);

impl Tally {
    /// How many are held now.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts `n` more as held until the guard is dropped.
    pub fn hold(&self, n: usize) -> Holding {
        self.0.fetch_add(n, Ordering::Relaxed);
        Holding(self.clone(), n)
    }
}

/// What [`Tally::hold`] counted, given back when dropped.
pub struct Holding(Tally, usize);

impl Drop for Holding {
    fn drop(&mut self) {
        (self.0).0.fetch_sub(self.1, Ordering::Relaxed);
    }
}
