//! Pages of lists: which statement reads a page, where it starts, and where its total comes from.
//!
//! An unscoped caller reads the lists' version (migration 6) in the same statement as the page. While it stays
//! the same, a search's or tag filter's total is reused from [`TotalsCache`](crate::service::totals::TotalsCache)
//! and a deep page starts from the marks earlier pages left in [`Positions`](crate::service::positions). Deep
//! pages read their ids first (from the ordering's index alone) and then those rows.

use std::time::Instant;

use sea_orm::sea_query::{Alias, DynIden, Expr, IntoIden, SelectStatement};
use sea_orm::{
    Condition, DatabaseTransaction, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect,
    Select,
};

use super::filter::{
    count_matches, count_rows, counters_total, lists_version, matching, order_column, within,
};
use super::{ListService, counts};
use crate::domain::{
    Access, Direction, List, ListFilter, ListPage, ListQuery, OrderBy, Principal, Scope, SortKey,
    SortValue,
};
use crate::entity::lists;
use crate::service::ServiceError;
use crate::service::listing::{At, Listed, page};
use crate::service::paging::{Page, Slice, count_at_version, read_page};
use crate::service::positions::Mark;
use crate::service::sql::{from_key, order, scalar_subquery};
use crate::service::walk::{Batches, Position, Span, Walked, list_bytes, walk};

/// Names a listing of lists among the marks.
pub(super) type ListingKey = (ListFilter, OrderBy, Direction);

/// The alias of a list's subscriber total when listings are ordered by it.
const SUBSCRIBER_TOTAL: &str = "subscriber_total";

/// Where `model` sits in an ordering by `order_by`; none for the subscriber count, which is not a column.
fn sort_key(model: &lists::Model, order_by: OrderBy) -> Option<SortKey> {
    let value = match order_by {
        OrderBy::Id => SortValue::None,
        OrderBy::Name => SortValue::Text(model.name_folded.clone()),
        OrderBy::Status => SortValue::Text(model.status.as_str().to_owned()),
        OrderBy::CreatedAt => SortValue::Time(model.created_at),
        OrderBy::UpdatedAt => SortValue::Time(model.updated_at),
        OrderBy::SubscriberCount => return None,
    };
    Some(SortKey {
        value,
        id: model.id,
    })
}

/// A listing's select of lists and its ordering (ending with the id): ordered by the subscriber count, the count
/// joins the rows' columns, so that the order holds over the whole result before any paging.
fn ordered(
    order_by: OrderBy,
    direction: Direction,
) -> (Select<lists::Entity>, Vec<(DynIden, Order)>) {
    let mut select = lists::Entity::find();
    let sort: Option<DynIden> = match order_by {
        OrderBy::SubscriberCount => {
            select = select.column_as(scalar_subquery(counts::total_of_list()), SUBSCRIBER_TOTAL);
            Some(Alias::new(SUBSCRIBER_TOTAL).into_iden())
        }
        other => order_column(other).map(IntoIden::into_iden),
    };
    let order = sort
        .into_iter()
        .chain([lists::Column::Id.into_iden()])
        .map(|column| (column, order(direction)))
        .collect();
    (select, order)
}

