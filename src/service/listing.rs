//! A page of any resource's listing: the steps every resource shares. A resource says how to read its page from a
//! mark (with its total and version in the same statement when it can), where a row sits in the ordering, and how
//! to count a total the page's statement did not; this module starts the page at the nearest mark, keeps the
//! page's ends as marks, and finds its total.

use std::hash::Hash;
use std::time::Instant;

use super::ServiceError;
use super::paging::{Page, read_near};
use super::positions::{Mark, Positions};
use super::totals::Weigh;
use crate::domain::SortKey;

/// One request's listing, as a resource reads it.
pub(crate) trait Listed {
    type Model;
    /// Names the listing (its filter and ordering) among the marks.
    type Key: Hash + Eq + Clone + Weigh;

    /// Reads the page, from `mark` when given.
    async fn read(&self, mark: Option<Mark>) -> Result<Page<Self::Model>, ServiceError>;

    /// Where `model` sits in the ordering; `None` when the ordering has no key.
    fn sort_key(&self, model: &Self::Model) -> Option<SortKey>;

    /// The total of a page read at `version` whose statement did not count it.
    async fn total_at(&self, version: i64, page_read: Instant) -> Result<u64, ServiceError>;
}

/// Where a page starts, and whether marks may be used and kept for it.
pub(crate) struct At<'a, K> {
    pub positions: &'a Positions<K>,
    pub listing: K,
    /// Rows before the page.
    pub offset: u64,
    /// Whether the page's position in the whole ordering is known and its ordering has keys: marks are used and
    /// kept only then.
    pub markable: bool,
}

/// The page's rows and the total over all pages.
pub(crate) async fn page<L: Listed>(
    source: &L,
    at: At<'_, L::Key>,
) -> Result<(Vec<L::Model>, u64), ServiceError> {
    let read = read_near(
        at.positions,
        &at.listing,
        at.markable.then_some(at.offset),
        |mark| source.read(mark),
    )
    .await?;
    let page_read = Instant::now();
    if let Some(version) = read.version {
        let key = |model: Option<&L::Model>| model.and_then(|m| source.sort_key(m));
        let ends = at
            .markable
            .then(|| key(read.models.first()).zip(key(read.models.last())))
            .flatten();
        at.positions
            .served(&at.listing, version, at.offset, read.models.len(), ends);
    }
    let total = match (read.total, read.version) {
        (Some(total), _) => u64::try_from(total).unwrap_or(0),
        (None, Some(version)) => source.total_at(version, page_read).await?,
        (None, None) => 0,
    };
    Ok((read.models, total))
}
