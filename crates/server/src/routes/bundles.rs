//! Bundle endpoints (§1.1 #2-#10): list, detail, flow JSON, upload, delete, reload, (un)deprecate.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Multipart, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::bundle::{Bundle, Limits, install_bytes, read_bundle_bytes, split_bundle_ref};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::runner::catalog;
use crate::state::{AppState, SharedState};
use crate::wire::bundles::{
    BundleDeleteQuery, BundleDeleted, BundleDetail, BundleFlow, BundleList, BundleListQuery,
    BundleSummary, BundleUpload, BundleUploaded, BundleVersionQuery, BundlesReloaded, Deprecated,
    Deprecation, EntrypointDetail, EntrypointInfo, EntrypointSummary, FlowSource, LoadedFlow,
    Undeprecated, WorkflowFlow,
};

/// 400 when the gateway is configured for VisualFlow sources rather than bundles.
pub fn require_bundle_mode(st: &AppState) -> Result<(), ApiError> {
    if st.cfg.workflow_source == "visualflow" {
        return Err(ApiError::bad_request(
            "Bundle workflow source is not enabled on this gateway",
        ));
    }
    Ok(())
}

/// What the manifest declares of `flow_id` (name and description default as the seed's do).
fn entrypoint_info(b: &Bundle, flow_id: &str) -> EntrypointInfo {
    let ep = b.manifest.entrypoint(flow_id);
    EntrypointInfo {
        flow_id: flow_id.to_string(),
        name: ep
            .and_then(|e| e.name.clone())
            .unwrap_or_else(|| flow_id.to_string()),
        description: ep.map(|e| e.description.clone()).unwrap_or_default(),
        interfaces: ep.map(|e| e.interfaces.clone()).unwrap_or_default(),
    }
}

fn entrypoint_summary(st: &AppState, b: &Bundle, flow_id: &str) -> EntrypointSummary {
    let dep = st.deprecation(b.bundle_id(), flow_id);
    EntrypointSummary {
        info: entrypoint_info(b, flow_id),
        deprecated: dep.is_some(),
        deprecated_at: dep.as_ref().and_then(|d| d.get("deprecated_at").cloned()),
        deprecated_reason: dep.as_ref().and_then(|d| d.get("reason").cloned()),
    }
}

fn entrypoint_detail(st: &AppState, b: &Bundle, flow_id: &str) -> EntrypointDetail {
    EntrypointDetail {
        summary: entrypoint_summary(st, b, flow_id),
        workflow_id: b.workflow_id(flow_id),
        inputs: b
            .entry_inputs(flow_id)
            .into_iter()
            .map(Into::into)
            .collect(),
        node_index: b.node_index(flow_id),
    }
}

/// `BundleSummary`.
pub fn bundle_summary(st: &AppState, b: &Bundle) -> BundleSummary {
    BundleSummary {
        bundle_id: b.bundle_id().to_string(),
        bundle_version: b.bundle_version().to_string(),
        bundle_ref: b.bundle_ref(),
        created_at: b.manifest.created_at.clone(),
        default_entrypoint: b.manifest.default_entrypoint.clone(),
        entrypoints: b
            .manifest
            .entrypoints
            .iter()
            .map(|e| entrypoint_summary(st, b, &e.flow_id))
            .collect(),
    }
}

/// `BundleDetail`.
pub fn bundle_detail(st: &AppState, b: &Bundle) -> BundleDetail {
    BundleDetail {
        bundle_id: b.bundle_id().to_string(),
        bundle_version: b.bundle_version().to_string(),
        bundle_ref: b.bundle_ref(),
        created_at: b.manifest.created_at.clone(),
        default_entrypoint: b.manifest.default_entrypoint.clone(),
        entrypoints: b
            .manifest
            .entrypoints
            .iter()
            .map(|e| entrypoint_detail(st, b, &e.flow_id))
            .collect(),
        flows: b.sorted_flow_ids(),
        metadata: b.manifest.metadata.clone(),
    }
}

/// List loaded bundles.
///
/// The latest version of each bundle (every version with `all_versions`); a bundle whose every entrypoint is
/// deprecated is left out unless `include_deprecated`.
#[utoipa::path(get, path = "/api/gateway/bundles", tag = "bundles",
    params(BundleListQuery),
    responses((status = 200, description = "The bundles", body = BundleList),
              (status = 400, description = "The gateway serves VisualFlow files, not bundles", body = ErrorBody)))]