impl ListService {
    /// One page of the lists matching the query, ordered over the whole result, with the total match count.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn query(
        &self,
        who: &Principal,
        query: &ListQuery,
    ) -> Result<ListPage, ServiceError> {
        let scope = who.scope(Access::Get);
        let filter = &query.filter;
        // Unscoped listings depend only on the lists, whose version says when they changed; lists granted one by
        // one are few, and grants do not move the version, so their total is counted with every page.
        let versioned = scope == Scope::All && !filter.matches_nothing;
        let counted = versioned && filter.words.is_empty() && filter.tags.is_empty();
        let condition = within(matching(filter), scope, self.db.get_database_backend());
        let total = if counted {
            Some(counters_total(filter))
        } else if versioned {
            None
        } else {
            Some(count_rows(&condition))
        };
        let markable = versioned && query.order_by != OrderBy::SubscriberCount;
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
            markable,
        };
        let (rows, total) = page(&source, at).await?;
        let results = rows
            .into_iter()
            .map(|row| {
                let mut list = row.list.into_domain()?;
                list.subscribers = row.counts;
                Ok::<_, sea_orm::DbErr>(list)
            })
            .collect::<Result<_, _>>()?;
        Ok(ListPage { results, total })
    }

    /// The lists a query selects when its page is too large to read whole (`per_page=all`, or more than
    /// [`STREAMED_ABOVE`](crate::service::walk::STREAMED_ABOVE) rows): read in batches from one snapshot, in the
    /// query's order, with their counts and the total read in the same snapshot. See [`walk`].
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn query_streamed(
        &self,
        who: &Principal,
        query: &ListQuery,
        deadline: tokio::time::Instant,
    ) -> Result<Batches<List>, ServiceError> {
        let scope = who.scope(Access::Get);
        let condition = within(
            matching(&query.filter),
            scope,
            self.reads.get_database_backend(),
        );
        let count = count_rows(&condition);
        let source = Walker {
            query: query.clone(),
            condition,
        };
        let span = Span {
            skip: query.pagination.offset(),
            after: None,
            limit: query.pagination.per_page,
            deadline,
        };
        walk(&self.reads, source, count, span).await
    }

    /// Reads one page, starting from `mark` when given, with the lists' counts (when the query asks for them),
    /// `total` (when given) and the version (when `versioned`) in the same statement.
    async fn read(
        &self,
        query: &ListQuery,
        condition: &Condition,
        mark: Option<Mark>,
        total: &Option<SelectStatement>,
        versioned: bool,
    ) -> Result<Page<counts::Counted>, ServiceError> {
        let mut condition = condition.clone();
        let mut skip = query.pagination.offset();
        if let Some(mark) = &mark {
            condition = condition.add(from_key(
                lists::Entity,
                order_column(query.order_by),
                lists::Column::Id,
                query.direction,
                &mark.key,
                true,
            ));
            skip -= mark.position;
        }
        let (select, order) = ordered(query.order_by, query.direction);
        let slice = Slice {
            condition,
            order: &order,
            per_page: query.pagination.per_page,
            skip,
            // The subscriber count is not a column: no index gives the page's ids.
            deferrable: query.order_by != OrderBy::SubscriberCount,
        };
        let reading = counts::page_reading(
            query.with_counts,
            total.clone(),
            versioned.then(lists_version),
        );
        Ok(read_page(&self.reads, select, lists::Column::Id, slice, reading).await?)
    }

    /// The number of lists matching a search or tag filter, to serve with a page read at `version`: reused from
    /// the cache when it may be, otherwise counted in the same snapshot as the version it is stored with.
    async fn total_at(
        &self,
        filter: &ListFilter,
        condition: &Condition,
        version: i64,
        page_read: Instant,
    ) -> Result<u64, ServiceError> {
        let count = async {
            Ok::<_, ServiceError>(
                count_at_version(
                    &self.reads,
                    lists_version(),
                    count_matches(filter, condition),
                )
                .await?,
            )
        };
        self.totals.total(filter, version, page_read, count).await
    }
}

/// A query's lists, walked in batches.
struct Walker {
    query: ListQuery,
    condition: Condition,
}

impl Walked for Walker {
    type Model = lists::Model;
    type Row = List;

    async fn read<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        from: Position<'a>,
        limit: u64,
    ) -> Result<Vec<Self::Model>, ServiceError> {
        let column = order_column(self.query.order_by);
        let (select, order) = ordered(self.query.order_by, self.query.direction);
        let mut select = select.filter(self.condition.clone());
        let skip = match from {
            Position::After(key) => {
                let after = from_key(
                    lists::Entity,
                    column,
                    lists::Column::Id,
                    self.query.direction,
                    key,
                    false,
                );
                select = select.filter(after);
                0
            }
            Position::Skip(rows) => rows,
        };
        // By the subscriber count (not a column, so no key), batches skip rows instead.
        for (column, direction) in order {
            select = select.order_by(Expr::col(column), direction);
        }
        Ok(select.offset(skip).limit(limit).all(txn).await?)
    }

    fn key(&self, model: &Self::Model) -> Option<SortKey> {
        sort_key(model, self.query.order_by)
    }

    fn bytes(&self, list: &Self::Row) -> u64 {
        list_bytes(list)
    }

    async fn answer<'a>(
        &'a self,
        txn: &'a DatabaseTransaction,
        models: Vec<Self::Model>,
    ) -> Result<Vec<Self::Row>, ServiceError> {
        let mut results: Vec<List> = models
            .into_iter()
            .map(lists::Model::into_domain)
            .collect::<Result<_, _>>()?;
        if self.query.with_counts {
            counts::fill(txn, &mut results).await?;
        }
        Ok(results)
    }
}

/// One request's page of lists.
struct Source<'a> {
    service: &'a ListService,
    query: &'a ListQuery,
    condition: &'a Condition,
    total: &'a Option<SelectStatement>,
    versioned: bool,
}

impl Listed for Source<'_> {
    type Model = counts::Counted;
    type Key = ListingKey;

    async fn read(&self, mark: Option<Mark>) -> Result<Page<Self::Model>, ServiceError> {
        self.service
            .read(self.query, self.condition, mark, self.total, self.versioned)
            .await
    }

    fn sort_key(&self, model: &Self::Model) -> Option<SortKey> {
        sort_key(&model.list, self.query.order_by)
    }

    async fn total_at(&self, version: i64, page_read: Instant) -> Result<u64, ServiceError> {
        self.service
            .total_at(&self.query.filter, self.condition, version, page_read)
            .await
    }
}
