//! The SDK story, told with the Rust client generated from openapi.yaml (sdks/rust, crate `roster-client`).
//!
//! Usage: roster-sdk-story [BASE_URL [ADMIN_PASSWORD]]
//!        (or ROSTER_BASE_URL, ROSTER_ADMIN_PASSWORD, ROSTER_ADMIN_USERNAME; defaults http://127.0.0.1:9000, admin)
//!
//! Every list it creates carries a tag unique to this run, and every query filters on it, so the story can share
//! a Roster with other stories and leaves nothing behind. Any mismatch panics and exits non-zero.

use std::time::{SystemTime, UNIX_EPOCH};

use roster_client::apis::configuration::Configuration;
use roster_client::apis::lists_api::{self, GetListByIdError, GetListsError};
use roster_client::apis::{health_api, Error, ResponseContent};
use roster_client::models::{
    ErrorResponse, ListOptin, ListOrderBy, ListStatus, ListType, MailingList, MailingListCreate,
    MailingListPageResponse, MailingListUpdate, SuccessStatus,
};

fn step(text: &str) {
    println!("[rust] {text}");
}

fn ids(page: &MailingListPageResponse) -> Vec<i64> {
    page.data.results.iter().map(|item| item.id).collect()
}

/// The filters of GET /api/lists (the generated function takes every parameter positionally).
#[derive(Default)]
struct Filters<'a> {
    query: Option<&'a str>,
    status: Option<ListStatus>,
    r#type: Option<ListType>,
    optin: Option<ListOptin>,
    tags: Vec<&'a str>,
    order_by: Option<ListOrderBy>,
    order: Option<&'a str>,
    page: Option<i64>,
    per_page: Option<&'a str>,
    minimal: Option<bool>,
}

async fn get_lists(config: &Configuration, f: Filters<'_>) -> Result<MailingListPageResponse, Error<GetListsError>> {
    let tags = (!f.tags.is_empty()).then(|| f.tags.iter().map(|tag| tag.to_string()).collect());
    lists_api::get_lists(
        config, f.query, f.status, f.r#type, f.optin, tags, f.order_by, f.order, f.page, f.per_page, f.minimal,
    )
    .await
}

/// Every match of the filters, on one page, by id ascending: (total, ids).
async fn filtered(config: &Configuration, f: Filters<'_>) -> (i64, Vec<i64>) {
    let f = Filters { order_by: Some(ListOrderBy::Id), order: Some("asc"), per_page: Some("all"), ..f };
    let page = get_lists(config, f).await.expect("GET /api/lists with filters");
    (page.data.total, ids(&page))
}

/// One page of this run's lists, by id ascending.
async fn page_of(
    config: &Configuration,
    run: &str,
    page: i64,
    per_page: &str,
    minimal: Option<bool>,
) -> MailingListPageResponse {
    let f = Filters {
        tags: vec![run],
        order_by: Some(ListOrderBy::Id),
        order: Some("asc"),
        page: Some(page),
        per_page: Some(per_page),
        minimal,
        ..Default::default()
    };
    get_lists(config, f).await.unwrap_or_else(|e| panic!("GET /api/lists page={page} per_page={per_page}: {e:?}"))
}

/// This run's lists among the public ones, as (uuid, name).
async fn public_lists(config: &Configuration, run: &str) -> Vec<(String, String)> {
    let public = lists_api::get_public_lists(config).await.expect("GET /api/public/lists");
    public.into_iter().filter(|item| item.name.starts_with(run)).map(|item| (item.uuid.to_string(), item.name)).collect()
}

async fn create(config: &Configuration, body: MailingListCreate) -> MailingList {
    *lists_api::create_list(config, body).await.expect("POST /api/lists").data
}

