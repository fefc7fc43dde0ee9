//! Packing `.flow` bundles (§1.6): from a root VisualFlow plus its exec-reachable subflows, or from
//! an unpacked bundle directory.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use super::archive::{Limits, MANIFEST_NAME, read_dir_file, read_source_dir, sha256_hex};
use super::error::BundleError;
use super::manifest::{
    BUNDLE_FORMAT_VERSION, DEFAULT_BUNDLE_VERSION, Entrypoint, Manifest, PathMap, check_relpath,
};
use super::namespace::{node_id, node_type, subflow_target};

/// Options of [`pack`]; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct PackOptions {
    /// Defaults to the root flow's id.
    pub bundle_id: Option<String>,
    /// Defaults to `0.0.0`.
    pub bundle_version: Option<String>,
    /// Where `<subflow_id>.json` files are looked up; defaults to the root file's directory.
    pub flows_dir: Option<PathBuf>,
    /// Entrypoints besides the root (their subflows are collected too).
    pub extra_entrypoints: Vec<String>,
    /// Defaults to the root flow.
    pub default_entrypoint: Option<String>,
    /// Free-form `manifest.metadata`.
    pub metadata: Map<String, Value>,
    /// Defaults to now (UTC ISO); set it for reproducible output.
    pub created_at: Option<String>,
}

fn pack_err(msg: impl Into<String>) -> BundleError {
    BundleError::Pack(msg.into())
}

