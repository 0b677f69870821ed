//! The subscribers use cases. `filter` says which subscribers a request selects and who may see them; `store` how
//! subscribers and subscriptions are written; `listing` how pages are read; `expression` translates listmonk's SQL
//! `query` into a condition.
//! Counts of subscriptions per list and of subscribers per status are kept by triggers (migration 7).

mod expression;
mod filter;
mod import;
mod listing;

mod store;

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, sea_query::LockType,
};
use std::sync::Arc;

use uuid::Uuid;

pub(crate) use self::import::import_batch;
pub use self::listing::Answered;
pub(crate) use self::store::none_missing;
use self::store::{
    Existing, add_memberships, all_on_lists, changed_row, conflict_on_email, delete_subscribers,
    end_memberships, lock_lists, lock_subscribers, one_with_subscriptions, subscriptions_of,
    sync_subscriptions, to_domain,
};
use super::locks::{begin_unauthenticated_write, begin_write, commit, locked};
use super::positions::Positions;
use super::sql::now;
use super::totals::TotalsCache;
use super::walk::snapshot;
use super::{Expect, ServiceError, check, ensure};
use crate::domain::{
    Access, MembershipAction, NewSubscriber, Optin, Principal, PublicSubscription, Scope,
    Subscriber, SubscriberChange, SubscriberFilter, SubscriberScope, SubscriberStatus,
    SubscriptionStatus, fold_name,
};
use crate::entity::{subscriber_lists, subscribers};

/// The subscribers use cases. Cheap to clone: the connection is a pool handle.
#[derive(Clone)]
pub struct SubscriberService {
    /// Writes, and reads inside a write.
    db: DatabaseConnection,
    /// Reads on their own (the same pool on PostgreSQL; read-only connections on SQLite).
    reads: DatabaseConnection,
    /// Totals of filters the counters cannot answer, keyed by the filter (see `listing`).
    totals: Arc<TotalsCache<SubscriberFilter>>,
    positions: Arc<Positions<listing::ListingKey>>,
}

/// The lists whose subscriptions a caller sees in a subscriber's `lists`.
fn visible_lists(who: &Principal) -> Scope {
    who.scope(Access::Get)
}

impl SubscriberService {
    pub fn new(db: DatabaseConnection, reads: DatabaseConnection) -> Self {
        Self {
            db,
            reads,
            totals: Arc::default(),
            positions: Arc::default(),
        }
    }

    /// The subscribers this caller may read; refuses a caller who may read none.
    fn readable(who: &Principal) -> Result<SubscriberScope, ServiceError> {
        let scope = who.subscriber_scope();
        ensure(scope != SubscriberScope::Nobody)?;
        Ok(scope)
    }

    /// Refuses unless the caller holds `subscribers:manage` and may read every one of `ids` (whether they exist
    /// or not: the answer must not tell).
    async fn ensure_manageable(
        &self,
        db: &impl ConnectionTrait,
        who: &Principal,
        ids: &[i64],
    ) -> Result<(), ServiceError> {
        ensure(who.may_manage_subscribers())?;
        match Self::readable(who)? {
            SubscriberScope::OnLists(lists) => ensure(all_on_lists(db, ids, &lists).await?),
            _ => Ok(()),
        }
    }

    /// Locks one subscriber (`FOR UPDATE`, step 4 of `service::locks`) and reads it; refuses unless the caller
    /// may manage it (403 whether or not it exists), then answers 404 when it does not exist.
    async fn lock_manageable(
        &self,
        txn: &DatabaseTransaction,
        who: &Principal,
        id: i64,
    ) -> Result<subscribers::Model, ServiceError> {
        let current = locked(txn, subscribers::Entity::find_by_id(id), LockType::Update)
            .one(txn)
            .await?;
        self.ensure_manageable(txn, who, &[id]).await?;
        current.ok_or(ServiceError::NotFound("subscriber"))
    }

