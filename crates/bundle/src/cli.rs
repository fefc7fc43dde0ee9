//! Author helpers behind `bundle inspect` and `bundle verify`; they return values the binary prints.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::{Value, json};

use super::archive::{Limits, read_bundle, sha256_hex};
use super::error::BundleError;
use super::model::Bundle;
use super::namespace::{node_id, node_type, subflow_target};

/// Everything worth knowing about a bundle, as JSON: manifest, digest, flows, entrypoints and plugins.
pub fn inspect(path: &Path) -> Result<Value, BundleError> {
    let bundle = read_bundle(path, &Limits::default())?;
    Ok(inspect_bundle(&bundle))
}

/// [`inspect`] for an already loaded bundle.
pub fn inspect_bundle(bundle: &Bundle) -> Value {
    let flows: Vec<Value> = bundle
        .flows
        .iter()
        .map(|(fid, flow)| {
            let nodes = flow.get("nodes").and_then(Value::as_array);
            let mut types: BTreeMap<String, usize> = BTreeMap::new();
            for n in nodes.into_iter().flatten() {
                *types.entry(node_type(n)).or_default() += 1;
            }
            json!({
                "flow_id": fid,
                "workflow_id": bundle.workflow_id(fid),
                "path": bundle.manifest.flows.get(fid),
                "bytes": bundle.raw_flow(fid).map_or(0, <[u8]>::len),
                "name": flow.get("name").cloned().unwrap_or(Value::Null),
                "nodes": nodes.map_or(0, Vec::len),
                "edges": flow.get("edges").and_then(Value::as_array).map_or(0, Vec::len),
                "node_types": types,
            })
        })
        .collect();
    let default = bundle.default_flow().ok();
    let entrypoints: Vec<Value> = bundle
        .manifest
        .entrypoints
        .iter()
        .map(|ep| {
            json!({
                "flow_id": ep.flow_id,
                "name": ep.name,
                "workflow_id": bundle.workflow_id(&ep.flow_id),
                "default": default == Some(ep.flow_id.as_str()),
                "interfaces": ep.interfaces,
                "inputs": bundle.entry_inputs(&ep.flow_id),
            })
        })
        .collect();
    let plugins: Vec<Value> = bundle
        .plugins
        .iter()
        .map(|(decl, bytes)| {
            json!({
                "name": decl.name(),
                "path": decl.path,
                "sha256": decl.sha256,
                "sha256_matches": sha256_hex(bytes) == decl.sha256,
                "size": bytes.len(),
                "grants": decl.grants,
            })
        })
        .collect();
    json!({
        "source": bundle.source.to_string(),
        "sha256": bundle.sha256,
        "bundle_ref": bundle.bundle_ref(),
        "manifest": bundle.manifest.to_value(),
        "flows": flows,
        "entrypoints": entrypoints,
        "plugins": plugins,
    })
}

/// Outcome of [`verify`]: the bundle reads cleanly; `warnings` lists what will bite at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `id@version`.
    pub bundle_ref: String,
    /// Digest as in [`Bundle::sha256`].
    pub sha256: String,
    /// Flow ids in manifest order.
    pub flows: Vec<String>,
    /// Entrypoint flow ids.
    pub entrypoints: Vec<String>,
    /// Problems that do not stop loading (e.g. an entrypoint without a flow file).
    pub warnings: Vec<String>,
}

impl Report {
    /// True when there is nothing to warn about.
    pub fn is_clean(&self) -> bool {
        self.warnings.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "bundle {} (sha256 {})", self.bundle_ref, self.sha256)?;
        writeln!(f, "flows: {}", self.flows.join(", "))?;
        writeln!(f, "entrypoints: {}", self.entrypoints.join(", "))?;
        if self.warnings.is_empty() {
            writeln!(f, "ok")
        } else {
            for w in &self.warnings {
                writeln!(f, "warning: {w}")?;
            }
            Ok(())
        }
    }
}

/// Reads the bundle with every check of the reader, then reports softer problems.
pub fn verify(path: &Path) -> Result<Report, BundleError> {
    let bundle = read_bundle(path, &Limits::default())?;
    Ok(verify_bundle(&bundle))
}

