//! The host's built-in tools, called through the tool registry as a node's `tools.invoke` reaches it: file
//! tools confined to a real workspace directory (escapes refused), `fetch_url` confined to granted origins.

use std::path::Path;
use std::sync::Arc;

use abstractgateway::plugins::Grants;
use abstractgateway::plugins::bindings::types::ErrorCode;
use abstractgateway::plugins::caps::net::Net;
use abstractgateway::plugins::caps::tools::{ToolBackend, ToolContext};
use abstractgateway::plugins::component::Owner;
use abstractgateway::plugins::durable::Recorder;
use abstractgateway::runner::executor::CancelFlag;
use abstractgateway::tools::ToolRegistry;
use axum::Router;
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::get;
use serde_json::{Value, json};

fn ctx(root: Option<&Path>, grants: Grants) -> ToolContext {
    let run = abstractgateway::run::new_run_state("wf", "n", Default::default(), None, None, None);
    // As for a plugin the operator installed: the private hosts its grants name exactly are reachable.
    let net = Net::default();
    let private_ok = net.private_ok(&grants, &Owner::Operator);
    ToolContext {
        run_id: run.run_id.clone(),
        workspace_root: root.map(|r| r.to_string_lossy().into_owned()),
        bundle: None,
        http: net.client(&private_ok),
        private_ok,
        wall_left: std::time::Duration::from_secs(60),
        grants: Arc::new(grants),
        recorder: Recorder::new(
            None,
            run,
            "n".into(),
            1,
            vec![],
            1,
            100,
            Arc::new(CancelFlag::default()),
        ),
        now_ms: 0,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt")
}

/// Calls `name` with `args` in workspace `root` (no http grants); the result text, or the error's code and message.
fn call(root: &Path, name: &str, args: Value) -> Result<String, (ErrorCode, String)> {
    call_with(Some(root), Grants::default(), name, args)
}

fn call_with(
    root: Option<&Path>,
    grants: Grants,
    name: &str,
    args: Value,
) -> Result<String, (ErrorCode, String)> {
    let reg = ToolRegistry::new();
    rt().block_on(reg.invoke(ctx(root, grants), name, args))
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .map_err(|e| (e.code, e.message))
}

fn code(r: Result<String, (ErrorCode, String)>) -> ErrorCode {
    match r {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err((c, _)) => c,
    }
}

/// A workspace with `a.txt`, `b.txt`, `.hidden`, `sub/c.rs`, `sub/deep/d.rs`, inside a parent holding `secret.txt`.
fn workspace() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("ws");
    std::fs::create_dir_all(root.join("sub/deep")).expect("mkdir");
    std::fs::write(root.join("a.txt"), "alpha\nBeta line\ngamma\n").expect("w");
    std::fs::write(root.join("b.txt"), "nothing here\n").expect("w");
    std::fs::write(root.join(".hidden"), "beta hidden\n").expect("w");
    std::fs::write(root.join("sub/c.rs"), "fn main() {\n    let beta = 1;\n}\n").expect("w");
    std::fs::write(root.join("sub/deep/d.rs"), "// beta\n").expect("w");
    std::fs::write(tmp.path().join("secret.txt"), "TOP SECRET beta\n").expect("w");
    (tmp, root)
}

#[test]
fn the_registry_lists_the_builtin_tools_with_json_schemas() {
    let reg = ToolRegistry::new();
    let names: Vec<String> = reg.list(None).into_iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "list_files",
            "search_files",
            "read_file",
            "write_file",
            "fetch_url"
        ]
    );
    for t in reg.list(None) {
        let p: Value = serde_json::from_str(&t.parameters).expect("schema is JSON");
        assert_eq!(p["type"], "object", "{}", t.name);
        assert!(p["properties"].is_object(), "{}", t.name);
    }
    let read = reg
        .list(None)
        .into_iter()
        .find(|t| t.name == "read_file")
        .expect("read_file");
    let p: Value = serde_json::from_str(&read.parameters).expect("json");
    assert_eq!(p["required"], json!(["file_path"]));
    assert_eq!(p["properties"]["start_line"]["default"], json!(1));
}