pub async fn list(
    State(st): State<SharedState>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<BundleList>> {
    require_bundle_mode(&st)?;
    let BundleListQuery {
        all_versions,
        include_deprecated,
    } = BundleListQuery::parse(q.as_deref())?;
    let set = st.bundles.read();
    let bundles: Vec<Arc<Bundle>> = if all_versions {
        set.iter().cloned().collect()
    } else {
        set.latest_bundles().cloned().collect()
    };
    let items = bundles
        .iter()
        .filter(|b| {
            include_deprecated
                || b.manifest.entrypoints.is_empty()
                || b.manifest
                    .entrypoints
                    .iter()
                    .any(|e| st.deprecation(b.bundle_id(), &e.flow_id).is_none())
        })
        .map(|b| bundle_summary(&st, b))
        .collect();
    Ok(Json(BundleList {
        items,
        default_bundle_id: set.default_bundle_id().map(str::to_string),
    }))
}

/// Bundle detail.
///
/// The bundle's entrypoints with their workflow ids, start inputs and node index, its flows and its manifest's
/// metadata.
#[utoipa::path(get, path = "/api/gateway/bundles/{bundle_id}", tag = "bundles",
    params(("bundle_id" = String, Path, description = "`id` or `id@version`"), BundleVersionQuery),
    responses((status = 200, description = "The bundle", body = BundleDetail),
              (status = 400, description = "Not in bundle mode, or a version that conflicts with `bundle_id`", body = ErrorBody),
              (status = 404, description = "No such bundle or version", body = ErrorBody)))]
pub async fn get(
    State(st): State<SharedState>,
    Path(bundle_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<BundleDetail>> {
    require_bundle_mode(&st)?;
    let q = BundleVersionQuery::parse(q.as_deref());
    let b = st
        .bundles
        .read()
        .get_bundle(&bundle_id, q.bundle_version.as_deref())?;
    Ok(Json(bundle_detail(&st, &b)))
}

fn flow_answer(b: &Bundle, flow_id: &str) -> Result<BundleFlow, ApiError> {
    let Some(flow) = b.raw_flow(flow_id) else {
        return Err(ApiError::not_found(format!("Flow '{flow_id}' not found")));
    };
    let flow: Value = serde_json::from_slice(flow)
        .map_err(|e| ApiError::internal(format!("Invalid flow JSON for '{flow_id}': {e}")))?;
    Ok(BundleFlow {
        bundle_id: b.bundle_id().to_string(),
        bundle_version: b.bundle_version().to_string(),
        bundle_ref: b.bundle_ref(),
        flow_id: flow_id.to_string(),
        workflow_id: b.workflow_id(flow_id),
        flow,
    })
}

/// VisualFlow JSON of one flow.
///
/// The flow as stored in the bundle. `flow_id` may carry the bundle prefix (`bundle[@version]:flow`), which must
/// agree with `bundle_id` and `bundle_version`.
#[utoipa::path(get, path = "/api/gateway/bundles/{bundle_id}/flows/{flow_id}", tag = "bundles",
    params(("bundle_id" = String, Path, description = "`id` or `id@version`"),
           ("flow_id" = String, Path, description = "`flow` or `bundle[@version]:flow`"),
           BundleVersionQuery),
    responses((status = 200, description = "The flow", body = BundleFlow),
              (status = 400, description = "Not in bundle mode, or a prefix or version that disagrees", body = ErrorBody),
              (status = 404, description = "No such bundle, version or flow", body = ErrorBody)))]
