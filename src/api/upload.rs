//! The import's upload: `multipart/form-data` with `params` (JSON text) and `file`. The body is not read when the
//! operation is called: the handler checks the caller first, then `spool` streams the file to an unnamed
//! temporary file as it arrives, counting it against `ROSTER_IMPORT_LIMIT` (memory does not grow with it).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use poem::http::StatusCode;
use poem::{Body, Request, RequestBody};
use poem_openapi::ApiRequest;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use crate::domain::{IMPORT_LIMIT_DEFAULT, IMPORT_PARAMS_MAX_BYTES};

/// The schema's name in the spec.
const SCHEMA: &str = "ImportUpload";
/// Bytes of multipart fields other than `params` and `file` read (and dropped), at most.
const OTHER_FIELDS_MAX_BYTES: usize = 64 * 1024;

/// Bytes of the body multer may hold at once without handing them out as field content (a part's headers, what
/// comes before the first boundary): past this the upload is refused, so no body is kept in memory, whatever it
/// holds.
const HELD_MAX_BYTES: u64 = 1024 * 1024;

/// What `Counted` shares with the reader of the parts: the bytes handed out as field content, and why the stream
/// was cut, if it was.
#[derive(Default)]
struct Meter {
    delivered: AtomicU64,
    /// 0: not cut; 1: too large; 2: too much held.
    cut: AtomicU8,
}

/// The body as multer reads it, counted: its total against the upload's bound, and the bytes multer holds (read
/// but not yet handed out as field content) against [`HELD_MAX_BYTES`].
struct Counted {
    inner: futures_util::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>,
    read: u64,
    limit: u64,
    meter: Arc<Meter>,
}

impl futures_util::Stream for Counted {
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let held = self
            .read
            .saturating_sub(self.meter.delivered.load(Ordering::Relaxed));
        if held > HELD_MAX_BYTES {
            self.meter.cut.store(2, Ordering::Relaxed);
            return std::task::Poll::Ready(Some(Err(std::io::Error::other(HELD_TOO_MUCH))));
        }
        let next = self.inner.as_mut().poll_next(cx);
        if let std::task::Poll::Ready(Some(Ok(chunk))) = &next {
            self.read += chunk.len() as u64;
            if self.read > self.limit {
                self.meter.cut.store(1, Ordering::Relaxed);
                return std::task::Poll::Ready(Some(Err(std::io::Error::other(TOO_LARGE))));
            }
        }
        next
    }
}

const HELD_TOO_MUCH: &str =
    "a multipart part's headers, or what precedes the first boundary, are too long";
const TOO_LARGE: &str = "the body is larger than the import limit";

/// The upload, not yet read.
pub struct ImportUpload {
    body: Body,
    boundary: String,
}

/// The upload, read: `params` as sent, and the file on disk.
pub struct Spooled {
    pub params: Vec<u8>,
    pub file: File,
    pub file_name: String,
}

impl Payload for ImportUpload {
    const CONTENT_TYPE: &'static str = "multipart/form-data";

    fn check_content_type(content_type: &str) -> bool {
        content_type
            .split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(Self::CONTENT_TYPE))
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Reference(SCHEMA.into())
    }

    fn register(registry: &mut Registry) {
        registry.create_schema::<Self, _>(SCHEMA.into(), |_| {
            let mut params = MetaSchema::new("string");
            params.max_length = Some(IMPORT_PARAMS_MAX_BYTES);
            let mut file = MetaSchema::new_with_format("string", "binary");
            // The default `ROSTER_IMPORT_LIMIT`, which the spec states.
            file.max_length = usize::try_from(IMPORT_LIMIT_DEFAULT).ok();
            let mut schema = MetaSchema::new("object");
            schema.required = vec!["params", "file"];
            schema.properties = vec![
                ("params", MetaSchemaRef::Inline(Box::new(params))),
                ("file", MetaSchemaRef::Inline(Box::new(file))),
            ];
            schema
        });
    }
}

impl ParsePayload for ImportUpload {
    const IS_REQUIRED: bool = true;

    async fn from_request(req: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let boundary =
            multer::parse_boundary(req.content_type().unwrap_or_default()).map_err(|err| {
                ApiError::bad_request(format!("the multipart body has no boundary: {err}"))
            })?;
        Ok(Self {
            body: body.take()?,
            boundary,
        })
    }
}