#[test]
fn list_files_lists_by_glob_hides_dotfiles_and_limits() {
    let (_t, root) = workspace();
    assert_eq!(
        call(&root, "list_files", json!({"directory_path": "."})).expect("list"),
        "a.txt\nb.txt\nsub/"
    );
    assert_eq!(
        call(&root, "list_files", json!({})).expect("defaults"),
        "a.txt\nb.txt\nsub/"
    );
    assert_eq!(
        call(
            &root,
            "list_files",
            json!({"pattern": "*.RS", "recursive": true})
        )
        .expect("rs"),
        "sub/c.rs\nsub/deep/d.rs"
    );
    let hidden = call(&root, "list_files", json!({"include_hidden": true})).expect("hidden");
    assert!(hidden.starts_with(".hidden\n"), "{hidden}");
    let limited = call(&root, "list_files", json!({"head_limit": 1})).expect("limit");
    assert!(limited.starts_with("a.txt\n... 2 more"), "{limited}");
    assert_eq!(
        call(&root, "list_files", json!({"directory_path": "sub"})).expect("sub"),
        "sub/c.rs\nsub/deep/"
    );
    assert!(
        call(&root, "list_files", json!({"pattern": "*.md"}))
            .expect("none")
            .starts_with("No files found")
    );
    assert_eq!(
        code(call(
            &root,
            "list_files",
            json!({"directory_path": "a.txt"})
        )),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(call(&root, "list_files", json!({"directory_path": "nope"}))),
        ErrorCode::NotFound
    );
}

#[test]
fn read_file_numbers_lines_ranges_and_continues_partial_reads() {
    let (_t, root) = workspace();
    assert_eq!(
        call(&root, "read_file", json!({"file_path": "a.txt"})).expect("read"),
        "File: a.txt (3 lines)\n\n   1: alpha\n   2: Beta line\n   3: gamma"
    );
    assert_eq!(
        call(
            &root,
            "read_file",
            json!({"file_path": "./a.txt", "start_line": 2, "end_line": 2})
        )
        .expect("range"),
        "File: a.txt (3 lines)\n\n   2: Beta line"
    );
    assert_eq!(
        call(
            &root,
            "read_file",
            json!({"file_path": "a.txt", "start_char": 6})
        )
        .expect("chars"),
        "Beta line\ngamma\n"
    );
    // An absolute path inside the workspace is fine.
    let abs = root.join("sub/c.rs").to_string_lossy().into_owned();
    assert!(
        call(&root, "read_file", json!({"file_path": abs}))
            .expect("abs")
            .contains("let beta")
    );
    // A read longer than one answer comes back PARTIAL with the exact continuation.
    let big: String = (1..=20_000).map(|i| format!("line number {i}\n")).collect();
    std::fs::write(root.join("big.txt"), &big).expect("w");
    let first = call(&root, "read_file", json!({"file_path": "big.txt"})).expect("big");
    let cont = first.rsplit("start_line=").next().expect("continuation");
    let next: i64 = cont.split(')').next().expect("n").parse().expect("number");
    assert!(
        first.contains("[PARTIAL: lines 1-") && next > 1000,
        "{}",
        &first[first.len() - 200..]
    );
    let second = call(
        &root,
        "read_file",
        json!({"file_path": "big.txt", "start_line": next}),
    )
    .expect("second");
    assert!(
        second.contains(&format!("{next:>4}: line number {next}\n")),
        "continues at {next}"
    );
    assert_eq!(
        code(call(&root, "read_file", json!({"file_path": "sub"}))),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(call(
            &root,
            "read_file",
            json!({"file_path": "missing.txt"})
        )),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(call(&root, "read_file", json!({}))),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(call(&root, "read_file", json!({"file_path": 3}))),
        ErrorCode::InvalidInput
    );
}

