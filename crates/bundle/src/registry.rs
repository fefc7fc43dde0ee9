//! The set of loaded bundles: directory loading, versions, "latest", and run-target resolution.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::archive::{Limits, MANIFEST_NAME, read_bundle};
use super::error::ResolveError;
use super::model::Bundle;
use super::version::{pick_latest, split_bundle_ref};

/// A bundle that could not be loaded (or was ignored) during [`BundleSet::load_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// The `.flow` file or bundle directory concerned.
    pub path: PathBuf,
    /// Why it was skipped.
    pub message: String,
}

/// Loaded bundles by id then version; iteration is sorted by bundle id, then version string.
#[derive(Debug, Clone, Default)]
pub struct BundleSet {
    bundles: BTreeMap<String, BTreeMap<String, Arc<Bundle>>>,
}

fn start_failed(msg: impl std::fmt::Display) -> ResolveError {
    ResolveError::bad_request(format!("Failed to start run: {msg}"))
}

impl BundleSet {
    /// An empty set.
    pub fn new() -> Self {
        BundleSet::default()
    }

    /// [`BundleSet::load_dir_with`] with default [`Limits`].
    pub fn load_dir(dir: &Path) -> (BundleSet, Vec<LoadProblem>) {
        BundleSet::load_dir_with(dir, &Limits::default())
    }

    /// Loads every `*.flow` file and every sub-directory holding a `manifest.json`, in file-name order.
    ///
    /// A bad bundle never stops the others; it becomes a [`LoadProblem`]. The first of two bundles
    /// with the same `id@version` is kept. Names starting with `.` (e.g. in-progress uploads) are
    /// skipped. `dir` may also be a single `.flow` file or a single bundle directory.
    pub fn load_dir_with(dir: &Path, limits: &Limits) -> (BundleSet, Vec<LoadProblem>) {
        let mut set = BundleSet::new();
        let mut problems = Vec::new();
        let candidates = match candidates(dir) {
            Ok(c) => c,
            Err(message) => {
                problems.push(LoadProblem {
                    path: dir.to_path_buf(),
                    message,
                });
                return (set, problems);
            }
        };
        for path in candidates {
            match read_bundle(&path, limits) {
                Err(e) => problems.push(LoadProblem {
                    path,
                    message: e.to_string(),
                }),
                Ok(bundle) => {
                    if let Some(first) = set.get(bundle.bundle_id(), bundle.bundle_version()) {
                        problems.push(LoadProblem {
                            message: format!(
                                "duplicate bundle {} (already loaded from {}); ignored",
                                bundle.bundle_ref(),
                                first.source
                            ),
                            path,
                        });
                    } else {
                        set.insert(bundle);
                    }
                }
            }
        }
        (set, problems)
    }

    /// Adds a bundle, replacing (and returning) one with the same `id@version`.
    pub fn insert(&mut self, bundle: impl Into<Arc<Bundle>>) -> Option<Arc<Bundle>> {
        let bundle = bundle.into();
        self.bundles
            .entry(bundle.bundle_id().to_string())
            .or_default()
            .insert(bundle.bundle_version().to_string(), bundle)
    }

    /// Removes one version, or every version when `version` is `None`; returns what was removed.
    pub fn remove(&mut self, bundle_id: &str, version: Option<&str>) -> Vec<Arc<Bundle>> {
        let removed = match (self.bundles.get_mut(bundle_id), version) {
            (None, _) => Vec::new(),
            (Some(versions), Some(v)) => versions.remove(v).into_iter().collect(),
            (Some(versions), None) => std::mem::take(versions).into_values().collect(),
        };
        if self.bundles.get(bundle_id).is_some_and(BTreeMap::is_empty) {
            self.bundles.remove(bundle_id);
        }
        removed
    }

    /// The bundle `bundle_id@version`.
    pub fn get(&self, bundle_id: &str, version: &str) -> Option<&Arc<Bundle>> {
        self.bundles.get(bundle_id)?.get(version)
    }

    /// True when some version of `bundle_id` is loaded.
    pub fn contains_id(&self, bundle_id: &str) -> bool {
        self.bundles.contains_key(bundle_id)
    }

