//! Pages of subscribers: which statement reads a page, where it starts, and where its total comes from.
//!
//! A caller who sees every subscriber reads the subscribers' version (migration 8) in the same statement as the
//! page. While it stays the same, a total the counters cannot answer (a search, a `query`) is reused from
//! [`TotalsCache`], and a deep page starts from the marks earlier pages left in [`Positions`]. Deep pages read
//! their ids first (from the ordering's index alone) and then those rows, so skipped rows are never fetched.

use std::time::Instant;

use sea_orm::sea_query::{DynIden, IntoIden, SelectStatement};
use sea_orm::{
    AccessMode, Condition, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    IsolationLevel, Order, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};

use super::SubscriberService;
use super::filter::{
    count_rows, counters_total, from_key, matching, sort_columns, sort_key, subscribers_version,
    within,
};
use crate::domain::{
    Access, Cursor, Direction, Principal, SortKey, Subscriber, SubscriberFilter, SubscriberOrderBy,
    SubscriberPage, SubscriberQuery, SubscriberScope,
};
use crate::entity::subscribers;
use crate::service::paging::{Page, Slice, count_at_version, read_near, read_page};
use crate::service::positions::Mark;
use crate::service::sql::{is_postgres, order};
use crate::service::{ServiceError, ensure};

/// Where a page's first row is.
enum Start<'a> {
    /// After `offset` rows of the whole result.
    Offset(u64),
    /// `offset` rows after the start of the result, counted from a known row.
    Mark(Mark, u64),
    /// Right after a client's cursor.
    After(&'a Cursor),
}

impl SubscriberService {
    /// One page of the subscribers matching the query (each once, whatever lists it is on), ordered over the
    /// whole result, with the total match count and the cursor of the next page.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn query(
        &self,
        who: &Principal,
        query: &SubscriberQuery,
    ) -> Result<SubscriberPage, ServiceError> {
        let filter = &query.filter;
        let (scope, condition) = self.selection(who, filter)?;
        // Everyone's listings depend only on the data, whose version says when it changed; a scope of lists
        // depends on grants too, so its totals are counted with every page.
        let versioned = scope == SubscriberScope::Everyone;
        let total =
            counters_total(filter, &scope).or_else(|| (!versioned).then(|| count_rows(&condition)));
        let listing = format!("{filter:?}|{:?}|{:?}", query.order_by, query.direction);
        let offset = query.pagination.offset();
        let start = |mark| match (&query.after, mark) {
            (Some(cursor), _) => Start::After(cursor),
            (None, Some(mark)) => Start::Mark(mark, offset),
            (None, None) => Start::Offset(offset),
        };
        let read = read_near(
            &self.positions,
            &listing,
            (versioned && query.after.is_none()).then_some(offset),
            |mark| self.read(query, &condition, start(mark), &total, versioned),
        )
        .await?;
        let page_read = Instant::now();
        if let Some(version) = read.version {
            // A page after a cursor has no known position.
            let ends = match (&query.after, read.models.first(), read.models.last()) {
                (None, Some(first), Some(last)) => Some((
                    sort_key(first, query.order_by),
                    sort_key(last, query.order_by),
                )),
                _ => None,
            };
            self.positions
                .served(&listing, version, offset, read.models.len(), ends);
        }
        let total = match (read.total, read.version) {
            (Some(total), _) => u64::try_from(total).unwrap_or(0),
            (None, Some(version)) => {
                self.total_at(format!("{filter:?}"), &condition, version, page_read)
                    .await?
            }
            (None, None) => 0,
        };
        let full = query
            .pagination
            .per_page
            .is_some_and(|n| read.models.len() as u64 == n);
        let next = match read.models.last() {
            Some(last) if full => Some(Cursor {
                order_by: query.order_by,
                direction: query.direction,
                key: sort_key(last, query.order_by),
            }),
            _ => None,
        };
        let results = self.with_lists(&self.reads, who, read.models).await?;
        Ok(SubscriberPage {
            results,
            total,
            next,
        })
    }

    /// Who may read and which rows a filter selects: the caller's scope and the condition within it.
    fn selection(
        &self,
        who: &Principal,
        filter: &SubscriberFilter,
    ) -> Result<(SubscriberScope, Condition), ServiceError> {
        let scope = Self::readable(who)?;
        if let Some(ids) = &filter.list_ids {
            // A caller learns nothing about a list it may not read, not even through `subscribers:get_all`:
            // such a list is refused, existing or not.
            let readable = who.scope(Access::Get);
            ensure(ids.iter().all(|id| readable.allows(*id)))?;
        }
        let backend = self.reads.get_database_backend();
        let condition = within(matching(filter, backend), &scope, backend);
        Ok((scope, condition))
    }

    /// Every subscriber the query selects (`per_page=all`), as batches read one after the other from a single
    /// snapshot (a read-only transaction), in the query's order, so that memory does not grow with the answer:
    /// the caller writes each batch out before the next is read. The transaction, and with it the connection,
    /// ends with the last batch, or with an error once `deadline` passes.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn query_all(
        &self,
        who: &Principal,
        query: &SubscriberQuery,
        deadline: tokio::time::Instant,
    ) -> Result<SubscriberBatches, ServiceError> {
        let (_, condition) = self.selection(who, &query.filter)?;
        let txn = if is_postgres(&self.reads) {
            self.reads
                .begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await?
        } else {
            self.reads.begin().await?
        };
        let total = match txn.query_one(&count_rows(&condition)).await? {
            Some(row) => u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0),
            None => 0,
        };
        let state = Batches {
            service: self.clone(),
            who: who.clone(),
            order_by: query.order_by,
            direction: query.direction,
            condition,
            txn: Some(txn),
            after: None,
            rows: FIRST_BATCH,
            deadline,
        };
        let batches = futures_util::stream::unfold(state, |mut state| async move {
            let batch = state.next().await.transpose()?;
            Some((batch, state))
        });
        Ok(SubscriberBatches {
            total,
            batches: Box::pin(batches),
        })
    }

    /// Reads one page starting at `start`, with `total` (when given) and the version (when `versioned`) in the
    /// same statement.
    async fn read(
        &self,
        query: &SubscriberQuery,
        condition: &Condition,
        start: Start<'_>,
        total: &Option<SelectStatement>,
        versioned: bool,
    ) -> Result<Page<subscribers::Model>, ServiceError> {
        let direction = order(query.direction);
        let order: Vec<(DynIden, Order)> = sort_columns(query.order_by)
            .map(|column| (column.into_iden(), direction.clone()))
            .collect();
        let beyond = |key, inclusive| from_key(query.order_by, query.direction, key, inclusive);
        let (condition, skip) = match start {
            Start::Offset(offset) => (condition.clone(), offset),
            Start::Mark(mark, offset) => (
                condition.clone().add(beyond(&mark.key, true)),
                offset - mark.position,
            ),
            Start::After(cursor) => (condition.clone().add(beyond(&cursor.key, false)), 0),
        };
        let slice = Slice {
            condition,
            order: &order,
            per_page: query.pagination.per_page,
            skip,
            deferrable: true,
        };
        let version = versioned.then(subscribers_version);
        Ok(read_page(
            &self.reads,
            subscribers::Entity::find(),
            subscribers::Column::Id,
            slice,
            total.clone(),
            version,
        )
        .await?)
    }

    /// The number of subscribers matching a filter the counters cannot answer, to serve with a page read at
    /// `version`: reused when it may be (see [`TotalsCache`](crate::service::totals::TotalsCache)), otherwise
    /// counted in the same snapshot as the version it is stored with.
    async fn total_at(
        &self,
        key: String,
        condition: &Condition,
        version: i64,
        page_read: Instant,
    ) -> Result<u64, ServiceError> {
        let count = async {
            Ok::<_, ServiceError>(
                count_at_version(&self.reads, subscribers_version(), count_rows(condition)).await?,
            )
        };
        self.totals.total(&key, version, page_read, count).await
    }
}

