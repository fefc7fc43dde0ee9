//! Recall effort levels (`recall_level`): the seed's budgets for span recall and rehydration.

/// Budgets of one level.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// The level's name.
    pub name: &'static str,
    /// Default and maximum spans a query returns.
    pub limit_spans: (i64, i64),
    /// Whether a query may scan archived messages.
    pub deep_allowed: bool,
    /// Most spans a deep scan visits.
    pub deep_limit_spans_max: i64,
    /// Most messages a deep scan reads per span.
    pub deep_limit_messages_max: i64,
    /// Default and maximum messages a query renders.
    pub max_messages: (i64, i64),
    /// Default and maximum messages a rehydration inserts.
    pub rehydrate_max_messages: (i64, i64),
}

/// Parses `recall_level`: `Ok(None)` when absent or blank, an error for an unknown level.
pub fn parse(raw: Option<&abstractgateway_plugin_sdk::Value>) -> Result<Option<Policy>, String> {
    use abstractgateway_plugin_sdk::Value;
    let s = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Bool(_)) => return Err("recall_level must be a string".into()),
        Some(v) => crate::util::text_of(Some(v)).trim().to_lowercase(),
    };
    Ok(Some(match s.as_str() {
        "" => return Ok(None),
        "urgent" => Policy {
            name: "urgent",
            limit_spans: (2, 3),
            deep_allowed: false,
            deep_limit_spans_max: 0,
            deep_limit_messages_max: 0,
            max_messages: (30, 60),
            rehydrate_max_messages: (30, 60),
        },
        "standard" => Policy {
            name: "standard",
            limit_spans: (5, 8),
            deep_allowed: true,
            deep_limit_spans_max: 25,
            deep_limit_messages_max: 200,
            max_messages: (80, 150),
            rehydrate_max_messages: (80, 200),
        },
        "deep" => Policy {
            name: "deep",
            limit_spans: (8, 20),
            deep_allowed: true,
            deep_limit_spans_max: 100,
            deep_limit_messages_max: 400,
            max_messages: (200, 600),
            rehydrate_max_messages: (200, 800),
        },
        other => return Err(format!("Unknown recall_level: {other}")),
    }))
}
