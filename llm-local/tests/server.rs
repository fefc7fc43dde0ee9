//! The OpenAI-compatible server over real HTTP, with the real model.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use abstractgateway_llm_local::{MODEL_ID, server};
use serde_json::{Value, json};

/// Starts the server on a free loopback port; returns its base URL.
async fn start() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let model = common::model();
    tokio::spawn(server::serve(listener, model, std::future::pending()));
    format!("http://{addr}")
}

async fn post(base: &str, body: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_a_chat_completion() {
    let base = start().await;
    let body = json!({
        "model": MODEL_ID,
        "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Name a color."}],
        "max_tokens": 8,
        "temperature": 0,
    });
    let (status, text) = post(&base, &body.to_string()).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], MODEL_ID);
    let choice = &v["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    let content = choice["message"]["content"].as_str().unwrap();
    assert!(!content.trim().is_empty(), "{text}");
    assert!(
        matches!(choice["finish_reason"].as_str(), Some("stop" | "length")),
        "{text}"
    );
    let usage = &v["usage"];
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!((1..=8).contains(&completion), "{text}");
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + completion
    );

    // Same request, same greedy answer.
    let (_, again) = post(&base, &body.to_string()).await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["choices"][0]["message"]["content"], content);
}

#[tokio::test(flavor = "multi_thread")]
async fn streams_a_chat_completion_as_sse() {
    let base = start().await;
    let messages = json!([{"role": "user", "content": [{"type": "text", "text": "Say hi."}]}]);
    let (status, text) = post(
        &base,
        &json!({"model": MODEL_ID, "messages": messages, "max_tokens": 10, "stream": true})
            .to_string(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let streamed: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(!streamed.trim().is_empty(), "{text}");

    let finish = &chunks[chunks.len() - 2];
    assert!(
        matches!(
            finish["choices"][0]["finish_reason"].as_str(),
            Some("stop" | "length")
        ),
        "{text}"
    );
    let usage_chunk = &chunks[chunks.len() - 1];
    assert_eq!(usage_chunk["choices"], json!([]));
    assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() >= 1);

    // The stream carries exactly the text of the non-streamed answer.
    let (_, plain) = post(
        &base,
        &json!({"messages": messages, "max_tokens": 10}).to_string(),
    )
    .await;
    let plain: Value = serde_json::from_str(&plain).unwrap();
    assert_eq!(plain["choices"][0]["message"]["content"], streamed.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_openai_style_400s() {
    let base = start().await;
    let cases = [
        ("{not json", None),
        (r#"[1, 2]"#, None),
        (r#"{"model": "x"}"#, Some("messages")),
        (r#"{"messages": []}"#, Some("messages")),
        (
            r#"{"messages": [{"role": "wizard", "content": "hi"}]}"#,
            Some("messages"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": 5}]}"#,
            Some("messages"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": -1}"#,
            Some("max_tokens"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}"#,
            Some("temperature"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}"#,
            Some("stream"),
        ),
        (
            r#"{"messages": [{"role": "user", "content": "hi"}], "n": 2}"#,
            Some("n"),
        ),
    ];
    let too_long =
        json!({"messages": [{"role": "user", "content": "hello ".repeat(5000)}], "stream": true})
            .to_string();
    let cases = cases
        .iter()
        .map(|(b, p)| (b.to_string(), *p))
        .chain([(too_long, Some("messages"))]);
    for (body, param) in cases {
        let body = body.as_str();
        let (status, text) = post(&base, body).await;
        assert_eq!(status, 400, "{body} -> {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{text}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
        if let Some(param) = param {
            assert_eq!(v["error"]["param"], param, "{body} -> {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_the_model() {
    let base = start().await;
    let v: Value = reqwest::get(format!("{base}/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], MODEL_ID);
    let missing = reqwest::get(format!("{base}/v1/nothing")).await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_serves_on_the_port_it_prints() {
    let path = common::model_path();
    let mut child = Command::new(env!("CARGO_BIN_EXE_abstractgateway-llm"))
        .args(["serve", "--port", "0", "--model"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .map(str::to_string);
    let result = async {
        let base = base.ok_or_else(|| format!("unexpected first line {line:?}"))?;
        let (status, text) = post(
            &base,
            r#"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}"#,
        )
        .await;
        if status != 200 {
            return Err(format!("{status}: {text}"));
        }
        Ok::<_, String>(())
    }
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    result.unwrap();
}