/// Subscribers read in batches from one snapshot: the total, then the rows in order.
pub struct SubscriberBatches {
    pub total: u64,
    pub batches: futures_util::stream::BoxStream<'static, Result<Vec<Subscriber>, ServiceError>>,
}

/// Rows per batch of `query_all` at most, and in its first batch. Later batches hold about `BATCH_BYTES` of rows,
/// judged by the batch before (a row's `attribs` may be 64 KiB or a few bytes), so memory per answer stays within
/// a few megabytes whatever the rows hold.
const BATCH: u64 = 500;
const FIRST_BATCH: u64 = 50;
const BATCH_BYTES: u64 = 1 << 20;

/// About how many bytes a subscriber takes in an answer (its texts and attributes; the rest is small and fixed).
fn row_bytes(model: &subscribers::Model) -> u64 {
    let mut bytes = 200 + model.email.len() + model.name.len();
    let mut pending = vec![&model.attribs];
    while let Some(value) = pending.pop() {
        bytes += match value {
            serde_json::Value::String(text) => text.len() + 2,
            serde_json::Value::Array(items) => {
                pending.extend(items);
                2 + items.len()
            }
            serde_json::Value::Object(map) => {
                pending.extend(map.values());
                map.keys().map(|k| k.len() + 4).sum::<usize>() + 2
            }
            _ => 24,
        };
    }
    bytes as u64
}

/// Where a walk of `query_all` is.
struct Batches {
    service: SubscriberService,
    who: Principal,
    order_by: SubscriberOrderBy,
    direction: Direction,
    condition: Condition,
    /// The snapshot; `None` once the walk is over.
    txn: Option<DatabaseTransaction>,
    /// The sort key of the last row written.
    after: Option<SortKey>,
    /// Rows in the next batch.
    rows: u64,
    deadline: tokio::time::Instant,
}

impl Batches {
    async fn next(&mut self) -> Result<Option<Vec<Subscriber>>, ServiceError> {
        let Some(txn) = &self.txn else {
            return Ok(None);
        };
        if tokio::time::Instant::now() >= self.deadline {
            self.txn = None;
            return Err(ServiceError::Unavailable(DbErr::Custom(
                "the request's time ran out while its answer was being written".into(),
            )));
        }
        let direction = order(self.direction);
        let mut select = subscribers::Entity::find().filter(self.condition.clone());
        if let Some(key) = &self.after {
            select = select.filter(from_key(self.order_by, self.direction, key, false));
        }
        for column in sort_columns(self.order_by) {
            select = select.order_by(column, direction.clone());
        }
        let models = select.limit(self.rows).all(txn).await?;
        let Some(last) = models.last() else {
            if let Some(txn) = self.txn.take() {
                txn.commit().await?;
            }
            return Ok(None);
        };
        self.after = Some(sort_key(last, self.order_by));
        let bytes: u64 = models.iter().map(row_bytes).sum();
        let per_row = (bytes / models.len() as u64).max(1);
        self.rows = (BATCH_BYTES / per_row).clamp(10, BATCH);
        Ok(Some(self.service.with_lists(txn, &self.who, models).await?))
    }
}
