//! Large answers read in batches: every row a listing selects (`per_page=all`, or a page larger than
//! [`STREAMED_ABOVE`]), read one batch after the other from a single snapshot (a read-only transaction) in the
//! listing's order, so that memory does not grow with the answer: the caller writes each batch out before the
//! next is read. The transaction, and with it the connection, ends with the last batch, or with an error once the
//! request's deadline passes.
//!
//! A resource takes part by implementing [`Walked`]: how to read a batch after a position, and what a row
//! weighs.

use std::sync::{Arc, OnceLock};

use tokio::sync::Mutex;

use futures_util::stream::BoxStream;
use sea_orm::sea_query::SelectStatement;
use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, IsolationLevel,
    TransactionTrait,
};

use super::ServiceError;
use super::sql::is_postgres;
use crate::domain::SortKey;

/// Pages of more rows than this are streamed; smaller pages are read whole (at most this many rows of at most
/// 64 KiB of `attribs` each).
pub const STREAMED_ABOVE: u64 = 500;

/// Rows per batch at most, and in the first batch. Later batches hold about `BATCH_BYTES` of rows as answered,
/// judged by the batch before (a row's `attribs` may be 64 KiB or a few bytes; a subscriber's answer repeats each
/// of its lists, whose descriptions may be 64 Ki characters), down to one row a batch, so memory per answer stays
/// near `BATCH_BYTES` whatever the rows hold, short of single rows larger than that.
const BATCH: u64 = 500;
const FIRST_BATCH: u64 = 10;
const BATCH_BYTES: u64 = 1 << 20;

/// Rows in the next batch, after a batch of `read` rows taking `bytes` as answered.
fn next_batch(bytes: u64, read: u64) -> u64 {
    let per_row = (bytes / read.max(1)).max(1);
    (BATCH_BYTES / per_row).clamp(1, BATCH)
}

/// A read-only transaction whose statements all see one snapshot: REPEATABLE READ on PostgreSQL; on SQLite
/// (WAL) a transaction's reads see one snapshot already.
pub async fn snapshot(reads: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    if is_postgres(reads) {
        reads
            .begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await
    } else {
        reads.begin().await
    }
}

/// Rows already read (a page) cut, in order, into batches of about `BATCH_BYTES` as answered (`bytes` of each):
/// one batch when they are small, so that the caller writes a page whose rows are large a batch at a time,
/// converting and holding one batch's answer at once instead of the whole page's.
pub fn by_answer_size<R>(rows: Vec<R>, bytes: impl Fn(&R) -> u64) -> Vec<Vec<R>> {
    let mut batches = Vec::new();
    let (mut batch, mut held) = (Vec::new(), 0);
    for row in rows {
        let size = bytes(&row);
        if !batch.is_empty() && held + size > BATCH_BYTES {
            batches.push(std::mem::take(&mut batch));
            held = 0;
        }
        held += size;
        batch.push(row);
    }
    if !batch.is_empty() || batches.is_empty() {
        batches.push(batch);
    }
    batches
}

/// About how many bytes a list takes in an answer, alone or in a subscriber's (its texts; the rest is small and
/// fixed).
pub fn list_bytes(list: &crate::domain::List) -> u64 {
    let tags: usize = list.tags.iter().map(|tag| tag.len() + 3).sum();
    (300 + list.name.len() * 2 + list.description.len() + tags) as u64
}

/// Where a batch starts.
pub enum Position<'a> {
    /// After this many rows of the whole result (the first batch of a numbered page, and every batch of an
    /// ordering with no sort key).
    Skip(u64),
    /// Right after the row with this key.
    After(&'a SortKey),
}

/// A resource whose listings can be walked in batches.
pub trait Walked: Send + Sync + 'static {
    /// A row as read.
    type Model: Send + 'static;
    /// A row as answered.
    type Row: Send + 'static;

    /// Up to `limit` rows from `from`, in the listing's order.
    fn read<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        from: Position<'a>,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<Self::Model>, ServiceError>> + Send + 'a;

    /// Where `model` sits in the listing's order; `None` when the order has no key (batches then skip rows).
    fn key(&self, model: &Self::Model) -> Option<SortKey>;

    /// About how many bytes `row` takes in an answer.
    fn bytes(&self, row: &Self::Row) -> u64;

    /// The rows as answered (e.g. with what is read beside them), read in the same snapshot.
    fn answer<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        models: Vec<Self::Model>,
    ) -> impl Future<Output = Result<Vec<Self::Row>, ServiceError>> + Send + 'a;
}

/// The rows of a walk: the total, the rows in batches, and once the batches have ended, the key of the last row
/// when the walk stopped at its `limit` (where a next page would start).
pub struct Batches<R> {
    pub total: u64,
    pub batches: BoxStream<'static, Result<Vec<R>, ServiceError>>,
    pub last: Arc<OnceLock<SortKey>>,
}

/// The rows a walk covers.
pub struct Span {
    /// Rows of the result to skip first (a numbered page's offset).
    pub skip: u64,
    /// Start right after this key instead (a cursor).
    pub after: Option<SortKey>,
    /// Rows to read at most (`None`: every row).
    pub limit: Option<u64>,
    pub deadline: tokio::time::Instant,
}

