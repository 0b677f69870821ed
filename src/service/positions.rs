//! Where the rows of an ordering are, so that a deep page seeks to a known row instead of skipping every row
//! before it.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::Mutex;

use super::totals::Weigh;
use crate::domain::SortKey;

/// Marks of served pages: for a listing (its filter and ordering), the key of the row at some 0-based positions,
/// all at one version of the data (see migration 8: the version grows with every write to subscribers or
/// subscriptions, on any instance). A page at offset `m` seeks to the nearest mark `p ≤ m` and skips only `m - p`
/// rows: exact while the version is the one the marks were taken at, which the page's own statement checks.
/// Walking page after page, each page starts at the mark its predecessor left; a repeated deep page starts at
/// its own. Per instance, in memory, bounded; losing it costs only the skipping it saved.
/// `K` names a listing: its filter and ordering.
pub struct Positions<K> {
    marks: Mutex<Marks<K>>,
}

impl<K> Default for Positions<K> {
    fn default() -> Self {
        Self {
            marks: Mutex::new(Marks::default()),
        }
    }
}

struct Marks<K> {
    version: i64,
    by_listing: HashMap<K, BTreeMap<u64, SortKey>>,
    bytes: usize,
}

impl<K> Default for Marks<K> {
    fn default() -> Self {
        Self {
            version: 0,
            by_listing: HashMap::new(),
            bytes: 0,
        }
    }
}

/// Where to start a page: the row at `position` (0-based) has `key`, as of `version`.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub version: i64,
    pub position: u64,
    pub key: SortKey,
}

impl<K: Hash + Eq + Clone + Weigh> Positions<K> {
    /// Most bytes kept over all listings.
    const MAX_BYTES: usize = 4 << 20;
    /// Most marks kept for one listing.
    const MAX_MARKS: usize = 4096;

    fn locked(&self) -> std::sync::MutexGuard<'_, Marks<K>> {
        self.marks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The nearest mark at or before `offset` in `listing`.
    pub fn nearest(&self, listing: &K, offset: u64) -> Option<Mark> {
        let marks = self.locked();
        let (position, key) = marks
            .by_listing
            .get(listing)?
            .range(..=offset)
            .next_back()?;
        Some(Mark {
            version: marks.version,
            position: *position,
            key: key.clone(),
        })
    }

    /// Notes that the data has reached `version`: marks of an older one are dropped.
    pub fn observe(&self, version: i64) {
        let mut marks = self.locked();
        if version > marks.version {
            *marks = Marks {
                version,
                ..Marks::default()
            };
        }
    }

    /// Notes a page of `listing` served at `version`, `rows` rows from `offset`: the data has reached that
    /// version, and, when given, the keys of the page's first and last row are kept as marks.
    pub fn served(
        &self,
        listing: &K,
        version: i64,
        offset: u64,
        rows: usize,
        ends: Option<(SortKey, SortKey)>,
    ) {
        match ends {
            Some((first, last)) if rows > 0 => {
                let end = offset + rows as u64 - 1;
                self.record(listing, version, [(offset, first), (end, last)]);
            }
            _ => self.observe(version),
        }
    }

    /// Keeps the keys of rows of `listing` at their positions, read at `version`.
    pub fn record(
        &self,
        listing: &K,
        version: i64,
        rows: impl IntoIterator<Item = (u64, SortKey)>,
    ) {
        self.observe(version);
        let mut marks = self.locked();
        if marks.version != version {
            // Read before a newer version was seen: its positions may be stale.
            return;
        }
        for (position, key) in rows {
            let weight = key.weight() + listing.weight();
            if marks.bytes + weight > Self::MAX_BYTES {
                marks.by_listing.clear();
                marks.bytes = 0;
            }
            let full = marks
                .by_listing
                .get(listing)
                .is_some_and(|m| m.len() >= Self::MAX_MARKS);
            if full {
                // `bytes` keeps counting what these held (it over-counts, so the bound still holds) until the
                // next clearing of everything.
                marks.by_listing.remove(listing);
            }
            marks.bytes += weight;
            marks
                .by_listing
                .entry(listing.clone())
                .or_default()
                .insert(position, key);
        }
    }

    /// Drops the marks of `listing` (they did not hold at the version a page was read at).
    pub fn forget(&self, listing: &K) {
        self.locked().by_listing.remove(listing);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SortValue;

    fn key(id: i64) -> SortKey {
        SortKey {
            value: SortValue::None,
            id,
        }
    }

    #[test]
    fn a_page_starts_at_the_nearest_mark_before_it() {
        let positions = Positions::<&str>::default();
        positions.record(&"l", 7, [(0, key(1)), (499, key(500)), (999, key(1000))]);
        let mark = positions.nearest(&"l", 1000).unwrap();
        assert_eq!((mark.version, mark.position, mark.key), (7, 999, key(1000)));
        assert_eq!(positions.nearest(&"l", 998).unwrap().position, 499);
        assert!(positions.nearest(&"other", 1000).is_none());
    }

    #[test]
    fn a_newer_version_drops_every_mark_and_an_older_one_is_not_kept() {
        let positions = Positions::<&str>::default();
        positions.record(&"l", 7, [(10, key(11))]);
        positions.observe(8);
        assert!(positions.nearest(&"l", 10).is_none());
        positions.record(&"l", 7, [(10, key(11))]);
        assert!(positions.nearest(&"l", 10).is_none());
        positions.record(&"l", 8, [(10, key(11))]);
        assert_eq!(positions.nearest(&"l", 10).unwrap().version, 8);
        positions.forget(&"l");
        assert!(positions.nearest(&"l", 10).is_none());
    }

    #[test]
    fn marks_stay_bounded() {
        let positions = Positions::<&str>::default();
        for i in 0..(Positions::<&str>::MAX_MARKS as u64 * 3) {
            positions.record(&"l", 1, [(i, key(i as i64))]);
        }
        let marks = positions.locked();
        assert!(marks.by_listing[&"l"].len() <= Positions::<&str>::MAX_MARKS);
        assert!(marks.bytes <= Positions::<&str>::MAX_BYTES);
    }
}