    /// Refuses unless every subscription of `ids` is on a list the caller manages: deleting or blocklisting a
    /// subscriber changes every one of its subscriptions, and a caller's write never changes a subscription on a
    /// list it does not manage.
    async fn ensure_wholly_manageable(
        &self,
        db: &impl ConnectionTrait,
        who: &Principal,
        ids: &[i64],
    ) -> Result<(), ServiceError> {
        match who.scope(Access::Manage) {
            Scope::All => Ok(()),
            Scope::Only(lists) => ensure(!store::subscribed_elsewhere(db, ids, &lists).await?),
        }
    }

    /// Refuses unless the caller may manage every one of `lists` (`list:manage` or `lists:manage_all`).
    fn ensure_lists_manageable(who: &Principal, lists: &[i64]) -> Result<(), ServiceError> {
        ensure(who.may_manage_lists(lists))
    }

    async fn with_lists(
        &self,
        db: &impl ConnectionTrait,
        who: &Principal,
        models: Vec<subscribers::Model>,
    ) -> Result<Vec<Subscriber>, ServiceError> {
        let ids: Vec<i64> = models.iter().map(|m| m.id).collect();
        let mut subscriptions = subscriptions_of(db, &ids, &visible_lists(who)).await?;
        models
            .into_iter()
            .map(|model| {
                let lists = subscriptions.remove(&model.id).unwrap_or_default();
                to_domain(model, lists)
            })
            .collect()
    }

    /// One subscriber with the subscriptions the caller sees, in one statement.
    async fn read_one(
        &self,
        db: &impl ConnectionTrait,
        who: &Principal,
        id: i64,
    ) -> Result<Subscriber, ServiceError> {
        one_with_subscriptions(db, id, &visible_lists(who))
            .await?
            .ok_or(ServiceError::NotFound("subscriber"))
    }

    #[tracing::instrument(skip_all, fields(subscriber.id = id), err(level = "debug"))]
    pub async fn get(&self, who: &Principal, id: i64) -> Result<Subscriber, ServiceError> {
        let SubscriberScope::OnLists(lists) = Self::readable(who)? else {
            return self.read_one(&self.reads, who, id).await;
        };
        // The check and the read in one snapshot: a write between them (moving the subscriber off the caller's
        // lists) must not be served.
        let txn = snapshot(&self.reads).await?;
        ensure(all_on_lists(&txn, &[id], &lists).await?)?;
        let subscriber = self.read_one(&txn, who, id).await?;
        txn.commit().await?;
        Ok(subscriber)
    }

