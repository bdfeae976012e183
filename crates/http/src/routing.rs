//! The route table: every enabled dialect's endpoints, mounted under its prefix, with
//! one dispatcher per method and path.
//!
//! Where two dialects serve the same method and path (`POST /auth/login`: authapi and
//! pocketbase), the request goes by its JSON body: each such endpoint declares the
//! top-level key that marks a request as its own (authapi `email`, pocketbase
//! `username`, cbs `user`), and the first dialect, in [`DialectName::ALL`] order, whose
//! key the body has gets it. A body with none of the keys, an unreadable body, or a
//! body that is not a JSON object goes to the path's owner: the first dialect in that
//! order that serves the path.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use actix_web::http::Method;
use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::AppState;
use crate::body::{BodyError, JsonObject, read_json_object};

/// The dialects Portcullis speaks, in ownership order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DialectName {
    Authapi,
    Ioweyou,
    Cbs,
    Pocketbase,
}

impl DialectName {
    /// Also the order of ownership of a shared path: authapi owns `POST /auth/login`
    /// over pocketbase, cbs owns `POST /api/v1/auth/login` over a prefixed pocketbase.
    pub const ALL: [DialectName; 4] = [
        DialectName::Authapi,
        DialectName::Ioweyou,
        DialectName::Cbs,
        DialectName::Pocketbase,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authapi => "authapi",
            Self::Ioweyou => "ioweyou",
            Self::Cbs => "cbs",
            Self::Pocketbase => "pocketbase",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == name)
    }

    /// The dialect's answer to a method its path does not serve (405, its format).
    fn method_not_allowed(self, request: &HttpRequest) -> HttpResponse {
        match self {
            Self::Authapi => crate::authapi::method_not_allowed(request),
            Self::Ioweyou => crate::ioweyou::method_not_allowed(request),
            Self::Cbs => crate::cbs::method_not_allowed(request),
            Self::Pocketbase => crate::pocketbase::method_not_allowed(request),
        }
    }

    fn endpoints(self) -> Vec<Endpoint> {
        match self {
            Self::Authapi => crate::authapi::endpoints(),
            Self::Ioweyou => crate::ioweyou::endpoints(),
            Self::Cbs => crate::cbs::endpoints(),
            Self::Pocketbase => crate::pocketbase::endpoints(),
        }
    }
}

/// One enabled dialect and where it is mounted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialectMount {
    pub dialect: DialectName,
    /// Prepended to every path of the dialect, e.g. `/api/v1`; empty for none.
    pub prefix: String,
}

impl DialectMount {
    /// Every dialect at its documented paths.
    pub fn all_at_documented_paths() -> Vec<Self> {
        DialectName::ALL
            .into_iter()
            .map(|dialect| Self {
                dialect,
                prefix: String::new(),
            })
            .collect()
    }
}

/// What a handler gets: the state, the request and its body, already read.
pub struct Call {
    pub state: web::Data<AppState>,
    pub request: HttpRequest,
    /// The body as a JSON object, or why it is not one. Handlers that take no body
    /// ignore it.
    pub body: Result<JsonObject, BodyError>,
}

type BoxedHandler = Rc<dyn Fn(Call) -> Pin<Box<dyn Future<Output = HttpResponse>>>>;

/// One endpoint of a dialect.
pub struct Endpoint {
    method: Method,
    path: &'static str,
    /// The top-level body key that claims a request on a shared path.
    body_key: Option<&'static str>,
    handler: BoxedHandler,
}

impl Endpoint {
    /// An endpoint whose handler answers with a response or with the dialect's error.
    pub fn new<F, Fut, E>(method: Method, path: &'static str, handler: F) -> Self
    where
        F: Fn(Call) -> Fut + 'static,
        Fut: Future<Output = Result<HttpResponse, E>> + 'static,
        E: ResponseError + 'static,
    {
        Self {
            method,
            path,
            body_key: None,
            handler: Rc::new(move |call| {
                let future = handler(call);
                Box::pin(async move { future.await.unwrap_or_else(|e| e.error_response()) })
            }),
        }
    }

    /// Claims requests on a shared path whose body has `key`.
    pub fn claiming(mut self, key: &'static str) -> Self {
        self.body_key = Some(key);
        self
    }
}

/// The endpoints sharing one method and full path, owner first.
struct Group {
    method: Method,
    endpoints: Vec<Endpoint>,
}

impl Group {
    fn pick(&self, body: &Result<JsonObject, BodyError>) -> Option<&Endpoint> {
        let claimed = body.as_ref().ok().and_then(|object| {
            self.endpoints
                .iter()
                .find(|e| e.body_key.is_some_and(|key| object.has(key)))
        });
        claimed.or_else(|| self.endpoints.first())
    }
}

/// Everything served at one full path, and the dialect that owns it.
struct PathGroup {
    path: String,
    owner: DialectName,
    methods: Vec<Group>,
}

/// Mounts the endpoints of `mounts` (ordered by [`DialectName::ALL`]). A path asked
/// with a method it does not serve gets 405, with `Allow`, in its owner's format.
pub(crate) fn mount(cfg: &mut web::ServiceConfig, mounts: &[DialectMount]) {
    let mut paths: Vec<PathGroup> = Vec::new();
    for dialect in DialectName::ALL {
        for mount in mounts.iter().filter(|m| m.dialect == dialect) {
            for endpoint in dialect.endpoints() {
                let path = format!("{}{}", mount.prefix.trim_end_matches('/'), endpoint.path);
                let index = match paths.iter().position(|p| p.path == path) {
                    Some(index) => index,
                    None => {
                        paths.push(PathGroup {
                            path,
                            owner: dialect,
                            methods: Vec::new(),
                        });
                        paths.len() - 1
                    }
                };
                let methods = &mut paths[index].methods;
                match methods.iter_mut().find(|g| g.method == endpoint.method) {
                    Some(group) => group.endpoints.push(endpoint),
                    None => methods.push(Group {
                        method: endpoint.method.clone(),
                        endpoints: vec![endpoint],
                    }),
                }
            }
        }
    }
    for path in paths {
        let allow = path
            .methods
            .iter()
            .map(|g| g.method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let owner = path.owner;
        let mut resource = web::resource(path.path.as_str()).default_service(web::to(
            move |request: HttpRequest| {
                let mut response = owner.method_not_allowed(&request);
                if let Ok(value) = HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(ALLOW, value);
                }
                async move { response }
            },
        ));
        for group in path.methods {
            let method = group.method.clone();
            let group = Rc::new(group);
            resource = resource.route(web::method(method).to(
                move |state: web::Data<AppState>, request: HttpRequest, payload: web::Payload| {
                    let group = group.clone();
                    async move {
                        let body = read_json_object(payload, state.config.body_limit).await;
                        match group.pick(&body) {
                            Some(endpoint) => {
                                (endpoint.handler)(Call {
                                    state,
                                    request,
                                    body,
                                })
                                .await
                            }
                            None => HttpResponse::NotFound().finish(),
                        }
                    }
                },
            ));
        }
        cfg.service(resource);
    }
}
