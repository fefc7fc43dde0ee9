//! Retries, deadlines, cancellation, unconfigured providers, and credentials kept out of every
//! serialized value.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

use super::support::{ask, config, openai_answer, serve};
use crate::llm::{CancelToken, ErrorCode, LlmConfig, Providers, RetryPolicy};

/// A configuration for provider `lmstudio` at `base`, with a given retry policy and deadline.
fn lmstudio(base: &str, retry: RetryPolicy, timeout: Duration) -> LlmConfig {
    let mut cfg = config(&[
        ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
        ("ABSTRACTGATEWAY_MODEL", "m"),
        ("LMSTUDIO_BASE_URL", base),
    ]);
    cfg.retry = retry;
    cfg.timeout = timeout;
    cfg
}

/// Serves `POST /v1/chat/completions` with `reply(n)` for the n-th call (1-based); returns the base
/// URL and the call counter.
async fn counting_server(reply: fn(u32) -> axum::response::Response) -> (String, Arc<AtomicU32>) {
    let calls = Arc::new(AtomicU32::new(0));
    let app = axum::Router::new()
        .route(
            "/v1/chat/completions",
            post(move |State(calls): State<Arc<AtomicU32>>| async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                reply(n)
            }),
        )
        .with_state(calls.clone());
    let addr = serve(app).await;
    (format!("http://{addr}/v1"), calls)
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_servers_delay() {
    let (base, calls) = counting_server(|n| {
        if n <= 2 {
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                Json(json!({"error": {"message": "slow down"}})),
            )
                .into_response()
        } else {
            Json(openai_answer("finally")).into_response()
        }
    })
    .await;
    // A computed backoff would wait 30 s: finishing in ~2 s proves Retry-After was used.
    let retry = RetryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_secs(30),
        max_backoff: Duration::from_secs(30),
        max_retry_after: Duration::from_secs(5),
    };
    let providers = Providers::new(lmstudio(&base, retry, Duration::from_secs(60)));
    let started = Instant::now();
    let resp = providers
        .complete(&ask(None, None, "hi"), CancelToken::never())
        .await
        .expect("third attempt succeeds");
    let elapsed = started.elapsed();
    assert_eq!(resp.content, "finally");
    assert_eq!(
        (
            resp.usage.input_tokens,
            resp.usage.output_tokens,
            resp.usage.total_tokens
        ),
        (3, 4, 7)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(
        elapsed >= Duration::from_millis(1900),
        "waited only {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "waited {elapsed:?}");

    // Out of attempts: the rate limit is returned as retryable.
    let one_retry = RetryPolicy {
        max_attempts: 2,
        ..retry
    };
    calls.store(0, Ordering::SeqCst);
    let err = Providers::new(lmstudio(&base, one_retry, Duration::from_secs(60)))
        .complete(&ask(None, None, "hi"), CancelToken::never())
        .await
        .expect_err("two 429s exhaust two attempts");
    assert_eq!(err.code, ErrorCode::RateLimited);
    assert!(err.retryable);
    assert!(
        err.message.contains("slow down") && err.message.contains("after 2 attempts"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn server_errors_stop_after_the_attempt_bound() {
    let (base, calls) =
        counting_server(|_| (StatusCode::INTERNAL_SERVER_ERROR, "model crashed").into_response())
            .await;
    let retry = RetryPolicy {
        max_attempts: 4,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_retry_after: Duration::from_secs(1),
    };
    let providers = Providers::new(lmstudio(&base, retry, Duration::from_secs(60)));
    let err = providers
        .complete(&ask(None, None, "hi"), CancelToken::never())
        .await
        .expect_err("500 forever");
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(err.code, ErrorCode::Internal);
    assert!(err.retryable);
    assert!(
        err.message.contains("HTTP 500") && err.message.contains("model crashed"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn refused_connections_are_retried_then_reported_unavailable() {
    // Bind then drop a listener: the port is free and nothing answers on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let retry = RetryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(1),
    };
    let err = Providers::new(lmstudio(
        &format!("http://127.0.0.1:{port}/v1"),
        retry,
        Duration::from_secs(30),
    ))
    .complete(&ask(None, None, "hi"), CancelToken::never())
    .await
    .expect_err("nothing listens");
    assert_eq!(err.code, ErrorCode::Unavailable);
    assert!(err.retryable);
    assert!(err.message.contains("after 3 attempts"), "{}", err.message);
}

/// A server that accepts requests and never answers them.
async fn silent_server() -> String {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|| async {
            std::future::pending::<()>().await;
            StatusCode::OK
        }),
    );
    format!("http://{}/v1", serve(app).await)
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let base = silent_server().await;
    let providers = Providers::new(lmstudio(
        &base,
        RetryPolicy::default(),
        Duration::from_millis(600),
    ));
    let started = Instant::now();
    let err = providers
        .complete(&ask(None, None, "hi"), CancelToken::never())
        .await
        .expect_err("no answer");
    assert_eq!(err.code, ErrorCode::Timeout);
    assert!(err.retryable);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(550) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );

    // The per-request option overrides the configured deadline.
    let mut req = ask(None, None, "hi");
    req.options = Some(json!({"timeout_s": 0.3}));
    let slow_default = Providers::new(lmstudio(
        &base,
        RetryPolicy::default(),
        Duration::from_secs(300),
    ));
    let started = Instant::now();
    let err = slow_default
        .complete(&req, CancelToken::never())
        .await
        .expect_err("no answer");
    assert_eq!(err.code, ErrorCode::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn cancelling_aborts_the_call_in_flight() {
    let base = silent_server().await;
    let providers = Providers::new(lmstudio(
        &base,
        RetryPolicy::default(),
        Duration::from_secs(300),
    ));
    let (handle, token) = CancelToken::pair();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        handle.cancel();
        handle
    });
    let started = Instant::now();
    let err = providers
        .complete(&ask(None, None, "hi"), token.clone())
        .await
        .expect_err("cancelled");
    assert_eq!(err.code, ErrorCode::Cancelled);
    assert!(!err.retryable);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(token.is_cancelled());

    // An already cancelled token stops the call before it starts.
    let handle = canceller.await.expect("canceller");
    let err = providers
        .complete(&ask(None, None, "again"), handle.token())
        .await
        .expect_err("cancelled");
    assert_eq!(err.code, ErrorCode::Cancelled);
}

#[tokio::test]
async fn cancelling_interrupts_a_backoff_wait() {
    let (base, calls) = counting_server(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [("retry-after", "30")],
            "busy",
        )
            .into_response()
    })
    .await;
    let retry = RetryPolicy {
        max_retry_after: Duration::from_secs(60),
        ..RetryPolicy::default()
    };
    let providers = Providers::new(lmstudio(&base, retry, Duration::from_secs(300)));
    let (handle, token) = CancelToken::pair();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        handle.cancel();
    });
    let started = Instant::now();
    let err = providers
        .complete(&ask(None, None, "hi"), token)
        .await
        .expect_err("cancelled while waiting");
    assert_eq!(err.code, ErrorCode::Cancelled);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn unconfigured_and_unknown_providers_fail_clearly_at_call_time() {
    // Building never fails, whatever is missing.
    let providers = Providers::new(config(&[]));
    let err = providers
        .complete(
            &ask(Some("openai"), Some("gpt-5-mini"), "hi"),
            CancelToken::never(),
        )
        .await
        .expect_err("no key");
    assert_eq!(err.code, ErrorCode::AccessDenied);
    assert!(!err.retryable);
    assert!(
        err.message.contains("OPENAI_API_KEY") && err.message.contains("\"openai\""),
        "{}",
        err.message
    );

    for (provider, var) in [
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("openrouter", "OPENROUTER_API_KEY"),
    ] {
        let err = providers
            .complete(&ask(Some(provider), Some("m"), "hi"), CancelToken::never())
            .await
            .expect_err("no key");
        assert_eq!(err.code, ErrorCode::AccessDenied);
        assert!(err.message.contains(var), "{}", err.message);
    }

    let err = providers
        .complete(&ask(Some("nosuch"), Some("m"), "hi"), CancelToken::never())
        .await
        .expect_err("unknown");
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.message.contains("\"nosuch\""), "{}", err.message);

    let err = providers
        .complete(&ask(Some("mlx"), Some("m"), "hi"), CancelToken::never())
        .await
        .expect_err("in-process only in python");
    assert_eq!(err.code, ErrorCode::Unsupported);

    let err = providers
        .complete(&ask(None, None, "hi"), CancelToken::never())
        .await
        .expect_err("no default");
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(
        err.message.contains("ABSTRACTGATEWAY_PROVIDER"),
        "{}",
        err.message
    );

    let err = providers
        .complete(&ask(Some("lmstudio"), None, "hi"), CancelToken::never())
        .await
        .expect_err("no model");
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(
        err.message.contains("ABSTRACTGATEWAY_MODEL"),
        "{}",
        err.message
    );

    let mut bad = ask(Some("lmstudio"), Some("m"), "hi");
    bad.tools = Some(json!({"name": "not a list"}));
    let err = providers
        .complete(&bad, CancelToken::never())
        .await
        .expect_err("tools must be a list");
    assert_eq!(err.code, ErrorCode::InvalidInput);
}

