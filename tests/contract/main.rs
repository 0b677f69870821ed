//! The contract test: the spec poem-openapi derives from the code and the hand-maintained `openapi.yaml` must mean
//! the same thing. The second half proves the comparison bites: each kind of change to a copy of the spec is
//! reported.

mod canonical;

use canonical::{Spec, differences};
use serde_json::{Value, json};

fn hand_maintained() -> Value {
    serde_yaml::from_str(roster::api::SPEC_YAML).expect("openapi.yaml is valid YAML")
}

fn compare(code: &Spec, spec: &Spec) -> Vec<String> {
    differences(
        "the code",
        &code.canonical(),
        "openapi.yaml",
        &spec.canonical(),
    )
}

#[test]
fn the_code_and_openapi_yaml_mean_the_same_thing() {
    let code = Spec::from_json(&roster::api::generated_spec());
    let spec = Spec::from_yaml(roster::api::SPEC_YAML);
    let found = compare(&code, &spec);
    assert!(
        found.is_empty(),
        "openapi.yaml and the code disagree ({} differences); change openapi.yaml first, then the code \
         (`roster openapi --generated` prints the code's spec):\n  - {}",
        found.len(),
        found.join("\n  - ")
    );
}

/// Where the code's spec carries prose, as `path: text`. Prose has one source, `openapi.yaml`: what poem-openapi
/// would derive from doc comments is never served, so the code carries none.
fn prose(value: &Value, path: &str, found: &mut Vec<String>) {
    // Iterative: the spec's depth is the code's, but a walk needs no recursion to be bounded.
    let mut pending = vec![(path.to_owned(), value)];
    while let Some((path, value)) = pending.pop() {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    let here = format!("{path} › {key}");
                    match (key.as_str(), item) {
                        // poem-openapi titles a schema with its name, which is not prose.
                        ("title", Value::String(text)) if path.ends_with(&format!("› {text}")) => {
                        }
                        ("summary" | "description" | "title", Value::String(text))
                            if !text.is_empty() =>
                        {
                            found.push(format!("{here}: {text}"));
                        }
                        _ => pending.push((here, item)),
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    pending.push((format!("{path} › {i}"), item));
                }
            }
            _ => {}
        }
    }
}

#[test]
fn the_code_carries_no_spec_prose_of_its_own() {
    let code: Value = serde_json::from_str(&roster::api::generated_spec()).unwrap();
    let mut found = Vec::new();
    for (key, part) in code.as_object().unwrap() {
        // The document's own head (title, version) is the one place both must name.
        if key != "info" {
            prose(part, key, &mut found);
        }
    }
    found.sort();
    assert!(
        found.is_empty(),
        "prose belongs in openapi.yaml only; remove these doc comments from the API code ({}):\n  - {}",
        found.len(),
        found.join("\n  - ")
    );
}

#[test]
fn every_operation_has_an_operation_id_and_documents_its_errors() {
    let canonical = Spec::from_yaml(roster::api::SPEC_YAML).canonical();
    for (key, op) in canonical["operations"].as_object().unwrap() {
        assert!(op["operationId"].is_string(), "{key} has no operationId");
        let responses = op["responses"].as_object().unwrap();
        assert!(responses.contains_key("200"), "{key}");
        // Any URL over 65,534 bytes gets the HTTP layer's 414, whatever the operation.
        assert!(responses.contains_key("414"), "{key} documents no 414");
        for (status, response) in responses {
            if status == "414" || status == "304" {
                // 414: answered by the HTTP layer before Roster reads the request. 304: HTTP forbids a body.
                assert_eq!(
                    response["content"],
                    json!({}),
                    "{key} {status} promises a body"
                );
            } else if status != "200" {
                let schema = &response["content"]["application/json"];
                assert_eq!(schema["required"], json!(["message"]), "{key} {status}");
            }
        }
        if !op["security"].as_array().unwrap().is_empty() {
            assert!(
                responses.contains_key("403"),
                "{key} needs credentials but documents no 403"
            );
        }
    }
}

/// Applies `change` to a copy of openapi.yaml and returns what the comparison reports.
fn report_after(change: impl FnOnce(&mut Value)) -> Vec<String> {
    let original = Spec::from_value(hand_maintained());
    let mut altered = hand_maintained();
    change(&mut altered);
    compare(&original, &Spec::from_value(altered))
}

fn assert_reported(what: &str, change: impl FnOnce(&mut Value), expected: &[&str]) {
    let found = report_after(change);
    assert!(!found.is_empty(), "{what}: no difference reported");
    let text = found.join("\n");
    for needle in expected {
        assert!(
            text.contains(needle),
            "{what}: expected `{needle}` in:\n{text}"
        );
    }
}

fn get_lists_param<'a>(spec: &'a mut Value, name: &str) -> &'a mut Value {
    spec["paths"]["/api/lists"]["get"]["parameters"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|p| p["name"] == name)
        .unwrap()
}

#[test]
fn the_comparison_reports_added_removed_and_renamed_operations() {
    assert_reported(
        "removed operation",
        |s| {
            s["paths"]["/health"].as_object_mut().unwrap().remove("get");
        },
        &["GET /health: only in the code"],
    );
    assert_reported(
        "added operation",
        |s| s["paths"]["/health"]["post"] = s["paths"]["/health"]["get"].clone(),
        &["POST /health: only in openapi.yaml"],
    );
    assert_reported(
        "operation id",
        |s| s["paths"]["/health"]["get"]["operationId"] = json!("alive"),
        &["GET /health › operationId"],
    );
}

