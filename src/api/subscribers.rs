//! The Subscribers API: each operation parses, calls one `SubscriberService` method and maps the result.

use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};

use futures_util::StreamExt;

use super::ApiTags;
use super::body::{
    CreateSubscriberBody, PatchSubscriberBody, PublicSubscriptionBody, SubscriberIdsBody,
    SubscriberListsBody, UpdateSubscriberBody,
};
use super::conditions::expectation;
use super::context::deadline;
use super::error::ApiError;
use super::export::{CsvExport, csv_body};
use super::models::{
    BooleanResponse, MembershipAction, PublicSubscriptionResponse, PublicSubscriptionResult,
    Subscriber, SubscriberOrderBy, SubscriberPage, SubscriberPageResponse, SubscriberResponse,
    SubscriberStatus, SubscriptionStatus, SuccessStatus,
};
use super::paging::{Paging, bad_request, count, default_order, default_page, default_per_page};
use super::responses::{Cached, Success, Tagged, operation_errors};
use super::security::ApiAuth;
use super::stream::{Answer, streamed};
use super::types::{IdempotencyKey, ListId, PerPage, SortOrder, SubscriberId};
use crate::domain::{
    self, Cursor, DELETE_IDS_MAX, NewSubscriber, PublicSubscription, SubscriberChange,
    SubscriberFilter, SubscriberQuery, ValidationError, parse_list_ids, parse_subscriber_ids,
};
use crate::service::{Answered, SubscriberService};

operation_errors!(GetSubscribersError, {
    400 => BadRequest,
    403 => Forbidden,
});
operation_errors!(ExportSubscribersError, {
    400 => BadRequest,
    403 => Forbidden,
});
operation_errors!(GetSubscriberError, {
    400 => BadRequest,
    403 => Forbidden,
    404 => SubscriberNotFound,
});
operation_errors!(CreateSubscriberError, {
    400 => BadRequest,
    403 => Forbidden,
    409 => Conflict,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => UnprocessableEntity,
});
operation_errors!(ChangeSubscriberError, {
    400 => BadRequest,
    403 => Forbidden,
    404 => SubscriberNotFound,
    409 => Conflict,
    412 => PreconditionFailed,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => UnprocessableEntity,
});
operation_errors!(DeleteSubscriberError, {
    400 => BadRequest,
    403 => Forbidden,
    404 => SubscriberNotFound,
    409 => Conflict,
    412 => PreconditionFailed,
    422 => UnprocessableEntity,
});
operation_errors!(DeleteSubscribersError, {
    400 => BadRequest,
    403 => Forbidden,
    409 => Conflict,
    422 => UnprocessableEntity,
});
operation_errors!(BulkSubscribersError, {
    400 => BadRequest,
    403 => Forbidden,
    409 => Conflict,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => UnprocessableEntity,
});
operation_errors!(BlocklistSubscriberError, {
    400 => BadRequest,
    403 => Forbidden,
    404 => SubscriberNotFound,
    409 => Conflict,
    422 => UnprocessableEntity,
});
operation_errors!(PublicSubscriptionError, {
    400 => BadRequest,
    409 => Conflict,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => UnprocessableEntity,
});

/// The subscribers the listing's filters select (the listing and the export take the same ones).
fn selection(
    search: &str,
    expression: &str,
    list_id: Option<Vec<ListId>>,
    subscription_status: Option<SubscriptionStatus>,
    status: Option<SubscriberStatus>,
) -> Result<SubscriberFilter, ApiError> {
    SubscriberFilter::new(
        Some(search),
        Some(expression),
        list_id.map(|ids| ids.into_iter().map(|id| id.0).collect()),
        subscription_status.map(Into::into),
        status.map(Into::into),
    )
    .map_err(bad_request)
}

fn subscriber_body(subscriber: domain::Subscriber) -> SubscriberResponse {
    SubscriberResponse {
        data: Subscriber::from_domain(subscriber),
        status: SuccessStatus::Success,
    }
}

fn default_order_by() -> SubscriberOrderBy {
    SubscriberOrderBy::Id
}

/// The Subscribers API.
pub struct SubscribersApi {
    pub subscribers: SubscriberService,
}

impl SubscribersApi {
    /// A `PUT` or `PATCH`, once its body is read.
    async fn change(
        &self,
        auth: ApiAuth,
        subscriber_id: Path<SubscriberId>,
        change: SubscriberChange,
        if_match: Header<Option<String>>,
    ) -> Result<Tagged<SubscriberResponse>, ChangeSubscriberError> {
        let expect = expectation(if_match.0, subscriber_body);
        let subscriber = self
            .subscribers
            .change(
                auth.principal(),
                subscriber_id.0.0,
                change,
                expect.as_ref().map(|f| f as _),
            )
            .await?;
        Ok(Tagged::new(&subscriber_body(subscriber))?)
    }
}

