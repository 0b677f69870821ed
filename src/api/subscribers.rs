//! The Subscribers API: each operation parses, calls one `SubscriberService` method and maps the result.

use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};

use futures_util::StreamExt;

use super::ApiTags;
use super::body::{
    CreateSubscriberBody, PatchSubscriberBody, PublicSubscriptionBody, SubscriberIdsBody,
    SubscriberListsBody, UpdateSubscriberBody,
};
use super::context::deadline;
use super::error::{ApiError, Success, operation_errors};
use super::models::{
    BooleanResponse, MembershipAction, PublicSubscriptionResponse, PublicSubscriptionResult,
    Subscriber, SubscriberOrderBy, SubscriberPage, SubscriberPageResponse, SubscriberResponse,
    SubscriberStatus, SubscriptionStatus, SuccessStatus,
};
use super::security::ApiAuth;
use super::stream::{Answer, streamed};
use super::types::{ListId, PerPage, SortOrder, SubscriberId};
use crate::domain::{
    self, Cursor, DEFAULT_PER_PAGE, DELETE_IDS_MAX, Direction, NewSubscriber, Pagination,
    PublicSubscription, SubscriberChange, SubscriberFilter, SubscriberQuery, ValidationError,
    parse_list_ids, parse_subscriber_ids,
};
use crate::service::{STREAMED_ABOVE, SubscriberService};

operation_errors!(GetSubscribersError, {
    /// A parameter is malformed or out of range, or `query` uses something Roster does not support.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission (including a `list_id` the caller may not read).
    403 => Forbidden,
});
operation_errors!(GetSubscriberError, {
    /// The id is not a positive integer.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission (also for an id the caller could not see if it
    /// existed).
    403 => Forbidden,
    /// No subscriber has this id.
    404 => SubscriberNotFound,
});
operation_errors!(CreateSubscriberError, {
    /// The body cannot be read: malformed, a field of the wrong type, an unknown enum value, too many ids, or no
    /// `email`.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission (`subscribers:manage`, and manage on every list).
    403 => Forbidden,
    /// A subscriber with this e-mail already exists (whatever its case).
    409 => Conflict,
    /// The body is larger than the configured limit.
    413 => PayloadTooLarge,
    /// The body's media type is not JSON, URL-encoded form or multipart form data.
    415 => UnsupportedMediaType,
    /// The body breaks a rule: an invalid or overlong e-mail, an overlong name, `attribs` not a bounded object,
    /// an id below 1, or a list that does not exist (named in the message).
    422 => UnprocessableEntity,
});
operation_errors!(ChangeSubscriberError, {
    /// The id or the body cannot be read.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission.
    403 => Forbidden,
    /// No subscriber has this id.
    404 => SubscriberNotFound,
    /// Another subscriber has this e-mail.
    409 => Conflict,
    /// The body is larger than the configured limit.
    413 => PayloadTooLarge,
    /// The body's media type is not JSON.
    415 => UnsupportedMediaType,
    /// The body breaks a rule (see `POST /api/subscribers`).
    422 => UnprocessableEntity,
});
operation_errors!(DeleteSubscriberError, {
    /// The id is not a positive integer.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission.
    403 => Forbidden,
    /// No subscriber has this id.
    404 => SubscriberNotFound,
});
operation_errors!(DeleteSubscribersError, {
    /// No `id`, an id that is not a positive integer, or more than 1,000.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission for one of the subscribers (nothing is deleted).
    403 => Forbidden,
});
operation_errors!(BulkSubscribersError, {
    /// The body cannot be read: malformed, wrong types, an unknown `action` or status, no ids, too many ids.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission for one of the subscribers or lists (nothing changes).
    403 => Forbidden,
    /// The body is larger than the configured limit.
    413 => PayloadTooLarge,
    /// The body's media type is not JSON.
    415 => UnsupportedMediaType,
    /// An id below 1, or subscribers or lists that do not exist (named in the message); nothing changes.
    422 => UnprocessableEntity,
});
operation_errors!(BlocklistSubscriberError, {
    /// The id is not a positive integer.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission.
    403 => Forbidden,
    /// No subscriber has this id.
    404 => SubscriberNotFound,
});
operation_errors!(PublicSubscriptionError, {
    /// The body cannot be read, or a list UUID is not that of a public, active list (the same answer whatever
    /// the reason).
    400 => BadRequest,
    /// The body is larger than the configured limit.
    413 => PayloadTooLarge,
    /// The body's media type is not JSON, URL-encoded form or multipart form data.
    415 => UnsupportedMediaType,
    /// An invalid or overlong e-mail or name, or no list UUID.
    422 => UnprocessableEntity,
});