/// Opens a snapshot on `reads`, counts the rows with `count` in it, and walks `source` over `span`.
pub async fn walk<W: Walked>(
    reads: &DatabaseConnection,
    source: W,
    count: SelectStatement,
    span: Span,
) -> Result<Batches<W::Row>, ServiceError> {
    let txn = snapshot(reads).await?;
    let total = match txn.query_one(&count).await? {
        Some(row) => u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0),
        None => 0,
    };
    let last = Arc::new(OnceLock::new());
    let txn = Arc::new(Mutex::new(Some(txn)));
    // The snapshot ends at the deadline even if the answer is never asked for its next batch (an HTTP/2 reader
    // that opens no window, and pings to keep the connection alive): then nothing polls the walk.
    tokio::spawn({
        let txn = Arc::downgrade(&txn);
        async move {
            tokio::time::sleep_until(span.deadline).await;
            if let Some(txn) = txn.upgrade() {
                drop(txn.lock().await.take());
            }
        }
    });
    let state = Walk {
        source,
        txn,
        over: false,
        skipped: span.skip,
        after: span.after,
        remaining: span.limit,
        rows: FIRST_BATCH,
        deadline: span.deadline,
        last: last.clone(),
    };
    let batches = futures_util::stream::unfold(state, |mut state| async move {
        let batch = state.next().await.transpose()?;
        Some((batch, state))
    });
    Ok(Batches {
        total,
        batches: Box::pin(batches),
        last,
    })
}

/// Where a walk is.
struct Walk<W: Walked> {
    source: W,
    /// The snapshot; `None` once the walk is over or its deadline passed (the walk's watchdog takes it then).
    txn: Arc<Mutex<Option<DatabaseTransaction>>>,
    /// The batches have ended.
    over: bool,
    /// Rows of the result before the next batch (used when there is no key to start from).
    skipped: u64,
    /// The key of the last row written.
    after: Option<SortKey>,
    /// Rows still to write, when the walk has a limit.
    remaining: Option<u64>,
    /// Rows in the next batch.
    rows: u64,
    deadline: tokio::time::Instant,
    last: Arc<OnceLock<SortKey>>,
}

impl<W: Walked> Walk<W> {
    async fn next(&mut self) -> Result<Option<Vec<W::Row>>, ServiceError> {
        if self.over {
            return Ok(None);
        }
        let txn = self.txn.clone();
        let mut held = txn.lock().await;
        let Some(txn) = held
            .as_ref()
            .filter(|_| tokio::time::Instant::now() < self.deadline)
        else {
            drop(held.take());
            self.over = true;
            return Err(ServiceError::Unavailable(DbErr::Custom(
                "the request's time ran out while its answer was being written".into(),
            )));
        };
        let limit = self.remaining.map_or(self.rows, |left| left.min(self.rows));
        let from = match &self.after {
            Some(key) => Position::After(key),
            None => Position::Skip(self.skipped),
        };
        let models = if limit == 0 {
            Vec::new()
        } else {
            self.source.read(txn, from, limit).await?
        };
        let Some(last) = models.last() else {
            self.over = true;
            if let Some(txn) = held.take() {
                txn.commit().await?;
            }
            return Ok(None);
        };
        let read = models.len() as u64;
        let key = self.source.key(last);
        self.skipped += read;
        if let Some(left) = &mut self.remaining {
            *left -= read;
            if let (0, Some(key)) = (*left, &key) {
                let _ = self.last.set(key.clone());
            }
        }
        self.after = key;
        let rows = self.source.answer(txn, models).await?;
        self.rows = next_batch(rows.iter().map(|row| self.source.bytes(row)).sum(), read);
        Ok(Some(rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_holds_about_a_mebibyte_of_answer_down_to_one_row() {
        assert_eq!(
            next_batch(50 * 1_000, 50),
            BATCH,
            "small rows: the most rows"
        );
        assert_eq!(
            next_batch(50 * 64 * 1024, 50),
            16,
            "64 KiB rows: 16 to a MiB"
        );
        assert_eq!(
            next_batch(10 * (3 << 20), 10),
            1,
            "rows over a MiB: one at a time"
        );
        assert_eq!(next_batch(0, 0), BATCH);
    }

    #[test]
    fn a_page_is_cut_into_batches_of_about_a_mebibyte_in_order() {
        let sizes = |batches: &[Vec<u64>]| batches.iter().map(Vec::len).collect::<Vec<_>>();
        let small = by_answer_size(vec![1_000; 500], |&b| b);
        assert_eq!(sizes(&small), [500], "an ordinary page stays one batch");
        let large = by_answer_size((0..100).collect::<Vec<u64>>(), |_| 300 * 1024);
        assert_eq!(
            sizes(&large),
            vec![3; 33].into_iter().chain([1]).collect::<Vec<_>>()
        );
        assert_eq!(large.concat(), (0..100).collect::<Vec<_>>(), "in order");
        let huge = by_answer_size(vec![5 << 20, 10, 5 << 20], |&b| b);
        assert_eq!(
            sizes(&huge),
            [1, 1, 1],
            "a row over the size is a batch of its own"
        );
        assert_eq!(
            by_answer_size(Vec::<u64>::new(), |&b| b),
            [Vec::<u64>::new()]
        );
    }
}
