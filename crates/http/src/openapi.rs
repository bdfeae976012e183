//! One OpenAPI 3.1 document per enabled dialect, built from the route table itself: the
//! paths are the endpoints routing mounts (with their prefix), each endpoint's body and
//! answers are the Rust types its handler reads and writes (`utoipa` derives), and the
//! refusals every dialect answers ([`crate::Refusal`]) are added to every operation in
//! the dialect's own error shape. A document therefore cannot list a path the server
//! does not serve, nor miss one it does.
//!
//! Served at `GET /openapi/<dialect>.json`, listed by `GET /openapi.json`.

use std::borrow::Cow;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use serde_json::json;
use utoipa::ToSchema;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ComponentsBuilder, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, RefOr, Required};

use crate::dialect::{Dialect, Endpoint};
use crate::settings::DialectMount;

/// A body schema: its component name, and how to add it (and the schemas it refers to)
/// to a document's components.
#[derive(Clone, Copy)]
pub struct BodySchema {
    name: fn() -> Cow<'static, str>,
    add: fn(&mut Vec<(String, RefOr<Schema>)>),
}

impl BodySchema {
    /// The schema of `T`.
    pub fn of<T: ToSchema>() -> Self {
        fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((T::name().into_owned(), T::schema()));
            T::schemas(schemas);
        }
        Self {
            name: T::name,
            add: add::<T>,
        }
    }

    fn reference(&self) -> RefOr<Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name((self.name)()))
    }
}

/// How a request proves who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <access token>`.
    Bearer,
    /// A session cookie of this name.
    Cookie(&'static str),
}

/// A response an endpoint may give, besides the refusals every endpoint may give.
#[derive(Clone, Copy)]
pub struct Answer {
    status: u16,
    description: &'static str,
    /// `None`: the dialect's error shape.
    body: Option<BodySchema>,
    /// No body at all.
    empty: bool,
    set_cookie: Option<&'static str>,
}

/// What an endpoint's document says: its summary, body, answers and credential.
#[derive(Clone)]
pub struct EndpointDoc {
    summary: &'static str,
    body: Option<BodySchema>,
    /// Optional string query parameters: name and description.
    query: Vec<(&'static str, &'static str)>,
    answers: Vec<Answer>,
    credential: Option<Credential>,
}

impl EndpointDoc {
    /// An endpoint doing `summary`, without a body yet.
    pub fn new(summary: &'static str) -> Self {
        Self {
            summary,
            body: None,
            query: Vec::new(),
            answers: Vec::new(),
            credential: None,
        }
    }

    /// Its summary.
    pub fn summary(&self) -> &'static str {
        self.summary
    }

    /// Its JSON request body has the schema of `T`.
    pub fn body<T: ToSchema>(mut self) -> Self {
        self.body = Some(BodySchema::of::<T>());
        self
    }

    /// It takes the optional query parameter `name` (a string).
    pub fn query(mut self, name: &'static str, description: &'static str) -> Self {
        self.query.push((name, description));
        self
    }

    fn answer(
        mut self,
        status: u16,
        description: &'static str,
        body: Option<BodySchema>,
        empty: bool,
        set_cookie: Option<&'static str>,
    ) -> Self {
        self.answers.push(Answer {
            status,
            description,
            body,
            empty,
            set_cookie,
        });
        self
    }

    /// It answers `status` with a body of `T`.
    pub fn answers<T: ToSchema>(self, status: u16, description: &'static str) -> Self {
        self.answer(
            status,
            description,
            Some(BodySchema::of::<T>()),
            false,
            None,
        )
    }

    /// It answers `status` with a body of `T`, setting the cookie `cookie`.
    pub fn answers_with_cookie<T: ToSchema>(
        self,
        status: u16,
        description: &'static str,
        cookie: &'static str,
    ) -> Self {
        let body = Some(BodySchema::of::<T>());
        self.answer(status, description, body, false, Some(cookie))
    }

    /// It may answer `status` with the dialect's error.
    pub fn fails(self, status: u16, description: &'static str) -> Self {
        self.answer(status, description, None, false, None)
    }

    /// It answers `status` without a body, setting the cookie `cookie`.
    pub fn answers_nothing(
        self,
        status: u16,
        description: &'static str,
        cookie: &'static str,
    ) -> Self {
        self.answer(status, description, None, true, Some(cookie))
    }

    /// It takes `credential`.
    pub fn with(mut self, credential: Credential) -> Self {
        self.credential = Some(credential);
        self
    }
}

