//! `GET /api/gateway/discovery/*` of the real binary, with the LLM stand-in as the configured provider: tools from
//! the registry, providers with their live model lists and the gateway's default route, the seed's errors.

mod binary;
mod in_process;

use binary::Server;
use in_process::fake_llm::FakeLlm;
use serde_json::{Value, json};

#[tokio::test]
async fn discovery_answers_from_the_registry_and_the_configured_providers() {
    let llm = FakeLlm::start();
    let url = llm.base_url();
    let s = Server::start(&[
        ("LMSTUDIO_BASE_URL", url.as_str()),
        ("ABSTRACTGATEWAY_PROVIDER", "lmstudio"),
        ("ABSTRACTGATEWAY_MODEL", "fake-model"),
        ("ABSTRACTGATEWAY_HTTP_ALLOW_PRIVATE_HOSTS", "127.0.0.1"),
    ])
    .await;

    let (st, v) = s.get("/api/gateway/discovery/tools").await;
    assert_eq!(st, 200, "{v}");
    let items = v["items"].as_array().expect("items");
    let list_files = items
        .iter()
        .find(|t| t["name"] == "list_files")
        .expect("the built-in list_files tool");
    assert_eq!(
        list_files["parameters"]["head_limit"]["default"], 10,
        "{list_files}"
    );
    assert!(
        list_files["description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );

    let (st, v) = s.get("/api/gateway/discovery/capabilities").await;
    assert_eq!(st, 200, "{v}");
    let caps = &v["capabilities"];
    assert_eq!(caps["tools"]["installed"], true, "{v}");
    assert_eq!(caps["tools"]["count"], json!(items.len()), "{v}");
    for part in ["voice", "visualflow", "vision_fallback", "media"] {
        assert!(caps[part]["installed"].is_boolean(), "{part}: {v}");
    }

    let (st, v) = s.get("/api/gateway/discovery/providers").await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (&v["default_provider"], &v["default_model"]),
        (&json!("lmstudio"), &json!("fake-model"))
    );
    let names: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"lmstudio") && names.contains(&"openai"),
        "{names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted by name");

    // With models: the stand-in's list, live; providers that cannot list are left out.
    let (st, v) = s
        .get("/api/gateway/discovery/providers?include_models=true")
        .await;
    assert_eq!(st, 200, "{v}");
    let lm = v["items"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "lmstudio"))
        .unwrap_or_else(|| panic!("lmstudio listed its models: {v}"));
    let models: Vec<&str> = lm["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(models.contains(&"fake-model"), "{lm}");
    assert_eq!(lm["model_count"], json!(models.len()));
    let (st, v) = s
        .get("/api/gateway/discovery/providers?include_models=maybe")
        .await;
    assert_eq!(st, 422, "{v}");

    let (st, v) = s
        .get("/api/gateway/discovery/providers/lmstudio/models")
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["provider"], "lmstudio");
    assert!(
        v["models"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("fake-model"))),
        "{v}"
    );
    // An unknown or hostile provider name is answered, never looked up.
    let long = "x".repeat(5000);
    for p in ["nope", long.as_str()] {
        let (st, v) = s
            .get(&format!("/api/gateway/discovery/providers/{p}/models"))
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["models"], json!([]), "{v}");
        assert!(v["error"].is_string(), "{v}");
        assert!(v["provider"].as_str().is_some_and(|n| n.len() <= 64));
    }

    let (st, v) = s
        .get("/api/gateway/discovery/models/capabilities?model_name=fake-model")
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["model"], "fake-model");
    assert_eq!(v["capabilities"]["max_tokens"], 16384, "{v}");
    let (st, v) = s.get("/api/gateway/discovery/models/capabilities").await;
    assert_eq!(st, 422, "{v}");
    assert_eq!(v["detail"][0]["loc"], json!(["query", "model_name"]));

    // Protected like the rest of the API.
    let r = s
        .client
        .get(s.url("/api/gateway/discovery/tools"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);
}
