//! `GET /metrics` of the real binary: protected by the token unless the operator opens it, and, after real work
//! (runs of the fixture bundles, a plugin node calling an HTTP stand-in, commands, an SSE client, bad tokens),
//! every documented family reports what happened.

mod binary;
mod in_process;

use std::time::{Duration, Instant};

use binary::{Server, TOKEN, copy_bundles, open_stream};
use in_process::loads::write_steps_bundle;
use in_process::standin::StepServer;
use serde_json::json;

/// The `/metrics` text, scraped with the token.
async fn scrape(s: &Server) -> String {
    let r = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/plain"),
        "{:?}",
        r.headers()
    );
    r.text().await.expect("text")
}

/// The value of the first sample of `name` whose labels include every `labels` pair (`None` if there is none).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (n == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.split(',').any(|p| p == format!("{k}=\"{v}\""))))
            .then(|| value.parse().ok())
            .flatten()
        })
        .next()
}

/// Scrapes until `check` holds (the runner and SSE pump report asynchronously), 20 s at most.
async fn until(s: &Server, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = scrape(s).await;
        if check(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "{what} never showed:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn metrics_need_the_token_and_report_runs_commits_plugins_commands_sse_http_and_auth() {
    let steps = StepServer::start();
    let tmp = tempfile::tempdir().expect("tmp");
    copy_bundles(&tmp.path().join("flows"));
    write_steps_bundle(tmp.path(), &steps.url);
    let s = Server::start_in(
        tmp.path(),
        &[("ABSTRACTGATEWAY_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1")],
    )
    .await;

    // Protected like the API: no token, a wrong one.
    let r = s.client.get(s.url("/metrics")).send().await.expect("get");
    assert_eq!(r.status(), 401);
    let r = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);

    // Work: a pure run, a waiting run answered, a plugin run with host calls, a rejected command, an SSE client.
    let echo = s.start_run("echo-upper", json!({"name": "m"})).await;
    s.wait_status(&echo, "completed").await;
    let ask = s.start_run("ask-user", json!({"name": "m"})).await;
    s.wait_status(&ask, "waiting").await;
    let (st, v) = s
        .command(
            "m-answer",
            &ask,
            "resume",
            json!({"payload": {"response": "ok"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    s.wait_status(&ask, "completed").await;
    let (st, v) = s.command("m-late", &echo, "pause", json!({})).await;
    assert_eq!(st, 200, "{v}");
    s.wait_outcome("m-late").await;
    let plug = s
        .start_run(
            "steps",
            json!({"base_url": steps.url, "count": 2, "journal": "journal"}),
        )
        .await;
    s.wait_status(&plug, "completed").await;
    let waiting = s.start_run("ask-user", json!({"name": "sse"})).await;
    let _sse = open_stream(&s, &waiting, "", None).await;

    let text = until(&s, "the SSE subscriber", |t| {
        sample(t, "abstractgateway_sse_subscribers", &[]).is_some_and(|v| v >= 1.0)
            && sample(
                t,
                "abstractgateway_commands_total",
                &[("type", "pause"), ("outcome", "rejected")],
            )
            .is_some()
    })
    .await;
    let echo_wf = [("workflow", "echo-upper@1.0.0:echo")];
    assert_eq!(
        sample(&text, "abstractgateway_runs_started_total", &echo_wf),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "abstractgateway_runs_finished_total",
            &[
                ("workflow", "echo-upper@1.0.0:echo"),
                ("status", "completed")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "abstractgateway_run_duration_seconds_count",
            &[
                ("workflow", "echo-upper@1.0.0:echo"),
                ("status", "completed")
            ]
        ),
        Some(1.0)
    );
    assert!(sample(&text, "abstractgateway_ready_queue_depth", &[]).is_some());
    for family in [
        "abstractgateway_store_commit_batch_size_count",
        "abstractgateway_store_commit_seconds_count",
        "abstractgateway_store_fsync_seconds_count",
        "abstractgateway_ledger_records_appended_total",
    ] {
        assert!(
            sample(&text, family, &[]).is_some_and(|v| v > 0.0),
            "{family}:\n{text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "abstractgateway_commands_total",
            &[("type", "resume"), ("outcome", "applied")]
        ),
        Some(1.0)
    );
    // The plugin node: one execution of its component, two HTTP calls and their journal writes.
    assert!(
        text.lines().any(
            |l| l.starts_with("abstractgateway_plugin_node_executions_total{")
                && l.contains("outcome=\"completed\"")
                && l.contains("http_steps")
        ),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("abstractgateway_plugin_node_seconds_count{")),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "abstractgateway_host_calls_total",
            &[("capability", "http"), ("outcome", "ok")]
        ),
        Some(2.0)
    );
    assert!(
        sample(
            &text,
            "abstractgateway_host_calls_total",
            &[("capability", "kv"), ("outcome", "ok")]
        )
        .is_some_and(|v| v >= 2.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "abstractgateway_plugin_instances_in_use",
            &[("class", "general")]
        )
        .is_some(),
        "{text}"
    );
    // HTTP by route template, never by raw path; the refused scrapes and their reasons.
    assert!(
        sample(
            &text,
            "abstractgateway_http_requests_total",
            &[
                ("route", "/api/gateway/runs/{run_id}"),
                ("method", "GET"),
                ("status", "200")
            ]
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(!text.contains(&format!("route=\"/api/gateway/runs/{echo}\"")));
    assert_eq!(
        sample(
            &text,
            "abstractgateway_http_requests_total",
            &[("route", "(refused)"), ("status", "401")]
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            "abstractgateway_auth_failures_total",
            &[("reason", "missing")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "abstractgateway_auth_failures_total",
            &[("reason", "invalid")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn the_operator_can_open_metrics_and_lockouts_are_counted() {
    let s = Server::start(&[
        ("ABSTRACTGATEWAY_METRICS_PUBLIC", "1"),
        ("ABSTRACTGATEWAY_LOCKOUT_AFTER", "2"),
    ])
    .await;
    for _ in 0..3 {
        let r = s
            .client
            .get(s.url("/api/gateway/runs"))
            .bearer_auth("wrong")
            .send()
            .await
            .expect("get");
        assert!(matches!(r.status().as_u16(), 401 | 429), "{}", r.status());
    }
    let r = s.client.get(s.url("/metrics")).send().await.expect("get");
    assert_eq!(r.status(), 200, "open without a token");
    let text = r.text().await.expect("text");
    assert!(
        sample(&text, "abstractgateway_auth_lockouts_total", &[]).is_some_and(|v| v >= 1.0),
        "{text}"
    );
}

#[tokio::test]
async fn metrics_turned_off_record_nothing_and_say_so() {
    let s = Server::start(&[("ABSTRACTGATEWAY_METRICS", "0")]).await;
    let (st, v) = s.get("/metrics").await;
    assert_eq!(st, 503, "{v}");
    assert_eq!(
        v["detail"],
        "Metrics are off on this gateway (ABSTRACTGATEWAY_METRICS=0)"
    );
}

/// A resume costs two durable commits: the command's append, then one round that applies it, steps the run to
/// its end and records the outcome. (Applying commands used to commit on its own before the round: three.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_is_applied_and_stepped_in_one_commit() {
    let s = Server::start(&[]).await;
    let commits = |text: &str| {
        sample(text, "abstractgateway_store_commit_seconds_count", &[]).expect("commit count")
    };
    for i in 0..3 {
        let run = s.start_run("ask-user", json!({"name": "Ada"})).await;
        s.wait_status(&run, "waiting").await;
        let before = commits(&scrape(&s).await);
        let id = format!("resume-one-commit-{i}");
        let (st, v) = s
            .command(
                &id,
                &run,
                "resume",
                json!({"payload": {"response": "blue"}}),
            )
            .await;
        assert_eq!(st, 200, "{v}");
        let done = s.wait_status(&run, "completed").await;
        assert_eq!(done["output"]["response"], "Ada  answered:  blue", "{done}");
        assert_eq!(s.wait_outcome(&id).await["status"], "applied");
        let after = commits(&scrape(&s).await);
        assert_eq!(after - before, 2.0, "commits for one resume, run {i}");
    }
}