/// The refusals every endpoint may answer, in its dialect's error shape
/// ([`crate::Refusal`]; 400 and 413 for a body that cannot be read, 408 for one that
/// stalls).
const REFUSALS: [(u16, &str); 6] = [
    (
        400,
        "The body is not a JSON object, or a field is missing or invalid",
    ),
    (405, "The path does not take this method"),
    (408, "The body did not arrive in time"),
    (413, "The body is too large"),
    (429, "Too many attempts: retry after Retry-After"),
    (
        503,
        "Overloaded, or the database is unreachable: retry after Retry-After",
    ),
];

fn header(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new().schema_type(SchemaType::new(Type::String)),
        ))
        .description(Some(description))
        .build()
}

fn http_method(method: &Method) -> Option<HttpMethod> {
    Some(match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::DELETE => HttpMethod::Delete,
        Method::PATCH => HttpMethod::Patch,
        _ => return None,
    })
}

/// The full path of `endpoint` mounted by `mount`.
fn full_path(mount: &DialectMount, endpoint: &Endpoint) -> String {
    format!("{}{}", mount.prefix.trim_end_matches('/'), endpoint.path)
}

/// The dialect that owns `method` `path` among `mounts` (the first to serve it: see
/// [`crate::routing`]), which answers the requests no dialect claims.
fn owner<'a>(mounts: &'a [DialectMount], method: &Method, path: &str) -> Option<&'a DialectMount> {
    mounts.iter().find(|mount| {
        mount
            .dialect
            .endpoints()
            .iter()
            .any(|e| e.method == *method && full_path(mount, e) == path)
    })
}

/// The document of `mount`, one of `mounts` (the others decide who answers a request
/// on a shared path that this dialect does not claim).
pub fn document(mount: &DialectMount, mounts: &[DialectMount]) -> OpenApi {
    let dialect: &dyn Dialect = mount.dialect.as_ref();
    let error = dialect.error_schema();
    let mut schemas = Vec::new();
    (error.add)(&mut schemas);
    let mut paths = PathsBuilder::new();
    let mut credentials = Vec::new();
    for endpoint in dialect.endpoints() {
        let Some(method) = http_method(&endpoint.method) else {
            continue;
        };
        let path = full_path(mount, &endpoint);
        // A body this dialect cannot claim (unreadable, or without its key) is the
        // owner's to refuse, in the owner's shape.
        let unclaimed = owner(mounts, &endpoint.method, &path)
            .filter(|owner| owner.dialect.name() != dialect.name())
            .map(|owner| owner.dialect.error_schema());
        let errors = Errors {
            own: error,
            unclaimed,
        };
        let operation = operation(&endpoint, errors, &mut schemas, &mut credentials);
        paths = paths.path(path, PathItem::new(method, operation));
    }
    let mut components = ComponentsBuilder::new();
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }
    for credential in credentials {
        components = match credential {
            Credential::Bearer => components.security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            ),
            Credential::Cookie(name) => components.security_scheme(
                name,
                SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(name))),
            ),
        };
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title(format!("Portcullis: the {} dialect", dialect.name()))
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(format!(
                    "The {} API as Portcullis serves it (docs/dialects/{}.md).",
                    dialect.name(),
                    dialect.name()
                ))),
        )
        .paths(paths)
        .components(Some(components.build()))
        .build()
}

/// The error shapes of one operation.
#[derive(Clone, Copy)]
struct Errors {
    /// The dialect's own.
    own: BodySchema,
    /// On a path another dialect owns, the owner's: it refuses bodies no dialect claims.
    unclaimed: Option<BodySchema>,
}

impl Errors {
    /// The schema of an error with `status`: for the refusals of a body no dialect
    /// claims (400, 408, 413) or of a method the path does not take (405), either
    /// shape when another dialect owns the path.
    fn schema(&self, status: u16, schemas: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
        (self.own.add)(schemas);
        match self.unclaimed {
            Some(owner) if matches!(status, 400 | 405 | 408 | 413) => {
                (owner.add)(schemas);
                RefOr::T(Schema::AnyOf(
                    AnyOfBuilder::new()
                        .item(self.own.reference())
                        .item(owner.reference())
                        .build(),
                ))
            }
            _ => self.own.reference(),
        }
    }
}

