use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};

use futures_util::StreamExt;

use super::ApiTags;
use super::body::{CreateListBody, UpdateListBody};
use super::context::deadline;
use super::error::{ApiError, Success, operation_errors};
use super::models::{
    BooleanResponse, ListOptin, ListOrderBy, ListStatus, ListType, MailingList, MailingListPage,
    MailingListPageResponse, MailingListResponse, PublicMailingList, SuccessStatus,
};
use super::security::ApiAuth;
use super::stream::{Answer, streamed};
use super::types::{FilterTag, ListId, PerPage, SortOrder, WireUuid};
use crate::domain::{
    DEFAULT_PER_PAGE, DELETE_IDS_MAX, DeleteSelector, Direction, ListFields, ListFilter, ListPatch,
    ListQuery, NewList, Pagination, ValidationError,
};
use crate::service::{ListService, STREAMED_ABOVE};

operation_errors!(GetListsError, {
    /// A parameter is malformed or out of range.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission.
    403 => Forbidden,
});
operation_errors!(GetPublicListsError, {
    /// The URL is over 61,440 bytes.
    400 => BadRequest,
});
operation_errors!(GetListError, {
    /// The id is not a positive integer.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission.
    403 => Forbidden,
    /// No list has this id.
    404 => NotFound,
});
operation_errors!(CreateListError, {
    /// The body cannot be read: malformed, a field of the wrong type, an unknown enum value, or no `name`.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission.
    403 => Forbidden,
    /// The body is larger than the configured limit.
    413 => PayloadTooLarge,
    /// The body's media type is not JSON, URL-encoded form or multipart form data.
    415 => UnsupportedMediaType,
    /// The body breaks a rule: blank or overlong name, overlong tag, too many tags, overlong description.
    422 => UnprocessableEntity,
});
operation_errors!(UpdateListError, {
    /// The id or the body cannot be read.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission.
    403 => Forbidden,
    /// No list has this id.
    404 => NotFound,
    /// The body is larger than the configured limit.
    413 => PayloadTooLarge,
    /// The body's media type is not JSON, URL-encoded form or multipart form data.
    415 => UnsupportedMediaType,
    /// The body breaks a rule: blank or overlong name, overlong tag, too many tags, overlong description.
    422 => UnprocessableEntity,
});
operation_errors!(DeleteListError, {
    /// The id is not a positive integer.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission.
    403 => Forbidden,
    /// No list has this id.
    404 => NotFound,
});
operation_errors!(DeleteListsError, {
    /// An id is not a positive integer, or none of `id`, `query` and `all=true` was given.
    400 => BadRequest,
    /// Missing or invalid credentials, or no permission.
    403 => Forbidden,
});

fn list_response(list: crate::domain::List) -> Success<MailingListResponse> {
    Success(MailingListResponse {
        data: MailingList::from_domain(list),
        status: SuccessStatus::Success,
    })
}

