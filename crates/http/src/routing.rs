//! The route table: every enabled dialect's endpoints, mounted under its prefix, with
//! one dispatcher per method and path.
//!
//! Where two dialects serve the same method and path (`POST /auth/login`: authapi and
//! pocketbase), the request goes by its JSON body: each such endpoint declares the
//! top-level key that marks a request as its own (authapi `email`, pocketbase
//! `username`, cbs `user`), and the first dialect, in [`crate::DIALECTS`] order, whose
//! key the body has gets it. A body with none of the keys, an unreadable body, or a
//! body that is not a JSON object goes to the path's owner: the first dialect in that
//! order that serves the path.
//!
//! An endpoint that reads or sets a session cookie refuses a cross-site request (403 in
//! its dialect's format) before its handler runs, unless the request comes from an
//! allowed origin ([`crate::cross_site`]); responses to allowed origins carry CORS
//! headers, and their preflights are answered.

use std::rc::Rc;
use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::header::{ALLOW, CACHE_CONTROL, CONNECTION, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::body::{BodyError, JsonObject, read_json_object};
use crate::cross_site;
use crate::dialect::{Call, Dialect, Endpoint, Refusal, refuse};
use crate::settings::DialectMount;
use crate::state::AppState;
use crate::telemetry;

/// The endpoints sharing one method and full path, with their dialects, owner first.
struct Group {
    method: Method,
    endpoints: Vec<(Arc<dyn Dialect>, Endpoint)>,
}

impl Group {
    fn pick(&self, body: &Result<JsonObject, BodyError>) -> Option<&(Arc<dyn Dialect>, Endpoint)> {
        let claimed = body.as_ref().ok().and_then(|object| {
            self.endpoints
                .iter()
                .find(|(_, e)| e.body_key.is_some_and(|key| object.has(key)))
        });
        claimed.or_else(|| self.endpoints.first())
    }
}

/// Everything served at one full path, and the dialect that owns it.
struct PathGroup {
    path: String,
    owner: Arc<dyn Dialect>,
    methods: Vec<Group>,
}

/// Mounts the endpoints of `mounts`, in their order (that of [`crate::DIALECTS`]). A
/// path asked with a method it does not serve gets 405, with `Allow`, in its owner's
/// format.
pub(crate) fn mount(cfg: &mut web::ServiceConfig, mounts: &[DialectMount]) {
    let mut paths: Vec<PathGroup> = Vec::new();
    for mount in mounts {
        for endpoint in mount.dialect.endpoints() {
            let path = format!("{}{}", mount.prefix.trim_end_matches('/'), endpoint.path);
            let index = match paths.iter().position(|p| p.path == path) {
                Some(index) => index,
                None => {
                    paths.push(PathGroup {
                        path,
                        owner: mount.dialect.clone(),
                        methods: Vec::new(),
                    });
                    paths.len() - 1
                }
            };
            let methods = &mut paths[index].methods;
            let entry = (mount.dialect.clone(), endpoint);
            match methods.iter_mut().find(|g| g.method == entry.1.method) {
                Some(group) => group.endpoints.push(entry),
                None => methods.push(Group {
                    method: entry.1.method.clone(),
                    endpoints: vec![entry],
                }),
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
            move |state: web::Data<AppState>, request: HttpRequest| {
                telemetry::answered_by(&request, owner.name());
                let response = cross_site::preflight(&request, &state.config, &allow)
                    .unwrap_or_else(|| {
                        let mut response =
                            refuse(owner.as_ref(), &request, &Refusal::MethodNotAllowed);
                        if let Ok(value) = HeaderValue::from_str(&allow) {
                            response.headers_mut().insert(ALLOW, value);
                        }
                        response
                    });
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
                        let config = &state.config;
                        let body =
                            read_json_object(payload, config.body_limit, config.body_timeout).await;
                        let Some((dialect, endpoint)) = group.pick(&body) else {
                            return HttpResponse::NotFound().finish();
                        };
                        telemetry::answered_by(&request, dialect.name());
                        if let Err(error @ BodyError::TimedOut) = body {
                            // A client that stalls is not waited for again on this
                            // connection.
                            let mut response =
                                refuse(dialect.as_ref(), &request, &Refusal::UnreadableBody(error));
                            response
                                .headers_mut()
                                .insert(CONNECTION, HeaderValue::from_static("close"));
                            return response;
                        }
                        let origin = cross_site::allowed_origin(&request, &state.config);
                        let mut response = if endpoint.session_cookie
                            && origin.is_none()
                            && cross_site::is_cross_site(&request, &state.config)
                        {
                            refuse(dialect.as_ref(), &request, &Refusal::Forbidden)
                        } else {
                            (endpoint.handler)(Call {
                                state,
                                request,
                                body,
                                dialect: dialect.name(),
                            })
                            .await
                        };
                        cross_site::allow(&mut response, origin);
                        // Every dialect answer may carry a token or user data.
                        response
                            .headers_mut()
                            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                        response
                    }
                },
            ));
        }
        cfg.service(resource);
    }
}
