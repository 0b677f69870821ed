//! What the API's operations are, read once at start-up from poem-openapi's own metadata: so that middleware can
//! tell, before routing, which operation a request is for, whether it authenticates, and which of its query
//! parameters take one value. The outermost layer (`front::Front`) looks a request up here once.

use std::sync::Arc;

use poem::http::Method;
use poem_openapi::registry::{MetaApi, MetaParamIn, MetaSchemaRef};

/// One operation, as far as the middleware needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub method: Method,
    pub id: &'static str,
    /// Whether it needs credentials (it declares a security requirement).
    pub authenticated: bool,
    /// Query parameters that take a single value (everything but arrays).
    pub scalar_query: Vec<String>,
    /// The liveness probe: a load balancer polls it, so no rate limit applies.
    pub liveness: bool,
    /// A file upload: its body streams to the operation (with a bound of its own), never buffered in memory.
    pub upload: bool,
}

/// The operation id of the liveness probe.
const LIVENESS: &str = "getLiveness";
/// The operation ids of uploads.
const UPLOADS: &[&str] = &["importSubscribers"];

/// One segment of a path template.
#[derive(Debug)]
enum Segment {
    Literal(String),
    /// `{list_id}`: any non-empty segment.
    Parameter,
}

#[derive(Debug)]
struct Path {
    /// `/api/lists/{list_id}` as `["", "api", "lists", {list_id}]`.
    segments: Vec<Segment>,
    /// How many segments are literal: the router prefers the template with more.
    literals: usize,
    operations: Vec<Arc<Operation>>,
}

impl Path {
    /// Compares segment by segment as the path is split, without collecting it.
    fn matches(&self, path: &str) -> bool {
        let mut wanted = path.split('/');
        self.segments
            .iter()
            .all(|segment| match (segment, wanted.next()) {
                (Segment::Literal(literal), Some(w)) => literal == w,
                (Segment::Parameter, Some(w)) => !w.is_empty(),
                (_, None) => false,
            })
            && wanted.next().is_none()
    }
}

/// Every documented path and its operations.
#[derive(Debug)]
pub struct Catalog(Vec<Path>);

fn is_array(schema: &MetaSchemaRef) -> bool {
    matches!(schema, MetaSchemaRef::Inline(schema) if schema.ty == "array")
}

impl Catalog {
    pub fn new(apis: Vec<MetaApi>) -> Self {
        let mut paths = Vec::new();
        for api in apis {
            for path in api.paths {
                let operations = path
                    .operations
                    .iter()
                    .map(|op| {
                        let id = op.operation_id.unwrap_or("unnamed");
                        Arc::new(Operation {
                            method: op.method.clone(),
                            id,
                            liveness: id == LIVENESS,
                            upload: UPLOADS.contains(&id),
                            authenticated: !op.security.is_empty(),
                            scalar_query: op
                                .params
                                .iter()
                                .filter(|p| p.in_type == MetaParamIn::Query && !is_array(&p.schema))
                                .map(|p| p.name.clone())
                                .collect(),
                        })
                    })
                    .collect();
                let segments: Vec<Segment> = path
                    .path
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Parameter
                        } else {
                            Segment::Literal(s.to_owned())
                        }
                    })
                    .collect();
                paths.push(Path {
                    literals: segments
                        .iter()
                        .filter(|s| matches!(s, Segment::Literal(_)))
                        .count(),
                    segments,
                    operations,
                });
            }
        }
        Self(paths)
    }

    /// The template a path is routed to: like the router, literal segments win over parameters
    /// (`/api/subscribers/lists` is not subscriber `lists`).
    fn path(&self, path: &str) -> Option<&Path> {
        self.0
            .iter()
            .filter(|p| p.matches(path))
            .max_by_key(|p| p.literals)
    }

    /// The operation a request is for, if the API has one at this method and path.
    pub fn operation(&self, method: &Method, path: &str) -> Option<&Arc<Operation>> {
        self.path(path)?
            .operations
            .iter()
            .find(|op| op.method == *method)
    }

    /// The `Allow` value for a concrete request path known to the router.
    pub fn allow(&self, path: &str) -> String {
        self.path(path).map_or_else(
            // Outside the API only the spec and docs routes exist, and they are GET-only.
            || "GET".to_owned(),
            |p| {
                p.operations
                    .iter()
                    .map(|op| op.method.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        )
    }
}
