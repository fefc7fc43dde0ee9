//! The route table.

pub mod artifacts;
pub mod attachments;
pub mod bundles;
pub mod commands;
pub mod digest;
pub mod discovery;
pub mod kg;
pub mod ledger;
pub mod misc;
pub mod observer;
pub mod runs;
pub mod ui;
pub mod voice;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::Response;
use utoipa::OpenApi;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use super::error::ApiError;
use super::state::SharedState;
use axum::response::IntoResponse;

/// Every core route (§1.1) plus the additions documented in `docs/api.md`, and the OpenAPI document of those
/// that are documented: one list makes both (each module's `routes()`).
pub fn router() -> (Router<SharedState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(crate::openapi::Doc::openapi())
        .documented_merge(ui::routes())
        .documented_merge(misc::routes())
        .documented_merge(bundles::routes())
        .documented_merge(runs::routes())
        .documented_merge(ledger::routes())
        .documented_merge(artifacts::routes())
        .documented_merge(observer::routes())
        .documented_merge(voice::routes())
        .documented_merge(discovery::routes())
        .documented_merge(kg::routes())
        .documented_merge(commands::routes())
        .documented_merge(attachments::routes())
        .split_for_parts();
    crate::openapi::finish(&mut doc);
    (router.fallback(not_found), doc)
}

/// How route modules register documented routes: what `routes!` made, added to a router, refusing a schema
/// name that two different types would share. utoipa would silently keep one of the two, and the document would
/// describe the other's bodies wrongly; like axum's refusal of two routes on one path, such a collision is a
/// programming error, found when the router is built (by every test that starts the server).
pub trait Documented {
    /// Adds one `routes!` (its handlers and the schemas they name).
    fn documented(self, route: UtoipaMethodRouter<SharedState>) -> Self;
    /// Merges another module's routes and schemas.
    fn documented_merge(self, other: Self) -> Self;
}

impl Documented for OpenApiRouter<SharedState> {
    fn documented(self, route: UtoipaMethodRouter<SharedState>) -> Self {
        let (schemas, _, _) = &route;
        for (i, (name, schema)) in schemas.iter().enumerate() {
            claim(&self, name, schema);
            if schemas[..i].iter().any(|(n, s)| n == name && s != schema) {
                collision(name);
            }
        }
        self.routes(route)
    }

    fn documented_merge(self, other: Self) -> Self {
        if let Some(components) = &other.get_openapi().components {
            for (name, schema) in &components.schemas {
                claim(&self, name, schema);
            }
        }
        self.merge(other)
    }
}

/// Panics when `router`'s document already holds another schema named `name`.
fn claim(router: &OpenApiRouter<SharedState>, name: &str, schema: &RefOr<Schema>) {
    let taken = router
        .get_openapi()
        .components
        .as_ref()
        .and_then(|c| c.schemas.get(name));
    if taken.is_some_and(|t| t != schema) {
        collision(name);
    }
}

fn collision(name: &str) -> ! {
    panic!(
        "two different types are documented as the OpenAPI schema `{name}`: rename one (`#[schema(as = ...)]`)"
    )
}

async fn not_found() -> ApiError {
    ApiError::not_found("Not Found")
}

/// Most bytes of a framework rejection's text carried into its `{"detail"}`.
const MAX_REJECTION_TEXT: usize = 4096;

/// Turns the bare-text answers of the framework (axum's extractor rejections: a path segment that is not
/// UTF-8, a multipart body without a boundary, a method not allowed…) into the `{"detail": ...}` bodies
/// every client of the API expects from an error.
pub async fn detail_bodies(req: Request, next: impl crate::stack::Rest) -> Response {
    let resp = next(req).await;
    let status = resp.status();
    let bare = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !bare || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let detail = if status == StatusCode::METHOD_NOT_ALLOWED {
        "Method Not Allowed".to_string()
    } else {
        let body = axum::body::to_bytes(resp.into_body(), MAX_REJECTION_TEXT)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).trim().to_string();
        if text.is_empty() {
            status.canonical_reason().unwrap_or("Error").to_string()
        } else {
            text
        }
    };
    let mut r = ApiError::new(status, detail).into_response();
    if let Some(a) = allow {
        r.headers_mut().insert(header::ALLOW, a);
    }
    r
}

#[cfg(test)]
mod tests {
    use axum::Json;
    use serde::Serialize;
    use utoipa::ToSchema;
    use utoipa_axum::routes;

    use super::*;

    /// One shape documented as `Answer`.
    #[derive(Serialize, ToSchema)]
    #[schema(as = Answer)]
    struct First {
        a: u32,
    }

    /// Another shape that claims the same name.
    #[derive(Serialize, ToSchema)]
    #[schema(as = Answer)]
    struct Second {
        b: String,
    }

    #[utoipa::path(get, path = "/first", responses((status = 200, body = First)))]
    async fn first() -> Json<First> {
        Json(First { a: 1 })
    }

    #[utoipa::path(get, path = "/second", responses((status = 200, body = Second)))]
    async fn second() -> Json<Second> {
        Json(Second { b: "b".into() })
    }

    #[utoipa::path(get, path = "/again", responses((status = 200, body = First)))]
    async fn again() -> Json<First> {
        Json(First { a: 2 })
    }

    #[test]
    fn the_api_names_each_schema_once() {
        // The real table: building it checks every name.
        let (_, doc) = router();
        assert!(
            doc.components
                .is_some_and(|c| c.schemas.contains_key("ErrorBody"))
        );
    }

    #[test]
    fn a_type_named_twice_is_fine() {
        let r = OpenApiRouter::<SharedState>::new()
            .documented(routes!(first))
            .documented(routes!(again));
        assert!(r.get_openapi().components.is_some());
    }

    #[test]
    #[should_panic(expected = "OpenAPI schema `Answer`")]
    fn two_types_with_one_name_are_refused() {
        let _ = OpenApiRouter::<SharedState>::new()
            .documented(routes!(first))
            .documented(routes!(second));
    }

    #[test]
    #[should_panic(expected = "OpenAPI schema `Answer`")]
    fn two_modules_with_one_name_are_refused() {
        let one = OpenApiRouter::<SharedState>::new().documented(routes!(first));
        let two = OpenApiRouter::<SharedState>::new().documented(routes!(second));
        let _ = one.documented_merge(two);
    }
}
