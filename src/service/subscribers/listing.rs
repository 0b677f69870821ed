//! Pages of subscribers: which statement reads a page, where it starts, and where its total comes from.
//!
//! A caller who sees every subscriber reads the subscribers' version (migration 8) in the same statement as the
//! page. While it stays the same, a total the counters cannot answer (a search, a `query`) is reused from
//! [`TotalsCache`], and a deep page starts from the marks earlier pages left in [`Positions`]. Deep pages read
//! their ids first (from the ordering's index alone) and then those rows, so skipped rows are never fetched.

use std::time::Instant;

use sea_orm::sea_query::{DynIden, IntoIden, SelectStatement};
use sea_orm::{
    Condition, DatabaseTransaction, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
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
use crate::service::listing::{At, Listed, page};
use crate::service::paging::{Page, Reading, Slice, count_at_version, read_page};
use crate::service::positions::Mark;
use crate::service::sql::order;
use crate::service::walk::{Batches, Position, Span, Walked, by_answer_size, list_bytes, walk};
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
        let source = Source {
            service: self,
            query,
            condition: &condition,
            total: &total,
            versioned,
        };
        let at = At {
            positions: &self.positions,
            listing: (filter.clone(), query.order_by, query.direction),
            offset: query.pagination.offset(),
            // A page after a cursor has no known position.
            markable: versioned && query.after.is_none(),
        };
        let (models, total) = page(&source, at).await?;
        let full = query
            .pagination
            .per_page
            .is_some_and(|n| models.len() as u64 == n);
        let next = match models.last() {
            Some(last) if full => Some(Cursor {
                order_by: query.order_by,
                direction: query.direction,
                key: sort_key(last, query.order_by),
            }),
            _ => None,
        };
        let results = self.with_lists(&self.reads, who, models).await?;
        Ok(SubscriberPage {
            results,
            total,
            next,
        })
    }

    /// A page's subscribers (lists in full) in batches of about a MiB as answered: one batch for an ordinary page;
    /// several when its subscribers are on many lists with long descriptions, so that only one batch is held as
    /// its answer at a time.
    pub fn answer_batches(rows: Vec<Subscriber>) -> Vec<Vec<Subscriber>> {
        by_answer_size(rows, |row| row_bytes(row, Answered::ListsInFull))
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

    /// The subscribers a query selects when its page is too large to read whole (`per_page=all`, or more than
    /// [`STREAMED_ABOVE`](crate::service::walk::STREAMED_ABOVE) rows): read in batches from one snapshot, in the
    /// query's order, from its page's first row or right after its cursor, with the total counted in the same
    /// snapshot. See [`walk`].
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn query_streamed(
        &self,
        who: &Principal,
        query: &SubscriberQuery,
        answer: Answered,
        deadline: tokio::time::Instant,
    ) -> Result<Batches<Subscriber>, ServiceError> {
        let (_, condition) = self.selection(who, &query.filter)?;
        let count = count_rows(&condition);
        let source = Walker {
            service: self.clone(),
            who: who.clone(),
            order_by: query.order_by,
            direction: query.direction,
            condition,
            answer,
        };
        let span = Span {
            skip: query.pagination.offset(),
            after: query.after.as_ref().map(|cursor| cursor.key.clone()),
            limit: query.pagination.per_page,
            deadline,
        };
        walk(&self.reads, source, count, span).await
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
            Reading::plain(total.clone(), version),
        )
        .await?)
    }

    /// The number of subscribers matching a filter the counters cannot answer, to serve with a page read at
    /// `version`: reused when it may be (see [`TotalsCache`](crate::service::totals::TotalsCache)), otherwise
    /// counted in the same snapshot as the version it is stored with.
    async fn total_at(
        &self,
        key: &SubscriberFilter,
        condition: &Condition,
        version: i64,
        page_read: Instant,
    ) -> Result<u64, ServiceError> {
        let count = async {
            Ok::<_, ServiceError>(
                count_at_version(&self.reads, subscribers_version(), count_rows(condition)).await?,
            )
        };
        self.totals.total(key, version, page_read, count).await
    }
}

/// What a walk's subscribers are answered with, which decides how many make a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    /// Each subscription with its whole list (the JSON listing): a batch holds every list again per subscription.
    ListsInFull,
    /// Each subscription by its list's id (the CSV export): a batch holds its lists once, shared.
    ListIds,
}

/// About how many bytes a subscriber takes in an answer: its texts and attributes, and its subscriptions (the rest
/// is small and fixed).
fn row_bytes(subscriber: &Subscriber, answer: Answered) -> u64 {
    let lists: u64 = match answer {
        Answered::ListsInFull => subscriber
            .lists
            .iter()
            .map(|subscription| 120 + list_bytes(&subscription.list))
            .sum(),
        Answered::ListIds => 40 * subscriber.lists.len() as u64,
    };
    let attribs: u64 = subscriber
        .attribs
        .iter()
        .map(|(key, value)| key.len() as u64 + 4 + json_bytes(value))
        .sum();
    (200 + subscriber.email.len() + subscriber.name.len()) as u64 + attribs + lists
}

