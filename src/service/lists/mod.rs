//! The lists use cases. `filter` says which lists a request selects and how they are counted; `store` how a list
//! and its tags are written; `listing` how pages are read; shared SQL pieces are in `service::sql`.

mod counts;
mod filter;
mod listing;
mod store;

use std::sync::Arc;

use sea_orm::sea_query::LockType;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect,
};
use uuid::Uuid;

use self::filter::{matching, within};
use self::store::{changes, delete_lists, insert_tags, insert_with_tags, replace_tags};
use super::idempotency;
use super::locks::{begin_write, commit, lock_subscriptions, locked};
use super::positions::Positions;
use super::sql::{is_postgres, now};
use super::totals::TotalsCache;
use super::{Expect, ServiceError, check, ensure};
use crate::domain::{
    Access, DeleteSelector, List, ListFilter, ListPatch, ListStatus, ListType, NewList, Principal,
    PublicList, SubscriberCounts, fold,
};
use crate::entity::{lists, subscriber_lists};

/// The lists use cases. Cheap to clone: the connection is a pool handle and the totals cache is shared.
#[derive(Clone)]
pub struct ListService {
    /// Writes, and reads inside a write.
    db: DatabaseConnection,
    /// Reads on their own (the same pool on PostgreSQL; read-only connections on SQLite).
    reads: DatabaseConnection,
    totals: Arc<TotalsCache<ListFilter>>,
    positions: Arc<Positions<listing::ListingKey>>,
}

impl ListService {
    pub fn new(db: DatabaseConnection, reads: DatabaseConnection) -> Self {
        Self {
            db,
            reads,
            totals: Arc::default(),
            positions: Arc::default(),
        }
    }

    /// Fills in each list's subscriber counts.
    async fn add_counts(&self, found: &mut [List]) -> Result<(), ServiceError> {
        Ok(counts::fill(&self.reads, found).await?)
    }

    async fn with_counts(&self, list: List) -> Result<List, ServiceError> {
        let mut found = [list];
        self.add_counts(&mut found).await?;
        let [list] = found;
        Ok(list)
    }

    /// The list as `GET` answers it, with its counts, read in one statement on `db`.
    async fn counted(db: &impl ConnectionTrait, id: i64) -> Result<List, ServiceError> {
        let (model, counted) = counts::one_with_counts(db, id)
            .await?
            .ok_or(ServiceError::NotFound("list"))?;
        Ok(List {
            subscribers: Some(counted),
            ..model.into_domain()?
        })
    }

    /// Checks `expect` against the list as `GET` answers it now, read in `txn` (whose caller holds the list's row
    /// lock). Its counts may still change until the commit: subscriptions do not wait for that lock.
    async fn check_current(
        txn: &DatabaseTransaction,
        id: i64,
        expect: Expect<'_, List>,
    ) -> Result<(), ServiceError> {
        if expect.is_none() {
            return Ok(());
        }
        check(expect, &Self::counted(txn, id).await?)
    }

