//! `provider_models`: the model catalogue of one provider, optionally narrowed to an allow-list
//! (flow-format §4 E). A data node: the engine evaluates it before the node that reads its pins.

use abstractgateway_plugin_sdk::{Error, Invocation, Outputs, Value, json};

use crate::host::Host;

/// Non-empty trimmed strings of a JSON list; anything else is no list.
fn str_list(v: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(items)) = v else {
        return vec![];
    };
    items
        .iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// A capability filter as the seed accepts it: a non-empty string or list of strings.
fn route_filter(v: Option<&Value>) -> Option<Value> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(Value::String(s.trim().into())),
        Value::Array(a) if a.iter().any(|x| !x.to_string().trim().is_empty()) => {
            Some(Value::Array(a.clone()))
        }
        _ => None,
    }
}

/// Runs one `provider_models` node: the `provider` pin (else `providerModelsConfig.provider`), the
/// `allowed_models` pin (else the config's `allowedModels`), the catalogue in the provider's order.
pub fn run(h: &mut dyn Host, inv: &Invocation) -> Result<Outputs, Error> {
    let empty = json!({});
    let cfg = inv
        .config_value("providerModelsConfig")
        .filter(|c| c.is_object())
        .unwrap_or(&empty);
    let provider = inv
        .input("provider")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .or_else(|| cfg.get("provider").and_then(Value::as_str))
        .unwrap_or_default()
        .trim()
        .to_string();
    if provider.is_empty() {
        return Ok(outputs(&provider, vec![]));
    }
    let mut allowed = str_list(inv.input("allowed_models"));
    if allowed.is_empty() {
        allowed = str_list(cfg.get("allowedModels"));
    }
    if allowed.is_empty() {
        allowed = str_list(cfg.get("allowed_models"));
    }
    let routes = ["capability_route", "capability_routes"]
        .iter()
        .find_map(|k| route_filter(inv.input(k)))
        .or_else(|| {
            [
                "capabilityRoute",
                "capability_route",
                "capabilityRoutes",
                "capability_routes",
            ]
            .iter()
            .find_map(|k| route_filter(cfg.get(*k)))
        });
    if let Some(routes) = routes {
        // The seed filters by its own model-capability table, which this gateway does not have.
        let mut out = outputs(&provider, vec![]);
        out.insert(
            "error".into(),
            json!(format!(
                "Invalid capability_route filter: this gateway has no model capability table ({routes})"
            )),
        );
        return Ok(out);
    }
    // As the seed, an unreachable catalogue is an empty list, not a failure.
    let listed = h.list_models(&provider).unwrap_or_default();
    let models = listed
        .into_iter()
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .filter(|m| {
            allowed.is_empty()
                || allowed.contains(m)
                || allowed.contains(&format!("{provider}/{m}"))
        })
        .collect();
    Ok(outputs(&provider, models))
}

fn outputs(provider: &str, models: Vec<String>) -> Outputs {
    let mut out = Outputs::new();
    out.insert("provider".into(), json!(provider));
    out.insert("models".into(), json!(models));
    out
}