// The import's request body.
#[derive(ApiRequest)]
pub enum ImportUploadBody {
    Multipart(ImportUpload),
}

fn unreadable(meter: &Meter, err: multer::Error) -> ApiError {
    match meter.cut.load(Ordering::Relaxed) {
        1 => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE),
        2 => ApiError::bad_request(HELD_TOO_MUCH),
        _ => ApiError::bad_request(format!("the multipart body cannot be read: {err}")),
    }
}

/// The next piece of a part's content, counted as handed out (see `Counted`).
async fn chunk(
    field: &mut multer::Field<'_>,
    meter: &Meter,
) -> Result<Option<bytes::Bytes>, ApiError> {
    let chunk = field.chunk().await.map_err(|err| unreadable(meter, err))?;
    if let Some(chunk) = &chunk {
        meter
            .delivered
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    Ok(chunk)
}

fn disk(err: std::io::Error) -> ApiError {
    tracing::error!(error = %err, "the upload cannot be written to a temporary file");
    ApiError::internal()
}

impl ImportUploadBody {
    /// Reads the body: `params` (at most [`IMPORT_PARAMS_MAX_BYTES`], 400 past it) and `file` (at most `limit`
    /// bytes, 413 past it), each exactly once; other fields are dropped.
    pub async fn spool(self, limit: u64) -> Result<Spooled, ApiError> {
        let Self::Multipart(upload) = self;
        let meter = Arc::new(Meter::default());
        let stream = Counted {
            inner: Box::pin(upload.body.into_bytes_stream()),
            read: 0,
            // The file, and the small rest of a multipart body around it.
            limit: limit.saturating_add(HELD_MAX_BYTES + IMPORT_PARAMS_MAX_BYTES as u64),
            meter: meter.clone(),
        };
        let mut parts = multer::Multipart::new(stream, upload.boundary);
        let (mut params, mut file) = (None, None);
        let mut other = 0usize;
        while let Some(mut field) = parts
            .next_field()
            .await
            .map_err(|err| unreadable(&meter, err))?
        {
            match field.name() {
                Some(name @ ("params" | "file"))
                    if (name == "params" && params.is_some())
                        || (name == "file" && file.is_some()) =>
                {
                    return Err(ApiError::bad_request(format!(
                        "the `{name}` field is given more than once"
                    )));
                }
                Some("params") => {
                    let mut text = Vec::new();
                    while let Some(chunk) = chunk(&mut field, &meter).await? {
                        if text.len() + chunk.len() > IMPORT_PARAMS_MAX_BYTES {
                            return Err(ApiError::bad_request(format!(
                                "`params` is longer than {IMPORT_PARAMS_MAX_BYTES} bytes"
                            )));
                        }
                        text.extend_from_slice(&chunk);
                    }
                    params = Some(text);
                }
                Some("file") => {
                    let name = field.file_name().unwrap_or("upload.csv").to_owned();
                    let spooled = tempfile::tempfile().map_err(disk)?;
                    let mut out = tokio::fs::File::from_std(spooled);
                    let mut written = 0u64;
                    while let Some(chunk) = chunk(&mut field, &meter).await? {
                        written += chunk.len() as u64;
                        if written > limit {
                            return Err(ApiError::new(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                format!(
                                    "the file is larger than {limit} bytes (ROSTER_IMPORT_LIMIT)"
                                ),
                            ));
                        }
                        out.write_all(&chunk).await.map_err(disk)?;
                    }
                    out.flush().await.map_err(disk)?;
                    file = Some((out.into_std().await, name));
                }
                _ => {
                    while let Some(chunk) = chunk(&mut field, &meter).await? {
                        other += chunk.len();
                        if other > OTHER_FIELDS_MAX_BYTES {
                            return Err(ApiError::new(
                                StatusCode::PAYLOAD_TOO_LARGE,
                                format!(
                                    "fields other than `params` and `file` are larger than {OTHER_FIELDS_MAX_BYTES} bytes"
                                ),
                            ));
                        }
                    }
                }
            }
        }
        let params =
            params.ok_or_else(|| ApiError::bad_request("the `params` field is missing"))?;
        let (file, file_name) =
            file.ok_or_else(|| ApiError::bad_request("the `file` field is missing"))?;
        Ok(Spooled {
            params,
            file,
            file_name,
        })
    }
}
