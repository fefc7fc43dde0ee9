//! The run's workspace: every path a file tool touches resolves inside it, or the call is refused.
//!
//! Paths are relative to the workspace root (or absolute under it); `..` is refused outright, and the
//! resolved path is canonicalized so a symbolic link cannot lead outside.

use std::path::{Component, Path, PathBuf};

use crate::plugins::bindings::types::{Error, ErrorCode};
use crate::plugins::caps::error;

/// A workspace root.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

fn io_error(what: &str, path: &str, e: &std::io::Error) -> Error {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorCode::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorCode::AccessDenied,
        _ => ErrorCode::Internal,
    };
    error(code, format!("cannot {what} {path:?}: {e}"))
}

fn outside(path: &str) -> Error {
    error(
        ErrorCode::AccessDenied,
        format!("path {path:?} is outside the run's workspace"),
    )
}

impl Workspace {
    /// The workspace rooted at `root` (which may not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Workspace {
        Workspace { root: root.into() }
    }

    /// The root, canonical; `create` makes it first when missing.
    fn canonical_root(&self, create: bool) -> Result<PathBuf, Error> {
        if create {
            std::fs::create_dir_all(&self.root)
                .map_err(|e| io_error("create the workspace", &self.root.to_string_lossy(), &e))?;
        }
        self.root.canonicalize().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                error(
                    ErrorCode::NotFound,
                    "the run's workspace is empty (nothing has been written to it yet)",
                )
            } else {
                io_error("open the workspace", &self.root.to_string_lossy(), &e)
            }
        })
    }

    /// The path's components below the root, refusing `..` and absolute paths elsewhere.
    fn relative(&self, root: &Path, path: &str) -> Result<PathBuf, Error> {
        if path.contains('\0') {
            return Err(error(ErrorCode::InvalidInput, "path contains a NUL byte"));
        }
        let p = Path::new(path);
        let rel = if p.is_absolute() {
            p.strip_prefix(root)
                .or_else(|_| p.strip_prefix(&self.root))
                .map_err(|_| outside(path))?
        } else {
            p
        };
        let mut out = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::Normal(n) => out.push(n),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(error(
                        ErrorCode::AccessDenied,
                        format!("path {path:?} must not contain '..'"),
                    ));
                }
                Component::RootDir | Component::Prefix(_) => return Err(outside(path)),
            }
        }
        Ok(out)
    }

    fn inside(root: &Path, resolved: PathBuf, path: &str) -> Result<PathBuf, Error> {
        if resolved.starts_with(root) {
            Ok(resolved)
        } else {
            Err(error(
                ErrorCode::AccessDenied,
                format!(
                    "path {path:?} leads outside the run's workspace (through a symbolic link)"
                ),
            ))
        }
    }

    /// An existing file or directory, canonical (inside the canonical root).
    pub fn existing(&self, path: &str) -> Result<PathBuf, Error> {
        let root = self.canonical_root(false)?;
        let rel = self.relative(&root, path)?;
        let resolved = root
            .join(&rel)
            .canonicalize()
            .map_err(|e| io_error("open", path, &e))?;
        Self::inside(&root, resolved, path)
    }

    /// A file path to write: parent directories are created inside the workspace; an existing symbolic
    /// link is followed only when it stays inside.
    pub fn writable(&self, path: &str) -> Result<PathBuf, Error> {
        let root = self.canonical_root(true)?;
        let rel = self.relative(&root, path)?;
        let Some(name) = rel.file_name().map(ToOwned::to_owned) else {
            return Err(error(
                ErrorCode::InvalidInput,
                format!("path {path:?} names the workspace itself, not a file"),
            ));
        };
        // The deepest existing ancestor must resolve inside; below it everything is created here.
        let parent_rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut existing = root.join(&parent_rel);
        while !existing.exists() {
            existing = match existing.parent() {
                Some(p) => p.to_path_buf(),
                None => return Err(outside(path)),
            };
        }
        let existing = existing
            .canonicalize()
            .map_err(|e| io_error("open", path, &e))?;
        Self::inside(&root, existing, path)?;
        let parent = root.join(&parent_rel);
        std::fs::create_dir_all(&parent)
            .map_err(|e| io_error("create the directories of", path, &e))?;
        let parent = Self::inside(
            &root,
            parent
                .canonicalize()
                .map_err(|e| io_error("open", path, &e))?,
            path,
        )?;
        let target = parent.join(name);
        match std::fs::symlink_metadata(&target) {
            Ok(m) if m.file_type().is_symlink() => {
                let resolved = target.canonicalize().map_err(|_| {
                    error(
                        ErrorCode::AccessDenied,
                        format!("path {path:?} is a dangling symbolic link"),
                    )
                })?;
                let resolved = Self::inside(&root, resolved, path)?;
                if resolved.is_dir() {
                    return Err(error(
                        ErrorCode::InvalidInput,
                        format!("path {path:?} is a directory"),
                    ));
                }
                Ok(resolved)
            }
            Ok(m) if m.is_dir() => Err(error(
                ErrorCode::InvalidInput,
                format!("path {path:?} is a directory"),
            )),
            _ => Ok(target),
        }
    }

    /// How a path under `root` (the canonical root, from `existing(".")`) is shown: relative, `.` for the root.
    pub fn display(root: &Path, abs: &Path) -> String {
        let rel = abs.strip_prefix(root).unwrap_or(abs);
        let s = rel.to_string_lossy().into_owned();
        if s.is_empty() { ".".into() } else { s }
    }

    /// Whether the root exists yet.
    pub fn exists(&self) -> bool {
        self.root.is_dir()
    }
}