#[test]
fn write_file_creates_appends_and_caps() {
    let (_t, root) = workspace();
    let out = call(
        &root,
        "write_file",
        json!({"file_path": "new/dir/x.md", "content": "hello"}),
    )
    .expect("write");
    assert_eq!(out, "Successfully wrote 5 bytes to new/dir/x.md");
    call(
        &root,
        "write_file",
        json!({"file_path": "new/dir/x.md", "content": " world", "mode": "a"}),
    )
    .expect("append");
    assert_eq!(
        std::fs::read_to_string(root.join("new/dir/x.md")).expect("r"),
        "hello world"
    );
    call(
        &root,
        "write_file",
        json!({"file_path": "new/dir/x.md", "content": "over"}),
    )
    .expect("w");
    assert_eq!(
        std::fs::read_to_string(root.join("new/dir/x.md")).expect("r"),
        "over"
    );
    assert_eq!(
        code(call(
            &root,
            "write_file",
            json!({"file_path": "y", "content": "", "mode": "x"})
        )),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(call(
            &root,
            "write_file",
            json!({"file_path": "sub", "content": "x"})
        )),
        ErrorCode::InvalidInput
    );
    let huge = "x".repeat((8 << 20) + 1);
    assert_eq!(
        code(call(
            &root,
            "write_file",
            json!({"file_path": "huge", "content": huge})
        )),
        ErrorCode::TooLarge
    );
    assert!(!root.join("huge").exists());
    // A fresh run's workspace does not exist until the first write makes it.
    let fresh = root.parent().expect("parent").join("fresh");
    assert!(
        call(&fresh, "list_files", json!({}))
            .expect("empty")
            .starts_with("No files found")
    );
    call(
        &fresh,
        "write_file",
        json!({"file_path": "f.txt", "content": "1"}),
    )
    .expect("first write");
    assert_eq!(
        std::fs::read_to_string(fresh.join("f.txt")).expect("r"),
        "1"
    );
}

#[test]
fn search_files_finds_lines_files_and_counts() {
    let (_t, root) = workspace();
    assert_eq!(
        call(&root, "search_files", json!({"pattern": "beta"})).expect("search"),
        "a.txt:2: Beta line\nsub/c.rs:2:     let beta = 1;\nsub/deep/d.rs:1: // beta"
    );
    assert_eq!(
        call(
            &root,
            "search_files",
            json!({"pattern": "beta", "case_sensitive": true,
            "output_mode": "files_with_matches"})
        )
        .expect("files"),
        "sub/c.rs\nsub/deep/d.rs"
    );
    assert_eq!(
        call(
            &root,
            "search_files",
            json!({"pattern": "a", "path": "a.txt", "output_mode": "count"})
        )
        .expect("count"),
        "a.txt: 3"
    );
    assert_eq!(
        call(
            &root,
            "search_files",
            json!({"pattern": "let", "file_pattern": "*.rs", "context_lines": 1})
        )
        .expect("context"),
        "sub/c.rs-1- fn main() {\nsub/c.rs:2:     let beta = 1;\nsub/c.rs-3- }"
    );
    let paged = call(
        &root,
        "search_files",
        json!({"pattern": "beta", "head_limit": 1, "offset": 1}),
    )
    .expect("page");
    assert_eq!(
        paged,
        "sub/c.rs:2:     let beta = 1;\n... 1 more results (continue with offset=2)"
    );
    assert!(
        call(&root, "search_files", json!({"pattern": "zzz"}))
            .expect("none")
            .starts_with("No matches")
    );
    assert_eq!(
        code(call(&root, "search_files", json!({"pattern": "("}))),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(call(
            &root,
            "search_files",
            json!({"pattern": "a", "output_mode": "lines"})
        )),
        ErrorCode::InvalidInput
    );
}

