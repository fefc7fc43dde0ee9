//! Bundle endpoints (§1.1 #2-#10): list, detail, flow JSON, upload, delete, reload, (un)deprecate.

use std::sync::Arc;

use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::bundle::{Bundle, Limits, install_bytes, read_bundle_bytes, split_bundle_ref};
use crate::error::{ApiError, ApiResult, json_response};
use crate::extract::{BodyFields, QueryParams, json_object, missing_field, multipart_parts};
use crate::runner::catalog;
use crate::state::{AppState, SharedState};

fn ok(v: Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, &v))
}

/// 400 when the gateway is configured for VisualFlow sources rather than bundles.
pub fn require_bundle_mode(st: &AppState) -> Result<(), ApiError> {
    if st.cfg.workflow_source == "visualflow" {
        return Err(ApiError::bad_request(
            "Bundle workflow source is not enabled on this gateway",
        ));
    }
    Ok(())
}

fn entrypoint_json(st: &AppState, b: &Bundle, flow_id: &str, detail: bool) -> Value {
    let ep = b.manifest.entrypoint(flow_id);
    let dep = st.deprecation(b.bundle_id(), flow_id);
    let mut v = json!({
        "flow_id": flow_id,
        "name": ep.and_then(|e| e.name.clone()).unwrap_or_else(|| flow_id.to_string()),
        "description": ep.map(|e| e.description.clone()).unwrap_or_default(),
        "interfaces": ep.map(|e| e.interfaces.clone()).unwrap_or_default(),
        "deprecated": dep.is_some(),
        "deprecated_at": dep.as_ref().and_then(|d| d.get("deprecated_at").cloned()),
        "deprecated_reason": dep.as_ref().and_then(|d| d.get("reason").cloned()),
    });
    if detail && let Value::Object(m) = &mut v {
        m.insert("workflow_id".into(), Value::String(b.workflow_id(flow_id)));
        m.insert(
            "inputs".into(),
            serde_json::to_value(b.entry_inputs(flow_id)).unwrap_or(json!([])),
        );
        m.insert("node_index".into(), Value::Object(b.node_index(flow_id)));
    }
    v
}

/// `BundleSummary` (or `BundleDetail` when `detail`).
pub fn bundle_json(st: &AppState, b: &Bundle, detail: bool) -> Value {
    let eps: Vec<Value> = b
        .manifest
        .entrypoints
        .iter()
        .map(|e| entrypoint_json(st, b, &e.flow_id, detail))
        .collect();
    let mut v = json!({
        "bundle_id": b.bundle_id(), "bundle_version": b.bundle_version(), "bundle_ref": b.bundle_ref(),
        "created_at": b.manifest.created_at, "default_entrypoint": b.manifest.default_entrypoint, "entrypoints": eps,
    });
    if detail && let Value::Object(m) = &mut v {
        m.insert("flows".into(), json!(b.sorted_flow_ids()));
        m.insert(
            "metadata".into(),
            Value::Object(b.manifest.metadata.clone()),
        );
    }
    v
}

/// `GET /api/gateway/bundles`.
pub async fn list(State(st): State<SharedState>, RawQuery(q): RawQuery) -> ApiResult {
    require_bundle_mode(&st)?;
    let mut q = QueryParams::parse(q.as_deref());
    let all = q.bool("all_versions", false);
    let include_dep = q.bool("include_deprecated", false);
    q.finish()?;
    let set = st.bundles.read();
    let bundles: Vec<Arc<Bundle>> = if all {
        set.iter().cloned().collect()
    } else {
        set.latest_bundles().cloned().collect()
    };
    let items: Vec<Value> = bundles
        .iter()
        .filter(|b| {
            include_dep
                || b.manifest.entrypoints.is_empty()
                || b.manifest
                    .entrypoints
                    .iter()
                    .any(|e| st.deprecation(b.bundle_id(), &e.flow_id).is_none())
        })
        .map(|b| bundle_json(&st, b, false))
        .collect();
    ok(json!({"items": items, "default_bundle_id": set.default_bundle_id()}))
}

