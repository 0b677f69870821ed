use poem_openapi::OpenApi;
use poem_openapi::param::{Header, Path, Query};

use futures_util::StreamExt;

use super::ApiTags;
use super::body::{CreateListBody, UpdateListBody};
use super::conditions::expectation;
use super::context::deadline;
use super::error::ApiError;
use super::models::{
    BooleanResponse, ListOptin, ListOrderBy, ListStatus, ListType, MailingList, MailingListPage,
    MailingListPageResponse, MailingListResponse, PublicMailingList, SuccessStatus,
};
use super::paging::{Paging, bad_request, count, default_order, default_page, default_per_page};
use super::responses::{Cached, Success, Tagged, operation_errors};
use super::security::ApiAuth;
use super::stream::{Answer, streamed};
use super::types::{FilterTag, IdempotencyKey, ListId, PerPage, SortOrder, WireUuid};
use crate::domain::{
    DELETE_IDS_MAX, DeleteSelector, ListFields, ListFilter, ListPatch, ListQuery, NewList,
};
use crate::service::ListService;

operation_errors!(GetListsError, {
    400 => BadRequest,
    403 => Forbidden,
});
operation_errors!(GetPublicListsError, {
    400 => BadRequest,
});
operation_errors!(GetListError, {
    400 => BadRequest,
    403 => Forbidden,
    404 => ListNotFound,
});
operation_errors!(CreateListError, {
    400 => BadRequest,
    403 => Forbidden,
    409 => Conflict,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => UnprocessableEntity,
});
operation_errors!(UpdateListError, {
    400 => BadRequest,
    403 => Forbidden,
    404 => ListNotFound,
    409 => Conflict,
    412 => PreconditionFailed,
    413 => PayloadTooLarge,
    415 => UnsupportedMediaType,
    422 => UnprocessableEntity,
});
operation_errors!(DeleteListError, {
    400 => BadRequest,
    403 => Forbidden,
    404 => ListNotFound,
    409 => Conflict,
    412 => PreconditionFailed,
    422 => UnprocessableEntity,
});
operation_errors!(DeleteListsError, {
    400 => BadRequest,
    403 => Forbidden,
    409 => Conflict,
    422 => UnprocessableEntity,
});

fn list_body(list: crate::domain::List) -> MailingListResponse {
    MailingListResponse {
        data: MailingList::from_domain(list),
        status: SuccessStatus::Success,
    }
}

/// What `DELETE /api/lists` selects: `id` wins over `query`, and `query` over `all=true`; a blank `query` counts
/// as none.
fn delete_selector(
    ids: Option<Vec<ListId>>,
    query: Option<String>,
    all: bool,
) -> Result<DeleteSelector, ApiError> {
    let query = query.filter(|q| !q.trim().is_empty());
    match (ids, query) {
        (Some(ids), _) if ids.len() > DELETE_IDS_MAX => Err(ApiError::bad_request(format!(
            "give at most {DELETE_IDS_MAX} `id` values"
        ))),
        (Some(ids), _) => Ok(DeleteSelector::Ids(
            ids.into_iter().map(|id| id.0).collect(),
        )),
        (None, Some(query)) => Ok(DeleteSelector::Matching(
            ListFilter::new::<&str>(Some(&query), &[]).map_err(bad_request)?,
        )),
        (None, None) if all => Ok(DeleteSelector::Matching(ListFilter::default())),
        (None, None) => Err(ApiError::bad_request(
            "give `id` (one or more), `query`, or `all=true`",
        )),
    }
}

fn default_order_by() -> ListOrderBy {
    ListOrderBy::CreatedAt
}

/// The Lists API.
pub struct ListsApi {
    pub lists: ListService,
}

