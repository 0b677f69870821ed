//! Reduces an OpenAPI 3.0 document to what it *means* to a client — operations, parameters, bodies, responses,
//! headers, security, with every `$ref` resolved and every default made explicit — and lists the differences
//! between two such reductions. Prose (summaries, descriptions, examples, titles) and schema names do not count.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// An OpenAPI document.
pub struct Spec {
    root: Value,
}

impl Spec {
    pub fn from_yaml(text: &str) -> Self {
        Self {
            root: serde_yaml::from_str(text).expect("valid YAML"),
        }
    }

    pub fn from_json(text: &str) -> Self {
        Self {
            root: serde_json::from_str(text).expect("valid JSON"),
        }
    }

    pub fn from_value(root: Value) -> Self {
        Self { root }
    }

    /// Follows `$ref`s until a concrete object is reached.
    fn deref<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        let mut hops = 0;
        while let Some(target) = value.get("$ref").and_then(Value::as_str) {
            let pointer = target
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local $refs are supported: {target}"));
            value = self
                .root
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {target}"));
            hops += 1;
            assert!(hops < 64, "$ref cycle at {target}");
        }
        value
    }

    /// The meaning of the whole document.
    pub fn canonical(&self) -> Value {
        let mut operations = Map::new();
        let global_security = self.root.get("security");
        if let Some(paths) = self.root.get("paths").and_then(Value::as_object) {
            for (path, item) in paths {
                let item = self.deref(item);
                let shared_params = item.get("parameters");
                for method in METHODS {
                    if let Some(op) = item.get(method) {
                        let key = format!("{} {path}", method.to_uppercase());
                        operations.insert(key, self.operation(op, shared_params, global_security));
                    }
                }
            }
        }
        let mut schemes = Map::new();
        if let Some(found) = self
            .root
            .pointer("/components/securitySchemes")
            .and_then(Value::as_object)
        {
            for (name, scheme) in found {
                let scheme = self.deref(scheme);
                let mut kept = Map::new();
                for key in ["type", "scheme", "name", "in", "bearerFormat"] {
                    if let Some(v) = scheme.get(key) {
                        let v = if key == "scheme" {
                            json!(v.as_str().unwrap_or_default().to_lowercase())
                        } else {
                            v.clone()
                        };
                        kept.insert(key.into(), v);
                    }
                }
                schemes.insert(name.clone(), Value::Object(kept));
            }
        }
        let servers: Vec<Value> = self
            .root
            .get("servers")
            .and_then(Value::as_array)
            .map(|s| s.iter().map(|s| s["url"].clone()).collect())
            .unwrap_or_default();
        json!({
            "servers": servers,
            "operations": operations,
            "securitySchemes": schemes,
        })
    }

    fn operation(
        &self,
        op: &Value,
        shared: Option<&Value>,
        global_security: Option<&Value>,
    ) -> Value {
        let mut params = Map::new();
        for source in [shared, op.get("parameters")].into_iter().flatten() {
            for param in source.as_array().into_iter().flatten() {
                let param = self.deref(param);
                let location = param["in"].as_str().unwrap_or_default();
                let name = param["name"].as_str().unwrap_or_default();
                let mut name = name.to_owned();
                if location == "header" {
                    name = name.to_lowercase();
                }
                params.insert(format!("{location}:{name}"), self.parameter(param));
            }
        }
        let request = op.get("requestBody").map(|body| {
            let body = self.deref(body);
            json!({
                "required": body.get("required").and_then(Value::as_bool).unwrap_or(false),
                "content": self.content(body.get("content")),
            })
        });
        let mut responses = Map::new();
        for (status, response) in op
            .get("responses")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let response = self.deref(response);
            let mut headers = Map::new();
            for (name, header) in response
                .get("headers")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let header = self.deref(header);
                headers.insert(
                    name.to_lowercase(),
                    json!({
                        "required": header.get("required").and_then(Value::as_bool).unwrap_or(false),
                        "schema": self.schema(header.get("schema").unwrap_or(&Value::Null)),
                    }),
                );
            }
            responses.insert(
                status.clone(),
                json!({
                    "content": self.content(response.get("content")),
                    "headers": headers,
                }),
            );
        }
        let security = op.get("security").or(global_security);
        json!({
            "operationId": op.get("operationId").cloned().unwrap_or(Value::Null),
            "parameters": params,
            "requestBody": request.unwrap_or(Value::Null),
            "responses": responses,
            "security": canonical_security(security),
        })
    }

    fn parameter(&self, param: &Value) -> Value {
        let location = param["in"].as_str().unwrap_or_default();
        let schema = self.schema(param.get("schema").unwrap_or(&Value::Null));
        let mut out = json!({
            "required": param.get("required").and_then(Value::as_bool).unwrap_or(false),
            "schema": schema,
        });
        // Style and explode only change the wire form of arrays and objects.
        let structured = matches!(
            schema.get("type").and_then(Value::as_str),
            Some("array" | "object")
        );
        if structured {
            let default_style = if matches!(location, "query" | "cookie") {
                "form"
            } else {
                "simple"
            };
            let style = param
                .get("style")
                .and_then(Value::as_str)
                .unwrap_or(default_style);
            let explode = param
                .get("explode")
                .and_then(Value::as_bool)
                .unwrap_or(style == "form");
            out["style"] = json!(style);
            out["explode"] = json!(explode);
        }
        out
    }

    fn content(&self, content: Option<&Value>) -> Value {
        let mut out = Map::new();
        for (media_type, media) in content.and_then(Value::as_object).into_iter().flatten() {
            let essence = media_type
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_lowercase();
            out.insert(
                essence,
                self.schema(media.get("schema").unwrap_or(&Value::Null)),
            );
        }
        Value::Object(out)
    }

    /// The meaning of a schema: constraints kept, prose dropped, `$ref` and single-purpose `allOf` flattened.
    pub fn schema(&self, schema: &Value) -> Value {
        self.schema_at(schema, 0)
    }

    fn schema_at(&self, schema: &Value, depth: usize) -> Value {
        assert!(depth < 64, "schema nesting too deep (cycle?)");
        let schema = self.deref(schema);
        let Some(object) = schema.as_object() else {
            return schema.clone();
        };
        let mut out = Map::new();
        if let Some(members) = object.get("allOf").and_then(Value::as_array) {
            for member in members {
                if let Value::Object(merged) = self.schema_at(member, depth + 1) {
                    out.extend(merged);
                }
            }
        }
        for (key, value) in object {
            let kept = match key.as_str() {
                "type" | "format" | "pattern" | "uniqueItems" | "default" => value.clone(),
                "minLength" | "maxLength" | "minimum" | "maximum" | "multipleOf" | "minItems"
                | "maxItems" | "minProperties" | "maxProperties" => number(value),
                "exclusiveMinimum" | "exclusiveMaximum" | "readOnly" | "writeOnly" | "nullable"
                | "deprecated" => {
                    if value.as_bool() == Some(true) {
                        value.clone()
                    } else {
                        continue;
                    }
                }
                "enum" => {
                    let set: BTreeSet<String> = value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(Value::to_string)
                        .collect();
                    json!(set)
                }
                "required" => {
                    let set: BTreeSet<&str> = value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    json!(set)
                }
                "items" | "not" => self.schema_at(value, depth + 1),
                // `true` and the empty schema `{}` both allow any value.
                "additionalProperties" => match value {
                    Value::Bool(true) => json!({}),
                    Value::Bool(_) => value.clone(),
                    other => self.schema_at(other, depth + 1),
                },
                "properties" => Value::Object(
                    value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(name, s)| (name.clone(), self.schema_at(s, depth + 1)))
                        .collect(),
                ),
                "oneOf" | "anyOf" => Value::Array(
                    value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|s| self.schema_at(s, depth + 1))
                        .collect(),
                ),
                _ => continue,
            };
            out.insert(key.clone(), kept);
        }
        Value::Object(out)
    }
}