/// `GET /api/gateway/bundles/{bundle_id}`.
pub async fn get(
    State(st): State<SharedState>,
    Path(bundle_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    require_bundle_mode(&st)?;
    let q = QueryParams::parse(q.as_deref());
    let b = st
        .bundles
        .read()
        .get_bundle(&bundle_id, q.get("bundle_version"))?;
    ok(bundle_json(&st, &b, true))
}

fn flow_answer(b: &Bundle, flow_id: &str) -> ApiResult {
    let Some(flow) = b.raw_flow(flow_id) else {
        return Err(ApiError::not_found(format!("Flow '{flow_id}' not found")));
    };
    let flow: Value = serde_json::from_slice(flow)
        .map_err(|e| ApiError::internal(format!("Invalid flow JSON for '{flow_id}': {e}")))?;
    ok(
        json!({"bundle_id": b.bundle_id(), "bundle_version": b.bundle_version(), "bundle_ref": b.bundle_ref(),
              "flow_id": flow_id, "workflow_id": b.workflow_id(flow_id), "flow": flow}),
    )
}

/// `GET /api/gateway/bundles/{bundle_id}/flows/{flow_id}`.
pub async fn get_flow(
    State(st): State<SharedState>,
    Path((bundle_id, flow_id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    require_bundle_mode(&st)?;
    let q = QueryParams::parse(q.as_deref());
    let (bid, _) = split_bundle_ref(&bundle_id);
    let mut version = q.get("bundle_version").map(str::to_string);
    let mut fid = flow_id.trim().to_string();
    if let Some((prefix, inner)) = flow_id.split_once(':') {
        let (pid, pver) = split_bundle_ref(prefix);
        if pid != bid {
            return Err(ApiError::bad_request(
                "flow_id bundle prefix does not match bundle_id",
            ));
        }
        if let (Some(p), Some(v)) = (&pver, &version)
            && p != v
        {
            return Err(ApiError::bad_request(
                "flow_id version does not match bundle_version",
            ));
        }
        version = version.or(pver);
        fid = inner.trim().to_string();
    }
    let b = st
        .bundles
        .read()
        .get_bundle(&bundle_id, version.as_deref())?;
    flow_answer(&b, &fid)
}

/// `GET /api/gateway/workflows/{workflow_id}/flow`.
pub async fn workflow_flow(
    State(st): State<SharedState>,
    Path(workflow_id): Path<String>,
) -> ApiResult {
    if let Some(flow) = st.gw.dynamic_flow(&workflow_id) {
        return Ok(json_response(
            StatusCode::OK,
            &json!({"workflow_id": workflow_id, "flow": flow, "source": "dynamic"}),
        ));
    }
    if let Some(flow) = st.visualflows.read().get(&workflow_id) {
        return Ok(json_response(
            StatusCode::OK,
            &json!({"workflow_id": workflow_id, "flow": flow, "source": "visualflow"}),
        ));
    }
    let hit = st.bundles.read().find_workflow(&workflow_id);
    match hit {
        Some((b, fid)) => flow_answer(&b, &fid),
        None => Err(ApiError::not_found(format!(
            "Workflow '{workflow_id}' not found"
        ))),
    }
}

fn form_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

fn reload_answer(st: &AppState, reload: bool) -> (bool, Option<String>) {
    if !reload {
        return (false, None);
    }
    st.reload();
    (true, None)
}

/// `POST /api/gateway/bundles/upload` (multipart `file`, `overwrite`, `reload`).
pub async fn upload(State(st): State<SharedState>, mp: Multipart) -> ApiResult {
    require_bundle_mode(&st)?;
    let (mut file, mut overwrite, mut reload) = (None::<Bytes>, false, true);
    for part in multipart_parts(mp).await? {
        let text = || part.text();
        match part.name.as_str() {
            "file" => file = Some(part.data.clone()),
            "overwrite" => {
                overwrite = form_bool(&text()).ok_or_else(|| bool_error("overwrite", text()))?
            }
            "reload" => reload = form_bool(&text()).ok_or_else(|| bool_error("reload", text()))?,
            _ => {}
        }
    }
    let Some(file) = file else {
        return Err(ApiError::validation(vec![missing_field("body", "file")]));
    };
    let max = st.cfg.max_bundle_bytes;
    if max > 0 && file.len() as u64 > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Bundle too large ({} bytes > {max} bytes)", file.len()),
        ));
    }
    // The bundle must load here (node types, the operator's plugin policy, its components) before it is
    // written: a refused bundle never lands in the flows dir. Checking runs sandboxed code (bounded per
    // bundle), so it holds no lock: other uploads, deletes and reloads go on meanwhile.
    let state = st.clone();
    let bytes = file.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let bundle = read_bundle_bytes(&bytes, &Limits::default())
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        catalog::compile_bundle(&bundle, &state.nodes)
            .map(drop)
            .map_err(|e| ApiError::bad_request(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::internal(format!("upload task failed: {e}")))?;
    let _guard = st.reload_lock.lock().await;
    let dir = st.cfg.flows_dir.clone();
    let state = st.clone();
    let published = file.clone();
    let res = tokio::task::spawn_blocking(move || {
        if let Err(e) = checked {
            // Checking may have registered the refused bundle's tool plugins: the installed bundles
            // decide again what is registered.
            state.reload();
            return Err(e);
        }
        install_bytes(&dir, &file, overwrite, &Limits::default())
            .map_err(|e| ApiError::bad_request(e.to_string()))
    })
    .await
    .map_err(|e| ApiError::internal(format!("upload task failed: {e}")))?;
    let (path, bundle) = res?;
    let cluster_error = match (st.bundle_mirror.get(), path.file_name()) {
        (Some(mirror), Some(name)) => mirror
            .installed(name.to_string_lossy().into_owned(), published)
            .await
            .err(),
        _ => None,
    };
    let (reloaded, reload_error) = reload_answer(&st, reload);
    let eps: Vec<Value> = bundle.manifest.entrypoints.iter().map(|e| json!({"flow_id": e.flow_id, "name": e.name.clone().unwrap_or_else(|| e.flow_id.clone()), "description": e.description, "interfaces": e.interfaces})).collect();
    let mut body = json!({"ok": true, "bundle_id": bundle.bundle_id(), "bundle_version": bundle.bundle_version(), "bundle_ref": bundle.bundle_ref(),
              "sha256": bundle.sha256, "default_entrypoint": bundle.manifest.default_entrypoint, "entrypoints": eps,
              "gateway_reloaded": reloaded, "gateway_reload_error": reload_error});
    if let Some(e) = cluster_error {
        // Installed and served here; the other nodes of the cluster do not have it yet.
        body["cluster_sync_error"] = json!(e);
    }
    ok(body)
}

fn bool_error(field: &str, input: String) -> ApiError {
    ApiError::validation(vec![
        json!({"type": "bool_parsing", "loc": ["body", field], "msg": "Input should be a valid boolean, unable to interpret input", "input": input}),
    ])
}

/// `DELETE /api/gateway/bundles/{bundle_id}?bundle_version=&reload=true`.
pub async fn delete(
    State(st): State<SharedState>,
    Path(bundle_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    require_bundle_mode(&st)?;
    let mut q = QueryParams::parse(q.as_deref());
    let reload = q.bool("reload", true);
    q.finish()?;
    let (id, id_ver) = split_bundle_ref(&bundle_id);
    if id.is_empty() {
        return Err(ApiError::bad_request("bundle_id is required"));
    }
    let qver = q
        .get("bundle_version")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    if let (Some(a), Some(b)) = (&id_ver, &qver)
        && a != b
    {
        return Err(ApiError::bad_request(
            "bundle_version conflicts with bundle_id (bundle_id already includes '@version')",
        ));
    }
    let version = qver.or(id_ver);
    let _guard = st.reload_lock.lock().await;
    let targets: Vec<Arc<Bundle>> = {
        let set = st.bundles.read();
        set.iter()
            .filter(|b| {
                b.bundle_id() == id && version.as_deref().is_none_or(|v| b.bundle_version() == v)
            })
            .cloned()
            .collect()
    };
    let mut removed = 0;
    for b in &targets {
        let Some(path) = b.source.path() else {
            continue;
        };
        // Only files inside FLOWS_DIR are ours to delete.
        if !path.starts_with(&st.cfg.flows_dir) {
            continue;
        }
        let res = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        match res {
            Ok(()) => {
                removed += 1;
                if let (Some(mirror), Some(name)) = (st.bundle_mirror.get(), path.file_name())
                    && let Err(e) = mirror.removed(name.to_string_lossy().into_owned()).await
                {
                    tracing::warn!(
                        "bundle {} removed here but not from the cluster: {e}",
                        b.bundle_ref()
                    );
                }
            }
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "Failed to remove bundle {}: {e}",
                    b.bundle_ref()
                )));
            }
        }
    }
    let bundle_ref = match &version {
        Some(v) => format!("{id}@{v}"),
        None => id.clone(),
    };
    if removed == 0 {
        return Err(ApiError::not_found(format!(
            "Bundle '{bundle_ref}' not found"
        )));
    }
    let (reloaded, reload_error) = reload_answer(&st, reload);
    ok(
        json!({"ok": true, "bundle_ref": bundle_ref, "removed": removed, "gateway_reloaded": reloaded, "gateway_reload_error": reload_error}),
    )
}