/// Packs `root_flow` and every subflow reachable through exec-reachable `subflow` nodes into `out`.
pub fn pack(root_flow: &Path, out: &Path, opts: &PackOptions) -> Result<Manifest, BundleError> {
    let root_bytes = fs::read(root_flow).map_err(|e| BundleError::io(root_flow, e))?;
    let root = parse_flow(&root_bytes, root_flow)?;
    let root_id = flow_id_of(&root)
        .ok_or_else(|| pack_err(format!("root flow {} is missing 'id'", root_flow.display())))?;
    let flows_dir = match &opts.flows_dir {
        Some(d) => d.clone(),
        None => root_flow
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    if !flows_dir.is_dir() {
        return Err(pack_err(format!(
            "flows_dir does not exist: {}",
            flows_dir.display()
        )));
    }

    let mut entry_ids = vec![root_id.clone()];
    for extra in &opts.extra_entrypoints {
        let extra = extra.trim();
        if !extra.is_empty() && !entry_ids.iter().any(|e| e == extra) {
            entry_ids.push(extra.to_string());
        }
    }
    let default_entrypoint = match opts.default_entrypoint.as_deref().map(str::trim) {
        Some(de) if !de.is_empty() => {
            if !entry_ids.iter().any(|e| e == de) {
                return Err(pack_err(format!(
                    "default_entrypoint '{de}' must be one of: {}",
                    entry_ids.join(", ")
                )));
            }
            de.to_string()
        }
        _ => root_id.clone(),
    };

    let mut collector = Collector {
        dir: flows_dir,
        loaded: BTreeMap::from([(root_id.clone(), (root, root_bytes))]),
        missing: BTreeSet::new(),
    };
    collector.collect(&entry_ids);
    if !collector.missing.is_empty() {
        return Err(pack_err(format!(
            "Missing referenced subflows in flows_dir {}: [{}]",
            collector.dir.display(),
            collector.missing.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }

    let entrypoints = entry_ids
        .iter()
        .map(|fid| {
            let flow = collector.loaded.get(fid).map(|(v, _)| v);
            let text = |key: &str| {
                flow.and_then(|f| f.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let name = text("name");
            Entrypoint {
                flow_id: fid.clone(),
                name: Some(if name.trim().is_empty() {
                    fid.clone()
                } else {
                    name
                }),
                description: text("description"),
                interfaces: flow
                    .and_then(|f| f.get("interfaces"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();

    let manifest = Manifest {
        bundle_format_version: BUNDLE_FORMAT_VERSION.into(),
        bundle_id: opts
            .bundle_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(&root_id)
            .to_string(),
        bundle_version: opts
            .bundle_version
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_BUNDLE_VERSION)
            .to_string(),
        created_at: opts.created_at.clone().unwrap_or_else(crate::time::now_iso),
        entrypoints,
        default_entrypoint: Some(default_entrypoint),
        flows: collector
            .loaded
            .keys()
            .map(|fid| (fid.clone(), format!("flows/{fid}.json")))
            .collect(),
        artifacts: PathMap::new(),
        assets: PathMap::new(),
        metadata: opts.metadata.clone(),
        plugins: Vec::new(),
    };
    let files: Vec<(String, Vec<u8>)> = collector
        .loaded
        .into_iter()
        .map(|(fid, (_, bytes))| (format!("flows/{fid}.json"), bytes))
        .collect();
    write_bundle_zip(out, &manifest, &files)?;
    Ok(manifest)
}

/// Zips an unpacked bundle directory into `out` after reading it with every check of the reader.
///
/// Flow files are copied byte for byte; files named in `manifest.assets` and `manifest.artifacts`
/// are copied too and must exist. `manifest.plugins` files are copied; a plugin `sha256` of `""` or
/// `"auto"` is replaced by the file's digest, and any other value must match the file (a bundle the
/// component host would refuse is not worth writing). The manifest is written in canonical form.
pub fn pack_dir(dir: &Path, out: &Path) -> Result<Manifest, BundleError> {
    let limits = Limits::default();
    if !dir.is_dir() {
        return Err(pack_err(format!(
            "{} is not a bundle directory",
            dir.display()
        )));
    }
    let bundle = read_source_dir(dir, &limits)?;
    let mut manifest = bundle.manifest.clone();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for ((_, path), (_, bytes)) in manifest.flows.iter().zip(&bundle.raw_flows) {
        files.push((path.to_string(), bytes.clone()));
    }
    for (i, ((decl, bytes), slot)) in bundle
        .plugins
        .iter()
        .zip(manifest.plugins.iter_mut())
        .enumerate()
    {
        let actual = sha256_hex(bytes);
        if decl.sha256_pending() {
            slot.sha256 = actual;
        } else if decl.sha256 != actual {
            return Err(pack_err(format!(
                "manifest.plugins[{i}] (\"{}\"): declared sha256 {} does not match file \"{}\" \
                 (sha256 {actual}); fix it or write \"auto\"",
                decl.name(),
                decl.sha256,
                decl.path
            )));
        }
        if !files.iter().any(|(p, _)| *p == decl.path) {
            files.push((decl.path.clone(), bytes.clone()));
        }
    }
    let root = fs::canonicalize(dir).map_err(|e| BundleError::io(dir, e))?;
    for (section, map) in [
        ("assets", &manifest.assets),
        ("artifacts", &manifest.artifacts),
    ] {
        for (key, path) in map.iter() {
            if files.iter().any(|(p, _)| p == path) {
                continue;
            }
            let bytes = read_dir_file(&root, path, &limits)?.ok_or_else(|| {
                BundleError::Missing(format!(
                    "manifest.{section}[\"{key}\"]: file \"{path}\" not found in bundle directory"
                ))
            })?;
            files.push((path.to_string(), bytes));
        }
    }
    write_bundle_zip(out, &manifest, &files)?;
    Ok(manifest)
}

/// Writes a `.flow` zip: `manifest.json` first, then `files` (`(relpath, bytes)`) sorted by relpath,
/// all deflated. The zip is built next to `out` and renamed into place.
pub fn write_bundle_zip(
    out: &Path,
    manifest: &Manifest,
    files: &[(String, Vec<u8>)],
) -> Result<(), BundleError> {
    manifest.validate()?;
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut seen = HashSet::new();
    for (path, _) in &sorted {
        if let Err(why) = check_relpath(path) {
            return Err(pack_err(format!("unsafe path \"{path}\" ({why})")));
        }
        if path == MANIFEST_NAME || !seen.insert(path.as_str()) {
            return Err(pack_err(format!("duplicate bundle file \"{path}\"")));
        }
    }

    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    fs::create_dir_all(&parent).map_err(|e| BundleError::io(&parent, e))?;
    let tmp = parent.join(format!(".pack_{}.flow.tmp", uuid::Uuid::new_v4().simple()));
    let result = write_zip_file(&tmp, manifest, &sorted)
        .and_then(|()| fs::rename(&tmp, out).map_err(|e| BundleError::io(out, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_zip_file(
    path: &Path,
    manifest: &Manifest,
    files: &[&(String, Vec<u8>)],
) -> Result<(), BundleError> {
    let zip_err =
        |e: zip::result::ZipError| BundleError::Zip(format!("writing {}: {e}", path.display()));
    let io_err = |e: std::io::Error| BundleError::io(path, e);
    let file = fs::File::create(path).map_err(io_err)?;
    let mut zip = ZipWriter::new(file);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644)
        .last_modified_time(zip_now());
    zip.start_file(MANIFEST_NAME, options).map_err(zip_err)?;
    zip.write_all(manifest.to_pretty_json().as_bytes())
        .map_err(io_err)?;
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options).map_err(zip_err)?;
        zip.write_all(bytes).map_err(io_err)?;
    }
    let file = zip.finish().map_err(zip_err)?;
    file.sync_all().map_err(io_err)
}

fn zip_now() -> zip::DateTime {
    let now = time::OffsetDateTime::now_utc();
    zip::DateTime::from_date_and_time(
        u16::try_from(now.year()).unwrap_or(1980),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
    )
    .unwrap_or_default()
}

fn parse_flow(bytes: &[u8], path: &Path) -> Result<Value, BundleError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| pack_err(format!("{}: not valid JSON: {e}", path.display())))?;
    if !value.is_object() {
        return Err(pack_err(format!(
            "{}: VisualFlow JSON must be an object",
            path.display()
        )));
    }
    Ok(value)
}

/// The flow's `id` (aliases `flow_id`, `workflow_id`).
fn flow_id_of(flow: &Value) -> Option<String> {
    ["id", "flow_id", "workflow_id"]
        .iter()
        .filter_map(|k| flow.get(*k).and_then(Value::as_str))
        .map(str::trim)
        .find(|s| !s.is_empty())
        .map(str::to_string)
}

/// A flow id usable as a file stem in `flows_dir`.
fn is_safe_stem(id: &str) -> bool {
    !id.is_empty() && id != "." && id != ".." && !id.contains(['/', '\\', '\0'])
}

/// DFS state: flows loaded so far (by id) and ids that could not be resolved.
struct Collector {
    dir: PathBuf,
    loaded: BTreeMap<String, (Value, Vec<u8>)>,
    missing: BTreeSet<String>,
}

impl Collector {
    fn collect(&mut self, roots: &[String]) {
        let mut visited: HashSet<String> = HashSet::new();
        let mut stack: Vec<String> = roots.iter().rev().cloned().collect();
        while let Some(fid) = stack.pop() {
            if !visited.insert(fid.clone()) {
                continue;
            }
            if !self.load(&fid) {
                self.missing.insert(fid);
                continue;
            }
            let Some((flow, _)) = self.loaded.get(&fid) else {
                continue;
            };
            let children = subflow_refs(flow, &fid, &mut self.missing);
            stack.extend(children.into_iter().rev());
        }
    }

    /// Ensures `fid` is loaded from `<dir>/<fid>.json`; false when it cannot be.
    fn load(&mut self, fid: &str) -> bool {
        if self.loaded.contains_key(fid) {
            return true;
        }
        if !is_safe_stem(fid) {
            return false;
        }
        let path = self.dir.join(format!("{fid}.json"));
        let Ok(bytes) = fs::read(&path) else {
            return false;
        };
        match parse_flow(&bytes, &path) {
            Ok(flow) => {
                self.loaded.insert(fid.to_string(), (flow, bytes));
                true
            }
            Err(_) => false,
        }
    }
}

/// Child flow ids of the exec-reachable `subflow` nodes of `flow`, in node order.
fn subflow_refs(flow: &Value, fid: &str, missing: &mut BTreeSet<String>) -> Vec<String> {
    let reachable = exec_reachable(flow);
    let mut out = Vec::new();
    let Some(nodes) = flow.get("nodes").and_then(Value::as_array) else {
        return out;
    };
    for node in nodes.iter().filter(|n| n.is_object()) {
        if node_type(node) != "subflow" {
            continue;
        }
        let nid = node_id(node);
        if !reachable.is_empty() && !reachable.contains(&nid) {
            continue;
        }
        let sub = subflow_target(node);
        match sub {
            Some(s) => out.push(s.to_string()),
            None => {
                missing.insert(format!(
                    "<missing-subflow-id:{fid}:{}>",
                    if nid.is_empty() { "?" } else { &nid }
                ));
            }
        }
    }
    out
}

fn pins(node: &Value) -> impl Iterator<Item = &Value> {
    let list = |key: &str| {
        node.get("data")
            .and_then(|d| d.get(key))
            .and_then(Value::as_array)
            .or_else(|| node.get(key).and_then(Value::as_array))
            .map(|a| a.as_slice())
            .unwrap_or(&[])
    };
    list("inputs").iter().chain(list("outputs"))
}

/// Exec nodes reachable from the entry (plus `on_event` nodes); empty when the flow has no exec nodes.
fn exec_reachable(flow: &Value) -> HashSet<String> {
    let nodes: &[Value] = flow
        .get("nodes")
        .and_then(Value::as_array)
        .map_or(&[], |a| a.as_slice());
    let exec: Vec<(String, String)> = nodes
        .iter()
        .filter(|n| n.is_object())
        .map(|n| (node_id(n), n))
        .filter(|(id, n)| {
            !id.is_empty()
                && pins(n).any(|p| p.get("type").and_then(Value::as_str) == Some("execution"))
        })
        .map(|(id, n)| (id, node_type(n)))
        .collect();
    if exec.is_empty() {
        return HashSet::new();
    }
    let is_exec = |id: &str| exec.iter().any(|(e, _)| e == id);
    let edges: Vec<(String, String)> = flow
        .get("edges")
        .and_then(Value::as_array)
        .map_or(&[][..], |a| a.as_slice())
        .iter()
        .filter(|e| e.get("targetHandle").and_then(Value::as_str) == Some("exec-in"))
        .filter_map(|e| {
            let s = e.get("source").and_then(Value::as_str)?.trim();
            let t = e.get("target").and_then(Value::as_str)?.trim();
            (!s.is_empty() && !t.is_empty()).then(|| (s.to_string(), t.to_string()))
        })
        .collect();

    let mut roots: Vec<String> = Vec::new();
    if let Some(entry) = flow.get("entryNode").and_then(Value::as_str)
        && is_exec(entry)
    {
        roots.push(entry.to_string());
    }
    roots.extend(
        exec.iter()
            .filter(|(_, ty)| ty == "on_event")
            .map(|(id, _)| id.clone()),
    );
    if roots.is_empty() {
        let first_unfed = exec
            .iter()
            .find(|(id, _)| !edges.iter().any(|(_, t)| t == id))
            .or_else(|| exec.first());
        roots.extend(first_unfed.map(|(id, _)| id.clone()));
    }

    let mut reachable = HashSet::new();
    while let Some(cur) = roots.pop() {
        if !reachable.insert(cur.clone()) {
            continue;
        }
        for (s, t) in &edges {
            if *s == cur && is_exec(t) && !reachable.contains(t) {
                roots.push(t.clone());
            }
        }
    }
    reachable
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::read_bundle;
    use crate::test_support::fixture;
    use serde_json::json;

    fn exec_pins() -> Value {
        json!({"inputs": [{"id": "exec-in", "type": "execution"}], "outputs": [{"id": "exec-out", "type": "execution"}]})
    }

    fn node(id: &str, ty: &str, extra: Value) -> Value {
        let mut data = exec_pins();
        if let Value::Object(m) = extra {
            data.as_object_mut().unwrap().extend(m);
        }
        json!({"id": id, "type": ty, "data": data})
    }

    fn exec_edge(s: &str, t: &str) -> Value {
        json!({"source": s, "sourceHandle": "exec-out", "target": t, "targetHandle": "exec-in"})
    }

    fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
        p
    }

    #[test]
    fn packs_reachable_subflows_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let root = write(
            d,
            "root.json",
            &json!({
                "id": "root", "name": "Root", "description": "d", "interfaces": ["abstractcode.agent.v1"],
                "entryNode": "start",
                "nodes": [
                    node("start", "on_flow_start", json!({})),
                    node("s1", "subflow", json!({"subflowId": "child"})),
                    node("self", "subflow", json!({"subflowId": "root"})),
                    node("dead", "subflow", json!({"subflowId": "unreachable"})),
                    node("a", "agent", json!({}))
                ],
                "edges": [exec_edge("start", "s1"), exec_edge("s1", "self"), exec_edge("self", "a")]
            }),
        );
        write(
            d,
            "child.json",
            &json!({"id": "child", "nodes": [node("x", "subflow", json!({"flowId": "grandchild"}))], "edges": []}),
        );
        let grandchild_bytes = b"{\"id\":\"grandchild\",  \"nodes\": []}".to_vec();
        fs::write(d.join("grandchild.json"), &grandchild_bytes).unwrap();
        write(
            d,
            "extra.json",
            &json!({"id": "extra", "name": "", "nodes": []}),
        );

        let out = d.join("out/demo.flow");
        let opts = PackOptions {
            bundle_id: Some("demo".into()),
            bundle_version: Some("1.2.3".into()),
            extra_entrypoints: vec!["extra".into(), "root".into()],
            ..PackOptions::default()
        };
        let m = pack(&root, &out, &opts).unwrap();
        assert_eq!(m.bundle_ref(), "demo@1.2.3");
        assert_eq!(
            m.flows.keys().collect::<Vec<_>>(),
            ["child", "extra", "grandchild", "root"]
        );
        assert_eq!(m.default_entrypoint.as_deref(), Some("root"));
        assert_eq!(m.entrypoints.len(), 2);
        assert_eq!(m.entrypoints[0].name.as_deref(), Some("Root"));
        assert_eq!(m.entrypoints[0].interfaces, ["abstractcode.agent.v1"]);
        assert_eq!(m.entrypoints[1].name.as_deref(), Some("extra"));

        let b = read_bundle(&out, &Limits::default()).unwrap();
        assert_eq!(b.manifest, m);
        assert_eq!(
            b.raw_flow("grandchild").unwrap(),
            grandchild_bytes.as_slice()
        );
        assert_eq!(
            b.flow("root").unwrap()["nodes"][1]["data"]["subflowId"],
            "demo@1.2.3:child"
        );
        assert_eq!(
            b.flow("child").unwrap()["nodes"][0]["data"]["flowId"],
            "demo@1.2.3:grandchild"
        );

        // Entry order in the archive: manifest first, then flows sorted.
        let mut z = zip::ZipArchive::new(fs::File::open(&out).unwrap()).unwrap();
        let names: Vec<String> = (0..z.len())
            .map(|i| z.by_index(i).unwrap().name().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "manifest.json",
                "flows/child.json",
                "flows/extra.json",
                "flows/grandchild.json",
                "flows/root.json"
            ]
        );
        assert_eq!(
            z.by_index(1).unwrap().compression(),
            CompressionMethod::Deflated
        );
        let leftovers: Vec<_> = fs::read_dir(d.join("out")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "only the bundle, no temp file");
    }

    #[test]
    fn missing_subflows_are_reported_and_nothing_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let root = write(
            d,
            "root.json",
            &json!({
                "id": "root", "entryNode": "start",
                "nodes": [
                    node("start", "on_flow_start", json!({})),
                    node("s1", "subflow", json!({"subflowId": "nope"})),
                    node("s2", "subflow", json!({})),
                    node("s3", "subflow", json!({"subflowId": "../etc/passwd"}))
                ],
                "edges": [exec_edge("start", "s1"), exec_edge("s1", "s2"), exec_edge("s2", "s3")]
            }),
        );
        let out = d.join("x.flow");
        let e = pack(&root, &out, &PackOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("Missing referenced subflows"), "{e}");
        assert!(e.contains("nope"), "{e}");
        assert!(e.contains("../etc/passwd"), "{e}");
        assert!(e.contains("<missing-subflow-id:root:s2>"), "{e}");
        assert!(!out.exists());
    }

    #[test]
    fn pack_dir_round_trips_every_fixture_source() {
        let src = fixture("bundles/no-llm/src");
        let tmp = tempfile::tempdir().unwrap();
        for entry in fs::read_dir(&src).unwrap() {
            let dir = entry.unwrap().path();
            let out = tmp.path().join(format!(
                "{}.flow",
                dir.file_name().unwrap().to_string_lossy()
            ));
            let m = pack_dir(&dir, &out).unwrap();
            let from_dir = read_bundle(&dir, &Limits::default()).unwrap();
            let from_zip = read_bundle(&out, &Limits::default()).unwrap();
            assert_eq!(from_zip.manifest, m);
            assert_eq!(from_zip.raw_flows, from_dir.raw_flows);
            assert_eq!(from_zip.flows, from_dir.flows);
        }
    }

    #[test]
    fn pack_dir_refuses_a_zip_file_and_missing_assets() {
        let tmp = tempfile::tempdir().unwrap();
        let e = pack_dir(
            &fixture("bundles/seed/basic-agent.flow"),
            &tmp.path().join("o.flow"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("is not a bundle directory"), "{e}");

        let d = tmp.path().join("b");
        fs::create_dir_all(d.join("flows")).unwrap();
        write(&d.join("flows"), "f.json", &json!({"id": "f", "nodes": []}));
        write(
            &d,
            "manifest.json",
            &json!({"bundle_format_version": "1", "bundle_id": "b", "entrypoints": [{"flow_id": "f"}],
                    "flows": {"f": "flows/f.json"}, "assets": {"logo": "assets/logo.png"}}),
        );
        let out = tmp.path().join("b.flow");
        let e = pack_dir(&d, &out).unwrap_err().to_string();
        assert!(e.contains("manifest.assets[\"logo\"]"), "{e}");
        assert!(!out.exists());
        fs::create_dir_all(d.join("assets")).unwrap();
        fs::write(d.join("assets/logo.png"), [0u8, 1, 2]).unwrap();
        pack_dir(&d, &out).unwrap();
        let mut z = zip::ZipArchive::new(fs::File::open(&out).unwrap()).unwrap();
        assert_eq!(z.by_name("assets/logo.png").unwrap().size(), 3);
    }

    #[test]
    fn reachability_falls_back_to_first_unfed_exec_node() {
        let flow = json!({
            "nodes": [
                node("a", "x", json!({})), node("b", "x", json!({})), node("c", "on_event", json!({})),
                node("d", "x", json!({})), {"id": "p", "type": "literal_string", "data": {"outputs": [{"id": "v", "type": "string"}]}}
            ],
            "edges": [exec_edge("a", "b"), exec_edge("c", "d")]
        });
        let r = exec_reachable(&flow);
        let mut got: Vec<_> = r.into_iter().collect();
        got.sort();
        assert_eq!(
            got,
            ["c", "d"],
            "on_event is a root; a is not used because a root exists"
        );
        let flow = json!({"nodes": [node("b", "x", json!({})), node("a", "x", json!({}))], "edges": [exec_edge("a", "b")]});
        let mut got: Vec<_> = exec_reachable(&flow).into_iter().collect();
        got.sort();
        assert_eq!(got, ["a", "b"]);
    }
}
