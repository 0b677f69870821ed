//! `GET /api/subscribers/export`: the subscribers a listing would select, as CSV, written batch by batch as they
//! are read (the same walk as `per_page=all`: one snapshot, keyset batches, constant memory). Columns as
//! listmonk's export (`uuid,email,name,attributes,status,created_at,updated_at`), then `lists`: the subscriber's
//! subscriptions the caller may see, as a JSON object from list id to subscription status (`{"3":"confirmed"}`),
//! as `attributes` is a JSON object. Text that a spreadsheet would run as a formula is written with a leading `'`
//! (`cell`).

use futures_util::{Stream, StreamExt, stream};
use poem::http::{HeaderValue, header};
use poem::{Body, IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};

use super::responses::documented_headers;
use super::stream::Streaming;
use super::types::Timestamp;
use crate::domain::Subscriber;
use crate::service::ServiceError;

/// The media type as documented, and as sent (with its charset).
const MEDIA_TYPE: &str = "text/csv";
const CONTENT_TYPE: &str = "text/csv; charset=utf-8";
const DISPOSITION: &str = "attachment; filename=\"subscribers.csv\"";
const COLUMNS: [&str; 8] = [
    "uuid",
    "email",
    "name",
    "attributes",
    "status",
    "created_at",
    "updated_at",
    "lists",
];

/// The export's answer: a CSV body written as it is read.
pub struct CsvExport(pub Body);

impl ApiResponse for CsvExport {
    fn meta() -> MetaResponses {
        let mut file = MetaSchema::new_with_format("string", "binary");
        file.max_length = None;
        let mut disposition = MetaSchema::new("string");
        disposition.max_length = Some(40);
        disposition.pattern = Some("^attachment; filename=\"[a-z]+\\.csv\"$".into());
        documented_headers(MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: MEDIA_TYPE,
                    schema: MetaSchemaRef::Inline(Box::new(file)),
                }],
                headers: vec![MetaHeader {
                    name: "Content-Disposition".into(),
                    description: None,
                    required: true,
                    deprecated: false,
                    schema: MetaSchemaRef::Inline(Box::new(disposition)),
                }],
            }],
        })
    }

    fn register(_: &mut Registry) {}
}

impl IntoResponse for CsvExport {
    fn into_response(self) -> Response {
        let mut response = Response::builder()
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static(DISPOSITION),
            )
            .body(self.0);
        // The body reads the database as it is sent: the caller keeps its fair share until it ends.
        response.extensions_mut().insert(Streaming);
        response
    }
}

/// A text cell as written: one that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return) gets a leading `'`, OWASP's advice against CSV injection, so it shows as text. The JSON
/// listing carries values exactly.
fn cell(text: &str) -> std::borrow::Cow<'_, str> {
    match text.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{text}").into(),
        _ => text.into(),
    }
}

/// One subscriber's CSV record.
fn write_row(out: &mut csv::Writer<Vec<u8>>, row: &Subscriber) -> csv::Result<()> {
    let attributes = serde_json::to_string(&row.attribs).map_err(std::io::Error::other)?;
    let lists: serde_json::Map<String, serde_json::Value> = row
        .lists
        .iter()
        .map(|s| (s.list.id.to_string(), s.status.as_str().into()))
        .collect();
    let lists = serde_json::to_string(&lists).map_err(std::io::Error::other)?;
    let uuid = row.uuid.to_string();
    Timestamp(row.created_at).with_wire(|created| {
        Timestamp(row.updated_at).with_wire(|updated| {
            out.write_record([
                uuid.as_str(),
                &cell(&row.email),
                &cell(&row.name),
                attributes.as_str(),
                row.status.as_str(),
                created,
                updated,
                lists.as_str(),
            ])
        })
    })
}

/// The CSV body: the header line, then a chunk per batch. A failure after the first bytes cuts the connection (the
/// client sees an incomplete transfer, never a short file that looks whole).
pub fn csv_body<S>(batches: S) -> Body
where
    S: Stream<Item = Result<Vec<Subscriber>, ServiceError>> + Send + 'static,
{
    let header = stream::once(async {
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(COLUMNS).map_err(std::io::Error::other)?;
        out.into_inner()
            .map_err(|err| std::io::Error::other(err.to_string()))
    });
    let rows = batches.map(|batch| {
        let batch = batch.map_err(|err| {
            tracing::warn!(error = %err, "an export was cut off");
            std::io::Error::other(err.to_string())
        })?;
        let mut out = csv::Writer::from_writer(Vec::with_capacity(batch.len() * 256));
        for row in &batch {
            write_row(&mut out, row).map_err(std::io::Error::other)?;
        }
        out.into_inner()
            .map_err(|err| std::io::Error::other(err.to_string()))
    });
    Body::from_bytes_stream(header.chain(rows))
}
