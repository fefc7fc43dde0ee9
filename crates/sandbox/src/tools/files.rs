//! The file tools (`list_files`, `search_files`, `read_file`, `write_file`), confined to the run's workspace.
//! Their results are the text the model reads, as the seed's tools return it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::args::Args;
use super::glob::Glob;
use super::workspace::Workspace;
use crate::plugins::bindings::types::{Error, ErrorCode};
use crate::plugins::caps::error;

/// Largest file `read_file` or `search_files` opens.
pub const MAX_READ_BYTES: u64 = 16 << 20;
/// Largest content `write_file` accepts (after appending, the file is capped the same).
pub const MAX_WRITE_BYTES: u64 = 8 << 20;
/// Most characters one `read_file` answer holds; longer reads come back PARTIAL with a continuation.
pub const MAX_READ_CHARS: usize = 50_000;
/// Most directory entries one walk visits.
const MAX_WALK: usize = 20_000;
/// Most result lines `head_limit` may ask for.
const MAX_HEAD: i64 = 1_000;
/// Directories `search_files` skips unless asked otherwise.
const DEFAULT_IGNORED: [&str; 7] = [
    ".git",
    "node_modules",
    "target",
    "__pycache__",
    ".venv",
    "venv",
    ".mypy_cache",
];

fn head_limit(n: i64) -> usize {
    usize::try_from(if n <= 0 { MAX_HEAD } else { n.min(MAX_HEAD) }).unwrap_or(10)
}

fn hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// One walked entry: absolute path, path shown, whether a directory.
struct Entry {
    path: PathBuf,
    shown: String,
    is_dir: bool,
}