#[test]
fn the_comparison_reports_every_kind_of_parameter_change() {
    let at = "GET /api/lists › parameters";
    assert_reported(
        "name",
        |s| get_lists_param(s, "minimal")["name"] = json!("minimum"),
        &[
            &format!("{at} › query:minimal: only in the code"),
            "query:minimum: only in openapi.yaml",
        ],
    );
    assert_reported(
        "location",
        |s| get_lists_param(s, "minimal")["in"] = json!("header"),
        &[
            "query:minimal: only in the code",
            "header:minimal: only in openapi.yaml",
        ],
    );
    assert_reported(
        "requiredness",
        |s| get_lists_param(s, "query")["required"] = json!(true),
        &[&format!("{at} › query:query › required")],
    );
    assert_reported(
        "type",
        |s| get_lists_param(s, "page")["schema"]["type"] = json!("string"),
        &["query:page › schema › type"],
    );
    assert_reported(
        "enum behind a $ref",
        |s| s["components"]["schemas"]["ListStatus"]["enum"] = json!(["active"]),
        &["query:status › schema › enum"],
    );
    assert_reported(
        "pattern",
        |s| get_lists_param(s, "per_page")["schema"]["pattern"] = json!("^[0-9]+$"),
        &["query:per_page › schema › pattern"],
    );
    assert_reported(
        "bounds",
        |s| get_lists_param(s, "page")["schema"]["maximum"] = json!(1000),
        &["query:page › schema › maximum"],
    );
    assert_reported(
        "style",
        |s| get_lists_param(s, "tag")["explode"] = json!(false),
        &["query:tag › explode"],
    );
    assert_reported(
        "path parameter shared by the path item",
        |s| s["components"]["schemas"]["ListId"]["minimum"] = json!(0),
        &["GET /api/lists/{list_id} › parameters › path:list_id › schema › minimum"],
    );
}

#[test]
fn the_comparison_reports_request_body_changes() {
    let body = "/paths/~1api~1lists/post/requestBody";
    assert_reported(
        "media type removed",
        |s| {
            s.pointer_mut(&format!("{body}/content"))
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove("multipart/form-data");
        },
        &["POST /api/lists › requestBody › content › multipart/form-data: only in the code"],
    );
    assert_reported(
        "schema field type",
        |s| s["components"]["schemas"]["ListDescription"]["type"] = json!("integer"),
        &["requestBody › content › application/json › properties › description › type"],
    );
    assert_reported(
        "required field",
        |s| s["components"]["schemas"]["MailingListCreate"]["required"] = json!([]),
        &["POST /api/lists › requestBody › content › application/json › required"],
    );
    assert_reported(
        "body requiredness",
        |s| *s.pointer_mut(&format!("{body}/required")).unwrap() = json!(false),
        &["POST /api/lists › requestBody › required"],
    );
}

#[test]
fn the_comparison_reports_response_changes() {
    assert_reported(
        "status removed",
        |s| {
            s["paths"]["/api/lists/{list_id}"]["get"]["responses"]
                .as_object_mut()
                .unwrap()
                .remove("404");
        },
        &["GET /api/lists/{list_id} › responses › 404: only in the code"],
    );
    assert_reported(
        "status added",
        |s| {
            s["paths"]["/api/lists"]["get"]["responses"]["404"] =
                json!({"$ref": "#/components/responses/ListNotFound"})
        },
        &["GET /api/lists › responses › 404: only in openapi.yaml"],
    );
    assert_reported(
        "media type",
        |s| {
            let ok = &mut s["paths"]["/api/public/lists"]["get"]["responses"]["200"]["content"];
            let media = ok
                .as_object_mut()
                .unwrap()
                .remove("application/json")
                .unwrap();
            ok["text/plain"] = media;
        },
        &["GET /api/public/lists › responses › 200 › content › application/json: only in the code"],
    );
    assert_reported(
        "header removed",
        |s| {
            s["components"]["responses"]["Unavailable"]
                .as_object_mut()
                .unwrap()
                .remove("headers");
        },
        &["responses › 503 › headers › retry-after: only in the code"],
    );
    assert_reported(
        "header schema",
        |s| s["components"]["headers"]["Retry-After"]["schema"]["type"] = json!("string"),
        &["responses › 503 › headers › retry-after › schema › type"],
    );
    assert_reported(
        "schema behind several $refs",
        |s| s["components"]["schemas"]["MailingList"]["properties"]["id"]["type"] = json!("string"),
        &[
            "GET /api/lists/{list_id} › responses › 200 › content › application/json › properties › data › properties › id › type",
        ],
    );
    assert_reported(
        "property removed",
        |s| {
            s["components"]["schemas"]["ErrorResponse"]["properties"]
                .as_object_mut()
                .unwrap()
                .remove("message");
        },
        &["› properties › message: only in the code"],
    );
}

#[test]
fn the_comparison_reports_security_changes() {
    assert_reported(
        "operation made public",
        |s| s["paths"]["/api/lists"]["get"]["security"] = json!([]),
        &["GET /api/lists › security"],
    );
    assert_reported(
        "global requirement dropped",
        |s| {
            s.as_object_mut().unwrap().remove("security");
        },
        &["GET /api/lists/{list_id} › security"],
    );
    assert_reported(
        "scheme changed",
        |s| s["components"]["securitySchemes"]["BasicAuth"]["scheme"] = json!("bearer"),
        &["securitySchemes › BasicAuth › scheme"],
    );
}

#[test]
fn prose_and_schema_names_do_not_count() {
    let found = report_after(|s| {
        s["info"]["description"] = json!("changed");
        s["paths"]["/api/lists"]["get"]["summary"] = json!("changed");
        get_lists_param(s, "query")["description"] = json!("changed");
        s["components"]["schemas"]["MailingList"]["description"] = json!("changed");
        s["components"]["schemas"]["ListId"]["example"] = json!(42);
    });
    assert!(found.is_empty(), "{found:#?}");
}
