//! The documents Roster serves besides the API: `openapi.yaml`, the same as JSON, and Swagger UI. Each is built
//! once at start-up and served as shared bytes (a response holds a reference, never a copy: the Swagger UI page
//! is 1.6 MB, and slow readers must not multiply it), with an `ETag` for revalidation and security headers.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Body, Endpoint, Request, Response};
use sha2::{Digest, Sha256};

/// The hand-maintained contract, compiled in: it is what `/openapi.yaml`, `/openapi.json` and Swagger UI serve.
pub const SPEC_YAML: &str = include_str!("../../openapi.yaml");

/// `openapi.yaml` as JSON.
pub fn served_spec_json() -> String {
    let value: serde_json::Value =
        serde_yaml::from_str(SPEC_YAML).expect("openapi.yaml is valid YAML (checked by the tests)");
    value.to_string()
}

/// One document, ready to serve.
#[derive(Clone)]
pub struct Document {
    bytes: bytes::Bytes,
    content_type: &'static str,
    etag: HeaderValue,
    policy: Option<HeaderValue>,
}

impl Document {
    fn new(bytes: impl Into<bytes::Bytes>, content_type: &'static str) -> Self {
        let bytes = bytes.into();
        let digest = Sha256::digest(&bytes);
        let etag = HeaderValue::try_from(format!("\"{}\"", hex::encode(&digest[..16])))
            .expect("hex is a valid header value");
        Self {
            bytes,
            content_type,
            etag,
            policy: None,
        }
    }

    pub fn yaml() -> Self {
        Self::new(SPEC_YAML, "application/yaml")
    }

    pub fn json() -> Self {
        Self::new(served_spec_json(), "application/json")
    }

    /// Swagger UI (compiled in, works offline) showing the hand-maintained contract rather than the generated one.
    /// No validator badge (it would call validator.swagger.io) and an empty icon (no /favicon.ico request): nothing
    /// leaves the host. Its inline scripts are allowed by their hashes and nothing else may run.
    pub fn swagger_ui(generated_html: &str, generated_spec: &str) -> Self {
        let html = generated_html
            .replacen(generated_spec, &served_spec_json(), 1)
            .replacen(
                "deepLinking: true,",
                "deepLinking: true,\n        validatorUrl: null,",
                1,
            )
            .replacen(
                "<head>",
                "<head>\n    <link rel=\"icon\" href=\"data:,\">",
                1,
            );
        let scripts: Vec<String> = inline_scripts(&html)
            .into_iter()
            .map(|script| {
                use base64::Engine;
                let digest = Sha256::digest(script.as_bytes());
                format!(
                    "'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(digest)
                )
            })
            .collect();
        let policy = format!(
            "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src 'self' data:; \
             font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
            scripts.join(" ")
        );
        let mut document = Self::new(html, "text/html; charset=utf-8");
        document.policy = Some(HeaderValue::try_from(policy).expect("the policy is ASCII"));
        document
    }

    /// Serves the document, or `304 Not Modified` when the client already has it.
    pub fn endpoint(self) -> impl Endpoint<Output = Response> {
        poem::endpoint::make_sync(move |req: Request| self.respond(&req))
    }

    fn respond(&self, req: &Request) -> Response {
        let fresh = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| {
                tags.split(',')
                    .any(|tag| tag.trim() == self.etag || tag.trim() == "*")
            });
        let mut builder = Response::builder()
            .header(header::ETAG, self.etag.clone())
            // Revalidate every time: the documents change with each release, and a 304 costs nothing.
            .header(header::CACHE_CONTROL, "no-cache")
            .header(header::X_FRAME_OPTIONS, "DENY")
            .header(header::REFERRER_POLICY, "no-referrer");
        if let Some(policy) = &self.policy {
            builder = builder.header(header::CONTENT_SECURITY_POLICY, policy.clone());
        }
        if fresh {
            return builder.status(StatusCode::NOT_MODIFIED).finish();
        }
        builder
            .content_type(self.content_type)
            .body(Body::from_bytes(self.bytes.clone()))
    }
}

/// The contents of each `<script>` element without a `src`, as a browser reads them: a script runs from its tag
/// to the first `</script` (so a `<script` inside a script's text starts nothing).
fn inline_scripts(html: &str) -> Vec<&str> {
    let mut scripts = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        let Some((tag, after)) = rest[start..].split_once('>') else {
            break;
        };
        let Some(end) = after.find("</script") else {
            break;
        };
        if !tag.contains("src=") {
            scripts.push(&after[..end]);
        }
        rest = &after[end..];
    }
    scripts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_found_and_sourced_ones_skipped() {
        let html = "<script charset=\"UTF-8\">a('<script>')</script><script src=\"x.js\"></script><script>\nb()\n</script>";
        assert_eq!(inline_scripts(html), ["a('<script>')", "\nb()\n"]);
    }

    #[test]
    fn a_matching_etag_is_answered_304_without_a_body() {
        let document = Document::new("hello", "text/plain");
        let etag = document.etag.to_str().unwrap().to_owned();
        let req = Request::builder()
            .header(header::IF_NONE_MATCH, format!("\"other\", {etag}"))
            .finish();
        assert_eq!(document.respond(&req).status(), StatusCode::NOT_MODIFIED);
        let plain = document.respond(&Request::default());
        assert_eq!(plain.status(), StatusCode::OK);
        assert_eq!(plain.headers()[header::ETAG], etag.as_str());
    }
}
