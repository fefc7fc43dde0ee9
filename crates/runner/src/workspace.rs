//! Where a run's file tools work: a directory the host chooses, never one a run's input, vars or pins name.
//!
//! The base is the operator's `ABSTRACTGATEWAY_WORKSPACE_DIR`, else `<data dir>/workspaces`; a run works in
//! `<base>/<session id, else root run id>` (ids made path-safe). A client may choose its own root only when
//! the operator opts in (`ABSTRACTGATEWAY_ALLOW_CLIENT_WORKSPACE_SCOPE` or `_TRUST_CLIENT_WORKSPACE_SCOPE`),
//! and then only inside the operator's roots (the base and `ABSTRACTGATEWAY_WORKSPACE_MOUNTS`). The choice is
//! kept in the run (`RunState::workspace`), which no flow can write; the `workspace_root` var only shows it.

use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

/// A workspace setting the operator (or, with client scope, a client) got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkspaceError {
    /// `ABSTRACTGATEWAY_WORKSPACE_DIR` climbs out of `/`.
    #[error("ABSTRACTGATEWAY_WORKSPACE_DIR={0:?} is not a usable path")]
    UnusableDir(String),
    /// An `ABSTRACTGATEWAY_WORKSPACE_MOUNTS` entry climbs out of `/`.
    #[error("ABSTRACTGATEWAY_WORKSPACE_MOUNTS entry {0:?} is not a usable path")]
    UnusableMount(String),
    /// A workspace root holds the data dir.
    #[error(
        "workspace root {} holds the data dir {}: runs could write where the gateway keeps its \
         store and compiled components; choose a directory outside it",
        root.display(),
        data_dir.display()
    )]
    HoldsDataDir { root: PathBuf, data_dir: PathBuf },
    /// A workspace root holds a directory the gateway loads code from (`what` names it).
    #[error(
        "workspace root {} holds {what} {}: runs could write code the gateway loads; \
         choose directories that do not overlap",
        root.display(),
        path.display()
    )]
    HoldsCode {
        root: PathBuf,
        what: String,
        path: PathBuf,
    },
    /// A client's `workspace_root` that is not an absolute path.
    #[error("workspace_root {0:?} must be an absolute path")]
    NotAbsolute(String),
    /// A client's `workspace_root` that climbs out of `/`.
    #[error("workspace_root {0:?} is not a usable path")]
    UnusableRoot(String),
    /// A client's `workspace_root` outside the operator's roots (`roots`: them, comma-separated).
    #[error("workspace_root {asked:?} is outside the operator's workspace roots ({roots})")]
    Outside { asked: String, roots: String },
}

/// The host's workspace rules.
#[derive(Debug, Clone)]
pub struct Workspaces {
    base: PathBuf,
    /// The operator's roots: the base and the mounts.
    roots: Vec<PathBuf>,
    client_scope: bool,
}

fn truthy(v: Option<String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// `p` made absolute and lexically normal (no `.` or `..`), or `None` when `..` would climb out of `/`.
fn normal(p: &Path) -> Option<PathBuf> {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(p)
    };
    let mut out = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => out.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Some(out)
}