    /// Creates a subscriber and its subscriptions in one transaction.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn create(
        &self,
        who: &Principal,
        new: NewSubscriber,
    ) -> Result<Subscriber, ServiceError> {
        ensure(who.may_manage_subscribers())?;
        if let SubscriberScope::OnLists(lists) = Self::readable(who)? {
            // A caller who reads only the subscribers of its lists must put the new one on one of them, or it
            // could create subscribers it can never see again.
            ensure(new.lists.iter().any(|id| lists.allows(*id)))?;
        }
        Self::ensure_lists_manageable(who, &new.lists)?;
        let txn = begin_write(&self.db, who).await?;
        none_missing("list", &lock_lists(&txn, &new.lists).await?)?;
        let now = now();
        let model = subscribers::ActiveModel {
            uuid: Set(Uuid::new_v4()),
            email: Set(new.email.as_str().to_owned()),
            name_folded: Set(fold_name(&new.name)),
            name: Set(new.name),
            attribs: Set(serde_json::Value::Object(new.attribs.into_inner())),
            status: Set(new.status),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(conflict_on_email)?;
        let manageable = who.scope(Access::Manage);
        sync_subscriptions(
            &txn,
            model.id,
            model.status,
            Some(&new.lists),
            new.preconfirm,
            &manageable,
            now,
        )
        .await?;
        let created = self.read_one(&txn, who, model.id).await?;
        commit(txn).await?;
        Ok(created)
    }

    /// Checks `expect` against the subscriber as `GET` answers this caller now, read in `txn`, whose caller holds
    /// the subscriber's row lock (and with it every change to its subscriptions: see `service::locks`).
    async fn check_current(
        &self,
        txn: &DatabaseTransaction,
        who: &Principal,
        id: i64,
        expect: Expect<'_, Subscriber>,
    ) -> Result<(), ServiceError> {
        if expect.is_none() {
            return Ok(());
        }
        check(expect, &self.read_one(txn, who, id).await?)
    }

    /// Applies a `PUT` or `PATCH` in one transaction.
    #[tracing::instrument(skip_all, fields(subscriber.id = id), err(level = "debug"))]
    pub async fn change(
        &self,
        who: &Principal,
        id: i64,
        change: SubscriberChange,
        expect: Expect<'_, Subscriber>,
    ) -> Result<Subscriber, ServiceError> {
        if let Some(lists) = &change.lists {
            Self::ensure_lists_manageable(who, lists)?;
        }
        let txn = begin_write(&self.db, who).await?;
        let missing_lists = lock_lists(&txn, change.lists.as_deref().unwrap_or_default()).await?;
        let current = self.lock_manageable(&txn, who, id).await?;
        none_missing("list", &missing_lists)?;
        self.check_current(&txn, who, id, expect).await?;
        let (mut row, status) = changed_row(&current, &change)?;
        if status == SubscriberStatus::Blocklisted
            && current.status != SubscriberStatus::Blocklisted
        {
            self.ensure_wholly_manageable(&txn, who, &[id]).await?;
        }
        let now = now();
        if row.is_changed() {
            row.updated_at = Set(now);
            row.update(&txn).await.map_err(conflict_on_email)?;
        }
        sync_subscriptions(
            &txn,
            id,
            status,
            change.lists.as_deref(),
            change.preconfirm,
            &who.scope(Access::Manage),
            now,
        )
        .await?;
        let changed = self.read_one(&txn, who, id).await?;
        commit(txn).await?;
        Ok(changed)
    }

    #[tracing::instrument(skip_all, fields(subscriber.id = id), err(level = "debug"))]
    pub async fn delete(
        &self,
        who: &Principal,
        id: i64,
        expect: Expect<'_, Subscriber>,
    ) -> Result<(), ServiceError> {
        let txn = begin_write(&self.db, who).await?;
        self.lock_manageable(&txn, who, id).await?;
        self.check_current(&txn, who, id, expect).await?;
        self.ensure_wholly_manageable(&txn, who, &[id]).await?;
        delete_subscribers(&txn, &[id]).await?;
        commit(txn).await?;
        Ok(())
    }

    /// Deletes the subscribers with these ids (missing ones are ignored, as for lists), all or none.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn delete_many(&self, who: &Principal, ids: &[i64]) -> Result<(), ServiceError> {
        ensure(who.may_manage_subscribers())?;
        let txn = begin_write(&self.db, who).await?;
        lock_subscribers(&txn, ids).await?;
        // Ids the caller may not read are skipped like missing ones: the same answer either way, so it tells
        // nothing, and a retry after a success succeeds.
        let ids = match Self::readable(who)? {
            SubscriberScope::OnLists(lists) => store::on_lists(&txn, ids, &lists).await?,
            _ => ids.to_vec(),
        };
        self.ensure_wholly_manageable(&txn, who, &ids).await?;
        delete_subscribers(&txn, &ids).await?;
        commit(txn).await?;
        Ok(())
    }

    /// Adds, removes or unsubscribes `ids` on `lists`, all or nothing.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn change_memberships(
        &self,
        who: &Principal,
        ids: &[i64],
        action: MembershipAction,
        lists: &[i64],
    ) -> Result<(), ServiceError> {
        Self::ensure_lists_manageable(who, lists)?;
        let txn = begin_write(&self.db, who).await?;
        let missing_lists = lock_lists(&txn, lists).await?;
        let missing = lock_subscribers(&txn, ids).await?;
        self.ensure_manageable(&txn, who, ids).await?;
        none_missing("subscriber", &missing)?;
        none_missing("list", &missing_lists)?;
        let now = now();
        match action {
            MembershipAction::Add(status) => {
                let existing = match status {
                    Some(_) => Existing::Take,
                    None => Existing::Keep,
                };
                let status = status.unwrap_or(SubscriptionStatus::Unconfirmed);
                add_memberships(&txn, ids, lists, status, existing, now).await?
            }
            MembershipAction::Remove => end_memberships(&txn, ids, lists, true, now).await?,
            MembershipAction::Unsubscribe => end_memberships(&txn, ids, lists, false, now).await?,
        }
        commit(txn).await?;
        Ok(())
    }

    /// Blocklists `ids` (422 naming any that do not exist), all or nothing.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn blocklist(&self, who: &Principal, ids: &[i64]) -> Result<(), ServiceError> {
        let txn = begin_write(&self.db, who).await?;
        let missing = lock_subscribers(&txn, ids).await?;
        self.ensure_manageable(&txn, who, ids).await?;
        none_missing("subscriber", &missing)?;
        self.ensure_wholly_manageable(&txn, who, ids).await?;
        store::blocklist(&txn, ids, now()).await?;
        commit(txn).await?;
        Ok(())
    }

    /// Blocklists one subscriber (404 when it does not exist).
    #[tracing::instrument(skip_all, fields(subscriber.id = id), err(level = "debug"))]
    pub async fn blocklist_one(&self, who: &Principal, id: i64) -> Result<(), ServiceError> {
        let txn = begin_write(&self.db, who).await?;
        self.lock_manageable(&txn, who, id).await?;
        self.ensure_wholly_manageable(&txn, who, &[id]).await?;
        store::blocklist(&txn, &[id], now()).await?;
        commit(txn).await?;
        Ok(())
    }

    /// A subscription from the public form. Only public, active lists may be named; any other UUID is refused
    /// with the same answer whether or not a list has it. A new e-mail becomes an enabled subscriber; an existing
    /// one only gains the subscriptions it did not have (nothing else of it changes, and an unsubscribe is not
    /// undone); a blocklisted one is left as it is. Every case answers alike: whether a double opt-in list was
    /// named.
    #[tracing::instrument(skip_all, err(level = "debug"))]
    pub async fn subscribe(&self, form: PublicSubscription) -> Result<bool, ServiceError> {
        let txn = begin_unauthenticated_write(&self.db).await?;
        let open = store::lock_open_lists(&txn, &form.lists).await?;
        if open.len() != form.lists.len() {
            return Err(ServiceError::Rejected(
                "one or more list UUIDs are not lists open for subscription".into(),
            ));
        }
        let has_optin = open.iter().any(|(_, optin)| *optin == Optin::Double);
        let now = now();
        let (id, status, created) =
            store::insert_or_lock(&txn, &form.email, &form.name, now).await?;
        if status != SubscriberStatus::Blocklisted {
            let rows = open
                .iter()
                .map(|(list_id, _)| subscriber_lists::ActiveModel {
                    subscriber_id: Set(id),
                    list_id: Set(*list_id),
                    status: Set(SubscriptionStatus::Unconfirmed),
                    created_at: Set(now),
                    updated_at: Set(now),
                    // An anonymous request must not bring an existing subscriber into anyone's scope.
                    grants_scope: Set(created),
                });
            subscriber_lists::Entity::insert_many(rows)
                .on_conflict_do_nothing_on([
                    subscriber_lists::Column::SubscriberId,
                    subscriber_lists::Column::ListId,
                ])
                .exec(&txn)
                .await?;
        }
        commit(txn).await?;
        Ok(has_optin)
    }
}