#[OpenApi(tag = "ApiTags::Subscribers")]
impl SubscribersApi {
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/api/subscribers",
        method = "get",
        operation_id = "getSubscribers"
    )]
    async fn get_subscribers(
        &self,
        auth: ApiAuth,
        #[oai(validator(max_length = 1000))] search: Query<Option<String>>,
        #[oai(validator(max_length = 2000))] query: Query<Option<String>>,
        #[oai(validator(max_items = 1000))] list_id: Query<Option<Vec<ListId>>>,
        subscription_status: Query<Option<SubscriptionStatus>>,
        status: Query<Option<SubscriberStatus>>,
        #[oai(default = "default_order_by")] order_by: Query<SubscriberOrderBy>,
        #[oai(default = "default_order")] order: Query<SortOrder>,
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "999999999"))
        )]
        page: Query<i64>,
        #[oai(default = "default_per_page")] per_page: Query<PerPage>,
        #[oai(validator(min_length = 1, max_length = 12288))] after: Query<Option<String>>,
        req: &poem::Request,
    ) -> Result<Answer<SubscriberPageResponse>, GetSubscribersError> {
        let paging = Paging::new(page.0, per_page.0)?;
        let search = search.0.unwrap_or_default().trim().to_owned();
        let expression = query.0.unwrap_or_default().trim().to_owned();
        let filter = selection(
            &search,
            &expression,
            list_id.0,
            subscription_status.0,
            status.0,
        )?;
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
            pagination: paging.pagination,
            after,
        };
        if paging.streamed() {
            // Written batch by batch as it is read, so memory does not grow with the answer.
            let walked = self
                .subscribers
                .query_streamed(
                    auth.principal(),
                    &query,
                    Answered::ListsInFull,
                    deadline(req),
                )
                .await?;
            let head = SubscriberPageResponse {
                data: SubscriberPage {
                    results: Vec::new(),
                    search,
                    query: expression,
                    total: count(walked.total),
                    per_page: paging.per_page(),
                    page: paging.page,
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
        let mut batches = SubscriberService::answer_batches(found.results);
        let mut page = SubscriberPageResponse {
            data: SubscriberPage {
                results: Vec::new(),
                search,
                query: expression,
                total: count(found.total),
                per_page: paging.per_page(),
                page: paging.page,
                next: found.next.map(|cursor| cursor.encode()),
            },
            status: SuccessStatus::Success,
        };
        if let [rows] = batches.as_mut_slice() {
            let rows = std::mem::take(rows);
            page.data.results = rows.into_iter().map(Subscriber::from_domain).collect();
            return Ok(Answer::Whole(page));
        }
        // Subscribers on many long lists: each batch made into its answer only when it is written, so the page is
        // held once (its lists shared), not again as wire rows and JSON.
        let rows = futures_util::stream::iter(batches)
            .map(|batch| Ok(batch.into_iter().map(Subscriber::from_domain).collect()));
        Ok(Answer::Streamed(streamed(page, rows, |_| {})))
    }

    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/api/subscribers/export",
        method = "get",
        operation_id = "exportSubscribers"
    )]
    async fn export_subscribers(
        &self,
        auth: ApiAuth,
        #[oai(validator(max_length = 1000))] search: Query<Option<String>>,
        #[oai(validator(max_length = 2000))] query: Query<Option<String>>,
        #[oai(validator(max_items = 1000))] list_id: Query<Option<Vec<ListId>>>,
        subscription_status: Query<Option<SubscriptionStatus>>,
        status: Query<Option<SubscriberStatus>>,
        req: &poem::Request,
    ) -> Result<CsvExport, ExportSubscribersError> {
        let filter = selection(
            search.0.unwrap_or_default().trim(),
            query.0.unwrap_or_default().trim(),
            list_id.0,
            subscription_status.0,
            status.0,
        )?;
        // Every match, by id: the walk's keyset order, so the file is one consistent snapshot in a stable order.
        let query = SubscriberQuery {
            filter,
            order_by: domain::SubscriberOrderBy::Id,
            direction: domain::Direction::Asc,
            pagination: domain::Pagination::new(1, None).map_err(bad_request)?,
            after: None,
        };
        let walked = self
            .subscribers
            .query_streamed(auth.principal(), &query, Answered::ListIds, deadline(req))
            .await?;
        Ok(CsvExport(csv_body(walked.batches)))
    }

    #[oai(
        path = "/api/subscribers/:subscriber_id",
        method = "get",
        operation_id = "getSubscriberById"
    )]
    async fn get_subscriber(
        &self,
        auth: ApiAuth,
        subscriber_id: Path<SubscriberId>,
        #[oai(name = "If-None-Match", validator(max_length = 1024))] if_none_match: Header<
            Option<String>,
        >,
    ) -> Result<Cached<SubscriberResponse>, GetSubscriberError> {
        let subscriber = self
            .subscribers
            .get(auth.principal(), subscriber_id.0.0)
            .await?;
        Ok(Cached::new(
            &subscriber_body(subscriber),
            if_none_match.0.as_deref(),
        )?)
    }

    #[oai(
        path = "/api/subscribers",
        method = "post",
        operation_id = "createSubscriber"
    )]
    async fn create_subscriber(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        body: CreateSubscriberBody,
    ) -> Result<Tagged<SubscriberResponse>, CreateSubscriberError> {
        let new = NewSubscriber::try_from(body.into_fields())?;
        let subscriber = self.subscribers.create(auth.principal(), new).await?;
        Ok(Tagged::new(&subscriber_body(subscriber))?)
    }

    #[oai(
        path = "/api/subscribers/:subscriber_id",
        method = "put",
        operation_id = "updateSubscriber"
    )]
    async fn update_subscriber(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        subscriber_id: Path<SubscriberId>,
        body: UpdateSubscriberBody,
        #[oai(name = "If-Match", validator(max_length = 1024))] if_match: Header<Option<String>>,
    ) -> Result<Tagged<SubscriberResponse>, ChangeSubscriberError> {
        let change = SubscriberChange::replace(body.into_inner().into())?;
        self.change(auth, subscriber_id, change, if_match).await
    }

    #[oai(
        path = "/api/subscribers/:subscriber_id",
        method = "patch",
        operation_id = "patchSubscriber"
    )]
    async fn patch_subscriber(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        subscriber_id: Path<SubscriberId>,
        body: PatchSubscriberBody,
        #[oai(name = "If-Match", validator(max_length = 1024))] if_match: Header<Option<String>>,
    ) -> Result<Tagged<SubscriberResponse>, ChangeSubscriberError> {
        let change = SubscriberChange::patch(body.into_inner().into())?;
        self.change(auth, subscriber_id, change, if_match).await
    }

    #[oai(
        path = "/api/subscribers/:subscriber_id",
        method = "delete",
        operation_id = "deleteSubscriberById"
    )]
    async fn delete_subscriber(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        subscriber_id: Path<SubscriberId>,
        #[oai(name = "If-Match", validator(max_length = 1024))] if_match: Header<Option<String>>,
    ) -> Result<Success<BooleanResponse>, DeleteSubscriberError> {
        let expect = expectation(if_match.0, subscriber_body);
        self.subscribers
            .delete(
                auth.principal(),
                subscriber_id.0.0,
                expect.as_ref().map(|f| f as _),
            )
            .await?;
        Ok(Success(BooleanResponse::success(true)))
    }

    #[oai(
        path = "/api/subscribers",
        method = "delete",
        operation_id = "deleteSubscribers"
    )]
    async fn delete_subscribers(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        #[oai(validator(min_items = 1, max_items = 1000))] id: Query<Vec<SubscriberId>>,
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
        Ok(Success(BooleanResponse::success(true)))
    }

    #[oai(
        path = "/api/subscribers/lists",
        method = "put",
        operation_id = "manageSubscriberLists"
    )]
    async fn manage_lists(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
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
        Ok(Success(BooleanResponse::success(true)))
    }

    #[oai(
        path = "/api/subscribers/blocklist",
        method = "put",
        operation_id = "blocklistSubscribers"
    )]
    async fn blocklist_subscribers(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        body: SubscriberIdsBody,
    ) -> Result<Success<BooleanResponse>, BulkSubscribersError> {
        let ids: Vec<i64> = body.into_inner().ids.iter().map(|id| id.0).collect();
        let ids = parse_subscriber_ids(&ids)?;
        self.subscribers.blocklist(auth.principal(), &ids).await?;
        Ok(Success(BooleanResponse::success(true)))
    }

    #[oai(
        path = "/api/subscribers/:subscriber_id/blocklist",
        method = "put",
        operation_id = "blocklistSubscriberById"
    )]
    async fn blocklist_subscriber(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        subscriber_id: Path<SubscriberId>,
    ) -> Result<Success<BooleanResponse>, BlocklistSubscriberError> {
        self.subscribers
            .blocklist_one(auth.principal(), subscriber_id.0.0)
            .await?;
        Ok(Success(BooleanResponse::success(true)))
    }

    #[oai(
        path = "/api/public/subscription",
        method = "post",
        operation_id = "createPublicSubscription"
    )]
    async fn public_subscription(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
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