fn operation(
    endpoint: &Endpoint,
    errors: Errors,
    schemas: &mut Vec<(String, RefOr<Schema>)>,
    credentials: &mut Vec<Credential>,
) -> utoipa::openapi::path::Operation {
    let doc = endpoint.doc.clone();
    let json = |schema: RefOr<Schema>| ContentBuilder::new().schema(Some(schema)).build();
    let mut operation = OperationBuilder::new().summary(Some(doc.summary));
    for (name, description) in doc.query {
        operation = operation.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(
                    ObjectBuilder::new().schema_type(SchemaType::new(Type::String)),
                )),
        );
    }
    if let Some(body) = doc.body {
        (body.add)(schemas);
        closed(schemas, &(body.name)());
        operation = operation.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json(body.reference()))
                .required(Some(Required::True))
                .build(),
        ));
    }
    if let Some(credential) = doc.credential {
        if !credentials.contains(&credential) {
            credentials.push(credential);
        }
        let name = match credential {
            Credential::Bearer => "bearer",
            Credential::Cookie(name) => name,
        };
        operation = operation.security(SecurityRequirement::new::<_, _, &str>(name, []));
    }
    let refusals = REFUSALS.iter().map(|&(status, description)| Answer {
        status,
        description,
        body: None,
        empty: false,
        set_cookie: None,
    });
    let forbidden = endpoint.session_cookie.then_some(Answer {
        status: 403,
        description: "A cross-site request from an origin not allowed",
        body: None,
        empty: false,
        set_cookie: None,
    });
    let mut seen = Vec::new();
    for answer in doc.answers.into_iter().chain(forbidden).chain(refusals) {
        if seen.contains(&answer.status) {
            continue;
        }
        seen.push(answer.status);
        let mut response = ResponseBuilder::new().description(answer.description);
        if !answer.empty {
            let schema = match answer.body {
                Some(body) => {
                    (body.add)(schemas);
                    body.reference()
                }
                None => errors.schema(answer.status, schemas),
            };
            response = response.content("application/json", json(schema));
        }
        response = response
            .header("Cache-Control", header("no-store"))
            .header("X-Request-Id", header("The request's id"));
        if matches!(answer.status, 429 | 503) {
            response = response.header("Retry-After", header("Seconds to wait before retrying"));
        }
        if let Some(cookie) = answer.set_cookie {
            response = response.header(
                "Set-Cookie",
                header(&format!("The `{cookie}` session cookie")),
            );
        }
        operation = operation.response(answer.status.to_string(), response.build());
    }
    operation.build()
}

/// Marks the request body schema `name` as taking no other property: a request with
/// another (say `email` beside pocketbase's `username`) may be another dialect's on a
/// shared path.
fn closed(schemas: &mut [(String, RefOr<Schema>)], name: &str) {
    for (schema_name, schema) in schemas.iter_mut() {
        if schema_name == name
            && let RefOr::T(Schema::Object(object)) = schema
        {
            object.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
        }
    }
}

/// `GET /openapi.json` (the documents) and `GET /openapi/<dialect>.json` (each one).
pub(crate) fn routes(cfg: &mut web::ServiceConfig, mounts: &[DialectMount]) {
    let index: Vec<_> = mounts
        .iter()
        .map(|mount| {
            json!({
                "dialect": mount.dialect.name(),
                "prefix": mount.prefix,
                "url": format!("/openapi/{}.json", mount.dialect.name()),
            })
        })
        .collect();
    let index = json!({ "documents": index });
    cfg.route(
        "/openapi.json",
        web::get().to(move || {
            let index = index.clone();
            async move { HttpResponse::Ok().json(index) }
        }),
    );
    for mount in mounts {
        let document = document(mount, mounts);
        let text = document.to_json().unwrap_or_default();
        cfg.route(
            &format!("/openapi/{}.json", mount.dialect.name()),
            web::get().to(move || {
                let text = text.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(text)
                }
            }),
        );
    }
}