/// [`verify`] for an already loaded bundle.
pub fn verify_bundle(bundle: &Bundle) -> Report {
    let mut warnings = Vec::new();
    for ep in &bundle.manifest.entrypoints {
        if !bundle.has_flow(&ep.flow_id) {
            warnings.push(format!(
                "entrypoint \"{}\" has no file in manifest.flows; starting it fails with \"not found\"",
                ep.flow_id
            ));
        }
    }
    if let Err(e) = bundle.default_flow() {
        warnings.push(format!("no default entrypoint: {e}"));
    }
    for (decl, bytes) in &bundle.plugins {
        let actual = sha256_hex(bytes);
        if actual != decl.sha256 {
            warnings.push(format!(
                "plugin \"{}\" ({}): declared sha256 {} but the file's is {actual}; the component host refuses it",
                decl.name(),
                decl.path,
                decl.sha256
            ));
        }
    }
    for (fid, _) in &bundle.flows {
        let Some(raw) = bundle.raw_flow_json(fid) else {
            continue;
        };
        let declared = raw.get("id").and_then(Value::as_str).unwrap_or("");
        if declared != fid {
            warnings.push(format!(
                "flow \"{fid}\" declares id \"{declared}\"; the host uses the manifest key \"{fid}\""
            ));
        }
        let Some(nodes) = raw.get("nodes").and_then(Value::as_array) else {
            warnings.push(format!("flow \"{fid}\" has no \"nodes\" list"));
            continue;
        };
        for node in nodes.iter().filter(|n| node_type(n) == "subflow") {
            let target = subflow_target(node);
            match target {
                None => warnings.push(format!(
                    "flow \"{fid}\" node \"{}\": subflow node names no flow",
                    node_id(node)
                )),
                Some(t) if !bundle.has_flow(t) => warnings.push(format!(
                    "flow \"{fid}\" node \"{}\": subflow \"{t}\" is not in this bundle (looked up verbatim at run time)",
                    node_id(node)
                )),
                Some(_) => {}
            }
        }
    }
    Report {
        bundle_ref: bundle.bundle_ref(),
        sha256: bundle.sha256.clone(),
        flows: bundle.flow_ids().map(str::to_string).collect(),
        entrypoints: bundle
            .manifest
            .entrypoints
            .iter()
            .map(|ep| ep.flow_id.clone())
            .collect(),
        warnings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::fixture;

    #[test]
    fn inspect_seed_bundle() {
        let v = inspect(&fixture("bundles/seed/basic-agent@0.0.1.flow")).unwrap();
        assert_eq!(v["bundle_ref"], "basic-agent@0.0.1");
        assert_eq!(
            v["sha256"],
            "04636bc12b460630e1638f9412229a6260ee9f9118a0cde0fd1df9589947fb0e"
        );
        assert_eq!(v["manifest"]["default_entrypoint"], "81795ea9");
        let flows = v["flows"].as_array().unwrap();
        assert_eq!(flows.len(), 2);
        let root = flows.iter().find(|f| f["flow_id"] == "81795ea9").unwrap();
        assert_eq!(root["bytes"], 15078);
        assert_eq!(root["workflow_id"], "basic-agent@0.0.1:81795ea9");
        assert_eq!(root["node_types"]["subflow"], 2);
        assert_eq!(root["node_types"]["agent"], 1);
        let ep = &v["entrypoints"][0];
        assert_eq!(ep["default"], true);
        assert_eq!(ep["inputs"][2]["id"], "provider");
        assert_eq!(ep["inputs"][2]["default"], "lmstudio");
    }

    #[test]
    fn verify_reports_soft_problems() {
        for f in [
            "bundles/seed/basic-agent.flow",
            "bundles/upstream/ralph@dev.flow",
            "bundles/no-llm/src/echo-upper@1.0.0",
        ] {
            let r = verify(&fixture(f)).unwrap();
            assert!(r.is_clean(), "{f}: {r}");
        }

        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir_all(d.join("flows")).unwrap();
        std::fs::write(
            d.join("flows/a.json"),
            r#"{"id":"zzz","nodes":[{"id":"s","type":"subflow","data":{"subflowId":"elsewhere"}}]}"#,
        )
        .unwrap();
        std::fs::write(
            d.join("manifest.json"),
            r#"{"bundle_format_version":"1","bundle_id":"b","entrypoints":[{"flow_id":"a"},{"flow_id":"ghost"}],"flows":{"a":"flows/a.json"}}"#,
        )
        .unwrap();
        let r = verify(d).unwrap();
        let text = r.to_string();
        assert_eq!(r.warnings.len(), 4, "{text}");
        assert!(text.contains("entrypoint \"ghost\" has no file"), "{text}");
        assert!(text.contains("has 2 entrypoints"), "{text}");
        assert!(text.contains("declares id \"zzz\""), "{text}");
        assert!(
            text.contains("subflow \"elsewhere\" is not in this bundle"),
            "{text}"
        );

        std::fs::write(d.join("flows/a.json"), "[]").unwrap();
        let e = verify(d).unwrap_err().to_string();
        assert_eq!(
            e,
            "flow \"a\" (flows/a.json): must be a JSON object (got list)"
        );
    }
}