impl Workspaces {
    /// The rules for `data_dir` from the environment. A root that holds the data dir (where compiled
    /// components, the plugins dir and the store live) is refused: nothing a run writes may become code.
    pub fn from_env(data_dir: &Path) -> Result<Workspaces, WorkspaceError> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let data = normal(data_dir).unwrap_or_else(|| data_dir.to_path_buf());
        let base = match var("ABSTRACTGATEWAY_WORKSPACE_DIR") {
            Some(d) => normal(Path::new(d.trim())).ok_or(WorkspaceError::UnusableDir(d))?,
            None => data.join("workspaces"),
        };
        let mut roots = vec![base.clone()];
        if let Some(m) = var("ABSTRACTGATEWAY_WORKSPACE_MOUNTS") {
            for entry in m
                .split([',', '\n', ';'])
                .map(str::trim)
                .filter(|e| !e.is_empty())
            {
                // `name=path` (the seed's form) or a bare path.
                let path = entry.split_once('=').map_or(entry, |(_, p)| p.trim());
                let p = normal(Path::new(path))
                    .ok_or_else(|| WorkspaceError::UnusableMount(entry.to_string()))?;
                roots.push(p);
            }
        }
        for r in &roots {
            if data.starts_with(r) {
                return Err(WorkspaceError::HoldsDataDir {
                    root: r.clone(),
                    data_dir: data,
                });
            }
        }
        let client_scope = truthy(var("ABSTRACTGATEWAY_ALLOW_CLIENT_WORKSPACE_SCOPE"))
            || truthy(var("ABSTRACTGATEWAY_TRUST_CLIENT_WORKSPACE_SCOPE"));
        Ok(Workspaces {
            base,
            roots,
            client_scope,
        })
    }

    /// Refuses a configuration where a workspace root holds `path` (where the gateway loads code from).
    pub fn check_outside(&self, path: &Path, what: &str) -> Result<(), WorkspaceError> {
        let p = resolve_existing(&normal(path).unwrap_or_else(|| path.to_path_buf()));
        for r in &self.roots {
            if p.starts_with(resolve_existing(r)) {
                return Err(WorkspaceError::HoldsCode {
                    root: r.clone(),
                    what: what.to_string(),
                    path: path.to_path_buf(),
                });
            }
        }
        Ok(())
    }

    /// The rules with no operator setting: `<data dir>/workspaces/<id>`, no client scope.
    pub fn default_for(data_dir: &Path) -> Workspaces {
        let base = data_dir.join("workspaces");
        Workspaces {
            roots: vec![base.clone()],
            base,
            client_scope: false,
        }
    }

    /// The workspace of a run whose session (or, without one, root run) id is `owner`.
    pub fn for_owner(&self, owner: &str) -> PathBuf {
        self.base.join(slug(owner))
    }

    /// The workspace a new run gets: the client's `asked` root when the operator allows client scope (and it
    /// lies inside the operator's roots), else the host's choice for `owner`. A refused `asked` root is an
    /// error the client sees (with client scope on); without client scope it is ignored.
    pub fn choose(&self, asked: Option<&str>, owner: &str) -> Result<PathBuf, WorkspaceError> {
        let Some(asked) = asked.filter(|a| !a.trim().is_empty() && self.client_scope) else {
            return Ok(self.for_owner(owner));
        };
        if asked.contains('\0') || !Path::new(asked).is_absolute() {
            return Err(WorkspaceError::NotAbsolute(asked.to_string()));
        }
        let p = normal(Path::new(asked))
            .ok_or_else(|| WorkspaceError::UnusableRoot(asked.to_string()))?;
        // Symbolic links are resolved where they exist, so a link inside a root cannot lead out of it.
        let resolved = resolve_existing(&p);
        let inside = self.roots.iter().any(|r| {
            let r = resolve_existing(r);
            resolved.starts_with(&r)
        });
        if !inside {
            return Err(WorkspaceError::Outside {
                asked: asked.to_string(),
                roots: self
                    .roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(p)
    }
}

/// Why a workspace file cannot be read (attachments ingest).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("File not found")]
    NotFound,
    #[error("Path is not a file")]
    NotAFile,
    #[error("path is outside the workspace")]
    Outside,
    #[error("invalid path")]
    Invalid,
}

impl Workspaces {
    /// The existing file `raw` names: relative to `root` (the client's workspace root, else the base), or an
    /// absolute path; either way it must lie, symbolic links resolved, inside one of the operator's roots.
    /// Returns the resolved path and the path as the client named it relative to its root.
    pub fn resolve_file(&self, raw: &str, root: &Path) -> Result<(PathBuf, String), FileError> {
        let raw = raw.trim();
        let raw = raw.strip_prefix('@').map(str::trim_start).unwrap_or(raw);
        if raw.is_empty() || raw.contains('\0') {
            return Err(FileError::Invalid);
        }
        let joined = if Path::new(raw).is_absolute() {
            PathBuf::from(raw)
        } else {
            root.join(raw)
        };
        let lexical = normal(&joined).ok_or(FileError::Outside)?;
        let resolved = match lexical.canonicalize() {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Say "outside" rather than "not found" for a path outside the roots: existence stays private.
                let inside = self
                    .roots
                    .iter()
                    .any(|r| lexical.starts_with(resolve_existing(r)) || lexical.starts_with(r));
                return Err(if inside {
                    FileError::NotFound
                } else {
                    FileError::Outside
                });
            }
            Err(_) => return Err(FileError::Invalid),
        };
        let root_of = self
            .roots
            .iter()
            .map(|r| resolve_existing(r))
            .find(|r| resolved.starts_with(r))
            .ok_or(FileError::Outside)?;
        if !resolved.is_file() {
            return Err(FileError::NotAFile);
        }
        let canonical_root = resolve_existing(root);
        let shown = resolved
            .strip_prefix(&canonical_root)
            .or_else(|_| resolved.strip_prefix(&root_of))
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| resolved.display().to_string());
        Ok((resolved, shown))
    }

    /// The root a relative path is read from: the client's `workspace_root` when the operator allows client
    /// scope (and it lies inside the roots), else the base.
    pub fn read_root(&self, asked: Option<&str>) -> Result<PathBuf, WorkspaceError> {
        match asked.filter(|a| !a.trim().is_empty() && self.client_scope) {
            Some(a) => self.choose(Some(a), ""),
            None => Ok(self.base.clone()),
        }
    }
}