#[test]
fn file_tools_refuse_every_way_out_of_the_workspace() {
    let (tmp, root) = workspace();
    let secret = tmp.path().join("secret.txt");
    let denied = |r| assert_eq!(code(r), ErrorCode::AccessDenied);
    denied(call(
        &root,
        "read_file",
        json!({"file_path": "../secret.txt"}),
    ));
    denied(call(
        &root,
        "read_file",
        json!({"file_path": "sub/../../secret.txt"}),
    ));
    denied(call(
        &root,
        "read_file",
        json!({"file_path": "sub/../a.txt"}),
    ));
    denied(call(
        &root,
        "read_file",
        json!({"file_path": secret.to_string_lossy()}),
    ));
    denied(call(
        &root,
        "read_file",
        json!({"file_path": "/etc/hostname"}),
    ));
    denied(call(&root, "list_files", json!({"directory_path": ".."})));
    denied(call(&root, "list_files", json!({"directory_path": "/"})));
    denied(call(
        &root,
        "search_files",
        json!({"pattern": "SECRET", "path": ".."}),
    ));
    denied(call(
        &root,
        "write_file",
        json!({"file_path": "../escaped.txt", "content": "x"}),
    ));
    denied(call(
        &root,
        "write_file",
        json!({"file_path": tmp.path().join("abs.txt").to_string_lossy(), "content": "x"}),
    ));
    assert!(!tmp.path().join("escaped.txt").exists() && !tmp.path().join("abs.txt").exists());

    // Symbolic links: to a file outside, to a directory outside, and a dangling one.
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::os::unix::fs::symlink(&secret, root.join("link.txt")).expect("symlink");
    std::os::unix::fs::symlink(&outside, root.join("out")).expect("symlink");
    std::os::unix::fs::symlink(tmp.path().join("nowhere"), root.join("dangling")).expect("symlink");
    denied(call(&root, "read_file", json!({"file_path": "link.txt"})));
    denied(call(&root, "list_files", json!({"directory_path": "out"})));
    denied(call(
        &root,
        "write_file",
        json!({"file_path": "link.txt", "content": "pwned"}),
    ));
    denied(call(
        &root,
        "write_file",
        json!({"file_path": "out/new.txt", "content": "pwned"}),
    ));
    denied(call(
        &root,
        "write_file",
        json!({"file_path": "out/deeper/new.txt", "content": "pwned"}),
    ));
    denied(call(
        &root,
        "write_file",
        json!({"file_path": "dangling", "content": "pwned"}),
    ));
    assert_eq!(
        std::fs::read_to_string(&secret).expect("r"),
        "TOP SECRET beta\n"
    );
    assert!(
        std::fs::read_dir(&outside).expect("ls").next().is_none(),
        "nothing written outside"
    );
    assert!(!tmp.path().join("nowhere").exists());
    // Walking neither follows the link to a directory nor reads the linked file.
    let listed = call(
        &root,
        "list_files",
        json!({"recursive": true, "pattern": "*"}),
    )
    .expect("ls");
    assert!(
        listed.contains("out") && !listed.contains("out/"),
        "{listed}"
    );
    let found = call(&root, "search_files", json!({"pattern": "SECRET"})).expect("search");
    assert!(found.starts_with("No matches"), "{found}");
    // A link that stays inside is followed.
    std::os::unix::fs::symlink(root.join("a.txt"), root.join("alias.txt")).expect("symlink");
    assert!(
        call(&root, "read_file", json!({"file_path": "alias.txt"}))
            .expect("r")
            .contains("alpha")
    );

    // No workspace at all: file tools are unavailable.
    assert_eq!(
        code(call_with(None, Grants::default(), "list_files", json!({}))),
        ErrorCode::Unavailable
    );
    assert_eq!(
        code(call(&root, "no_such_tool", json!({}))),
        ErrorCode::NotFound
    );
}

/// A loopback stand-in: `/page` (HTML), `/data` (JSON), `/hop` (redirect to `/data`), `/leave` (redirect to
/// `other`), `/big` (64 KiB).
struct Site {
    url: String,
    _rt: tokio::runtime::Runtime,
}