/// About how many bytes `value` takes as JSON (without recursion: its depth is the caller's).
fn json_bytes(value: &serde_json::Value) -> u64 {
    let mut bytes = 0;
    let mut pending = vec![value];
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

/// A query's subscribers, walked in batches.
struct Walker {
    service: SubscriberService,
    who: Principal,
    order_by: SubscriberOrderBy,
    direction: Direction,
    condition: Condition,
    answer: Answered,
}

impl Walked for Walker {
    type Model = subscribers::Model;
    type Row = Subscriber;

    async fn read<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        from: Position<'a>,
        limit: u64,
    ) -> Result<Vec<Self::Model>, ServiceError> {
        let direction = order(self.direction);
        let mut select = subscribers::Entity::find().filter(self.condition.clone());
        let skip = match from {
            Position::After(key) => {
                select = select.filter(from_key(self.order_by, self.direction, key, false));
                0
            }
            Position::Skip(rows) => rows,
        };
        for column in sort_columns(self.order_by) {
            select = select.order_by(column, direction.clone());
        }
        Ok(select.offset(skip).limit(limit).all(txn).await?)
    }

    fn key(&self, model: &Self::Model) -> Option<SortKey> {
        Some(sort_key(model, self.order_by))
    }

    fn bytes(&self, subscriber: &Self::Row) -> u64 {
        row_bytes(subscriber, self.answer)
    }

    async fn answer<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        models: Vec<Self::Model>,
    ) -> Result<Vec<Self::Row>, ServiceError> {
        self.service.with_lists(txn, &self.who, models).await
    }
}

/// Names a listing of subscribers among the marks.
pub(super) type ListingKey = (SubscriberFilter, SubscriberOrderBy, Direction);

/// One request's page of subscribers.
struct Source<'a> {
    service: &'a SubscriberService,
    query: &'a SubscriberQuery,
    condition: &'a Condition,
    total: &'a Option<SelectStatement>,
    versioned: bool,
}

impl Listed for Source<'_> {
    type Model = subscribers::Model;
    type Key = ListingKey;

    async fn read(&self, mark: Option<Mark>) -> Result<Page<Self::Model>, ServiceError> {
        let offset = self.query.pagination.offset();
        let start = match (&self.query.after, mark) {
            (Some(cursor), _) => Start::After(cursor),
            (None, Some(mark)) => Start::Mark(mark, offset),
            (None, None) => Start::Offset(offset),
        };
        self.service
            .read(
                self.query,
                self.condition,
                start,
                self.total,
                self.versioned,
            )
            .await
    }

    fn sort_key(&self, model: &Self::Model) -> Option<SortKey> {
        Some(sort_key(model, self.query.order_by))
    }

    async fn total_at(&self, version: i64, page_read: Instant) -> Result<u64, ServiceError> {
        self.service
            .total_at(&self.query.filter, self.condition, version, page_read)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::Utc;

    use super::*;
    use crate::domain::{
        List, ListStatus, ListType, Optin, SubscriberStatus, Subscription, SubscriptionStatus,
    };

    /// A subscriber on `lists` lists, each with a description of `description` characters.
    fn subscriber_on(lists: usize, description: usize) -> Subscriber {
        let list = Arc::new(List {
            id: 1,
            uuid: uuid::Uuid::nil(),
            name: "L".into(),
            list_type: ListType::Private,
            optin: Optin::Single,
            status: ListStatus::Active,
            tags: Vec::new(),
            description: "d".repeat(description),
            created_at: Utc::now(),
            updated_at: Utc::now(),
            subscribers: None,
        });
        Subscriber {
            id: 1,
            uuid: uuid::Uuid::nil(),
            email: "a@example.com".into(),
            name: "A".into(),
            attribs: serde_json::Map::new(),
            status: SubscriberStatus::Enabled,
            lists: (0..lists)
                .map(|_| Subscription {
                    list: list.clone(),
                    status: SubscriptionStatus::Confirmed,
                    created_at: Utc::now(),
                    updated_at: Utc::now(),
                })
                .collect(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_subscribers_size_counts_its_lists_as_its_answer_writes_them() {
        let heavy = subscriber_on(100, 16 * 1024);
        assert!(row_bytes(&heavy, Answered::ListsInFull) > 100 * 16 * 1024);
        assert!(row_bytes(&heavy, Answered::ListIds) < 10 * 1024);
        assert!(row_bytes(&subscriber_on(0, 0), Answered::ListsInFull) < 1024);
    }
}
