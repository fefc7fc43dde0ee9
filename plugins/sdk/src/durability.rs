//! The run's durable context: idempotency keys, durable waits and client-visible events.

use serde_json::{Map, Value};

use crate::bindings::node::abstractgateway::plugin::durability as wit;
use crate::error::{Error, parse_host_json};

/// A key stable across replays of this call site; pass it to remote services so a retry is not applied twice.
pub fn idempotency_key() -> String {
    wit::idempotency_key()
}

/// What a node shows clients while its run waits (WIT `wait-request`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WaitRequest {
    /// `User` and `Key`: the literal wait key a resume command names; `Event`: the session event name.
    pub name: String,
    /// The question shown to a person.
    pub prompt: Option<String>,
    /// The answers offered to a person.
    pub choices: Option<Vec<String>>,
    /// Anything else shown in the run's wait.
    pub details: Map<String, Value>,
}

/// What a node waits for (WIT `wait`); build it with [`Wait::user`], [`Wait::key`] or [`Wait::event`].
#[derive(Debug, Clone, PartialEq)]
pub enum Wait {
    /// A person's answer, as `ask_user` waits: resumed by a command naming the wait key.
    User(WaitRequest),
    /// An event on the literal wait key (resumed by a command naming it).
    Key(WaitRequest),
    /// The session event `name` (`emit_event`, or a resume with its wait key).
    Event(WaitRequest),
}

impl Wait {
    /// A wait for a person's answer on the wait key `name`.
    pub fn user(name: impl Into<String>) -> Self {
        Wait::User(request(name))
    }

    /// A wait for an event on the literal wait key `name`.
    pub fn key(name: impl Into<String>) -> Self {
        Wait::Key(request(name))
    }

    /// A wait for the session event `name`.
    pub fn event(name: impl Into<String>) -> Self {
        Wait::Event(request(name))
    }

    /// What the wait shows clients.
    pub fn request(&self) -> &WaitRequest {
        match self {
            Wait::User(r) | Wait::Key(r) | Wait::Event(r) => r,
        }
    }

    fn request_mut(&mut self) -> &mut WaitRequest {
        match self {
            Wait::User(r) | Wait::Key(r) | Wait::Event(r) => r,
        }
    }

    /// The same wait asking `prompt`.
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.request_mut().prompt = Some(prompt.into());
        self
    }

    /// The same wait offering `choices`.
    pub fn choices(mut self, choices: Vec<String>) -> Self {
        self.request_mut().choices = Some(choices);
        self
    }

    /// The same wait showing `value` under `key` in its details.
    pub fn detail(mut self, key: impl Into<String>, value: Value) -> Self {
        self.request_mut().details.insert(key.into(), value);
        self
    }
}

fn request(name: impl Into<String>) -> WaitRequest {
    WaitRequest {
        name: name.into(),
        ..Default::default()
    }
}

impl From<&Wait> for wit::Wait {
    fn from(w: &Wait) -> Self {
        let r = w.request();
        let req = wit::WaitRequest {
            name: r.name.clone(),
            prompt: r.prompt.clone(),
            choices: r.choices.clone(),
            details: Value::Object(r.details.clone()).to_string(),
        };
        match w {
            Wait::User(_) => wit::Wait::User(req),
            Wait::Key(_) => wit::Wait::Key(req),
            Wait::Event(_) => wit::Wait::Event(req),
        }
    }
}

/// Suspends the node until what `w` waits for arrives (the run waits durably); returns the payload that
/// resumed it. The node then runs again from the start, every earlier host call answered from the ledger.
pub fn wait(w: &Wait) -> Result<Value, Error> {
    let payload = wit::await_(&wit::Wait::from(w))?;
    if payload.trim().is_empty() {
        return Ok(Value::Null);
    }
    parse_host_json("wait payload", &payload)
}

/// Suspends the node until the session event `name` reaches the run; returns its payload.
pub fn await_event(name: &str) -> Result<Value, Error> {
    wait(&Wait::event(name))
}

/// Records and streams a client-visible event.
pub fn emit(name: &str, payload: &Value) {
    wit::emit(name, &payload.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn waits_carry_their_kind_prompt_and_details() {
        let w = Wait::user("k")
            .prompt("Approve?")
            .detail("mode", json!("m"));
        let wire = wit::Wait::from(&w);
        let wit::Wait::User(req) = wire else {
            panic!("not a user wait: {wire:?}")
        };
        assert_eq!(req.name, "k");
        assert_eq!(req.prompt.as_deref(), Some("Approve?"));
        assert_eq!(req.choices, None);
        assert_eq!(req.details, r#"{"mode":"m"}"#);
        assert!(matches!(
            wit::Wait::from(&Wait::key("v")),
            wit::Wait::Key(_)
        ));
        let e = wit::Wait::from(&Wait::event("e").choices(vec!["a".into()]));
        assert!(
            matches!(e, wit::Wait::Event(r) if r.details == "{}" && r.choices == Some(vec!["a".into()]))
        );
    }
}