fn site(other: &str) -> Site {
    let rt = rt();
    let other = format!("{other}/data");
    let app = Router::new()
        .route("/page", get(|| async {
            Html("<html><head><style>p{}</style><script>evil()</script></head><body><h1>Title</h1><p>Hello &amp; welcome</p></body></html>")
        }))
        .route("/data", get(|| async { axum::Json(json!({"k": [1, 2]})) }))
        .route("/hop", get(|| async { Redirect::temporary("/data") }))
        .route("/leave", get(move || {
            let to = other.clone();
            async move { Redirect::temporary(&to).into_response() }
        }))
        .route("/big", get(|| async { "x".repeat(64 << 10) }));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Site { url, _rt: rt }
}

#[test]
fn fetch_url_reaches_only_granted_origins() {
    let elsewhere = site("http://127.0.0.1:9");
    let s = site(&elsewhere.url);
    let granted = Grants {
        http: vec![s.url.clone()],
        ..Grants::default()
    };
    let fetch = |grants: &Grants, path: &str| {
        call_with(
            None,
            grants.clone(),
            "fetch_url",
            json!({"url": format!("{}{path}", s.url)}),
        )
    };
    let page = fetch(&granted, "/page").expect("page");
    assert!(
        page.starts_with(&format!(
            "URL: {}/page\nStatus: 200 OK\nContent-Type: text/html",
            s.url
        )),
        "{page}"
    );
    assert!(page.ends_with("\n\nTitle\nHello & welcome"), "{page}");
    let data = fetch(&granted, "/data").expect("json");
    assert!(
        data.ends_with("{\n  \"k\": [\n    1,\n    2\n  ]\n}"),
        "{data}"
    );
    // A redirect staying on the granted origin is followed; one leaving it is refused.
    let hop = fetch(&granted, "/hop").expect("hop");
    assert!(hop.starts_with(&format!("URL: {}/data\n", s.url)), "{hop}");
    let (c, msg) = fetch(&granted, "/leave").expect_err("leave");
    assert_eq!(c, ErrorCode::AccessDenied);
    assert!(msg.contains(&elsewhere.url), "{msg}");
    // Not granted at all.
    assert_eq!(
        code(fetch(&Grants::default(), "/page")),
        ErrorCode::AccessDenied
    );
    let other_port = Grants {
        http: vec![elsewhere.url.clone()],
        ..Grants::default()
    };
    assert_eq!(code(fetch(&other_port, "/data")), ErrorCode::AccessDenied);
    // The caller's body cap holds.
    let small = Grants {
        max_http_body: 1024,
        ..granted.clone()
    };
    assert_eq!(code(fetch(&small, "/big")), ErrorCode::TooLarge);
    assert_eq!(
        code(call_with(
            None,
            granted.clone(),
            "fetch_url",
            json!({"url": "file:///etc/hostname"})
        )),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(call_with(
            None,
            granted,
            "fetch_url",
            json!({"url": "not a url"})
        )),
        ErrorCode::InvalidInput
    );
}

#[test]
fn read_file_reads_regular_files_only_and_never_blocks_on_a_fifo() {
    let (_tmp, root) = workspace();
    let fifo = root.join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    // Opening a FIFO for reading would wait for a writer forever; it is refused at once instead.
    let (code, msg) =
        call(&root, "read_file", json!({"file_path": "pipe"})).expect_err("not a regular file");
    assert_eq!(code, ErrorCode::InvalidInput, "{msg}");
    assert!(msg.contains("not a regular file"), "{msg}");
    // search_files walks past it too.
    assert!(call(&root, "search_files", json!({"pattern": "beta"})).is_ok());
    // A link to a device leads outside the workspace and is refused like any escape.
    std::os::unix::fs::symlink("/dev/zero", root.join("zero")).expect("link");
    let (code, _) = call(&root, "read_file", json!({"file_path": "zero"})).expect_err("outside");
    assert_eq!(code, ErrorCode::AccessDenied);
}