    /// Loaded versions of `bundle_id`, sorted as strings.
    pub fn versions(&self, bundle_id: &str) -> Vec<&str> {
        self.bundles
            .get(bundle_id)
            .map(|v| v.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    /// The latest version of `bundle_id` by the §1.3 rule.
    pub fn latest_version(&self, bundle_id: &str) -> Option<&str> {
        let versions = self.bundles.get(bundle_id)?;
        pick_latest(
            versions
                .iter()
                .map(|(v, b)| (v.as_str(), b.manifest.created_at.as_str())),
        )
    }

    /// The latest loaded version of `bundle_id`.
    pub fn latest(&self, bundle_id: &str) -> Option<&Arc<Bundle>> {
        self.get(bundle_id, self.latest_version(bundle_id)?)
    }

    /// Loaded bundle ids, sorted.
    pub fn bundle_ids(&self) -> impl Iterator<Item = &str> {
        self.bundles.keys().map(String::as_str)
    }

    /// Every loaded bundle, sorted by id then version.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Bundle>> {
        self.bundles.values().flat_map(BTreeMap::values)
    }

    /// The latest version of each bundle id, sorted by id.
    pub fn latest_bundles(&self) -> impl Iterator<Item = &Arc<Bundle>> {
        self.bundle_ids().filter_map(|id| self.latest(id))
    }

    /// Number of loaded bundle versions.
    pub fn len(&self) -> usize {
        self.bundles.values().map(BTreeMap::len).sum()
    }

    /// True when nothing is loaded.
    pub fn is_empty(&self) -> bool {
        self.bundles.is_empty()
    }

    /// The default bundle: the only loaded bundle id, if exactly one is loaded.
    pub fn default_bundle_id(&self) -> Option<&str> {
        let mut ids = self.bundle_ids();
        match (ids.next(), ids.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }

    /// Looks up a namespaced workflow id `id@ver:flow` (or `id:flow` for the latest version).
    pub fn find_workflow(&self, workflow_id: &str) -> Option<(Arc<Bundle>, String)> {
        let (prefix, flow) = workflow_id.split_once(':')?;
        let bundle = match prefix.split_once('@') {
            Some((id, ver)) => self.get(id, ver)?,
            None => self.latest(prefix)?,
        };
        bundle
            .has_flow(flow)
            .then(|| (bundle.clone(), flow.to_string()))
    }

    /// Resolves `id`, `id@ver`, `id.flow` or `id@ver.flow` (latest version when none is given).
    pub fn resolve_bundle_ref(&self, bundle_ref: &str) -> Result<Arc<Bundle>, ResolveError> {
        self.get_bundle(bundle_ref, None)
    }

    /// `GET /bundles/{bundle_id}?bundle_version=` resolution, with the seed's messages.
    pub fn get_bundle(
        &self,
        bundle_id: &str,
        bundle_version: Option<&str>,
    ) -> Result<Arc<Bundle>, ResolveError> {
        let (id, id_ver) = split_bundle_ref(bundle_id);
        if id.is_empty() {
            return Err(ResolveError::bad_request("bundle_id is required"));
        }
        let requested = bundle_version.map(str::trim).filter(|v| !v.is_empty());
        if let (Some(a), Some(b)) = (id_ver.as_deref(), requested)
            && a != b
        {
            return Err(ResolveError::bad_request(
                "bundle_version conflicts with bundle_id (bundle_id already includes '@version')",
            ));
        }
        if !self.contains_id(&id) {
            return Err(ResolveError::not_found(format!("Bundle '{id}' not found")));
        }
        let version = match requested.or(id_ver.as_deref()) {
            Some(v) => v.to_string(),
            None => self
                .latest_version(&id)
                .map(str::to_string)
                .ok_or_else(|| {
                    ResolveError::not_found(format!("Bundle '{id}' has no versions loaded"))
                })?,
        };
        self.get(&id, &version)
            .cloned()
            .ok_or_else(|| ResolveError::not_found(format!("Bundle '{id}@{version}' not found")))
    }

    /// Resolves a `StartRunRequest` (`bundle_id`, `bundle_version`, `flow_id`) to a bundle and flow id.
    ///
    /// Accepts `bundle_id` as `id` or `id@ver`, `flow_id` as `flow`, `bundle:flow`, `bundle@ver:flow`
    /// or a unique entrypoint `name`; with no `flow_id` the bundle's default entrypoint is used; with
    /// no `bundle_id` the only loaded bundle is the default. Messages and statuses are the seed's.
    pub fn resolve_flow(
        &self,
        bundle_id: Option<&str>,
        bundle_version: Option<&str>,
        flow_id: Option<&str>,
    ) -> Result<(Arc<Bundle>, String), ResolveError> {
        let fid = flow_id.map(str::trim).unwrap_or("");
        let bid_raw = bundle_id.map(str::trim).unwrap_or("");
        if fid.is_empty() && bid_raw.is_empty() {
            return Err(ResolveError::bad_request(
                "flow_id is required (or provide bundle_id to start a bundle entrypoint)",
            ));
        }
        let (bid, bid_ver) = split_bundle_ref(bid_raw);
        let bver = bundle_version.map(str::trim).filter(|v| !v.is_empty());
        if let (Some(a), Some(b)) = (bid_ver.as_deref(), bver)
            && a != b
        {
            return Err(start_failed(
                "bundle_version conflicts with bundle_id (bundle_id already includes '@version')",
            ));
        }
        let requested: Option<String> = bver.map(str::to_string).or(bid_ver);
        // The seed cannot tell a missing bundle from a missing flow: it names the flow if one was given.
        let not_found = || {
            if fid.is_empty() {
                ResolveError::not_found("Bundle not found")
            } else {
                ResolveError::not_found(format!("Flow '{fid}' not found"))
            }
        };
        let pick = |id: &str, version: Option<&str>| -> Result<Arc<Bundle>, ResolveError> {
            if id.is_empty() {
                return Err(start_failed("bundle_id is required"));
            }
            let version = match version {
                Some(v) => v,
                None => self.latest_version(id).ok_or_else(not_found)?,
            };
            self.get(id, version).cloned().ok_or_else(not_found)
        };

        if fid.is_empty() {
            let selected = if bid.is_empty() {
                self.default_bundle_id().map(str::to_string).ok_or_else(|| {
                    start_failed(
                        "flow_id is required when multiple bundles are loaded; provide bundle_id \
                         (or pass flow_id as 'bundle:flow')",
                    )
                })?
            } else {
                bid
            };
            if !self.contains_id(&selected)
                && requested.is_none()
                && let Some(hit) = self.entrypoint_by_name(&selected)?
            {
                return Ok(hit);
            }
            let bundle = pick(&selected, requested.as_deref())?;
            let entry = bundle.default_flow().map_err(start_failed)?.to_string();
            if !bundle.has_flow(&entry) {
                return Err(not_found());
            }
            return Ok((bundle, entry));
        }

        if let Some((prefix, inner)) = fid.split_once(':') {
            let (pid, pver) = split_bundle_ref(prefix);
            if !pid.is_empty() && self.contains_id(&pid) {
                if !bid.is_empty() && bid != pid {
                    return Err(start_failed(
                        "flow_id bundle prefix does not match bundle_id",
                    ));
                }
                if let (Some(p), Some(r)) = (pver.as_deref(), requested.as_deref())
                    && p != r
                {
                    return Err(start_failed(
                        "flow_id version does not match bundle_version",
                    ));
                }
                let bundle = pick(&pid, pver.as_deref().or(requested.as_deref()))?;
                let inner = inner.trim();
                if !bundle.has_flow(inner) {
                    return Err(not_found());
                }
                return Ok((bundle, inner.to_string()));
            }
            if !bid.is_empty() || requested.is_some() {
                return Err(start_failed(format!(
                    "flow_id '{fid}' is already namespaced, but bundle_id/bundle_version was also provided"
                )));
            }
            return Err(ResolveError::NotFound {
                message: not_found().message().to_string(),
                verbatim_workflow_id: Some(fid.to_string()),
            });
        }

        let selected = if !bid.is_empty() {
            bid
        } else if let Some(default) = self.default_bundle_id() {
            default.to_string()
        } else {
            if requested.is_none()
                && let Some(hit) = self.entrypoint_by_name(fid)?
            {
                return Ok(hit);
            }
            return Err(start_failed(
                "bundle_id is required when multiple bundles are loaded (or pass flow_id as 'bundle:flow')",
            ));
        };
        let bundle = pick(&selected, requested.as_deref())?;
        if bundle.has_flow(fid) {
            return Ok((bundle, fid.to_string()));
        }
        if let Some(flow) = unique_entrypoint_named(&bundle, fid) {
            return Ok((bundle.clone(), flow));
        }
        Err(not_found())
    }

    /// The entrypoint whose `name` is `name` (case-insensitive) across the latest bundle versions.
    ///
    /// `Ok(None)` when nothing matches; a 400 error when several bundles match.
    pub fn entrypoint_by_name(
        &self,
        name: &str,
    ) -> Result<Option<(Arc<Bundle>, String)>, ResolveError> {
        let mut hits: Vec<(Arc<Bundle>, String)> = Vec::new();
        for bundle in self.latest_bundles() {
            for ep in &bundle.manifest.entrypoints {
                if ep.name.as_deref().is_some_and(|n| eq_fold(n, name)) {
                    hits.push((bundle.clone(), ep.flow_id.clone()));
                }
            }
        }
        match hits.len() {
            0 => Ok(None),
            1 => Ok(hits.pop()),
            _ => {
                let mut refs: Vec<String> = hits.iter().map(|(b, _)| b.bundle_ref()).collect();
                refs.sort();
                refs.dedup();
                Err(ResolveError::BadRequest(format!(
                    "Failed to start run: Workflow name '{name}' matches multiple entrypoints ({}); \
                     use bundle_id[@version] instead",
                    refs.join(", ")
                )))
            }
        }
    }
}

fn eq_fold(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

fn unique_entrypoint_named(bundle: &Bundle, name: &str) -> Option<String> {
    let mut hits = bundle
        .manifest
        .entrypoints
        .iter()
        .filter(|ep| ep.name.as_deref().is_some_and(|n| eq_fold(n, name)));
    match (hits.next(), hits.next()) {
        (Some(ep), None) if bundle.has_flow(&ep.flow_id) => Some(ep.flow_id.clone()),
        _ => None,
    }
}

/// The paths `load_dir` will try, sorted by file name.
fn candidates(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = fs::metadata(dir).map_err(|e| format!("cannot read bundles directory: {e}"))?;
    if meta.is_file() || dir.join(MANIFEST_NAME).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut entries: Vec<(String, PathBuf)> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list bundles directory: {e}"))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (!name.starts_with('.')).then(|| (name, e.path()))
        })
        .collect();
    entries.sort();
    Ok(entries
        .into_iter()
        .filter(|(name, path)| {
            (name.ends_with(".flow") && path.is_file())
                || (path.is_dir() && path.join(MANIFEST_NAME).is_file())
        })
        .map(|(_, path)| path)
        .collect())
}
