//! The OpenAPI 3.1 document of the core API (built from the route table, with the bearer scheme the seed
//! leaves undeclared) and the offline Swagger UI at `/docs`.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, Paths};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, ResponseBuilder};

/// `(method, path, tag, summary, authenticated)` of every route.
pub const ROUTES: &[(&str, &str, &str, &str, bool)] = &[
    (
        "GET",
        "/api/health",
        "health",
        "Liveness, plus bundle load warnings",
        false,
    ),
    (
        "GET",
        "/api/ready",
        "health",
        "Readiness for a load balancer: 200 when this node can serve, else 503 (cluster: connected to the cluster)",
        false,
    ),
    (
        "GET",
        "/api/gateway/bundles",
        "bundles",
        "List loaded bundles",
        true,
    ),
    (
        "GET",
        "/api/gateway/bundles/{bundle_id}",
        "bundles",
        "Bundle detail",
        true,
    ),
    (
        "DELETE",
        "/api/gateway/bundles/{bundle_id}",
        "bundles",
        "Remove a bundle (all versions or one)",
        true,
    ),
    (
        "GET",
        "/api/gateway/bundles/{bundle_id}/flows/{flow_id}",
        "bundles",
        "VisualFlow JSON of one flow",
        true,
    ),
    (
        "POST",
        "/api/gateway/bundles/{bundle_id}/deprecate",
        "bundles",
        "Deprecate a bundle or entrypoint",
        true,
    ),
    (
        "POST",
        "/api/gateway/bundles/{bundle_id}/undeprecate",
        "bundles",
        "Undo a deprecation",
        true,
    ),
    (
        "POST",
        "/api/gateway/bundles/upload",
        "bundles",
        "Install a .flow bundle (multipart)",
        true,
    ),
    (
        "POST",
        "/api/gateway/bundles/reload",
        "bundles",
        "Re-read FLOWS_DIR",
        true,
    ),
    (
        "GET",
        "/api/gateway/workflows/{workflow_id}/flow",
        "bundles",
        "VisualFlow JSON by workflow id",
        true,
    ),
    (
        "POST",
        "/api/gateway/runs/start",
        "runs",
        "Start a run (honours Idempotency-Key)",
        true,
    ),
    (
        "POST",
        "/api/gateway/runs/schedule",
        "runs",
        "Schedule a run (validated; execution not supported yet)",
        true,
    ),
    (
        "GET",
        "/api/gateway/runs",
        "runs",
        "List runs, most recent first",
        true,
    ),
    (
        "GET",
        "/api/gateway/runs/{run_id}",
        "runs",
        "Run summary (with output)",
        true,
    ),
    (
        "GET",
        "/api/gateway/runs/{run_id}/input_data",
        "runs",
        "Start inputs of a run",
        true,
    ),
    (
        "GET",
        "/api/gateway/runs/{run_id}/history_bundle",
        "runs",
        "RunHistoryBundle v1",
        true,
    ),
    (
        "GET",
        "/api/gateway/runs/{run_id}/ledger",
        "ledger",
        "Ledger page after a cursor",
        true,
    ),
    (
        "POST",
        "/api/gateway/runs/ledger/batch",
        "ledger",
        "Ledger pages of several runs",
        true,
    ),
    (
        "GET",
        "/api/gateway/runs/{run_id}/ledger/stream",
        "ledger",
        "Ledger as server-sent events (Bearer or ?stream_token=)",
        true,
    ),
    (
        "POST",
        "/api/gateway/runs/{run_id}/stream_token",
        "ledger",
        "Short-lived token for a browser EventSource",
        true,
    ),
    (
        "GET",
        "/api/gateway/runs/{run_id}/artifacts",
        "artifacts",
        "Artifacts of a run",
        true,
    ),
    (
        "GET",
        "/api/gateway/runs/{run_id}/artifacts/{artifact_id}",
        "artifacts",
        "Artifact metadata",
        true,
    ),
    (
        "GET",
        "/api/gateway/runs/{run_id}/artifacts/{artifact_id}/content",
        "artifacts",
        "Artifact bytes",
        true,
    ),
    (
        "POST",
        "/api/gateway/commands",
        "commands",
        "Submit a durable command (idempotent by command_id)",
        true,
    ),
    (
        "GET",
        "/api/gateway/commands/{command_id}",
        "commands",
        "A command and its outcome",
        true,
    ),
    (
        "POST",
        "/api/gateway/attachments/upload",
        "attachments",
        "Upload a file as an attachment of the session's memory run",
        true,
    ),
    (
        "POST",
        "/api/gateway/attachments/ingest",
        "attachments",
        "Store a workspace file as an attachment of the session's memory run",
        true,
    ),
    (
        "POST",
        "/api/gateway/runs/{run_id}/summary",
        "observer",
        "An LLM summary of the run from its ledger digest (recorded as abstract.summary)",
        true,
    ),
    (
        "POST",
        "/api/gateway/runs/{run_id}/chat",
        "observer",
        "Ask an LLM about the run, grounded in its ledger (persist: recorded as abstract.chat)",
        true,
    ),
    (
        "POST",
        "/api/gateway/runs/{run_id}/chat_threads",
        "observer",
        "Save a chat thread as an artifact of the run (recorded as abstract.chat.thread)",
        true,
    ),
    (
        "POST",
        "/api/gateway/runs/{run_id}/voice/tts",
        "voice",
        "Speak a text into an audio artifact of the run (recorded as abstract.voice.tts)",
        true,
    ),
    (
        "POST",
        "/api/gateway/runs/{run_id}/audio/transcribe",
        "voice",
        "Transcribe an audio artifact of the run or its session (recorded as abstract.audio.transcript)",
        true,
    ),
    (
        "GET",
        "/api/gateway/audit/tail",
        "audit",
        "Tail of the audit log",
        true,
    ),
    (
        "GET",
        "/api/gateway/discovery/tools",
        "discovery",
        "Tools a run may allow",
        true,
    ),
    (
        "GET",
        "/api/gateway/discovery/capabilities",
        "discovery",
        "Optional parts of the gateway and whether they are installed",
        true,
    ),
    (
        "GET",
        "/api/gateway/discovery/providers",
        "discovery",
        "LLM providers (include_models: their live model lists) and the default route",
        true,
    ),
    (
        "GET",
        "/api/gateway/discovery/providers/{provider}/models",
        "discovery",
        "The models one provider lists now",
        true,
    ),
    (
        "GET",
        "/api/gateway/discovery/models/capabilities",
        "discovery",
        "What a client may assume of a model (model_name)",
        true,
    ),
    (
        "POST",
        "/api/gateway/kg/query",
        "kg",
        "Query the knowledge-graph memory (run, session, global or all owners)",
        true,
    ),
    (
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics (open with ABSTRACTGATEWAY_METRICS_PUBLIC)",
        true,
    ),
];

fn method(m: &str) -> HttpMethod {
    match m {
        "POST" => HttpMethod::Post,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The document served at `/openapi.json`.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for (m, path, tag, summary, auth) in ROUTES {
        let mut op = OperationBuilder::new()
            .tag(*tag)
            .summary(Some(*summary))
            .response("200", ResponseBuilder::new().description("Success").build());
        if *auth {
            op = op
                .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
                .response(
                    "401",
                    ResponseBuilder::new()
                        .description("Missing or invalid token")
                        .build(),
                );
        }
        paths.add_path_operation(*path, vec![method(m)], op.build());
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("abstractgateway")
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
                )
                .build(),
        ))
        .build()
}