    #[tracing::instrument(skip_all, fields(list.id = id), err(level = "debug"))]
    pub async fn get(&self, who: &Principal, id: i64) -> Result<List, ServiceError> {
        ensure(who.scope(Access::Get).allows(id))?;
        Self::counted(&self.reads, id).await
    }

    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn create(&self, who: &Principal, new: NewList) -> Result<List, ServiceError> {
        ensure(who.may_create())?;
        let now = now();
        let name = new.name.into_inner();
        let tags = new.tags.into_inner();
        let list = lists::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            name_folded: Set(fold(&name)),
            name: Set(name),
            list_type: Set(new.list_type),
            optin: Set(new.optin),
            status: Set(new.status),
            tags: Set(serde_json::json!(tags)),
            description: Set(new.description.into_inner()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        // A keyed request's write must mark its key in its own transaction, and an API user's must check its
        // grants in it (`begin_write`); the admin's credentials are configuration, with nothing to check.
        let alone = !idempotency::claimed() && matches!(who, Principal::Admin { .. });
        let model = if is_postgres(&self.db) && alone {
            // One statement writes the list and its tag rows: atomic without a transaction, and one round trip
            // instead of four (BEGIN, two INSERTs, COMMIT).
            let row = self
                .db
                .query_one(&insert_with_tags(list, &tags)?)
                .await?
                .ok_or(DbErr::RecordNotInserted)?;
            lists::Model::from_query_result(&row, "")?
        } else {
            // SQLite has no INSERT inside WITH; a local transaction costs no round trips there.
            let txn = begin_write(&self.db, who).await?;
            let model = list.insert(&txn).await?;
            insert_tags(&txn, model.id, &tags).await?;
            commit(txn).await?;
            model
        };
        // A new list has no subscriptions yet.
        Ok(List {
            subscribers: Some(SubscriberCounts::default()),
            ..model.into_domain()?
        })
    }

    /// Sets the fields the patch carries. Only columns whose value changes are written, so concurrent updates of
    /// different fields never undo each other, and `updated_at` moves only when something changed.
    #[tracing::instrument(skip_all, fields(list.id = id), err(level = "debug"))]
    pub async fn update(
        &self,
        who: &Principal,
        id: i64,
        patch: ListPatch,
        expect: Expect<'_, List>,
    ) -> Result<List, ServiceError> {
        // The answer is the list itself, so updating needs `get` as well: `manage` alone must not read a list
        // (a `PUT` of `{}` would otherwise show what `GET` refuses).
        ensure(who.scope(Access::Manage).allows(id) && who.scope(Access::Get).allows(id))?;
        let txn = begin_write(&self.db, who).await?;
        // Serialises concurrent updates of one list, so each sees the previous one's result, without waiting
        // for writes that only keep the list from being deleted (`FOR KEY SHARE`).
        let current = locked(&txn, lists::Entity::find_by_id(id), LockType::NoKeyUpdate)
            .one(&txn)
            .await?
            .ok_or(ServiceError::NotFound("list"))?;
        Self::check_current(&txn, id, expect).await?;
        let Some((mut row, tags)) = changes(&current, patch) else {
            drop(txn);
            return self.with_counts(current.into_domain()?).await;
        };
        row.updated_at = Set(now());
        row.update(&txn).await.map_err(|err| match err {
            // Deleted by someone else since we read it.
            DbErr::RecordNotUpdated => ServiceError::NotFound("list"),
            other => other.into(),
        })?;
        if let Some(tags) = &tags {
            replace_tags(&txn, id, tags).await?;
        }
        // Read in the same transaction, so the answer (and its tag) is one state of the list.
        let updated = Self::counted(&txn, id).await?;
        commit(txn).await?;
        Ok(updated)
    }

    #[tracing::instrument(skip_all, fields(list.id = id), err(level = "debug"))]
    pub async fn delete(
        &self,
        who: &Principal,
        id: i64,
        expect: Expect<'_, List>,
    ) -> Result<(), ServiceError> {
        ensure(who.scope(Access::Manage).allows(id))?;
        // A condition compares with what GET answers: a caller who may not read the list may not learn its tag.
        ensure(expect.is_none() || who.scope(Access::Get).allows(id))?;
        let txn = begin_write(&self.db, who).await?;
        if expect.is_some() {
            // The locks `delete_lists` takes, taken before the check: the list, then its subscriptions, whose
            // changes (a blocklist, a subscriber's delete) move the counts the tag covers without naming the list.
            locked(&txn, lists::Entity::find_by_id(id), LockType::Update)
                .one(&txn)
                .await?
                .ok_or(ServiceError::NotFound("list"))?;
            lock_subscriptions(
                &txn,
                Condition::all().add(subscriber_lists::Column::ListId.eq(id)),
            )
            .await?;
            Self::check_current(&txn, id, expect).await?;
        }
        if delete_lists(&txn, Condition::all().add(lists::Column::Id.eq(id))).await? == 0 {
            return Err(ServiceError::NotFound("list"));
        }
        commit(txn).await?;
        Ok(())
    }

    /// Deletes every selected list in one statement (so all or none), returning how many went. Ids the caller may
    /// not manage refuse the whole call; lists matched by a filter that the caller may not manage are skipped.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn delete_many(
        &self,
        who: &Principal,
        selector: &DeleteSelector,
    ) -> Result<u64, ServiceError> {
        let scope = who.scope(Access::Manage);
        let condition = match selector {
            DeleteSelector::Ids(ids) => {
                ensure(ids.iter().all(|id| scope.allows(*id)))?;
                Condition::all().add(lists::Column::Id.is_in(ids.clone()))
            }
            DeleteSelector::Matching(filter) => {
                within(matching(filter), scope, self.db.get_database_backend())
            }
        };
        let txn = begin_write(&self.db, who).await?;
        let deleted = delete_lists(&txn, condition).await?;
        commit(txn).await?;
        Ok(deleted)
    }

    /// Public, active lists, oldest first: what a subscription form may offer.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn public_lists(&self) -> Result<Vec<PublicList>, ServiceError> {
        let rows: Vec<(Uuid, String)> = lists::Entity::find()
            .select_only()
            .column(lists::Column::Uuid)
            .column(lists::Column::Name)
            .filter(lists::Column::ListType.eq(ListType::Public))
            .filter(lists::Column::Status.eq(ListStatus::Active))
            .order_by_asc(lists::Column::Id)
            .into_tuple()
            .all(&self.reads)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(uuid, name)| PublicList { uuid, name })
            .collect())
    }
}
