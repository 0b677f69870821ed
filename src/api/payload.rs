//! A JSON response payload serialised straight from the value with serde, without the intermediate
//! `serde_json::Value` tree poem-openapi's own `Json` builds (see docs/benchmarks.md). The wire form is the same: the types derive `Serialize` field for field like their `ToJSON`, which
//! `tests::serde_and_to_json_agree_on_every_response_body` checks, and the schema comes from the type's `Type`
//! implementation as before.

use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::payload::Payload;
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::Serialize;

/// The content type of every JSON answer.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A `200` JSON body written with serde.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = JSON_CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        content_type.starts_with("application/json")
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

/// `value` as JSON bytes. Failing is unreachable with our types (no map has non-string keys): logged, and
/// answered by the caller like any internal error.
pub fn to_json<T: Serialize>(value: &T) -> Option<Vec<u8>> {
    serde_json::to_vec(value)
        .map_err(|err| tracing::error!(error = %err, "response serialisation failed"))
        .ok()
}

/// A `200` carrying `bytes` of JSON.
pub fn json_response(bytes: Vec<u8>) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, JSON_CONTENT_TYPE)
        .body(bytes)
}

impl<T: Type + Serialize + Send> IntoResponse for JsonBody<T> {
    fn into_response(self) -> Response {
        match to_json(&self.0) {
            Some(bytes) => json_response(bytes),
            None => Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header(header::CONTENT_TYPE, JSON_CONTENT_TYPE)
                .body(r#"{"message":"internal server error"}"#),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{TimeZone, Utc};
    use poem_openapi::types::ToJSON;
    use serde::Serialize;

    use crate::api::models::*;
    use crate::api::types::Timestamp;

    fn assert_agree<T: Serialize + ToJSON>(value: &T) {
        let via_serde = serde_json::to_string(value).unwrap();
        let via_poem = value.to_json().unwrap().to_string();
        assert_eq!(via_serde, via_poem);
    }

    fn list(minimal: bool) -> MailingList {
        MailingList {
            id: 7,
            created_at: Timestamp(Utc.with_ymd_and_hms(2020, 3, 7, 6, 31, 6).unwrap()),
            updated_at: Timestamp(
                Utc.timestamp_opt(1_700_000_000, 72_483_000)
                    .single()
                    .unwrap(),
            ),
            uuid: crate::api::types::WireUuid(uuid::Uuid::new_v4()),
            name: "Q&A <news> \"quoted\" \u{e9}\u{1F600}\t".into(),
            list_type: ListType::Public,
            optin: ListOptin::Double,
            status: ListStatus::Archived,
            tags: vec!["a&b".into(), "vip".into()],
            description: String::new(),
            subscriber_count: (!minimal).then_some(crate::api::types::Count(0)),
            subscriber_statuses: (!minimal)
                .then(|| BTreeMap::from([("confirmed".into(), crate::api::types::Count(2))])),
        }
    }

    #[test]
    fn serde_and_to_json_agree_on_every_response_body() {
        for minimal in [false, true] {
            assert_agree(&MailingListResponse {
                data: list(minimal),
                status: SuccessStatus::Success,
            });
            assert_agree(&MailingListPageResponse {
                data: MailingListPage {
                    results: vec![list(minimal), list(minimal)],
                    total: 2,
                    per_page: 0,
                    page: 1,
                },
                status: SuccessStatus::Success,
            });
        }
        assert_agree(&vec![PublicMailingList {
            uuid: crate::api::types::WireUuid(uuid::Uuid::new_v4()),
            name: "Public".into(),
        }]);
        assert_agree(&BooleanResponse::success(true));
        assert_agree(&ErrorResponse {
            message: "bad \u{0} input".into(),
        });
    }
}