fn tags(values: &[&str]) -> Option<Vec<String>> {
    Some(values.iter().map(|value| value.to_string()).collect())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let base_url = args
        .next()
        .or_else(|| std::env::var("ROSTER_BASE_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:9000".to_owned())
        .trim_end_matches('/')
        .to_owned();
    let password = args
        .next()
        .or_else(|| std::env::var("ROSTER_ADMIN_PASSWORD").ok())
        .expect("pass the admin password as the second argument or in ROSTER_ADMIN_PASSWORD");
    let username = std::env::var("ROSTER_ADMIN_USERNAME").unwrap_or_else(|_| "admin".to_owned());
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
    let run = format!("rs-{:08x}", nanos ^ std::process::id().rotate_left(16));
    let run = run.as_str();
    step(&format!("against {base_url}, run tag {run}"));

    let anonymous = Configuration { base_path: base_url.clone(), ..Configuration::new() };
    let admin = Configuration { basic_auth: Some((username, Some(password))), ..anonymous.clone() };

    let health = health_api::get_health(&admin).await.expect("GET /api/health");
    assert!(health.data, "GET /api/health data");

    // --- create: four lists of different types, opt-ins and statuses -------------------------------------------
    let alpha = create(&admin, MailingListCreate {
        r#type: Some(ListType::Public),
        optin: Some(ListOptin::Double),
        status: Some(ListStatus::Active),
        tags: tags(&[run, "news", "weekly"]),
        description: Some("Alpha description".to_owned()),
        ..MailingListCreate::new(format!("{run} Alpha news"))
    })
    .await;
    let beta = create(&admin, MailingListCreate {
        r#type: Some(ListType::Public),
        optin: Some(ListOptin::Single),
        status: Some(ListStatus::Archived),
        tags: tags(&[run, "news"]),
        ..MailingListCreate::new(format!("{run} Beta news"))
    })
    .await;
    // Leading and trailing blanks: the server trims names.
    let gamma = create(&admin, MailingListCreate {
        r#type: Some(ListType::Private),
        tags: tags(&[run, "weekly"]),
        ..MailingListCreate::new(format!("  {run} Gamma private  "))
    })
    .await;
    // Only the required name (plus the run tag): everything else takes the documented defaults.
    let delta = create(&admin, MailingListCreate { tags: tags(&[run]), ..MailingListCreate::new(format!("{run} Delta")) }).await;

    assert_eq!(alpha.name, format!("{run} Alpha news"));
    assert_eq!((alpha.r#type, alpha.optin, alpha.status), (ListType::Public, ListOptin::Double, ListStatus::Active));
    assert_eq!((alpha.tags.clone(), alpha.description.as_str()), (tags(&[run, "news", "weekly"]).unwrap(), "Alpha description"));
    assert_eq!((beta.r#type, beta.optin, beta.status), (ListType::Public, ListOptin::Single, ListStatus::Archived));
    assert_eq!(gamma.name, format!("{run} Gamma private"), "gamma name is trimmed");
    assert_eq!(
        (delta.r#type, delta.optin, delta.status, delta.tags.clone(), delta.description.as_str()),
        (ListType::Private, ListOptin::Single, ListStatus::Active, tags(&[run]).unwrap(), ""),
        "delta defaults"
    );
    for item in [&alpha, &beta, &gamma, &delta] {
        assert!(item.id >= 1, "id {} is positive", item.id);
        assert_eq!(item.uuid.get_version_num(), 4, "v4 uuid");
        // The server writes `2020-03-07T06:31:06.072483+00:00`; chrono keeps the offset and the microseconds.
        assert_eq!(item.created_at.offset().local_minus_utc(), 0, "created_at is UTC");
        assert_eq!(item.updated_at, item.created_at, "a new list's updated_at");
        assert_eq!(item.subscriber_count, Some(0));
        assert_eq!(item.subscriber_statuses, Some(Default::default()));
    }
    let created = vec![alpha.id, beta.id, gamma.id, delta.id];
    assert!(created.windows(2).all(|pair| pair[0] < pair[1]), "ids increase: {created:?}");
    step(&format!("created lists {created:?}"));

    // --- pagination: per_page as a number, past the end, and `all` --------------------------------------------
    let first = page_of(&admin, run, 1, "3", None).await;
    assert_eq!((first.data.total, first.data.per_page, first.data.page), (4, 3, 1), "page 1 of 3 per page");
    assert_eq!(ids(&first), created[..3], "page 1 contents");
    let second = page_of(&admin, run, 2, "3", None).await;
    assert_eq!((second.data.total, second.data.per_page, second.data.page), (4, 3, 2), "page 2 of 3 per page");
    assert_eq!(ids(&second), created[3..], "page 2 contents");
    let past = page_of(&admin, run, 3, "3", None).await;
    assert_eq!((past.data.total, ids(&past)), (4, vec![]), "a page past the end keeps the total");
    let everything = page_of(&admin, run, 1, "all", None).await;
    assert_eq!(
        (everything.data.total, everything.data.per_page, everything.data.page),
        (4, 0, 1),
        "per_page=all is reported as 0"
    );
    assert_eq!(ids(&everything), created, "per_page=all contents");
    assert_eq!(everything.data.results[0], alpha, "a listed list equals the created one");
    let descending = get_lists(&admin, Filters {
        tags: vec![run],
        order_by: Some(ListOrderBy::Id),
        order: Some("DESC"),
        per_page: Some("all"),
        ..Default::default()
    })
    .await
    .expect("order=DESC");
    assert_eq!(ids(&descending), created.iter().rev().copied().collect::<Vec<_>>(), "order=DESC");
    let by_name = get_lists(&admin, Filters {
        tags: vec![run],
        order_by: Some(ListOrderBy::Name),
        order: Some("asc"),
        per_page: Some("2"),
        ..Default::default()
    })
    .await
    .expect("order_by=name");
    assert_eq!((by_name.data.total, ids(&by_name)), (4, vec![alpha.id, beta.id]), "order_by=name, first page");
    let minimal = page_of(&admin, run, 1, "all", Some(true)).await;
    assert_eq!(ids(&minimal), created, "minimal=true contents");
    assert!(
        minimal.data.results.iter().all(|item| item.subscriber_count.is_none() && item.subscriber_statuses.is_none()),
        "minimal=true leaves out the subscriber fields"
    );
    step("paged with per_page=3 (pages 1, 2, 3) and per_page=all");

    // --- filters: repeated tags, query, status, type and optin ------------------------------------------------
    let news = filtered(&admin, Filters { tags: vec![run, "news"], ..Default::default() }).await;
    assert_eq!(news, (2, vec![alpha.id, beta.id]), "tag=run&tag=news");
    let both = filtered(&admin, Filters { tags: vec![run, "news", "weekly"], ..Default::default() }).await;
    assert_eq!(both, (1, vec![alpha.id]), "tag=run&tag=news&tag=weekly");
    let weekly = filtered(&admin, Filters { tags: vec![run, "weekly"], ..Default::default() }).await;
    assert_eq!(weekly, (2, vec![alpha.id, gamma.id]), "tag=run&tag=weekly");
    let upper = format!("{} GAMMA", run.to_uppercase());
    let query = filtered(&admin, Filters { query: Some(&upper), ..Default::default() }).await;
    assert_eq!(query, (1, vec![gamma.id]), "query is case-insensitive");
    let words = format!("news {run}");
    let query_words = filtered(&admin, Filters { query: Some(&words), tags: vec![run], ..Default::default() }).await;
    assert_eq!(query_words, (2, vec![alpha.id, beta.id]), "query words in any order, with a tag");
    let percent = format!("{run} %");
    let literal = filtered(&admin, Filters { query: Some(&percent), ..Default::default() }).await;
    assert_eq!(literal, (0, vec![]), "query `%` is literal");
    let archived = filtered(&admin, Filters { tags: vec![run], status: Some(ListStatus::Archived), ..Default::default() }).await;
    assert_eq!(archived, (1, vec![beta.id]), "status=archived");
    let public_double = filtered(&admin, Filters {
        tags: vec![run],
        r#type: Some(ListType::Public),
        optin: Some(ListOptin::Double),
        ..Default::default()
    })
    .await;
    assert_eq!(public_double, (1, vec![alpha.id]), "type=public&optin=double");
    step("filtered by tags, query, status, type and optin");

    // --- get one -----------------------------------------------------------------------------------------------
    let fetched = lists_api::get_list_by_id(&admin, alpha.id).await.expect("GET /api/lists/{id}");
    assert_eq!(fetched.status, SuccessStatus::Success, "envelope status");
    assert_eq!(*fetched.data, alpha, "GET /api/lists/{{id}}");

    // --- public lists, without credentials: a bare array of {uuid, name} ----------------------------------------
    assert_eq!(
        public_lists(&anonymous, run).await,
        vec![(alpha.uuid.to_string(), alpha.name.clone())],
        "public lists: only public and active ones"
    );
    match get_lists(&anonymous, Filters::default()).await {
        Err(Error::ResponseError(ResponseContent { status, .. })) => {
            assert_eq!(status.as_u16(), 403, "status without credentials")
        }
        other => panic!("GET /api/lists without credentials: expected a 403 ResponseError, got {other:?}"),
    }
    step("public lists (anonymous) and 403 without credentials");

    // --- update: partial -----------------------------------------------------------------------------------------
    let change = MailingListUpdate {
        name: Some(format!("{run} Alpha renamed")),
        r#type: Some(ListType::Private),
        ..MailingListUpdate::new()
    };
    let updated = *lists_api::update_list(&admin, alpha.id, change).await.expect("PUT /api/lists/{id}").data;
    assert_eq!((updated.id, updated.uuid, updated.created_at), (alpha.id, alpha.uuid, alpha.created_at), "identity");
    assert_eq!(updated.name, format!("{run} Alpha renamed"), "updated name");
    assert_eq!(updated.r#type, ListType::Private, "updated type");
    assert_eq!(
        (updated.optin, updated.status, &updated.tags, &updated.description),
        (alpha.optin, alpha.status, &alpha.tags, &alpha.description),
        "fields left out keep their value"
    );
    assert!(updated.updated_at > alpha.updated_at, "updated_at moves forward on a change");
    let again = lists_api::get_list_by_id(&admin, alpha.id).await.expect("GET after PUT");
    assert_eq!(*again.data, updated, "GET after PUT");
    let clear = MailingListUpdate { tags: tags(&[run]), description: Some(String::new()), ..MailingListUpdate::new() };
    let cleared = *lists_api::update_list(&admin, alpha.id, clear).await.expect("PUT tags and description").data;
    assert_eq!(
        (cleared.tags, cleared.description.as_str(), cleared.name.as_str()),
        (tags(&[run]).unwrap(), "", updated.name.as_str()),
        "set tags, clear description"
    );
    assert_eq!(public_lists(&anonymous, run).await, vec![], "a private list leaves the public lists");
    step(&format!("updated list {} partially", alpha.id));

    // --- delete one, then several ------------------------------------------------------------------------------
    let one = lists_api::delete_list_by_id(&admin, delta.id).await.expect("DELETE /api/lists/{id}");
    assert!(one.data, "DELETE /api/lists/{{id}}");
    let several =
        lists_api::delete_lists(&admin, Some(vec![beta.id, gamma.id]), None, None).await.expect("DELETE /api/lists?id=..");
    assert!(several.data, "DELETE /api/lists?id=..&id=..");
    let left = filtered(&admin, Filters { tags: vec![run], ..Default::default() }).await;
    assert_eq!(left, (1, vec![alpha.id]), "lists left after deleting");
    step(&format!("deleted {}, then {} and {}", delta.id, beta.id, gamma.id));

    // --- a deleted id: 404 as the client's typed error ----------------------------------------------------------
    for gone in [delta.id, beta.id] {
        match lists_api::get_list_by_id(&admin, gone).await {
            Err(Error::ResponseError(ResponseContent { status, content, entity })) => {
                assert_eq!(status.as_u16(), 404, "status of a deleted list");
                let body: ErrorResponse = serde_json::from_str(&content).expect("the 404 body is an ErrorResponse");
                assert_eq!(body.message, "list not found", "404 message");
                // The generated error enum is `#[serde(untagged)]` and every error status of this operation has the
                // same schema (ErrorResponse), so serde fills the FIRST variant (Status400) whatever the status:
                // `status` is what tells errors apart; the entity still carries the parsed body.
                let message = match entity {
                    Some(
                        GetListByIdError::Status400(e)
                        | GetListByIdError::Status403(e)
                        | GetListByIdError::Status404(e)
                        | GetListByIdError::Status500(e)
                        | GetListByIdError::Status503(e),
                    ) => e.message,
                    other => panic!("the 404 body is not read as ErrorResponse: {other:?}"),
                };
                assert_eq!(message, "list not found", "404 message in the typed entity");
            }
            other => panic!("GET /api/lists/{gone} after deleting it: expected a 404 ResponseError, got {other:?}"),
        }
    }
    step("a deleted id answers Error::ResponseError (status 404, message 'list not found')");

    lists_api::delete_list_by_id(&admin, alpha.id).await.expect("clean-up");
    assert_eq!(filtered(&admin, Filters { tags: vec![run], ..Default::default() }).await.0, 0, "clean-up");
    println!("[rust] story passed");
}
