//! What the API's operations are, read once at start-up from poem-openapi's own metadata: so that middleware can
//! tell, before routing, which operation a request is for, whether it authenticates, and which of its query
//! parameters take one value.

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
}

#[derive(Debug)]
struct Path {
    /// `/api/lists/{list_id}` as `["", "api", "lists", "{list_id}"]`.
    segments: Vec<String>,
    operations: Vec<Operation>,
}

impl Path {
    fn matches(&self, wanted: &[&str]) -> bool {
        self.segments.len() == wanted.len()
            && self
                .segments
                .iter()
                .zip(wanted)
                .all(|(t, w)| t == w || (t.starts_with('{') && t.ends_with('}') && !w.is_empty()))
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
                    .map(|op| Operation {
                        method: op.method.clone(),
                        id: op.operation_id.unwrap_or("unnamed"),
                        authenticated: !op.security.is_empty(),
                        scalar_query: op
                            .params
                            .iter()
                            .filter(|p| p.in_type == MetaParamIn::Query && !is_array(&p.schema))
                            .map(|p| p.name.clone())
                            .collect(),
                    })
                    .collect();
                paths.push(Path {
                    segments: path.path.split('/').map(str::to_owned).collect(),
                    operations,
                });
            }
        }
        Self(paths)
    }

    /// The template a path is routed to: like the router, literal segments win over parameters
    /// (`/api/subscribers/lists` is not subscriber `lists`).
    fn path(&self, path: &str) -> Option<&Path> {
        let wanted: Vec<&str> = path.split('/').collect();
        self.0
            .iter()
            .filter(|p| p.matches(&wanted))
            .max_by_key(|p| p.segments.iter().filter(|s| !s.starts_with('{')).count())
    }

    /// The operation a request is for, if the API has one at this method and path.
    pub fn operation(&self, method: &Method, path: &str) -> Option<&Operation> {
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
