//! The SDK story, told with the Rust client generated from openapi.yaml (sdks/rust, crate `roster-client`).
//!
//! Usage: roster-sdk-story [BASE_URL [ADMIN_PASSWORD]]
//!        (or ROSTER_BASE_URL, ROSTER_ADMIN_PASSWORD, ROSTER_ADMIN_USERNAME; defaults http://127.0.0.1:9000, admin)
//!
//! Two parts: the lists story, then the subscribers story (lists' subscriber counts, paging a list's subscribers,
//! bulk list changes, public subscription, blocklisting, deleting, typed errors and the `query` expression).
//!
//! Every list it creates carries a tag unique to this run, every subscriber's e-mail contains it, and every query
//! filters on them, so the story can share a Roster with other stories and leaves nothing behind. Any mismatch
//! panics and exits non-zero.

use std::collections::HashMap;
use std::fmt::Debug;
use std::time::{SystemTime, UNIX_EPOCH};

use roster_client::apis::configuration::Configuration;
use roster_client::apis::lists_api::{self, GetListByIdError, GetListsError};
use roster_client::apis::subscribers_api::{self, GetSubscriberByIdError, GetSubscribersError};
use roster_client::apis::{health_api, Error, ResponseContent};
use roster_client::models::{
    ErrorResponse, ListOptin, ListOrderBy, ListStatus, ListType, MailingList, MailingListCreate,
    MailingListPageResponse, MailingListUpdate, MembershipAction, PublicSubscriptionJson, Subscriber,
    SubscriberCreate, SubscriberIds, SubscriberListsUpdate, SubscriberOrderBy, SubscriberPage, SubscriberPatch,
    SubscriberStatus, SubscriberUpdate, SubscriptionStatus, SuccessStatus,
};
use serde_json::{json, Value};

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
    *lists_api::create_list(config, body, None).await.expect("POST /api/lists").data
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
    let fetched = lists_api::get_list_by_id(&admin, alpha.id, None).await.expect("GET /api/lists/{id}");
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
    let updated = *lists_api::update_list(&admin, alpha.id, change, None, None).await.expect("PUT /api/lists/{id}").data;
    assert_eq!((updated.id, updated.uuid, updated.created_at), (alpha.id, alpha.uuid, alpha.created_at), "identity");
    assert_eq!(updated.name, format!("{run} Alpha renamed"), "updated name");
    assert_eq!(updated.r#type, ListType::Private, "updated type");
    assert_eq!(
        (updated.optin, updated.status, &updated.tags, &updated.description),
        (alpha.optin, alpha.status, &alpha.tags, &alpha.description),
        "fields left out keep their value"
    );
    assert!(updated.updated_at > alpha.updated_at, "updated_at moves forward on a change");
    let again = lists_api::get_list_by_id(&admin, alpha.id, None).await.expect("GET after PUT");
    assert_eq!(*again.data, updated, "GET after PUT");
    let clear = MailingListUpdate { tags: tags(&[run]), description: Some(String::new()), ..MailingListUpdate::new() };
    let cleared = *lists_api::update_list(&admin, alpha.id, clear, None, None).await.expect("PUT tags and description").data;
    assert_eq!(
        (cleared.tags, cleared.description.as_str(), cleared.name.as_str()),
        (tags(&[run]).unwrap(), "", updated.name.as_str()),
        "set tags, clear description"
    );
    assert_eq!(public_lists(&anonymous, run).await, vec![], "a private list leaves the public lists");
    step(&format!("updated list {} partially", alpha.id));

    // --- delete one, then several ------------------------------------------------------------------------------
    let one = lists_api::delete_list_by_id(&admin, delta.id, None, None).await.expect("DELETE /api/lists/{id}");
    assert!(one.data, "DELETE /api/lists/{{id}}");
    let several =
        lists_api::delete_lists(&admin, Some(vec![beta.id, gamma.id]), None, None, None).await.expect("DELETE /api/lists?id=..");
    assert!(several.data, "DELETE /api/lists?id=..&id=..");
    let left = filtered(&admin, Filters { tags: vec![run], ..Default::default() }).await;
    assert_eq!(left, (1, vec![alpha.id]), "lists left after deleting");
    step(&format!("deleted {}, then {} and {}", delta.id, beta.id, gamma.id));

    // --- a deleted id: 404 as the client's typed error ----------------------------------------------------------
    for gone in [delta.id, beta.id] {
        match lists_api::get_list_by_id(&admin, gone, None).await {
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

    lists_api::delete_list_by_id(&admin, alpha.id, None, None).await.expect("clean-up");
    assert_eq!(filtered(&admin, Filters { tags: vec![run], ..Default::default() }).await.0, 0, "clean-up");
    step("lists story passed");

    subscriber_story(&admin, &anonymous, run).await;
    println!("[rust] story passed");
}

// --- the subscribers story -----------------------------------------------------------------------------------------

/// A JSON object literal as the generated models carry free-form objects.
fn object(value: Value) -> HashMap<String, Value> {
    serde_json::from_value(value).expect("a JSON object")
}

/// (subscriber_count, subscriber_statuses) of a list, as GET /api/lists/{id} reports them.
async fn counts(config: &Configuration, list_id: i64) -> (Option<i64>, Option<HashMap<String, i64>>) {
    let item = lists_api::get_list_by_id(config, list_id, None).await.expect("GET /api/lists/{id}").data;
    (item.subscriber_count, item.subscriber_statuses)
}

/// The expected (subscriber_count, subscriber_statuses).
fn expected(count: i64, statuses: &[(&str, i64)]) -> (Option<i64>, Option<HashMap<String, i64>>) {
    (Some(count), Some(statuses.iter().map(|(status, n)| (status.to_string(), *n)).collect()))
}

/// The parameters of GET /api/subscribers (the generated function takes every parameter positionally).
#[derive(Default)]
struct SubscriberFilters<'a> {
    search: Option<&'a str>,
    query: Option<&'a str>,
    list_ids: Option<Vec<i64>>,
    subscription_status: Option<SubscriptionStatus>,
    status: Option<SubscriberStatus>,
    page: Option<i64>,
    per_page: Option<&'a str>,
    after: Option<&'a str>,
}

async fn get_subscribers(config: &Configuration, f: SubscriberFilters<'_>) -> Result<SubscriberPage, Error<GetSubscribersError>> {
    let page = subscribers_api::get_subscribers(
        config,
        f.search,
        f.query,
        f.list_ids,
        f.subscription_status,
        f.status,
        Some(SubscriberOrderBy::Id),
        Some("asc"),
        f.page,
        f.per_page,
        f.after,
    )
    .await?;
    Ok(*page.data)
}

fn subscriber_ids(page: &SubscriberPage) -> Vec<i64> {
    page.results.iter().map(|item| item.id).collect()
}

fn memberships(subscriber: &Subscriber) -> Vec<(i64, SubscriptionStatus)> {
    subscriber.lists.iter().map(|entry| (entry.id, entry.subscription_status)).collect()
}

/// A call that must fail with the client's typed error: its status and the message of its ErrorResponse body.
fn expect_error<T: Debug, E: Debug>(result: Result<T, Error<E>>, what: &str) -> (u16, String) {
    match result {
        Err(Error::ResponseError(ResponseContent { status, content, entity })) => {
            assert!(entity.is_some(), "{what}: the error body is read into the typed entity");
            let body: ErrorResponse = serde_json::from_str(&content).expect("the error body is an ErrorResponse");
            (status.as_u16(), body.message)
        }
        other => panic!("{what}: expected a ResponseError, got {other:?}"),
    }
}

async fn create_subscriber(config: &Configuration, body: SubscriberCreate) -> Subscriber {
    *subscribers_api::create_subscriber(config, body, None).await.expect("POST /api/subscribers").data
}

async fn get_subscriber(config: &Configuration, id: i64) -> Subscriber {
    *subscribers_api::get_subscriber_by_id(config, id, None).await.expect("GET /api/subscribers/{id}").data
}

async fn subscriber_story(admin: &Configuration, anonymous: &Configuration, run: &str) {
    // --- two lists: `one` public with double opt-in (for the public form), `two` private -----------------------
    let one = create(admin, MailingListCreate {
        r#type: Some(ListType::Public),
        optin: Some(ListOptin::Double),
        tags: tags(&[run]),
        ..MailingListCreate::new(format!("{run} Subscribers one"))
    })
    .await;
    let two = create(admin, MailingListCreate {
        r#type: Some(ListType::Private),
        tags: tags(&[run]),
        ..MailingListCreate::new(format!("{run} Subscribers two"))
    })
    .await;
    for item in [&one, &two] {
        assert_eq!((item.subscriber_count, item.subscriber_statuses.clone()), expected(0, &[]), "a new list");
    }
    step(&format!("created lists {} (public, double opt-in) and {} (private)", one.id, two.id));

    // --- create: the e-mail is trimmed and lowercased, attribs are a free-form object ---------------------------
    let attribs = object(json!({
        "city": "Bengaluru",
        "projects": 3,
        "vip": true,
        "ratio": 0.5,
        "address": {"zip": "560001", "lines": ["1 Main St", 2, null]},
    }));
    let ann = create_subscriber(admin, SubscriberCreate {
        name: Some(format!("Ann {run}")),
        status: Some(SubscriberStatus::Enabled),
        lists: Some(vec![one.id]),
        attribs: Some(attribs.clone()),
        ..SubscriberCreate::new(format!("  {}-Ann@Example.COM ", run.to_uppercase()))
    })
    .await;
    assert_eq!(
        (ann.email.as_str(), ann.name.as_str(), ann.status),
        (format!("{run}-ann@example.com").as_str(), format!("Ann {run}").as_str(), SubscriberStatus::Enabled),
        "ann"
    );
    assert_eq!(ann.attribs, attribs, "attribs round-trip");
    assert!(ann.id >= 1, "subscriber id {} is positive", ann.id);
    assert_eq!(ann.uuid.get_version_num(), 4, "v4 uuid");
    assert_eq!(ann.created_at.offset().local_minus_utc(), 0, "created_at is UTC");
    assert_eq!(memberships(&ann), vec![(one.id, SubscriptionStatus::Unconfirmed)], "a new subscription");
    let membership = &ann.lists[0];
    assert_eq!(membership.subscription_meta, HashMap::new(), "subscription_meta");
    assert_eq!(
        (membership.uuid, &membership.name, membership.r#type, membership.optin, &membership.tags),
        (one.uuid, &one.name, one.r#type, one.optin, &one.tags),
        "the subscription carries the list's fields"
    );
    assert_eq!(membership.subscription_created_at.offset().local_minus_utc(), 0, "subscription_created_at is UTC");
    assert_eq!(counts(admin, one.id).await, expected(1, &[("unconfirmed", 1)]), "list one after the first subscriber");
    assert_eq!(counts(admin, two.id).await, expected(0, &[]), "list two untouched");
    assert_eq!(get_subscriber(admin, ann.id).await, ann, "GET /api/subscribers/{{id}}");
    step(&format!("created subscriber {} on list {}: subscriber_count 0 -> 1, unconfirmed: 1", ann.id, one.id));

    // --- more subscribers: preconfirmed, name left out, and one on no list --------------------------------------
    let bob = create_subscriber(admin, SubscriberCreate {
        lists: Some(vec![one.id]),
        preconfirm_subscriptions: Some(true),
        ..SubscriberCreate::new(format!("{run}-bob@example.com"))
    })
    .await;
    assert_eq!(bob.name, format!("{run}-bob"), "a left-out name is the e-mail's local part");
    assert_eq!(memberships(&bob), vec![(one.id, SubscriptionStatus::Confirmed)], "preconfirmed");
    let on_list = |email: &str, name: &str, lists: Option<Vec<i64>>| SubscriberCreate {
        name: Some(name.to_owned()),
        lists,
        ..SubscriberCreate::new(format!("{run}-{email}"))
    };
    let cid = create_subscriber(admin, on_list("cid@example.com", "Cid", Some(vec![one.id]))).await;
    let dee = create_subscriber(admin, on_list("dee@example.com", "Dee", Some(vec![one.id]))).await;
    let eve = create_subscriber(admin, on_list("eve@example.com", "Eve", None)).await;
    assert_eq!((eve.lists.len(), eve.attribs.len()), (0, 0), "a subscriber on no list, without attribs");
    assert_eq!(
        counts(admin, one.id).await,
        expected(4, &[("unconfirmed", 3), ("confirmed", 1)]),
        "list one with four subscribers"
    );
    let duplicate = subscribers_api::create_subscriber(admin, SubscriberCreate::new(format!("{run}-ANN@example.com")), None).await;
    assert_eq!(expect_error(duplicate, "a duplicate e-mail").0, 409, "a duplicate e-mail (another case) is a 409");
    step(&format!(
        "created subscribers {}, {}, {} (list {}) and {} (no list); 409 on a duplicate",
        bob.id, cid.id, dee.id, one.id, eve.id
    ));

    // --- page the subscribers of list one: list_id, per_page (a string), page, total ------------------------------
    let page_of = |page: i64, per_page: &'static str, list_ids: Vec<i64>| SubscriberFilters {
        list_ids: Some(list_ids),
        page: Some(page),
        per_page: Some(per_page),
        ..Default::default()
    };
    let on_one = vec![ann.id, bob.id, cid.id, dee.id];
    let first = get_subscribers(admin, page_of(1, "3", vec![one.id])).await.expect("page 1");
    assert_eq!(
        (first.total, first.per_page, first.page, subscriber_ids(&first)),
        (4, 3, 1, on_one[..3].to_vec()),
        "list one, page 1 of 3 per page"
    );
    assert_eq!(first.results[0], ann, "a listed subscriber equals the created one");
    let second = get_subscribers(admin, page_of(2, "3", vec![one.id])).await.expect("page 2");
    assert_eq!(
        (second.total, second.per_page, second.page, subscriber_ids(&second)),
        (4, 3, 2, on_one[3..].to_vec()),
        "list one, page 2"
    );
    // The cursor of the full first page leads to the same second page.
    let next = first.next.clone().expect("a full page carries next");
    let after = get_subscribers(admin, SubscriberFilters { after: Some(&next), ..page_of(1, "3", vec![one.id]) })
        .await
        .expect("after=next");
    assert_eq!((after.total, subscriber_ids(&after)), (4, on_one[3..].to_vec()), "after=next");
    assert_eq!(after.next, None, "a short page has no next");
    let past = get_subscribers(admin, page_of(3, "3", vec![one.id])).await.expect("page 3");
    assert_eq!((past.total, subscriber_ids(&past)), (4, vec![]), "a page past the end keeps the total");
    let everything = get_subscribers(admin, page_of(1, "all", vec![one.id])).await.expect("per_page=all");
    assert_eq!((everything.total, everything.per_page, subscriber_ids(&everything)), (4, 0, on_one.clone()), "per_page=all");
    // Both ids must reach the server as `list_id=..&list_id=..`: list two is still empty, so the first alone
    // finds nobody, and `list_id=a,b` would be a 400.
    let either = get_subscribers(admin, page_of(1, "all", vec![two.id, one.id])).await.expect("list_id repeated");
    assert_eq!((either.total, subscriber_ids(&either)), (4, on_one.clone()), "list_id repeated (an empty list first)");
    let searched = get_subscribers(admin, SubscriberFilters { search: Some(run), per_page: Some("all"), ..Default::default() })
        .await
        .expect("search");
    let mut all_five = on_one.clone();
    all_five.push(eve.id);
    assert_eq!((subscriber_ids(&searched), searched.search.as_str()), (all_five, run), "search by the run tag");
    step(&format!("paged list {}'s subscribers: 3 + 1 of total 4, and per_page=all", one.id));

    // --- PUT /api/subscribers/lists: add all four to list two, confirmed ------------------------------------------
    let add = SubscriberListsUpdate {
        status: Some(SubscriptionStatus::Confirmed),
        ..SubscriberListsUpdate::new(on_one.clone(), MembershipAction::Add, vec![two.id])
    };
    let done = subscribers_api::manage_subscriber_lists(admin, add, None).await.expect("PUT /api/subscribers/lists");
    assert!(done.data, "PUT /api/subscribers/lists");
    assert_eq!(counts(admin, two.id).await, expected(4, &[("confirmed", 4)]), "list two after adding four");
    assert_eq!(
        counts(admin, one.id).await,
        expected(4, &[("unconfirmed", 3), ("confirmed", 1)]),
        "list one unchanged"
    );
    let both = get_subscribers(admin, page_of(1, "all", vec![one.id, two.id])).await.expect("list_id repeated");
    assert_eq!((both.total, subscriber_ids(&both)), (4, on_one.clone()), "list_id repeated: each subscriber once");
    let confirmed = get_subscribers(admin, SubscriberFilters {
        subscription_status: Some(SubscriptionStatus::Confirmed),
        ..page_of(1, "all", vec![two.id])
    })
    .await
    .expect("subscription_status=confirmed");
    assert_eq!(confirmed.total, 4, "list two, subscription_status=confirmed");
    let unconfirmed = get_subscribers(admin, SubscriberFilters {
        subscription_status: Some(SubscriptionStatus::Unconfirmed),
        ..page_of(1, "all", vec![one.id])
    })
    .await
    .expect("subscription_status=unconfirmed");
    assert_eq!(subscriber_ids(&unconfirmed), vec![ann.id, cid.id, dee.id], "list one, subscription_status=unconfirmed");
    assert_eq!(
        memberships(&get_subscriber(admin, ann.id).await),
        vec![(one.id, SubscriptionStatus::Unconfirmed), (two.id, SubscriptionStatus::Confirmed)],
        "ann's lists"
    );
    step(&format!("added {on_one:?} to list {}: its subscriber_count 0 -> 4, confirmed: 4", two.id));

    // --- public subscription, without credentials, by the public list's UUID --------------------------------------
    let request = PublicSubscriptionJson {
        name: Some("Pub".to_owned()),
        ..PublicSubscriptionJson::new(format!("{run}-pub@example.com"), vec![one.uuid])
    };
    let result = subscribers_api::create_public_subscription(anonymous, request, None).await.expect("POST /api/public/subscription");
    assert!(result.data.has_optin, "has_optin of a double opt-in list");
    assert_eq!(
        counts(admin, one.id).await,
        expected(5, &[("unconfirmed", 4), ("confirmed", 1)]),
        "list one after the public form"
    );
    let pub_search = format!("{run}-pub");
    let found = get_subscribers(admin, SubscriberFilters { search: Some(&pub_search), ..Default::default() })
        .await
        .expect("the public subscriber");
    assert_eq!(found.results.len(), 1, "the public subscriber exists");
    let public_one = found.results[0].clone();
    assert_eq!(memberships(&public_one), vec![(one.id, SubscriptionStatus::Unconfirmed)], "the public subscriber's lists");
    let private = PublicSubscriptionJson::new(format!("{run}-pub2@example.com"), vec![two.uuid]);
    let refused = subscribers_api::create_public_subscription(anonymous, private, None).await;
    assert_eq!(expect_error(refused, "a private list's UUID").0, 400, "a private list's UUID is a 400");
    assert_eq!(counts(admin, two.id).await, expected(4, &[("confirmed", 4)]), "a refused subscription changes nothing");
    // A known e-mail (in another case) only gains the subscriptions it lacks: none here, and the same answer.
    let again = PublicSubscriptionJson::new(format!("{run}-PUB@example.com"), vec![one.uuid]);
    let again = subscribers_api::create_public_subscription(anonymous, again, None).await.expect("subscribing again");
    assert!(again.data.has_optin, "has_optin, subscribing again");
    assert_eq!(
        counts(admin, one.id).await,
        expected(5, &[("unconfirmed", 4), ("confirmed", 1)]),
        "subscribing again changes nothing"
    );
    step(&format!("public subscription to list {} by UUID: has_optin true (list_uuids, then l); a private list's UUID is a 400", one.id));

    // --- PATCH (attribs merged, then null clears them) and PUT (lists is the exact set) -----------------------------
    let merge = SubscriberPatch {
        attribs: Some(Some(object(json!({"plan": "pro", "city": "Pune"})))),
        ..SubscriberPatch::new()
    };
    let patched = *subscribers_api::patch_subscriber(admin, ann.id, merge, None, None).await.expect("PATCH attribs").data;
    let mut merged = attribs.clone();
    merged.extend(object(json!({"plan": "pro", "city": "Pune"})));
    assert_eq!(patched.attribs, merged, "PATCH merges attribs");
    assert_eq!(
        (patched.name.as_str(), patched.lists.iter().map(|entry| entry.id).collect::<Vec<_>>()),
        (ann.name.as_str(), vec![one.id, two.id]),
        "PATCH leaves the rest"
    );
    // `Some(None)` is the explicit `"attribs": null` (serde_with's double option), `None` leaves the field out.
    let clear = SubscriberPatch { attribs: Some(None), ..SubscriberPatch::new() };
    let cleared = *subscribers_api::patch_subscriber(admin, ann.id, clear, None, None).await.expect("PATCH attribs: null").data;
    assert!(cleared.attribs.is_empty(), "PATCH with attribs: null clears them: {:?}", cleared.attribs);
    let replace = SubscriberUpdate {
        name: Some("Dee renamed".to_owned()),
        lists: Some(vec![one.id]),
        attribs: Some(object(json!({"k": "v"}))),
        ..SubscriberUpdate::new(dee.email.clone())
    };
    let replaced = *subscribers_api::update_subscriber(admin, dee.id, replace, None, None).await.expect("PUT /api/subscribers/{id}").data;
    assert_eq!(
        (replaced.name.as_str(), replaced.attribs.clone(), replaced.lists.iter().map(|entry| entry.id).collect::<Vec<_>>()),
        ("Dee renamed", object(json!({"k": "v"})), vec![one.id]),
        "PUT replaces"
    );
    assert_eq!(counts(admin, two.id).await, expected(3, &[("confirmed", 3)]), "list two after PUT left it out");
    step(&format!("patched {} (attribs merged, then null), replaced {} (off list {})", ann.id, dee.id, two.id));

    // --- blocklist: the subscriber's subscriptions become unsubscribed --------------------------------------------
    let blocked = subscribers_api::blocklist_subscriber_by_id(admin, cid.id, None).await.expect("blocklist one");
    assert!(blocked.data, "PUT /api/subscribers/{{id}}/blocklist");
    let blocked = get_subscriber(admin, cid.id).await;
    assert_eq!(blocked.status, SubscriberStatus::Blocklisted, "blocklisted status");
    assert_eq!(
        memberships(&blocked),
        vec![(one.id, SubscriptionStatus::Unsubscribed), (two.id, SubscriptionStatus::Unsubscribed)],
        "a blocklisted subscriber's subscriptions"
    );
    assert_eq!(
        counts(admin, one.id).await,
        expected(5, &[("unconfirmed", 3), ("confirmed", 1), ("unsubscribed", 1)]),
        "list one after blocklisting"
    );
    assert_eq!(
        counts(admin, two.id).await,
        expected(3, &[("confirmed", 2), ("unsubscribed", 1)]),
        "list two after blocklisting"
    );
    let bulk = subscribers_api::blocklist_subscribers(admin, SubscriberIds::new(vec![eve.id]), None).await.expect("bulk blocklist");
    assert!(bulk.data, "PUT /api/subscribers/blocklist");
    let blocklisted = get_subscribers(admin, SubscriberFilters {
        search: Some(run),
        status: Some(SubscriberStatus::Blocklisted),
        per_page: Some("all"),
        ..Default::default()
    })
    .await
    .expect("status=blocklisted");
    assert_eq!(subscriber_ids(&blocklisted), vec![cid.id, eve.id], "status=blocklisted");
    step(&format!("blocklisted {} (subscriptions unsubscribed, statuses moved) and {}", cid.id, eve.id));

    // --- delete one: the counts drop; a missing subscriber is a typed 404 -------------------------------------------
    let deleted = subscribers_api::delete_subscriber_by_id(admin, bob.id, None, None).await.expect("DELETE /api/subscribers/{id}");
    assert!(deleted.data, "DELETE /api/subscribers/{{id}}");
    assert_eq!(
        counts(admin, one.id).await,
        expected(4, &[("unconfirmed", 3), ("unsubscribed", 1)]),
        "list one after deleting bob"
    );
    assert_eq!(
        counts(admin, two.id).await,
        expected(2, &[("confirmed", 1), ("unsubscribed", 1)]),
        "list two after deleting bob"
    );
    match subscribers_api::get_subscriber_by_id(admin, bob.id, None).await {
        Err(Error::ResponseError(ResponseContent { status, content, entity })) => {
            assert_eq!(status.as_u16(), 404, "status of a deleted subscriber");
            let body: ErrorResponse = serde_json::from_str(&content).expect("the 404 body is an ErrorResponse");
            assert_eq!(body.message, "subscriber not found", "404 message");
            // As for lists: the untagged error enum fills its first variant whatever the status.
            let message = match entity {
                Some(
                    GetSubscriberByIdError::Status400(e)
                    | GetSubscriberByIdError::Status403(e)
                    | GetSubscriberByIdError::Status404(e)
                    | GetSubscriberByIdError::Status429(e)
                    | GetSubscriberByIdError::Status500(e)
                    | GetSubscriberByIdError::Status503(e),
                ) => e.message,
                other => panic!("the 404 body is not read as ErrorResponse: {other:?}"),
            };
            assert_eq!(message, "subscriber not found", "404 message in the typed entity");
        }
        other => panic!("GET /api/subscribers/{} after deleting it: expected a 404 ResponseError, got {other:?}", bob.id),
    }
    step(&format!("deleted {}: counts dropped; GET answers Error::ResponseError (404, 'subscriber not found')", bob.id));

    // --- listmonk's `query` expression -----------------------------------------------------------------------------
    let expression = format!("subscribers.email='{}'", ann.email);
    let queried = get_subscribers(admin, SubscriberFilters { query: Some(&expression), ..Default::default() })
        .await
        .unwrap_or_else(|e| panic!("GET /api/subscribers?query={expression}: {e:?}"));
    assert_eq!(
        (queried.total, subscriber_ids(&queried), queried.query.as_str()),
        (1, vec![ann.id], expression.as_str()),
        "query=subscribers.email='...'"
    );
    step(&format!("query={expression} found subscriber {}", ann.id));

    // --- clean-up: bulk delete, and the counts return to zero ---------------------------------------------------------
    let left = vec![ann.id, cid.id, dee.id, eve.id, public_one.id];
    let gone = subscribers_api::delete_subscribers(admin, left, None).await.expect("DELETE /api/subscribers?id=..");
    assert!(gone.data, "DELETE /api/subscribers?id=..");
    let rest = get_subscribers(admin, SubscriberFilters { search: Some(run), ..Default::default() }).await.expect("search");
    assert_eq!(rest.total, 0, "no subscriber of this run is left");
    assert_eq!(counts(admin, one.id).await, expected(0, &[]), "list one after deleting everyone");
    assert_eq!(counts(admin, two.id).await, expected(0, &[]), "list two after deleting everyone");
    lists_api::delete_lists(admin, Some(vec![one.id, two.id]), None, None, None).await.expect("delete the lists");
    assert_eq!(filtered(admin, Filters { tags: vec![run], ..Default::default() }).await.0, 0, "clean-up");
    step("subscribers story passed");
}