const OPENAI_KEY: &str = "sk-proj-SECRET-openai-7f3a9c";
const ANTHROPIC_KEY: &str = "sk-ant-SECRET-anthropic-1b2c";

/// An OpenAI-style server that quotes the bearer key back in its 401 message, as some servers do,
/// and answers any other key.
async fn key_quoting_server() -> String {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(|headers: HeaderMap, Json(body): Json<Value>| async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if body["model"] == "reject" {
                let msg = format!(
                    "Incorrect API key provided: {}",
                    auth.trim_start_matches("Bearer ")
                );
                return (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"error": {"message": msg}})),
                )
                    .into_response();
            }
            if body["model"] == "echo-key" {
                // A broken structured answer that quotes the key: the parse error must not.
                return Json(openai_answer(&format!("not json {auth}"))).into_response();
            }
            Json(openai_answer(if auth == format!("Bearer {OPENAI_KEY}") {
                "authorised"
            } else {
                "anonymous"
            }))
            .into_response()
        }),
    );
    format!("http://{}/v1", serve(app).await)
}

#[tokio::test]
async fn no_key_appears_in_any_serialized_value() {
    let base = key_quoting_server().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secrets = dir.path().join("secrets.json");
    std::fs::write(
        &secrets,
        json!({"ANTHROPIC_API_KEY": ANTHROPIC_KEY}).to_string(),
    )
    .expect("write secrets");
    let secrets = secrets.to_string_lossy().to_string();
    let providers = Providers::new(config(&[
        ("ABSTRACTGATEWAY_PROVIDER", "openai"),
        ("ABSTRACTGATEWAY_MODEL", "gpt-5-mini"),
        ("OPENAI_BASE_URL", &base),
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("ABSTRACTGATEWAY_SECRETS_FILE", &secrets),
        ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9"),
    ]));
    let mut serialized = Vec::new();

    let req = ask(None, None, "hi");
    let ok = providers
        .complete(&req, CancelToken::never())
        .await
        .expect("completion");
    assert_eq!(ok.content, "authorised", "the key must reach the server");
    serialized.push(serde_json::to_string(&req).expect("ser"));
    serialized.push(serde_json::to_string(&ok).expect("ser"));

    let rejected = ask(None, Some("reject"), "hi");
    let err = providers
        .complete(&rejected, CancelToken::never())
        .await
        .expect_err("401");
    assert_eq!(err.code, ErrorCode::AccessDenied);
    assert!(err.message.contains("[redacted]"), "{}", err.message);
    serialized.push(serde_json::to_string(&err).expect("ser"));
    serialized.push(err.to_string());

    let mut structured = ask(None, Some("echo-key"), "hi");
    structured.response_schema = Some(json!({"type": "object"}));
    let err = providers
        .complete(&structured, CancelToken::never())
        .await
        .expect_err("not json");
    assert_eq!(err.code, ErrorCode::Internal);
    serialized.push(serde_json::to_string(&err).expect("ser"));

    // The key from the secrets file is used (and kept out of errors) too.
    let err = providers
        .complete(
            &ask(Some("anthropic"), Some("claude"), "hi"),
            CancelToken::never(),
        )
        .await
        .expect_err("nothing listens on port 9");
    assert_eq!(err.code, ErrorCode::Unavailable);
    serialized.push(serde_json::to_string(&err).expect("ser"));

    serialized.push(format!("{providers:?}"));
    serialized.push(format!("{:?}", providers.config()));
    for text in &serialized {
        assert!(
            !text.contains(OPENAI_KEY) && !text.contains(ANTHROPIC_KEY),
            "key leaked in {text}"
        );
        assert!(!text.contains("SECRET"), "key fragment leaked in {text}");
    }
}

#[tokio::test]
async fn https_endpoints_fail_clearly_without_tls() {
    let retry = RetryPolicy {
        base_backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    let mut cfg = config(&[
        ("OPENAI_API_KEY", "sk-openai-test-000"),
        // Nothing listens on port 9: with TLS compiled in, this is a refused connection instead.
        ("OPENAI_BASE_URL", "https://127.0.0.1:9/v1"),
    ]);
    cfg.retry = retry;
    let err = Providers::new(cfg)
        .complete(
            &ask(Some("openai"), Some("gpt-5-mini"), "hi"),
            CancelToken::never(),
        )
        .await
        .expect_err("no https here");
    match err.code {
        ErrorCode::Unsupported => assert!(err.message.contains("TLS"), "{}", err.message),
        ErrorCode::Unavailable => assert!(err.retryable),
        other => panic!("unexpected {other:?}: {}", err.message),
    }
}
