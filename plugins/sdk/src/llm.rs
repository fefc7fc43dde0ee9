//! Chat completions through the host (it picks the provider; credentials never reach the plugin).

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::bindings::node::abstractgateway::plugin::llm as wit;
use crate::error::{Error, parse_host_json};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Instructions to the model.
    System,
    /// The person (or flow) asking.
    User,
    /// The model.
    Assistant,
    /// A tool's result.
    Tool,
}

impl Role {
    /// The role as chat messages spell it: `system`, `user`, `assistant` or `tool`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

impl FromStr for Role {
    type Err = Error;

    /// Parses `system`, `user`, `assistant` or `tool`; anything else is an `invalid-input` error.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "system" => Ok(Role::System),
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "tool" => Ok(Role::Tool),
            other => Err(Error::invalid_input(format!(
                "unknown message role {other:?}"
            ))),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Role> for wit::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::System => wit::Role::System,
            Role::User => wit::Role::User,
            Role::Assistant => wit::Role::Assistant,
            Role::Tool => wit::Role::Tool,
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// The text.
    pub content: String,
    /// Optional participant name.
    pub name: Option<String>,
    /// For role `tool`: the call this message answers.
    pub tool_call_id: Option<String>,
    /// For role `assistant`: the tool calls it made, as the JSON list a response carried.
    pub tool_calls: Option<Value>,
}

impl Message {
    /// A message with `role` and `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            name: None,
            tool_call_id: None,
            tool_calls: None,
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// A tool result answering the call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(call_id.into()),
            ..Self::new(Role::Tool, content)
        }
    }
}

/// A completion request; every `None` means "the host default".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Request {
    /// Provider id (openai, anthropic, lmstudio, ollama...).
    pub provider: Option<String>,
    /// Model name or alias (must be granted).
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tool specs `[{name, description, parameters}]`.
    pub tools: Option<Value>,
    /// A JSON schema the answer must match.
    pub response_schema: Option<Value>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Output token cap.
    pub max_tokens: Option<u32>,
    /// Sampling seed.
    pub seed: Option<i64>,
    /// Provider-specific options object.
    pub options: Option<Value>,
}

impl Request {
    /// A request with a single user message.
    pub fn prompt(prompt: impl Into<String>) -> Self {
        Request {
            messages: vec![Message::user(prompt)],
            ..Default::default()
        }
    }

    /// Prepends a system message.
    pub fn system(mut self, system: impl Into<String>) -> Self {
        self.messages.insert(0, Message::system(system));
        self
    }

    /// Appends a message.
    pub fn message(mut self, m: Message) -> Self {
        self.messages.push(m);
        self
    }

    /// Sets the provider.
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.provider = Some(provider.into());
        self
    }

    /// Sets the model.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Offers tools (a JSON list of `{name, description, parameters}`).
    pub fn tools(mut self, tools: Value) -> Self {
        self.tools = Some(tools);
        self
    }

    /// Asks for structured output matching `schema`.
    pub fn response_schema(mut self, schema: Value) -> Self {
        self.response_schema = Some(schema);
        self
    }

    /// Sets the temperature.
    pub fn temperature(mut self, t: f64) -> Self {
        self.temperature = Some(t);
        self
    }

    /// Sets the output token cap.
    pub fn max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = Some(n);
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: i64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sends the request (same as [`complete`]).
    pub fn send(self) -> Result<Response, Error> {
        complete(self)
    }
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// Provider's call id, to answer with [`Message::tool_result`].
    pub call_id: Option<String>,
    /// The tool name.
    pub name: String,
    /// The arguments object.
    pub arguments: Value,
}

/// Token counts of one completion.
pub use wit::Usage;

/// One completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The answer text (JSON text when a response schema was given).
    pub content: String,
    /// Reasoning text, when the model exposes it.
    pub reasoning: Option<String>,
    /// Tool calls the model asked for.
    pub tool_calls: Vec<ToolCall>,
    /// stop, length, tool_calls, content_filter...
    pub finish_reason: String,
    /// Token counts.
    pub usage: Usage,
    /// The provider that answered.
    pub provider: String,
    /// The model that answered.
    pub model: String,
}

impl Response {
    /// The content parsed as JSON (for structured output).
    pub fn json(&self) -> Result<Value, Error> {
        serde_json::from_str(&self.content)
            .map_err(|e| Error::invalid_input(format!("model answer is not JSON: {e}")))
    }
}

fn opt_json(v: Option<Value>) -> Option<String> {
    v.map(|v| v.to_string())
}

/// Runs one chat completion.
pub fn complete(req: Request) -> Result<Response, Error> {
    let wreq = wit::Request {
        provider: req.provider,
        model: req.model,
        messages: req
            .messages
            .into_iter()
            .map(|m| wit::Message {
                role: m.role.into(),
                content: m.content,
                name: m.name,
                tool_call_id: m.tool_call_id,
                tool_calls: opt_json(m.tool_calls),
            })
            .collect(),
        tools: opt_json(req.tools),
        response_schema: opt_json(req.response_schema),
        temperature: req.temperature,
        max_tokens: req.max_tokens,
        seed: req.seed,
        options: opt_json(req.options),
    };
    let r = wit::complete(&wreq)?;
    let tool_calls = r
        .tool_calls
        .into_iter()
        .map(|c| {
            Ok(ToolCall {
                arguments: parse_host_json("tool call arguments", &c.arguments)?,
                call_id: c.call_id,
                name: c.name,
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Response {
        content: r.content,
        reasoning: r.reasoning,
        tool_calls,
        finish_reason: r.finish_reason,
        usage: r.usage,
        provider: r.provider,
        model: r.model,
    })
}

/// Sends one user prompt with the host defaults and returns the answer text.
pub fn prompt(prompt: &str) -> Result<String, Error> {
    Ok(complete(Request::prompt(prompt))?.content)
}

/// The models `provider` (none = the host default provider) lists, narrowed to the granted ones.
pub fn list_models(provider: Option<&str>) -> Result<Vec<String>, Error> {
    Ok(wit::list_models(provider)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print_as_chat_messages_spell_them() {
        for r in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
        }
        let e = "User".parse::<Role>().unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::InvalidInput);
        assert_eq!(e.message, "unknown message role \"User\"");
        assert_eq!(Message::tool_result("c", "x").role, Role::Tool);
    }
}
