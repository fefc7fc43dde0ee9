//! The cross-cutting layers as one service. Each concern keeps its own module and its own `layer` function;
//! this file only fixes their order.
//!
//! Why not one `from_fn` per concern: each of those boxes its inner service and its future and clones the
//! inner service for every request. Composed here as plain async functions that take the rest of the stack
//! as a closure, the whole stack is one future, boxed once per request.

use std::future::Future;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::state::SharedState;
use super::{audit, auth, limits, metrics, origin, request_id, routes};

/// The rest of the stack below a layer: called at most once with the request, it answers it.
pub trait Rest: FnOnce(Request) -> Self::Answer + Send {
    /// The future of the answer.
    type Answer: Future<Output = Response> + Send;
}

impl<F, A> Rest for F
where
    F: FnOnce(Request) -> A + Send,
    A: Future<Output = Response> + Send,
{
    type Answer = A;
}

/// Layer order, outermost first: metrics → request id → audit → URI cap → origin/CORS → auth (+lockout) →
/// body cap → concurrency → routes (their bare-text rejections become `{"detail"}` bodies).
pub async fn layers(State(st): State<SharedState>, req: Request, routes: Next) -> Response {
    let st = &*st;
    metrics::layer(req, move |req| {
        request_id::layer(st, req, move |req| {
            audit::layer(st, req, move |req| {
                limits::uri_layer(req, move |req| {
                    origin::layer(st, req, move |req| {
                        auth::layer(st, req, move |req| {
                            limits::body_layer(st, req, move |req| {
                                limits::concurrency_layer(st, req, move |req| {
                                    routes::detail_bodies(req, move |req| routes.run(req))
                                })
                            })
                        })
                    })
                })
            })
        })
    })
    .await
}
