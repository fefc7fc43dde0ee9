//! The host calls the nodes make, behind a trait so the node logic runs natively in unit tests.

use abstractgateway_plugin_sdk::durability::{self, Wait};
use abstractgateway_plugin_sdk::llm::{Request, Response};
use abstractgateway_plugin_sdk::{Error, ToolSpec, Value, llm, tools};

/// What the nodes need from the gateway: models, tools and durable waits.
pub trait Host {
    /// One chat completion (`llm.complete`).
    fn complete(&mut self, req: Request) -> Result<Response, Error>;
    /// The tools this plugin may call (`tools.list-tools`).
    fn list_tools(&mut self) -> Result<Vec<ToolSpec>, Error>;
    /// Calls one tool (`tools.invoke`).
    fn invoke(&mut self, name: &str, arguments: &Value) -> Result<Value, Error>;
    /// Suspends until what `w` waits for arrives; returns its payload (`durability.await`).
    fn wait(&mut self, w: &Wait) -> Result<Value, Error>;
    /// A key stable across replays of this call site.
    fn idempotency_key(&mut self) -> String;
    /// The models `provider` lists (`llm.list-models`).
    fn list_models(&mut self, provider: &str) -> Result<Vec<String>, Error>;
}

/// The real host, through the component's WIT imports (each call recorded in the run's ledger).
pub struct Wit;

impl Host for Wit {
    fn complete(&mut self, req: Request) -> Result<Response, Error> {
        llm::complete(req)
    }
    fn list_tools(&mut self) -> Result<Vec<ToolSpec>, Error> {
        tools::list()
    }
    fn invoke(&mut self, name: &str, arguments: &Value) -> Result<Value, Error> {
        tools::invoke(name, arguments)
    }
    fn wait(&mut self, w: &Wait) -> Result<Value, Error> {
        durability::wait(w)
    }
    fn idempotency_key(&mut self) -> String {
        durability::idempotency_key()
    }
    fn list_models(&mut self, provider: &str) -> Result<Vec<String>, Error> {
        llm::list_models(Some(provider))
    }
}