fn number(value: &Value) -> Value {
    value
        .as_f64()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
        .unwrap_or_else(|| value.clone())
}

fn canonical_security(security: Option<&Value>) -> Value {
    let mut alternatives: BTreeSet<Vec<String>> = BTreeSet::new();
    for requirement in security.and_then(Value::as_array).into_iter().flatten() {
        let mut names: Vec<String> = requirement
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        alternatives.insert(names);
    }
    json!(alternatives)
}

/// Every place where `left` and `right` differ, as readable lines.
pub fn differences(left_name: &str, left: &Value, right_name: &str, right: &Value) -> Vec<String> {
    let mut out = Vec::new();
    diff(&mut out, "", left_name, left, right_name, right);
    out
}

fn diff(out: &mut Vec<String>, at: &str, ln: &str, left: &Value, rn: &str, right: &Value) {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let keys: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
            for key in keys {
                let here = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at} › {key}")
                };
                match (l.get(key), r.get(key)) {
                    (Some(a), Some(b)) => diff(out, &here, ln, a, rn, b),
                    (Some(a), None) => out.push(format!("{here}: only in {ln} ({})", short(a))),
                    (None, Some(b)) => out.push(format!("{here}: only in {rn} ({})", short(b))),
                    (None, None) => unreachable!(),
                }
            }
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => {
            for (i, (a, b)) in l.iter().zip(r).enumerate() {
                diff(out, &format!("{at}[{i}]"), ln, a, rn, b);
            }
        }
        _ if left == right => {}
        _ => out.push(format!(
            "{at}: {ln} has {}, {rn} has {}",
            short(left),
            short(right)
        )),
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 160 {
        format!("{}…", &text[..text.floor_char_boundary(160)])
    } else {
        text
    }
}