/// A rule broken by a parameter: 400, not 422 (that is for bodies).
fn bad_request(err: ValidationError) -> ApiError {
    ApiError::bad_request(err.0)
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

fn default_page() -> i64 {
    1
}

fn default_per_page() -> PerPage {
    PerPage::Rows(DEFAULT_PER_PAGE)
}

fn default_order_by() -> ListOrderBy {
    ListOrderBy::CreatedAt
}

fn default_order() -> SortOrder {
    SortOrder(Direction::Desc)
}

/// The Lists API.
pub struct ListsApi {
    pub lists: ListService,
}

#[OpenApi(tag = "ApiTags::Lists")]
impl ListsApi {
    /// Retrieve lists
    ///
    /// Lists matching every given filter, sorted over the whole result (ties broken by `id`), one page at a time.
    /// `total` counts every match on every page.
    ///
    /// Lists with `status: archived` are hidden from list selectors in campaigns, public subscription forms, and
    /// roles by default. They can only be viewed by filtering with `status=archived` or by viewing all lists
    /// without a status filter.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/api/lists", method = "get", operation_id = "getLists")]
    async fn get_lists(
        &self,
        auth: ApiAuth,
        /// Words to find in list names: case-insensitive, every word must occur, all characters literal
        /// (`%` and `_` are not wildcards). At most 1,000 characters and 32 different words.
        #[oai(validator(max_length = 1000))]
        query: Query<Option<String>>,
        /// Only lists with this status. Defaults to showing all lists.
        status: Query<Option<ListStatus>>,
        /// Only lists of this type.
        #[oai(name = "type")]
        list_type: Query<Option<ListType>>,
        /// Only lists with this opt-in.
        optin: Query<Option<ListOptin>>,
        /// Only lists carrying every given tag (normalised like stored tags, then exact). Repeat for several
        /// tags, at most 100: `tag=a&tag=b`.
        #[oai(validator(max_items = 100))]
        tag: Query<Option<Vec<FilterTag>>>,
        /// Sort field.
        #[oai(default = "default_order_by")]
        order_by: Query<ListOrderBy>,
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
        /// If true, returns lists without subscriber counts (faster).
        #[oai(default)]
        minimal: Query<bool>,
        req: &poem::Request,
    ) -> Result<Answer<MailingListPageResponse>, GetListsError> {
        let per_page = match per_page.0 {
            PerPage::Rows(rows) => Some(rows),
            PerPage::All => None,
        };
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
            pagination: Pagination::new(u64::try_from(page.0).unwrap_or(0), per_page)
                .map_err(bad_request)?,
        };
        let head = |results, total: u64| MailingListPageResponse {
            data: MailingListPage {
                results,
                total: i64::try_from(total).unwrap_or(i64::MAX),
                // Bounded by PAGE_MAX, so the conversion cannot fail.
                per_page: i64::try_from(per_page.unwrap_or(0)).unwrap_or(i64::MAX),
                page: page.0,
            },
            status: SuccessStatus::Success,
        };
        if per_page.is_none_or(|rows| rows > STREAMED_ABOVE) {
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

    /// Retrieve public lists
    ///
    /// The name and UUID of every list with `type: public` and `status: active`, oldest first, to build a
    /// subscription form. Needs no authentication. Unlike every other operation, the response is a bare JSON
    /// array, not wrapped in `data`.
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

    /// Retrieve a specific list
    #[oai(
        path = "/api/lists/:list_id",
        method = "get",
        operation_id = "getListById"
    )]
    async fn get_list(
        &self,
        auth: ApiAuth,
        /// ID of the list to retrieve.
        list_id: Path<ListId>,
    ) -> Result<Success<MailingListResponse>, GetListError> {
        let list = self.lists.get(auth.principal(), list_id.0.0).await?;
        Ok(list_response(list))
    }

    /// Create a new list
    ///
    /// Only `name` is required. The response carries the new list, including its id and UUID.
    #[oai(path = "/api/lists", method = "post", operation_id = "createList")]
    async fn create_list(
        &self,
        auth: ApiAuth,
        body: CreateListBody,
    ) -> Result<Success<MailingListResponse>, CreateListError> {
        let new = NewList::try_from(ListFields::from(body.into_inner()))?;
        let list = self.lists.create(auth.principal(), new).await?;
        Ok(list_response(list))
    }

    /// Update a list
    ///
    /// A partial update: fields left out keep their value; fields sent are set. `updated_at` changes only when
    /// a value does.
    #[oai(
        path = "/api/lists/:list_id",
        method = "put",
        operation_id = "updateList"
    )]
    async fn update_list(
        &self,
        auth: ApiAuth,
        /// ID of the list to update.
        list_id: Path<ListId>,
        body: UpdateListBody,
    ) -> Result<Success<MailingListResponse>, UpdateListError> {
        let patch = ListPatch::try_from(ListFields::from(body.into_inner()))?;
        let list = self
            .lists
            .update(auth.principal(), list_id.0.0, patch)
            .await?;
        Ok(list_response(list))
    }

    /// Delete a list
    #[oai(
        path = "/api/lists/:list_id",
        method = "delete",
        operation_id = "deleteListById"
    )]
    async fn delete_list(
        &self,
        auth: ApiAuth,
        /// ID of the list to delete.
        list_id: Path<ListId>,
    ) -> Result<Success<BooleanResponse>, DeleteListError> {
        self.lists.delete(auth.principal(), list_id.0.0).await?;
        Ok(Success(BooleanResponse::yes()))
    }

    /// Delete multiple lists
    ///
    /// Deletes lists by id (`id=10&id=11`), by name search (`query`, matched as in `GET /api/lists`) or all of
    /// them (`all=true`); `id` wins over `query`, and `query` over `all`. Ids that do not exist are ignored.
    /// Users can only delete lists they have manage permission for; lists matched by `query` that the user
    /// may not manage are ignored. Everything is deleted in one transaction.
    #[oai(path = "/api/lists", method = "delete", operation_id = "deleteLists")]
    async fn delete_lists(
        &self,
        auth: ApiAuth,
        /// One or more list IDs to delete, at most 1,000. Required if `query` and `all` are not given.
        #[oai(validator(max_items = 1000))]
        id: Query<Option<Vec<ListId>>>,
        /// Search query selecting the lists to delete (same matching as the GET `query`). Required if `id` and
        /// `all` are not given.
        #[oai(validator(max_length = 1000))]
        query: Query<Option<String>>,
        /// Set to `true` to delete every list the caller may manage.
        #[oai(default)]
        all: Query<bool>,
    ) -> Result<Success<BooleanResponse>, DeleteListsError> {
        let selector = delete_selector(id.0, query.0, all.0)?;
        self.lists.delete_many(auth.principal(), &selector).await?;
        Ok(Success(BooleanResponse::yes()))
    }
}
