//! What the plugin host reports to the process's metrics recorder (with none installed, nothing is kept): node
//! executions and their duration by component, host calls by capability and outcome, and instances in use. The
//! names are listed, with the rest, in `docs/api.md` ("Metrics").

use std::time::Duration;

use abstractgateway_runner::metrics::Labels;

/// Component labels: plugin names come from bundles, so their set is bounded like any client-named label.
static COMPONENTS: Labels = Labels::new(500);

/// One node execution ended with `outcome` (`completed`, `failed`, `suspended`, `cancelled`) after `took`.
pub(crate) fn node_executed(component: &str, outcome: &'static str, took: Duration) {
    let component = COMPONENTS.get(component);
    metrics::counter!("abstractgateway_plugin_node_executions_total", "component" => component.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("abstractgateway_plugin_node_seconds", "component" => component)
        .record(took.as_secs_f64());
}

/// One live host call (replayed answers are not calls) ended `ok` or with an `error`.
pub(crate) fn host_call(capability: &'static str, ok: bool) {
    let outcome = if ok { "ok" } else { "error" };
    metrics::counter!("abstractgateway_host_calls_total", "capability" => capability, "outcome" => outcome)
        .increment(1);
}

/// An instance slot in use (admission granted), for as long as it lives.
pub(crate) struct InstanceInUse(&'static str);

impl InstanceInUse {
    /// `class` is the admission class: `general` (third-party code) or `reserved` (built-in components).
    pub(crate) fn start(class: &'static str) -> InstanceInUse {
        metrics::gauge!("abstractgateway_plugin_instances_in_use", "class" => class).increment(1.0);
        InstanceInUse(class)
    }
}

impl Drop for InstanceInUse {
    fn drop(&mut self) {
        metrics::gauge!("abstractgateway_plugin_instances_in_use", "class" => self.0)
            .decrement(1.0);
    }
}