pub async fn get_flow(
    State(st): State<SharedState>,
    Path((bundle_id, flow_id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<BundleFlow>> {
    require_bundle_mode(&st)?;
    let q = BundleVersionQuery::parse(q.as_deref());
    let (bid, _) = split_bundle_ref(&bundle_id);
    let mut version = q.bundle_version;
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
    Ok(Json(flow_answer(&b, &fid)?))
}

/// VisualFlow JSON by workflow id.
///
/// A generated flow (a schedule's wrapper), a loose VisualFlow file, else the bundle flow the id names
/// (`bundle[@version]:flow`).
#[utoipa::path(get, path = "/api/gateway/workflows/{workflow_id}/flow", tag = "bundles",
    params(("workflow_id" = String, Path)),
    responses((status = 200, description = "The flow", body = WorkflowFlow),
              (status = 404, description = "No such workflow", body = ErrorBody)))]
pub async fn workflow_flow(
    State(st): State<SharedState>,
    Path(workflow_id): Path<String>,
) -> ApiResult<Json<WorkflowFlow>> {
    if let Some(flow) = st.gw.dynamic_flow(&workflow_id) {
        return Ok(Json(WorkflowFlow::Loaded(LoadedFlow {
            workflow_id,
            flow,
            source: FlowSource::Dynamic,
        })));
    }
    if let Some(flow) = st.visualflows.read().get(&workflow_id) {
        return Ok(Json(WorkflowFlow::Loaded(LoadedFlow {
            flow: flow.clone(),
            workflow_id,
            source: FlowSource::Visualflow,
        })));
    }
    let hit = st.bundles.read().find_workflow(&workflow_id);
    match hit {
        Some((b, fid)) => Ok(Json(WorkflowFlow::Bundle(flow_answer(&b, &fid)?))),
        None => Err(ApiError::not_found(format!(
            "Workflow '{workflow_id}' not found"
        ))),
    }
}

fn reload_answer(st: &AppState, reload: bool) -> (bool, Option<String>) {
    if !reload {
        return (false, None);
    }
    st.reload();
    (true, None)
}

/// Install a .flow bundle (multipart).
///
/// The bundle must load here (node types, plugin policy, components) before it is written to FLOWS_DIR; in a
/// cluster it is then published to the other nodes.
#[utoipa::path(post, path = "/api/gateway/bundles/upload", tag = "bundles",
    request_body(content_type = "multipart/form-data", content = BundleUpload),
    responses((status = 200, description = "The installed bundle", body = BundleUploaded),
              (status = 400, description = "Not in bundle mode, a malformed body, a bundle that does not load, or one already installed without `overwrite`", body = ErrorBody),
              (status = 413, description = "Over the bundle size cap", body = ErrorBody)))]
pub async fn upload(
    State(st): State<SharedState>,
    mp: Multipart,
) -> ApiResult<Json<BundleUploaded>> {
    require_bundle_mode(&st)?;
    let BundleUpload {
        file,
        overwrite,
        reload,
    } = BundleUpload::parse(mp).await?;
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
    // An error here leaves the bundle installed and served by this node; the answer says the others lack it.
    let cluster_sync_error = match (st.bundle_mirror.get(), path.file_name()) {
        (Some(mirror), Some(name)) => mirror
            .installed(name.to_string_lossy().into_owned(), published)
            .await
            .err(),
        _ => None,
    };
    let (gateway_reloaded, gateway_reload_error) = reload_answer(&st, reload);
    // What the manifest declares: the uploaded bundle's entrypoints, whether loaded or not.
    let entrypoints = bundle
        .manifest
        .entrypoints
        .iter()
        .map(|e| EntrypointInfo {
            flow_id: e.flow_id.clone(),
            name: e.name.clone().unwrap_or_else(|| e.flow_id.clone()),
            description: e.description.clone(),
            interfaces: e.interfaces.clone(),
        })
        .collect();
    Ok(Json(BundleUploaded {
        ok: true,
        bundle_id: bundle.bundle_id().to_string(),
        bundle_version: bundle.bundle_version().to_string(),
        bundle_ref: bundle.bundle_ref(),
        sha256: bundle.sha256.clone(),
        default_entrypoint: bundle.manifest.default_entrypoint.clone(),
        entrypoints,
        gateway_reloaded,
        gateway_reload_error,
        cluster_sync_error,
    }))
}

/// Remove a bundle (all versions or one).
///
/// Removes the bundle's files from FLOWS_DIR (only files there are the gateway's to delete), then reloads unless
/// `reload=false`.
#[utoipa::path(delete, path = "/api/gateway/bundles/{bundle_id}", tag = "bundles",
    params(("bundle_id" = String, Path, description = "`id` or `id@version`"), BundleDeleteQuery),
    responses((status = 200, description = "The bundle was removed", body = BundleDeleted),
              (status = 400, description = "Not in bundle mode, a blank id, or a version that conflicts with `bundle_id`", body = ErrorBody),
              (status = 404, description = "No installed file of that bundle or version", body = ErrorBody)))]
pub async fn delete(
    State(st): State<SharedState>,
    Path(bundle_id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<BundleDeleted>> {
    require_bundle_mode(&st)?;
    let BundleDeleteQuery {
        bundle_version: qver,
        reload,
    } = BundleDeleteQuery::parse(q.as_deref())?;
    let (id, id_ver) = split_bundle_ref(&bundle_id);
    if id.is_empty() {
        return Err(ApiError::bad_request("bundle_id is required"));
    }
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
    let (gateway_reloaded, gateway_reload_error) = reload_answer(&st, reload);
    Ok(Json(BundleDeleted {
        ok: true,
        bundle_ref,
        removed,
        gateway_reloaded,
        gateway_reload_error,
    }))
}

/// Re-read FLOWS_DIR.
///
/// Swaps in the bundles and flows found there now; what failed to load is listed by `/api/health`.
#[utoipa::path(post, path = "/api/gateway/bundles/reload", tag = "bundles",
    responses((status = 200, description = "The bundles loaded now", body = BundlesReloaded),
              (status = 400, description = "The gateway serves VisualFlow files, not bundles", body = ErrorBody)))]