fn subscriber_response(subscriber: domain::Subscriber) -> Success<SubscriberResponse> {
    Success(SubscriberResponse {
        data: Subscriber::from_domain(subscriber),
        status: SuccessStatus::Success,
    })
}

/// A rule broken by a parameter: 400, not 422 (that is for bodies).
fn bad_request(err: ValidationError) -> ApiError {
    ApiError::bad_request(err.0)
}

fn default_page() -> i64 {
    1
}

fn default_per_page() -> PerPage {
    PerPage::Rows(DEFAULT_PER_PAGE)
}

fn default_order_by() -> SubscriberOrderBy {
    SubscriberOrderBy::Id
}

fn default_order() -> SortOrder {
    SortOrder(Direction::Desc)
}

/// The Subscribers API.
pub struct SubscribersApi {
    pub subscribers: SubscriberService,
}

#[OpenApi(tag = "ApiTags::Subscribers")]
impl SubscribersApi {
    /// Query and retrieve subscribers
    ///
    /// Subscribers matching every given filter, each once (whatever lists matched), sorted over the whole result
    /// (ties broken by `id`), one page at a time; `total` counts every match on every page. Each subscriber
    /// carries the lists it is on (only lists the caller may read).
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/api/subscribers",
        method = "get",
        operation_id = "getSubscribers"
    )]
    async fn get_subscribers(
        &self,
        auth: ApiAuth,
        /// Words to find in e-mails or names: case-insensitive, every word must occur in the e-mail or the name,
        /// all characters literal. At most 1,000 characters and 32 different words.
        #[oai(validator(max_length = 1000))]
        search: Query<Option<String>>,
        /// listmonk's SQL expression over subscribers, translated (never run as SQL): columns
        /// `subscribers.id`, `uuid`, `email`, `name`, `status`, `created_at`, `updated_at` (with or without the
        /// `subscribers.` prefix) and `subscribers.attribs->>'key'` / `->'key'`; operators `=`, `<>`, `!=`, `<`,
        /// `<=`, `>`, `>=`, `[NOT] LIKE`, `[NOT] ILIKE`, `[NOT] IN (…)`, `IS [NOT] NULL`, `AND`, `OR`, `NOT`,
        /// parentheses and `LOWER()`; string, number and boolean literals. Anything else is a 400 naming what is
        /// not supported. Example: `subscribers.email='a@example.com'`. At most 2,000 characters.
        #[oai(validator(max_length = 2000))]
        query: Query<Option<String>>,
        /// Only subscribers on one of these lists (repeat for several, at most 1,000: `list_id=1&list_id=2`).
        #[oai(validator(max_items = 1000))]
        list_id: Query<Option<Vec<ListId>>>,
        /// With `list_id`: only subscriptions in this state count.
        subscription_status: Query<Option<SubscriptionStatus>>,
        /// Only subscribers with this status.
        status: Query<Option<SubscriberStatus>>,
        /// Sort field.
        #[oai(default = "default_order_by")]
        order_by: Query<SubscriberOrderBy>,
        /// Sort order: `asc` or `desc`, in either case.
        #[oai(default = "default_order")]
        order: Query<SortOrder>,
        /// Page number, from 1.
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "999999999"))
        )]
        page: Query<i64>,
        /// Results per page (1–999999999), or `all` to return every match on one page (reported as `per_page: 0`).
        #[oai(default = "default_per_page")]
        per_page: Query<PerPage>,
        /// A cursor from the `next` of a previous page: this page starts right after the last subscriber of
        /// that page, in the same `order_by` and `order` (a cursor made for another ordering is refused). Faster
        /// than `page` for walking every subscriber, and unaffected by subscribers added or removed before the
        /// cursor's position meanwhile. `page` must be 1 (or left out) with it. Treat it as opaque; at most
        /// 12,288 characters.
        #[oai(validator(min_length = 1, max_length = 12288))]
        after: Query<Option<String>>,
        req: &poem::Request,
    ) -> Result<Answer<SubscriberPageResponse>, GetSubscribersError> {
        let per_page = match per_page.0 {
            PerPage::Rows(rows) => Some(rows),
            PerPage::All => None,
        };
        let search = search.0.unwrap_or_default().trim().to_owned();
        let expression = query.0.unwrap_or_default().trim().to_owned();
        let filter = SubscriberFilter::new(
            Some(&search),
            Some(&expression),
            list_id
                .0
                .map(|ids| ids.into_iter().map(|id| id.0).collect()),
            subscription_status.0.map(Into::into),
            status.0.map(Into::into),
        )
        .map_err(bad_request)?;
        let order_by = order_by.0.into();
        let direction = order.0.0;
        let after = match after.0 {
            Some(_) if page.0 != 1 => {
                return Err(bad_request(ValidationError(
                    "page must be 1 (or left out) with after".into(),
                ))
                .into());
            }
            Some(text) => Some(Cursor::parse(&text, order_by, direction).map_err(bad_request)?),
            None => None,
        };
        let query = SubscriberQuery {
            filter,
            order_by,
            direction,
            pagination: Pagination::new(u64::try_from(page.0).unwrap_or(0), per_page)
                .map_err(bad_request)?,
            after,
        };
        if per_page.is_none_or(|rows| rows > STREAMED_ABOVE) {
            // Written batch by batch as it is read, so memory does not grow with the answer.
            let walked = self
                .subscribers
                .query_streamed(auth.principal(), &query, deadline(req))
                .await?;
            let head = SubscriberPageResponse {
                data: SubscriberPage {
                    results: Vec::new(),
                    search,
                    query: expression,
                    total: i64::try_from(walked.total).unwrap_or(i64::MAX),
                    per_page: i64::try_from(per_page.unwrap_or(0)).unwrap_or(i64::MAX),
                    page: page.0,
                    next: None,
                },
                status: SuccessStatus::Success,
            };
            let rows = walked.batches.map(|batch| {
                batch.map(|rows| rows.into_iter().map(Subscriber::from_domain).collect())
            });
            let last = walked.last;
            let finish = move |head: &mut SubscriberPageResponse| {
                head.data.next = last.get().map(|key| {
                    Cursor {
                        order_by,
                        direction,
                        key: key.clone(),
                    }
                    .encode()
                });
            };
            return Ok(Answer::Streamed(streamed(head, rows, finish)));
        }
        let found = self.subscribers.query(auth.principal(), &query).await?;
        Ok(Answer::Whole(SubscriberPageResponse {
            data: SubscriberPage {
                results: found
                    .results
                    .into_iter()
                    .map(Subscriber::from_domain)
                    .collect(),
                search,
                query: expression,
                total: i64::try_from(found.total).unwrap_or(i64::MAX),
                per_page: i64::try_from(per_page.unwrap_or(0)).unwrap_or(i64::MAX),
                page: page.0,
                next: found.next.map(|cursor| cursor.encode()),
            },
            status: SuccessStatus::Success,
        }))
    }

    /// Retrieve a specific subscriber
    #[oai(
        path = "/api/subscribers/:subscriber_id",
        method = "get",
        operation_id = "getSubscriberById"
    )]
    async fn get_subscriber(
        &self,
        auth: ApiAuth,
        /// ID of the subscriber.
        subscriber_id: Path<SubscriberId>,
    ) -> Result<Success<SubscriberResponse>, GetSubscriberError> {
        let subscriber = self
            .subscribers
            .get(auth.principal(), subscriber_id.0.0)
            .await?;
        Ok(subscriber_response(subscriber))
    }

    /// Create a new subscriber
    ///
    /// Only `email` is required. New subscriptions are `unconfirmed` (`confirmed` with
    /// `preconfirm_subscriptions`; `unsubscribed` for a blocklisted subscriber). Everything is written in one
    /// transaction: an unknown list id changes nothing.
    #[oai(
        path = "/api/subscribers",
        method = "post",
        operation_id = "createSubscriber"
    )]
    async fn create_subscriber(
        &self,
        auth: ApiAuth,
        body: CreateSubscriberBody,
    ) -> Result<Success<SubscriberResponse>, CreateSubscriberError> {
        let new = NewSubscriber::try_from(body.into_fields())?;
        let subscriber = self.subscribers.create(auth.principal(), new).await?;
        Ok(subscriber_response(subscriber))
    }

    /// Update a subscriber (replace)
    ///
    /// listmonk's full update. **Leaving `lists` out removes the subscriber from every list** (that the caller
    /// manages); use `PATCH` to change some fields only.
    #[oai(
        path = "/api/subscribers/:subscriber_id",
        method = "put",
        operation_id = "updateSubscriber"
    )]
    async fn update_subscriber(
        &self,
        auth: ApiAuth,
        /// ID of the subscriber.
        subscriber_id: Path<SubscriberId>,
        body: UpdateSubscriberBody,
    ) -> Result<Success<SubscriberResponse>, ChangeSubscriberError> {
        let change = SubscriberChange::replace(body.into_inner().into())?;
        let subscriber = self
            .subscribers
            .change(auth.principal(), subscriber_id.0.0, change)
            .await?;
        Ok(subscriber_response(subscriber))
    }

    /// Update some fields of a subscriber
    ///
    /// Fields left out keep their value; `attribs` are merged one level deep; `lists`, when present, becomes
    /// the exact set of lists.
    #[oai(
        path = "/api/subscribers/:subscriber_id",
        method = "patch",
        operation_id = "patchSubscriber"
    )]
    async fn patch_subscriber(
        &self,
        auth: ApiAuth,
        /// ID of the subscriber.
        subscriber_id: Path<SubscriberId>,
        body: PatchSubscriberBody,
    ) -> Result<Success<SubscriberResponse>, ChangeSubscriberError> {
        let change = SubscriberChange::patch(body.into_inner().into())?;
        let subscriber = self
            .subscribers
            .change(auth.principal(), subscriber_id.0.0, change)
            .await?;
        Ok(subscriber_response(subscriber))
    }

    /// Delete a subscriber
    ///
    /// Deletes the subscriber and its subscriptions; the lists' counts follow at once.
    #[oai(
        path = "/api/subscribers/:subscriber_id",
        method = "delete",
        operation_id = "deleteSubscriberById"
    )]
    async fn delete_subscriber(
        &self,
        auth: ApiAuth,
        /// ID of the subscriber.
        subscriber_id: Path<SubscriberId>,
    ) -> Result<Success<BooleanResponse>, DeleteSubscriberError> {
        self.subscribers
            .delete(auth.principal(), subscriber_id.0.0)
            .await?;
        Ok(Success(BooleanResponse::yes()))
    }

    /// Delete multiple subscribers
    ///
    /// Deletes the subscribers with these ids (`id=1&id=2`), in one transaction. Ids that do not exist are
    /// ignored (as for lists), so a retried delete succeeds.
    #[oai(
        path = "/api/subscribers",
        method = "delete",
        operation_id = "deleteSubscribers"
    )]
    async fn delete_subscribers(
        &self,
        auth: ApiAuth,
        /// One or more subscriber ids, at most 1,000.
        #[oai(validator(min_items = 1, max_items = 1000))]
        id: Query<Vec<SubscriberId>>,
    ) -> Result<Success<BooleanResponse>, DeleteSubscribersError> {
        let ids: Vec<i64> = id.0.into_iter().map(|id| id.0).collect();
        if ids.len() > DELETE_IDS_MAX {
            return Err(ApiError::bad_request(format!(
                "give at most {DELETE_IDS_MAX} `id` values"
            ))
            .into());
        }
        let ids = parse_subscriber_ids(&ids).map_err(bad_request)?;
        self.subscribers.delete_many(auth.principal(), &ids).await?;
        Ok(Success(BooleanResponse::yes()))
    }

    /// Manage subscriptions of many subscribers
    ///
    /// Adds, removes or unsubscribes every subscriber in `ids` on every list in `target_list_ids`, in one
    /// transaction. The lists' counts are exact as soon as the answer arrives.
    #[oai(
        path = "/api/subscribers/lists",
        method = "put",
        operation_id = "manageSubscriberLists"
    )]
    async fn manage_lists(
        &self,
        auth: ApiAuth,
        body: SubscriberListsBody,
    ) -> Result<Success<BooleanResponse>, BulkSubscribersError> {
        let body = body.into_inner();
        let ids: Vec<i64> = body.ids.iter().map(|id| id.0).collect();
        let ids = parse_subscriber_ids(&ids)?;
        let lists: Vec<i64> = body.target_list_ids.iter().map(|id| id.0).collect();
        let lists = parse_list_ids(&lists, "target_list_ids")?;
        let action = match body.action {
            MembershipAction::Add => domain::MembershipAction::Add(body.status.map(Into::into)),
            MembershipAction::Remove => domain::MembershipAction::Remove,
            MembershipAction::Unsubscribe => domain::MembershipAction::Unsubscribe,
        };
        self.subscribers
            .change_memberships(auth.principal(), &ids, action, &lists)
            .await?;
        Ok(Success(BooleanResponse::yes()))
    }

    /// Blocklist subscribers
    ///
    /// Sets each subscriber's status to `blocklisted` and every subscription of theirs to `unsubscribed`, in
    /// one transaction.
    #[oai(
        path = "/api/subscribers/blocklist",
        method = "put",
        operation_id = "blocklistSubscribers"
    )]
    async fn blocklist_subscribers(
        &self,
        auth: ApiAuth,
        body: SubscriberIdsBody,
    ) -> Result<Success<BooleanResponse>, BulkSubscribersError> {
        let ids: Vec<i64> = body.into_inner().ids.iter().map(|id| id.0).collect();
        let ids = parse_subscriber_ids(&ids)?;
        self.subscribers.blocklist(auth.principal(), &ids).await?;
        Ok(Success(BooleanResponse::yes()))
    }

    /// Blocklist a subscriber
    ///
    /// Sets the subscriber's status to `blocklisted` and every subscription of theirs to `unsubscribed`. A
    /// request body, if any, is ignored.
    #[oai(
        path = "/api/subscribers/:subscriber_id/blocklist",
        method = "put",
        operation_id = "blocklistSubscriberById"
    )]
    async fn blocklist_subscriber(
        &self,
        auth: ApiAuth,
        /// ID of the subscriber.
        subscriber_id: Path<SubscriberId>,
    ) -> Result<Success<BooleanResponse>, BlocklistSubscriberError> {
        self.subscribers
            .blocklist_one(auth.principal(), subscriber_id.0.0)
            .await?;
        Ok(Success(BooleanResponse::yes()))
    }

    /// Subscribe from a public form
    ///
    /// Needs no authentication. Subscribes an e-mail to public, active lists. The answer is the same for a new
    /// e-mail, a known one (which only gains the subscriptions it did not have; nothing else of it changes) and
    /// a blocklisted one (which stays as it is). Roster sends no e-mail.
    #[oai(
        path = "/api/public/subscription",
        method = "post",
        operation_id = "createPublicSubscription"
    )]
    async fn public_subscription(
        &self,
        body: PublicSubscriptionBody,
    ) -> Result<Success<PublicSubscriptionResponse>, PublicSubscriptionError> {
        let (email, name, lists) = body.into_parts();
        let form = PublicSubscription::new(&email, name.as_deref(), &lists)?;
        let has_optin = self.subscribers.subscribe(form).await?;
        Ok(Success(PublicSubscriptionResponse {
            data: PublicSubscriptionResult { has_optin },
            status: SuccessStatus::Success,
        }))
    }
}