#[OpenApi(tag = "ApiTags::Lists")]
impl ListsApi {
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/api/lists", method = "get", operation_id = "getLists")]
    async fn get_lists(
        &self,
        auth: ApiAuth,
        #[oai(validator(max_length = 1000))] query: Query<Option<String>>,
        status: Query<Option<ListStatus>>,
        #[oai(name = "type")] list_type: Query<Option<ListType>>,
        optin: Query<Option<ListOptin>>,
        #[oai(validator(max_items = 100))] tag: Query<Option<Vec<FilterTag>>>,
        #[oai(default = "default_order_by")] order_by: Query<ListOrderBy>,
        #[oai(default = "default_order")] order: Query<SortOrder>,
        #[oai(
            default = "default_page",
            validator(minimum(value = "1"), maximum(value = "999999999"))
        )]
        page: Query<i64>,
        #[oai(default = "default_per_page")] per_page: Query<PerPage>,
        #[oai(default)] minimal: Query<bool>,
        req: &poem::Request,
    ) -> Result<Answer<MailingListPageResponse>, GetListsError> {
        let paging = Paging::new(page.0, per_page.0)?;
        let filter = ListFilter {
            status: status.0.map(Into::into),
            list_type: list_type.0.map(Into::into),
            optin: optin.0.map(Into::into),
            ..ListFilter::new(query.0.as_deref(), &tag.0.unwrap_or_default())
                .map_err(bad_request)?
        };
        let query = ListQuery {
            filter,
            with_counts: !minimal.0,
            order_by: order_by.0.into(),
            direction: order.0.0,
            pagination: paging.pagination,
        };
        let head = |results, total: u64| MailingListPageResponse {
            data: MailingListPage {
                results,
                total: count(total),
                per_page: paging.per_page(),
                page: paging.page,
            },
            status: SuccessStatus::Success,
        };
        if paging.streamed() {
            // Written batch by batch as it is read, so memory does not grow with the answer.
            let walked = self
                .lists
                .query_streamed(auth.principal(), &query, deadline(req))
                .await?;
            let rows = walked.batches.map(|batch| {
                batch.map(|rows| rows.into_iter().map(MailingList::from_domain).collect())
            });
            let body = streamed(head(Vec::new(), walked.total), rows, |_| {});
            return Ok(Answer::Streamed(body));
        }
        let found = self.lists.query(auth.principal(), &query).await?;
        let results = found
            .results
            .into_iter()
            .map(MailingList::from_domain)
            .collect();
        Ok(Answer::Whole(head(results, found.total)))
    }

    #[oai(
        path = "/api/public/lists",
        method = "get",
        operation_id = "getPublicLists"
    )]
    async fn get_public_lists(
        &self,
    ) -> Result<Success<Vec<PublicMailingList>>, GetPublicListsError> {
        let lists = self.lists.public_lists().await?;
        Ok(Success(
            lists
                .into_iter()
                .map(|list| PublicMailingList {
                    uuid: WireUuid(list.uuid),
                    name: list.name,
                })
                .collect(),
        ))
    }

    #[oai(
        path = "/api/lists/:list_id",
        method = "get",
        operation_id = "getListById"
    )]
    async fn get_list(
        &self,
        auth: ApiAuth,
        list_id: Path<ListId>,
        #[oai(name = "If-None-Match", validator(max_length = 1024))] if_none_match: Header<
            Option<String>,
        >,
    ) -> Result<Cached<MailingListResponse>, GetListError> {
        let list = self.lists.get(auth.principal(), list_id.0.0).await?;
        Ok(Cached::new(&list_body(list), if_none_match.0.as_deref())?)
    }

    #[oai(path = "/api/lists", method = "post", operation_id = "createList")]
    async fn create_list(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        body: CreateListBody,
    ) -> Result<Tagged<MailingListResponse>, CreateListError> {
        let new = NewList::try_from(ListFields::from(body.into_inner()))?;
        let list = self.lists.create(auth.principal(), new).await?;
        Ok(Tagged::new(&list_body(list))?)
    }

    #[oai(
        path = "/api/lists/:list_id",
        method = "put",
        operation_id = "updateList"
    )]
    async fn update_list(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        list_id: Path<ListId>,
        body: UpdateListBody,
        #[oai(name = "If-Match", validator(max_length = 1024))] if_match: Header<Option<String>>,
    ) -> Result<Tagged<MailingListResponse>, UpdateListError> {
        let patch = ListPatch::try_from(ListFields::from(body.into_inner()))?;
        let expect = expectation(if_match.0, list_body);
        let list = self
            .lists
            .update(
                auth.principal(),
                list_id.0.0,
                patch,
                expect.as_ref().map(|f| f as _),
            )
            .await?;
        Ok(Tagged::new(&list_body(list))?)
    }

    #[oai(
        path = "/api/lists/:list_id",
        method = "delete",
        operation_id = "deleteListById"
    )]
    async fn delete_list(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        list_id: Path<ListId>,
        #[oai(name = "If-Match", validator(max_length = 1024))] if_match: Header<Option<String>>,
    ) -> Result<Success<BooleanResponse>, DeleteListError> {
        let expect = expectation(if_match.0, list_body);
        self.lists
            .delete(
                auth.principal(),
                list_id.0.0,
                expect.as_ref().map(|f| f as _),
            )
            .await?;
        Ok(Success(BooleanResponse::success(true)))
    }

    #[oai(path = "/api/lists", method = "delete", operation_id = "deleteLists")]
    async fn delete_lists(
        &self,
        #[oai(name = "Idempotency-Key")] _key: Header<Option<IdempotencyKey>>,
        auth: ApiAuth,
        #[oai(validator(max_items = 1000))] id: Query<Option<Vec<ListId>>>,
        #[oai(validator(max_length = 1000))] query: Query<Option<String>>,
        #[oai(default)] all: Query<bool>,
    ) -> Result<Success<BooleanResponse>, DeleteListsError> {
        let selector = delete_selector(id.0, query.0, all.0)?;
        self.lists.delete_many(auth.principal(), &selector).await?;
        Ok(Success(BooleanResponse::success(true)))
    }
}