/// `p` with its longest existing prefix canonicalized (the rest appended as it is).
fn resolve_existing(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out;
        }
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return p.to_path_buf(),
        }
    }
}

/// An id as one safe directory name: kept when it is 1..=64 of `[A-Za-z0-9_-]`, else `sha_<32 hex>` of it.
pub fn slug(id: &str) -> String {
    slug_within(id, 64)
}

/// Whether `id` is 1..=`max` characters of `[A-Za-z0-9_-]`: safe as a file or id part as it is.
pub fn is_plain_id(id: &str, max: usize) -> bool {
    !id.is_empty()
        && id.len() <= max
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// [`slug`] with a length bound of `max` instead of 64.
pub fn slug_within(id: &str, max: usize) -> String {
    if is_plain_id(id, max) {
        id.to_string()
    } else {
        format!("sha_{}", &hex::encode(Sha256::digest(id.as_bytes()))[..32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_become_one_safe_directory_name() {
        assert_eq!(slug("S1"), "S1");
        assert_eq!(
            slug("2b0c4a1e-aaaa-bbbb-cccc-1234567890ab"),
            "2b0c4a1e-aaaa-bbbb-cccc-1234567890ab"
        );
        for hostile in [
            "..",
            "../../etc",
            "/tmp/x",
            "a/b",
            "",
            "x\0y",
            &"a".repeat(65),
        ] {
            let s = slug(hostile);
            assert!(s.starts_with("sha_") && s.len() == 36, "{hostile:?} → {s}");
        }
    }

    #[test]
    fn a_client_root_is_ignored_unless_allowed_and_then_kept_inside_the_roots() {
        let dir = tempfile::tempdir().expect("tmp");
        let w = Workspaces::default_for(dir.path());
        assert_eq!(
            w.choose(Some("/tmp/x"), "S1").expect("ignored"),
            dir.path().join("workspaces/S1")
        );
        let open = Workspaces {
            client_scope: true,
            ..w
        };
        let inside = dir.path().join("workspaces/team/a");
        assert_eq!(open.choose(inside.to_str(), "S1").expect("inside"), inside);
        assert!(open.choose(Some("/tmp/x"), "S1").is_err());
        let climb = format!("{}/workspaces/../../etc", dir.path().display());
        assert!(open.choose(Some(&climb), "S1").is_err());
        assert!(open.choose(Some("relative/x"), "S1").is_err());
        // A link inside the root that leads out of it.
        std::fs::create_dir_all(dir.path().join("workspaces")).expect("mkdir");
        std::os::unix::fs::symlink("/tmp", dir.path().join("workspaces/out")).expect("link");
        let via = dir.path().join("workspaces/out/x");
        assert!(open.choose(via.to_str(), "S1").is_err());
    }

    #[test]
    fn refusals_keep_their_text() {
        let dir = tempfile::tempdir().expect("tmp");
        let open = Workspaces {
            client_scope: true,
            ..Workspaces::default_for(dir.path())
        };
        let e = open.choose(Some("relative/x"), "S1").expect_err("relative");
        assert_eq!(e, WorkspaceError::NotAbsolute("relative/x".into()));
        assert_eq!(
            e.to_string(),
            "workspace_root \"relative/x\" must be an absolute path"
        );
        let e = open.choose(Some("/tmp/x"), "S1").expect_err("outside");
        assert_eq!(
            e.to_string(),
            format!(
                "workspace_root \"/tmp/x\" is outside the operator's workspace roots ({})",
                dir.path().join("workspaces").display()
            )
        );
        let e = WorkspaceError::HoldsCode {
            root: PathBuf::from("/w"),
            what: "the plugins dir".into(),
            path: PathBuf::from("/w/p"),
        };
        assert_eq!(
            e.to_string(),
            "workspace root /w holds the plugins dir /w/p: runs could write code the gateway loads; \
             choose directories that do not overlap"
        );
        let e = WorkspaceError::HoldsDataDir {
            root: PathBuf::from("/"),
            data_dir: PathBuf::from("/d"),
        };
        assert_eq!(
            e.to_string(),
            "workspace root / holds the data dir /d: runs could write where the gateway keeps its \
             store and compiled components; choose a directory outside it"
        );
    }
}
