//! The run viewer at `/ui` in a real browser: headless Chromium from Debian's packages, driven through WebDriver
//! (`chromedriver`), against the real server. It logs in, starts `ask-user` from the bundles page, sees the prompt
//! arrive live, answers it and sees the run complete; it uploads a bundle, starts it and sees the failed run's
//! error. Every page is photographed; each screenshot must show something (not one flat colour) and is kept under
//! the target dir's `tmp/run-viewer/`. `scripts/test.sh` installs `chromium` and `chromium-driver`; without them
//! this test fails, it never skips.

mod binary;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use binary::{Server, TOKEN, client};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long one page state may take to appear.
const UI_WAIT: Duration = Duration::from_secs(30);

/// A chromedriver process on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    async fn start() -> Driver {
        for path in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: install Debian's chromium and chromium-driver (scripts/test.sh does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + UI_WAIT;
        loop {
            let status = client()
                .get(format!("http://127.0.0.1:{port}/status"))
                .send()
                .await;
            if let Ok(r) = status
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver never became ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Driver { child, port }
    }

    /// A headless browser session; confirmation dialogs are accepted (every action of the viewer asks first).
    async fn browser(&self, profile: &Path) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert("unhandledPromptBehavior".into(), json!("accept"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900", format!("--user-data-dir={}", profile.display()),
            ]}),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a WebDriver session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the element matching `css` exists and its text contains `text`; returns the text.
async fn wait_text(c: &Client, css: &str, text: &str) -> String {
    let deadline = Instant::now() + UI_WAIT;
    let mut last = String::new();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
        {
            if t.contains(text) {
                return t;
            }
            last = t;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {text:?} (last: {last:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(UI_WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn type_into(c: &Client, css: &str, text: &str) {
    c.wait()
        .at_most(UI_WAIT)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("run-viewer");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Takes a screenshot, keeps it, and checks that the page is not blank: at least 1% of its pixels differ from
/// the most common colour.
async fn photograph(c: &Client, name: &str) {
    let png_bytes = c.screenshot().await.expect("screenshot");
    let path = shots_dir().join(format!("{name}.png"));
    std::fs::write(&path, &png_bytes).expect("keep screenshot");
    let decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("buffer size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    let mut counts = std::collections::HashMap::new();
    for p in &pixels {
        *counts.entry(*p).or_insert(0usize) += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    let other = pixels.len() - most;
    assert!(
        other * 100 >= pixels.len(),
        "{name} looks blank: {other} of {} pixels differ from the background ({})",
        pixels.len(),
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_viewer_answers_a_prompt_shows_a_failure_and_uploads_a_bundle() {
    let server = Server::start(&[]).await;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().expect("profile dir");
    let c = driver.browser(profile.path()).await;

    // Served by the binary itself, with headers that keep it from being framed or loading anything else.
    let r = client()
        .get(server.url("/ui"))
        .send()
        .await
        .expect("the page");
    assert_eq!(r.status(), 200);
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );

    // Log in.
    c.goto(&server.url("/")).await.expect("open /");
    type_into(&c, "#token", "wrong-token").await;
    click(&c, "#login-submit").await;
    wait_text(&c, "form.login", "Login failed").await;
    photograph(&c, "01-login-refused").await;
    c.find(Locator::Css("#token"))
        .await
        .expect("token field")
        .clear()
        .await
        .expect("clear");
    type_into(&c, "#token", TOKEN).await;
    click(&c, "#login-submit").await;
    wait_text(&c, "h1", "Runs").await;

    // Start ask-user from its entrypoint's form; the prompt appears live and is answered.
    click(&c, "#nav-bundles").await;
    click(&c, "button.start[data-bundle='ask-user']").await;
    wait_text(&c, "#start-form", "Start").await;
    photograph(&c, "02-bundles").await;
    click(&c, "#start-submit").await;
    let prompt = wait_text(&c, "#prompt", "").await;
    assert!(!prompt.trim().is_empty());
    wait_text(&c, "#run-head", "waiting").await;
    photograph(&c, "03-run-waiting").await;
    let url = c.current_url().await.expect("url");
    let run_id = url
        .fragment()
        .and_then(|f| f.strip_prefix("/runs/"))
        .expect("on a run page")
        .to_string();
    type_into(&c, "#answer", "blue").await;
    click(&c, "#answer-submit").await;
    wait_text(&c, "#run-head", "completed").await;
    wait_text(&c, "#run-head", "blue").await;
    wait_text(&c, "#timeline", "completed").await;
    photograph(&c, "04-run-completed").await;
    // The graph is drawn from the flow, with the executed nodes marked.
    let marked = c
        .find_all(Locator::Css("svg.graph g.node.completed"))
        .await
        .expect("graph nodes");
    assert!(!marked.is_empty(), "no node marked completed");
    let run = server.wait_status(&run_id, "completed").await;
    assert!(run["output"].to_string().contains("blue"), "{run}");

    // Markup in a run's values (its session, its input echoed into its output) is shown as text, never parsed.
    let (st, v) = server
        .post(
            "/api/gateway/runs/start",
            json!({"bundle_id": "echo-upper", "session_id": "<b id=bold>s</b>",
                "input_data": {"name": "<img id=pwn src=x onerror=alert(1)>"}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let hostile = v["run_id"].as_str().expect("run id").to_string();
    server.wait_status(&hostile, "completed").await;

    // The runs list shows both.
    click(&c, "#nav-runs").await;
    wait_text(&c, "#runs-body", &run_id).await;
    wait_text(&c, "#runs-body", "<b id=bold>s</b>").await;
    photograph(&c, "05-runs").await;
    c.goto(&server.url(&format!("/ui#/runs/{hostile}")))
        .await
        .expect("the hostile run's page");
    wait_text(&c, "#run-head", "<IMG ID=PWN").await;
    for css in ["img", "b#bold", "#pwn", "#PWN"] {
        let found = c.find_all(Locator::Css(css)).await.expect("find");
        assert!(found.is_empty(), "{css} was parsed as markup");
    }

    // Upload a bundle whose flow fails here (no LLM is configured), start it, see the error.
    click(&c, "#nav-bundles").await;
    // WebDriver takes only canonical paths for a file input.
    let bundle = abstractgateway_testkit::shared_dir()
        .join("fixtures/bundles/seed/basic-llm-test@0.0.0.flow")
        .canonicalize()
        .expect("the seed's bundle");
    type_into(&c, "#bundle-file", &bundle.to_string_lossy()).await;
    click(&c, "#upload-submit").await;
    click(&c, "button.start[data-bundle='basic-llm-test']").await;
    wait_text(&c, "#start-form", "Start").await;
    click(&c, "#start-submit").await;
    let error = wait_text(&c, "#run-error", "").await;
    assert!(!error.trim().is_empty());
    wait_text(&c, "#run-head", "failed").await;
    let deadline = Instant::now() + UI_WAIT;
    while c
        .find_all(Locator::Css("svg.graph g.node.failed"))
        .await
        .map(|v| v.is_empty())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the failed node is never marked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    photograph(&c, "06-run-failed").await;

    c.close().await.expect("close the browser");
}
