//! The OpenAPI 3.1 document of the API, served at `/openapi.json` with the offline Swagger UI at `/docs`.
//!
//! Nothing here lists routes or shapes: the handlers' `#[utoipa::path]` annotations and the derives on the types
//! they parse and answer with (`crate::wire`, `crate::error::ErrorBody`) make the document, and `routes::router`
//! builds the route table and the document from one list, so the two cannot drift. What is the same for every
//! operation is added here once ([`finish`]): the bearer scheme the seed leaves undeclared, the 401 of the routes
//! the auth layer guards, the 422 of every operation that validates parameters or a body, and the `{"detail"}`
//! shape of every other error.

use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::error::ErrorBody;

/// The parts of the document that are not operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "abstractgateway",
        description = "Durable workflow host: the AbstractGateway 0.2.1 API (same paths, bodies and errors) plus \
                       the additions listed in docs/api.md. Every error answers `{\"detail\": ...}`: a message, or \
                       FastAPI's list of validation issues for a 422."
    ),
    components(schemas(ErrorBody))
)]
pub struct Doc;

/// Adds what every operation shares (see the module doc) to the document `routes::router` collected.
pub fn finish(doc: &mut utoipa::openapi::OpenApi) {
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let components = doc
        .components
        .get_or_insert_with(utoipa::openapi::Components::new);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let guarded = crate::auth::guarded_path(path);
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            add_shared_answers(op, guarded);
        }
    }
}

fn add_shared_answers(op: &mut Operation, guarded: bool) {
    let answers = &mut op.responses.responses;
    if guarded {
        op.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        answers
            .entry("401".into())
            .or_insert_with(|| error_answer("Missing or invalid bearer token"));
    }
    let validates =
        op.request_body.is_some() || op.parameters.as_ref().is_some_and(|ps| !ps.is_empty());
    if validates {
        answers.entry("422".into()).or_insert_with(|| {
            error_answer(
                "A parameter or the body is invalid: `detail` lists each issue (FastAPI's shape)",
            )
        });
    }
    answers.entry("default".into()).or_insert_with(|| {
        error_answer(
            "Any other error (400, 404, 409, 413, 429, 500, 503…): `{\"detail\": message}`",
        )
    });
}

fn error_answer(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}