/// `POST /api/gateway/bundles/reload`.
pub async fn reload(State(st): State<SharedState>) -> ApiResult {
    require_bundle_mode(&st)?;
    let _guard = st.reload_lock.lock().await;
    let ids = st.reload();
    let count = ids.len();
    ok(json!({"ok": true, "bundle_ids": ids, "count": count}))
}

fn deprecation_body(
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Option<String>, Option<String>), ApiError> {
    if body.is_empty() {
        return Ok((None, None));
    }
    let obj = json_object(headers, body)?;
    let mut f = BodyFields::new(&obj);
    let flow_id = f
        .opt_str("flow_id")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let reason = f
        .opt_str("reason")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    f.finish()?;
    Ok((flow_id, reason))
}

/// `POST /api/gateway/bundles/{bundle_id}/deprecate`.
pub async fn deprecate(
    State(st): State<SharedState>,
    Path(bundle_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    require_bundle_mode(&st)?;
    let (flow_id, reason) = deprecation_body(&headers, &body)?;
    let (id, _) = split_bundle_ref(&bundle_id);
    let b = st.bundles.read().get_bundle(&id, None)?;
    let key = match &flow_id {
        Some(f) => {
            let f = f.rsplit(':').next().unwrap_or(f).to_string();
            if b.manifest.entrypoint(&f).is_none() && !b.has_flow(&f) {
                return Err(ApiError::not_found(format!(
                    "Entrypoint '{f}' not found in bundle '{id}'"
                )));
            }
            f
        }
        None => "*".to_string(),
    };
    let at = crate::time::now_iso();
    let mut entry = json!({"deprecated_at": at});
    if let Some(r) = &reason {
        entry["reason"] = Value::String(r.clone());
    }
    st.set_deprecation(&id, &key, Some(entry))
        .map_err(|e| ApiError::internal(format!("Failed to save deprecation: {e}")))?;
    let mut out = json!({"ok": true, "bundle_id": id, "flow_id": key, "deprecated_at": at});
    if let Some(r) = reason {
        out["reason"] = Value::String(r);
    }
    ok(out)
}

/// `POST /api/gateway/bundles/{bundle_id}/undeprecate`.
pub async fn undeprecate(
    State(st): State<SharedState>,
    Path(bundle_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    require_bundle_mode(&st)?;
    let (flow_id, _) = deprecation_body(&headers, &body)?;
    let (id, _) = split_bundle_ref(&bundle_id);
    if id.is_empty() {
        return Err(ApiError::bad_request("bundle_id is required"));
    }
    let key = flow_id
        .map(|f| f.rsplit(':').next().unwrap_or(&f).to_string())
        .unwrap_or_else(|| "*".into());
    let removed = st
        .set_deprecation(&id, &key, None)
        .map_err(|e| ApiError::internal(format!("Failed to save deprecation: {e}")))?;
    ok(json!({"ok": true, "bundle_id": id, "flow_id": key, "removed": removed}))
}
