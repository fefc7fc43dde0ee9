//! The one LLM stand-in of every test (the fixtures' deterministic `fake_llm_server.py`, from the shared
//! test kit), and a provider configuration pointing at it as the goldens' host setup says.

use abstractgateway::llm::LlmConfig;
pub use abstractgateway_testkit::FixtureLlm as FakeLlm;

/// Providers as the goldens were recorded: every OpenAI-compatible one at the stand-in, default
/// lmstudio/fake-model.
pub fn config(fake: &FakeLlm) -> LlmConfig {
    let url = fake.base_url();
    LlmConfig::from_vars(|k| match k {
        "LMSTUDIO_BASE_URL" | "OPENAI_BASE_URL" | "VLLM_BASE_URL" => Some(url.clone()),
        "OPENAI_API_KEY" => Some("sk-fake".into()),
        "ABSTRACTGATEWAY_PROVIDER" => Some("lmstudio".into()),
        "ABSTRACTGATEWAY_MODEL" => Some("fake-model".into()),
        _ => None,
    })
}