pub async fn reload(State(st): State<SharedState>) -> ApiResult<Json<BundlesReloaded>> {
    require_bundle_mode(&st)?;
    let _guard = st.reload_lock.lock().await;
    let bundle_ids = st.reload();
    let count = bundle_ids.len();
    Ok(Json(BundlesReloaded {
        ok: true,
        bundle_ids,
        count,
    }))
}

/// The key of a deprecation: the flow id without its `bundle:` prefix, `*` for the whole bundle.
fn deprecation_key(flow_id: Option<&str>) -> String {
    flow_id
        .map(|f| f.rsplit(':').next().unwrap_or(f).to_string())
        .unwrap_or_else(|| "*".into())
}

/// Deprecate a bundle or entrypoint.
///
/// A deprecated entrypoint refuses new runs (409); a bundle whose every entrypoint is deprecated is left out of
/// `GET /bundles`. An empty body deprecates the whole bundle.
#[utoipa::path(post, path = "/api/gateway/bundles/{bundle_id}/deprecate", tag = "bundles",
    params(("bundle_id" = String, Path, description = "`id` (a version is ignored: deprecation is per bundle id)")),
    request_body = Option<Deprecation>,
    responses((status = 200, description = "The deprecation", body = Deprecated),
              (status = 400, description = "Not in bundle mode, or a blank id", body = ErrorBody),
              (status = 404, description = "No such bundle or entrypoint", body = ErrorBody)))]
pub async fn deprecate(
    State(st): State<SharedState>,
    Path(bundle_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Deprecated>> {
    require_bundle_mode(&st)?;
    let Deprecation { flow_id, reason } = Deprecation::parse(&headers, &body)?;
    let (id, _) = split_bundle_ref(&bundle_id);
    let b = st.bundles.read().get_bundle(&id, None)?;
    let key = deprecation_key(flow_id.as_deref());
    if flow_id.is_some() && b.manifest.entrypoint(&key).is_none() && !b.has_flow(&key) {
        return Err(ApiError::not_found(format!(
            "Entrypoint '{key}' not found in bundle '{id}'"
        )));
    }
    let deprecated_at = crate::time::now_iso();
    let mut entry = json!({"deprecated_at": deprecated_at});
    if let Some(r) = &reason {
        entry["reason"] = Value::String(r.clone());
    }
    st.set_deprecation(&id, &key, Some(entry))
        .map_err(|e| ApiError::internal(format!("Failed to save deprecation: {e}")))?;
    Ok(Json(Deprecated {
        ok: true,
        bundle_id: id,
        flow_id: key,
        deprecated_at,
        reason,
    }))
}

/// Undo a deprecation.
///
/// Removes the deprecation of the entrypoint (or, with an empty body, of the whole bundle); `removed` says
/// whether there was one.
#[utoipa::path(post, path = "/api/gateway/bundles/{bundle_id}/undeprecate", tag = "bundles",
    params(("bundle_id" = String, Path, description = "`id` (a version is ignored)")),
    request_body = Option<Deprecation>,
    responses((status = 200, description = "The deprecation is gone", body = Undeprecated),
              (status = 400, description = "Not in bundle mode, or a blank id", body = ErrorBody)))]
pub async fn undeprecate(
    State(st): State<SharedState>,
    Path(bundle_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Undeprecated>> {
    require_bundle_mode(&st)?;
    let Deprecation { flow_id, .. } = Deprecation::parse(&headers, &body)?;
    let (id, _) = split_bundle_ref(&bundle_id);
    if id.is_empty() {
        return Err(ApiError::bad_request("bundle_id is required"));
    }
    let key = deprecation_key(flow_id.as_deref());
    let removed = st
        .set_deprecation(&id, &key, None)
        .map_err(|e| ApiError::internal(format!("Failed to save deprecation: {e}")))?;
    Ok(Json(Undeprecated {
        ok: true,
        bundle_id: id,
        flow_id: key,
        removed,
    }))
}

/// The routes of this module (documented ones through `routes!`, see `crate::openapi`).
pub fn routes() -> utoipa_axum::router::OpenApiRouter<SharedState> {
    use crate::routes::Documented;
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .documented(routes!(list))
        .documented(routes!(upload))
        .documented(routes!(reload))
        .documented(routes!(get, delete))
        .documented(routes!(get_flow))
        .documented(routes!(deprecate))
        .documented(routes!(undeprecate))
        .documented(routes!(workflow_flow))
}