/// Walks `dir` breadth-first in name order, never following symbolic links to directories.
fn walk(
    root: &Path,
    dir: &Path,
    recursive: bool,
    include_hidden: bool,
    ignored: &[String],
) -> Result<(Vec<Entry>, bool), Error> {
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([dir.to_path_buf()]);
    let mut visited = 0usize;
    while let Some(d) = queue.pop_front() {
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .map_err(|e| {
                error(
                    ErrorCode::Internal,
                    format!("cannot list {}: {e}", Workspace::display(root, &d)),
                )
            })?
            .filter_map(Result::ok)
            .collect();
        names.sort_by_key(|e| e.file_name());
        for e in names {
            visited += 1;
            if visited > MAX_WALK {
                return Ok((out, true));
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if !include_hidden && hidden(&name) {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            let path = e.path();
            let is_dir = ft.is_dir();
            if is_dir && ignored.iter().any(|i| i == &name) {
                continue;
            }
            if is_dir && recursive {
                queue.push_back(path.clone());
            }
            out.push(Entry {
                shown: Workspace::display(root, &path),
                path,
                is_dir,
            });
        }
    }
    Ok((out, false))
}

/// `list_files`: names under a directory matching a glob, directories with a trailing `/`.
pub fn list_files(ws: &Workspace, args: Value) -> Result<Value, Error> {
    let a = Args::new("list_files", args)?;
    let dir = a.str_or("directory_path", ".")?;
    let pattern = a.str_or("pattern", "*")?;
    let recursive = a.bool_or("recursive", false)?;
    let include_hidden = a.bool_or("include_hidden", false)?;
    let limit = head_limit(a.int_or("head_limit", 10)?);
    if !ws.exists() && (dir == "." || dir.is_empty()) {
        return Ok(Value::String(format!(
            "No files found matching '{pattern}' in '.'"
        )));
    }
    let root = ws.existing(".")?;
    let start = ws.existing(&dir)?;
    if !start.is_dir() {
        return Err(error(
            ErrorCode::InvalidInput,
            format!("list_files: {dir:?} is not a directory"),
        ));
    }
    let glob = Glob::new(&pattern);
    let (entries, cut) = walk(&root, &start, recursive, include_hidden, &[])?;
    let matched: Vec<String> = entries
        .iter()
        .filter(|e| {
            let name = e.path.file_name().map(|n| n.to_string_lossy().into_owned());
            glob.matches(name.as_deref().unwrap_or(""), &e.shown)
        })
        .map(|e| {
            if e.is_dir {
                format!("{}/", e.shown)
            } else {
                e.shown.clone()
            }
        })
        .collect();
    if matched.is_empty() {
        return Ok(Value::String(format!(
            "No files found matching '{pattern}' in '{}'",
            Workspace::display(&root, &start)
        )));
    }
    let mut lines: Vec<String> = matched.iter().take(limit).cloned().collect();
    if matched.len() > limit {
        lines.push(format!(
            "... {} more (showing {limit} of {}; raise head_limit to see more)",
            matched.len() - limit,
            matched.len()
        ));
    }
    if cut {
        lines.push(format!("... listing stopped after {MAX_WALK} entries"));
    }
    Ok(Value::String(lines.join("\n")))
}

/// Reads a whole file as UTF-8 (lossy), refusing directories and files over the cap.
fn read_text(path: &Path, shown: &str) -> Result<String, Error> {
    let bytes = read_capped(path, shown)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// `O_NONBLOCK` (Linux): opening a FIFO must not wait for a writer.
const O_NONBLOCK: i32 = 0o4000;

/// The bytes of a regular file, at most [`MAX_READ_BYTES`] of them actually read: a device, FIFO or socket
/// is refused, and a file whose size lies (`/proc`, one growing meanwhile) is cut off at the cap.
pub fn read_capped(path: &Path, shown: &str) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)
        .map_err(|e| error(ErrorCode::Internal, format!("cannot open {shown:?}: {e}")))?;
    // The type of what was opened, not of what the path named a moment before.
    let meta = file
        .metadata()
        .map_err(|e| error(ErrorCode::Internal, format!("cannot open {shown:?}: {e}")))?;
    if meta.is_dir() {
        return Err(error(
            ErrorCode::InvalidInput,
            format!("{shown:?} is a directory"),
        ));
    }
    if !meta.is_file() {
        return Err(error(
            ErrorCode::InvalidInput,
            format!("{shown:?} is not a regular file (a device, FIFO or socket is never read)"),
        ));
    }
    if meta.len() > MAX_READ_BYTES {
        return Err(error(
            ErrorCode::TooLarge,
            format!(
                "{shown:?} has {} bytes; files over {MAX_READ_BYTES} bytes are not read",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_READ_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| error(ErrorCode::Internal, format!("cannot read {shown:?}: {e}")))?;
    if bytes.len() as u64 > MAX_READ_BYTES {
        return Err(error(
            ErrorCode::TooLarge,
            format!("{shown:?} has more than {MAX_READ_BYTES} bytes; it is not read"),
        ));
    }
    Ok(bytes)
}

/// `read_file`: a line-numbered range of a text file, or raw text from a character offset.
pub fn read_file(ws: &Workspace, args: Value) -> Result<Value, Error> {
    let a = Args::new("read_file", args)?;
    let file = a.str("file_path")?;
    let start_line = a.int_or("start_line", 1)?.max(1);
    let end_line = a.int_opt("end_line")?.filter(|n| *n > 0);
    let start_char = a.int_opt("start_char")?;
    let root = ws.existing(".")?;
    let path = ws.existing(file)?;
    let shown = Workspace::display(&root, &path);
    let text = read_text(&path, &shown)?;
    if let Some(sc) = start_char {
        let sc = usize::try_from(sc.max(0)).unwrap_or(0);
        let total = text.chars().count();
        let chunk: String = text.chars().skip(sc).take(MAX_READ_CHARS).collect();
        let end = sc + chunk.chars().count();
        if end < total {
            return Ok(Value::String(format!(
                "{chunk}\n\n[PARTIAL: characters {sc}-{end} of {total}; continue with read_file(file_path={shown:?}, start_char={end})]"
            )));
        }
        return Ok(Value::String(chunk));
    }
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    if total == 0 {
        return Ok(Value::String(format!("File: {shown} (empty)")));
    }
    let first = usize::try_from(start_line).unwrap_or(1);
    if first > total {
        return Err(error(
            ErrorCode::InvalidInput,
            format!("read_file: start_line {first} is past the end of {shown} ({total} lines)"),
        ));
    }
    let last = end_line
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(total)
        .min(total);
    let mut out = String::new();
    let mut shown_last = first.saturating_sub(1);
    for (i, line) in lines.iter().enumerate().take(last).skip(first - 1) {
        let numbered = format!("{:>4}: {line}\n", i + 1);
        if out.len() + numbered.len() > MAX_READ_CHARS && shown_last >= first {
            break;
        }
        out.push_str(&numbered);
        shown_last = i + 1;
    }
    if shown_last < last {
        let offset: usize = lines[..shown_last]
            .iter()
            .map(|l| l.chars().count() + 1)
            .sum();
        out.push_str(&format!(
            "\n[PARTIAL: lines {first}-{shown_last} of {total}; continue with read_file(file_path={shown:?}, start_line={}) or read_file(file_path={shown:?}, start_char={offset})]",
            shown_last + 1
        ));
    }
    Ok(Value::String(format!(
        "File: {shown} ({total} lines)\n\n{}",
        out.trim_end_matches('\n')
    )))
}

/// `write_file`: creates, overwrites (`mode` `w`) or appends to (`a`) a file; parent directories are made.
pub fn write_file(ws: &Workspace, args: Value) -> Result<Value, Error> {
    let a = Args::new("write_file", args)?;
    let file = a.str("file_path")?;
    let content = a.str("content")?;
    let mode = a.str_or("mode", "w")?;
    let append = match mode.as_str() {
        "w" | "overwrite" => false,
        "a" | "append" => true,
        other => {
            return Err(error(
                ErrorCode::InvalidInput,
                format!("write_file: mode must be 'w' (overwrite) or 'a' (append), not {other:?}"),
            ));
        }
    };
    if content.len() as u64 > MAX_WRITE_BYTES {
        return Err(error(
            ErrorCode::TooLarge,
            format!(
                "write_file: content has {} bytes; the limit is {MAX_WRITE_BYTES}",
                content.len()
            ),
        ));
    }
    let path = ws.writable(file)?;
    let shown = Workspace::display(&ws.existing(".")?, &path);
    let before = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if append && before + content.len() as u64 > MAX_WRITE_BYTES {
        return Err(error(
            ErrorCode::TooLarge,
            format!("write_file: {shown} would grow past {MAX_WRITE_BYTES} bytes"),
        ));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(&path)
        .map_err(|e| error(ErrorCode::Internal, format!("cannot open {shown:?}: {e}")))?;
    f.write_all(content.as_bytes())
        .and_then(|_| f.flush())
        .map_err(|e| error(ErrorCode::Internal, format!("cannot write {shown:?}: {e}")))?;
    let verb = if append { "appended" } else { "wrote" };
    Ok(Value::String(format!(
        "Successfully {verb} {} bytes to {shown}",
        content.len()
    )))
}

/// `search_files`: regex matches in file contents, as lines, matching files, or counts.
pub fn search_files(ws: &Workspace, args: Value) -> Result<Value, Error> {
    let a = Args::new("search_files", args)?;
    let pattern = a.str("pattern")?;
    let path = a.str_or("path", ".")?;
    let file_pattern = a.str_or("file_pattern", "*")?;
    let limit = head_limit(a.int_or("head_limit", 10)?);
    let offset = usize::try_from(a.int_or("offset", 0)?.max(0)).unwrap_or(0);
    let max_hits = usize::try_from(a.int_or("max_hits", 8)?.max(1)).unwrap_or(8);
    let multiline = a.bool_or("multiline", false)?;
    let include_hidden = a.bool_or("include_hidden", false)?;
    let mode = a.str_or("output_mode", "content")?;
    let context = usize::try_from(a.int_or("context_lines", 0)?.clamp(0, 20)).unwrap_or(0);
    let case_sensitive = a.bool_or("case_sensitive", false)?;
    let ignored: Vec<String> = match a.str_opt("ignore_dirs")? {
        Some(s) => s
            .split([',', '|'])
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
        None => DEFAULT_IGNORED.iter().map(|s| s.to_string()).collect(),
    };
    if !matches!(mode.as_str(), "content" | "files_with_matches" | "count") {
        return Err(error(
            ErrorCode::InvalidInput,
            format!(
                "search_files: output_mode must be content, files_with_matches or count, not {mode:?}"
            ),
        ));
    }
    let re = regex::RegexBuilder::new(pattern)
        .case_insensitive(!case_sensitive)
        .multi_line(multiline)
        .dot_matches_new_line(multiline)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| {
            error(
                ErrorCode::InvalidInput,
                format!("search_files: invalid regex {pattern:?}: {e}"),
            )
        })?;
    if !ws.exists() {
        return Ok(Value::String(format!(
            "No matches found for pattern '{pattern}'"
        )));
    }
    let root = ws.existing(".")?;
    let start = ws.existing(&path)?;
    let files: Vec<(PathBuf, String)> = if start.is_dir() {
        let glob = Glob::new(&file_pattern);
        walk(&root, &start, true, include_hidden, &ignored)?
            .0
            .into_iter()
            .filter(|e| !e.is_dir && e.path.is_file())
            .filter(|e| {
                let name = e.path.file_name().map(|n| n.to_string_lossy().into_owned());
                glob.matches(name.as_deref().unwrap_or(""), &e.shown)
            })
            .map(|e| (e.path, e.shown))
            .collect()
    } else {
        vec![(start.clone(), Workspace::display(&root, &start))]
    };
    let mut results: Vec<String> = Vec::new();
    for (_, shown) in files {
        // Symbolic links met while walking may point anywhere: resolve them through the workspace.
        let Ok(file) = ws.existing(&shown) else {
            continue;
        };
        let Ok(bytes) = read_capped(&file, &shown) else {
            continue;
        };
        if bytes.contains(&0) {
            continue; // binary
        }
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let hit_lines: Vec<usize> = if multiline {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect();
            re.find_iter(&text)
                .map(|m| {
                    starts
                        .partition_point(|s| *s <= m.start())
                        .saturating_sub(1)
                })
                .collect()
        } else {
            lines
                .iter()
                .enumerate()
                .filter(|(_, l)| re.is_match(l))
                .map(|(i, _)| i)
                .collect()
        };
        let mut hit_lines = hit_lines;
        hit_lines.dedup();
        if hit_lines.is_empty() {
            continue;
        }
        match mode.as_str() {
            "files_with_matches" => results.push(shown),
            "count" => results.push(format!("{shown}: {}", hit_lines.len())),
            _ => {
                for &i in hit_lines.iter().take(max_hits) {
                    let lo = i.saturating_sub(context);
                    let hi = (i + context).min(lines.len().saturating_sub(1));
                    for (j, line) in lines.iter().enumerate().take(hi + 1).skip(lo) {
                        let sep = if j == i { ':' } else { '-' };
                        results.push(format!("{shown}{sep}{}{sep} {line}", j + 1));
                    }
                }
                if hit_lines.len() > max_hits {
                    results.push(format!(
                        "{shown}: ... {} more matches (raise max_hits)",
                        hit_lines.len() - max_hits
                    ));
                }
            }
        }
    }
    if results.is_empty() {
        return Ok(Value::String(format!(
            "No matches found for pattern '{pattern}'"
        )));
    }
    let total = results.len();
    let page: Vec<String> = results.into_iter().skip(offset).take(limit).collect();
    let mut out = page.join("\n");
    if offset + page.len() < total {
        out.push_str(&format!(
            "\n... {} more results (continue with offset={})",
            total - offset - page.len(),
            offset + page.len()
        ));
    }
    Ok(Value::String(out))
}
