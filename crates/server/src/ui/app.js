// The run viewer: a page of the gateway itself, over its public HTTP API (nothing private). Every value shown comes
// from runs, flows and clients, so it is hostile: the DOM is built with text nodes only, never innerHTML.
"use strict";

const API = "/api/gateway";
const TOKEN_KEY = "abstractgateway.token";
const app = document.getElementById("app");
let cleanup = [];

// ---- helpers ---------------------------------------------------------------------------------------------------

// Sets attributes (`on*` become listeners; false and null are left out) and appends children as nodes or text.
function build(e, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function el(tag, attrs, ...children) { return build(document.createElement(tag), attrs, children); }

function svg(tag, attrs, ...children) {
  return build(document.createElementNS("http://www.w3.org/2000/svg", tag), attrs, children);
}

function toast(text) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.style.display = "block";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.style.display = "none"; }, 5000);
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
  }
}

async function api(method, path, body, raw) {
  const headers = { Authorization: "Bearer " + token() };
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
  const r = await fetch(API + path, { method, headers, body: payload });
  if (r.status === 401) { sessionStorage.removeItem(TOKEN_KEY); location.hash = "#/login"; throw new ApiError(401, "Unauthorized"); }
  if (raw) { if (!r.ok) throw new ApiError(r.status, r.statusText); return r; }
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  if (!r.ok) throw new ApiError(r.status, (data && data.detail) || r.statusText);
  return data;
}

function statusBadge(s) { return el("span", { class: "status " + (s || "") }, s || "?"); }

function short(v, n) {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  if (s === undefined) return "";
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

function json(v) { return el("pre", {}, JSON.stringify(v, null, 2)); }

function every(ms, fn) {
  const id = setInterval(fn, ms);
  cleanup.push(() => clearInterval(id));
}

// ---- routing ---------------------------------------------------------------------------------------------------

async function route() {
  cleanup.forEach((f) => f());
  cleanup = [];
  app.textContent = "";
  const hash = location.hash || "#/runs";
  document.getElementById("nav-runs").className = hash.startsWith("#/runs") ? "active" : "";
  document.getElementById("nav-bundles").className = hash.startsWith("#/bundles") ? "active" : "";
  if (!token() && hash !== "#/login") { location.hash = "#/login"; return; }
  try {
    if (hash === "#/login") return login();
    if (hash.startsWith("#/runs/")) return await runPage(decodeURIComponent(hash.slice(7)));
    if (hash.startsWith("#/bundles")) return await bundlesPage();
    return await runsPage();
  } catch (e) {
    app.appendChild(el("div", { class: "error" }, "Error: " + e.message));
  }
}

window.addEventListener("hashchange", route);
document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.hash = "#/login";
});

// ---- login -----------------------------------------------------------------------------------------------------

function login() {
  const input = el("input", { type: "password", id: "token", placeholder: "Bearer token", autocomplete: "off" });
  const msg = el("div", { class: "muted" });
  const form = el("form", {
    class: "card login",
    onsubmit: async (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      try {
        await api("GET", "/runs?limit=1");
        location.hash = "#/runs";
      } catch (e) {
        sessionStorage.removeItem(TOKEN_KEY);
        location.hash = "#/login";
        msg.textContent = "Login failed: " + e.message;
      }
    },
  }, el("h1", {}, "Log in"), el("label", { for: "token" }, "Gateway token"), input,
  el("button", { type: "submit", id: "login-submit" }, "Log in"), msg);
  app.appendChild(form);
  input.focus();
}

// ---- runs list -------------------------------------------------------------------------------------------------

async function runsPage() {
  const params = new URLSearchParams(sessionStorage.getItem("runs.filters") || "");
  const status = el("select", { id: "filter-status" },
    ["", "running", "waiting", "completed", "failed", "cancelled"].map((s) =>
      el("option", { value: s, selected: params.get("status") === s }, s || "any status")));
  const workflow = el("input", { id: "filter-workflow", placeholder: "workflow id", value: params.get("workflow_id") || "" });
  const session = el("input", { id: "filter-session", placeholder: "session id", value: params.get("session_id") || "" });
  const body = el("tbody", { id: "runs-body" });
  const load = async () => {
    const q = new URLSearchParams({ limit: "100" });
    if (status.value) q.set("status", status.value);
    if (workflow.value.trim()) q.set("workflow_id", workflow.value.trim());
    if (session.value.trim()) q.set("session_id", session.value.trim());
    sessionStorage.setItem("runs.filters", q.toString());
    const data = await api("GET", "/runs?" + q.toString());
    body.textContent = "";
    for (const r of data.items || []) {
      body.appendChild(el("tr", { class: "clickable", "data-run": r.run_id, onclick: () => { location.hash = "#/runs/" + encodeURIComponent(r.run_id); } },
        el("td", {}, statusBadge(r.status), r.paused ? " paused" : ""),
        el("td", {}, r.workflow_id),
        el("td", { class: "muted" }, r.run_id),
        el("td", { class: "muted" }, r.session_id || ""),
        el("td", { class: "muted" }, r.created_at || ""),
        el("td", {}, r.ledger_len === undefined ? "" : String(r.ledger_len))));
    }
    if (!(data.items || []).length) body.appendChild(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No runs.")));
  };
  for (const i of [status, workflow, session]) i.addEventListener("change", () => load().catch((e) => toast(e.message)));
  app.appendChild(el("h1", {}, "Runs"));
  app.appendChild(el("div", { class: "row" }, status, workflow, session));
  app.appendChild(el("table", {}, el("thead", {}, el("tr", {}, ["Status", "Workflow", "Run", "Session", "Created", "Records"].map((h) => el("th", {}, h)))), body));
  await load();
  every(2000, () => load().catch(() => {}));
}

// ---- run page --------------------------------------------------------------------------------------------------

async function runPage(runId) {
  let run = await api("GET", "/runs/" + encodeURIComponent(runId));
  const records = [];
  const nodeStatus = new Map();
  const head = el("div", { class: "card", id: "run-head" });
  const waitBox = el("div", { id: "wait-box" });
  const graphBox = el("div", { class: "card" }, el("h2", {}, "Flow"));
  const detail = el("div", { class: "card", id: "detail" }, el("h2", {}, "Details"), el("div", { class: "muted" }, "Click a node or a record."));
  const timeline = el("div", { id: "timeline" });
  const children = el("div", { id: "children" });
  const artifacts = el("div", { id: "artifacts" });
  let graph = null;

  const renderHead = () => {
    head.textContent = "";
    head.appendChild(el("h1", {}, run.workflow_id, " ", statusBadge(run.status), run.paused ? " (paused)" : ""));
    head.appendChild(el("div", { class: "muted" }, "run ", run.run_id, run.session_id ? " · session " + run.session_id : "",
      run.parent_run_id ? " · parent " : "", run.parent_run_id ? el("a", { href: "#/runs/" + encodeURIComponent(run.parent_run_id) }, run.parent_run_id) : "",
      " · current node ", run.current_node || "-"));
    if (run.error) head.appendChild(el("div", { class: "error", id: "run-error" }, run.error));
    if (run.output !== undefined && run.output !== null) head.appendChild(el("div", {}, el("h2", {}, "Output"), json(run.output)));
    const terminal = ["completed", "failed", "cancelled"].includes(run.status);
    const act = (label, type, cls, confirmText) => el("button", {
      class: cls, disabled: terminal, id: "action-" + type,
      onclick: async () => {
        if (!confirm(confirmText)) return;
        await command(type, {}).catch((e) => toast(e.message));
      },
    }, label);
    head.appendChild(el("div", { class: "row" },
      run.paused ? act("Resume", "resume", "", "Resume this run?") : act("Pause", "pause", "secondary", "Pause this run?"),
      act("Cancel", "cancel", "danger", "Cancel this run? This cannot be undone.")));
    renderWait();
    if (graph) graph.mark(run.current_node, nodeStatus);
  };

  const command = async (type, payload) => {
    const id = "ui-" + (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
    await api("POST", "/commands", { command_id: id, run_id: run.run_id, type, payload, client_id: "run-viewer" });
    toast(type + " sent");
    setTimeout(refresh, 300);
  };

  // Re-rendered only when the wait itself changes, so an answer being typed is never wiped by a refresh.
  let shownWait = null;
  const renderWait = () => {
    const w = run.waiting;
    const key = run.status === "waiting" && w ? JSON.stringify(w) : "";
    if (key === shownWait) return;
    shownWait = key;
    waitBox.textContent = "";
    if (run.status !== "waiting" || !w) return;
    const card = el("div", { class: "card", id: "waiting" }, el("h2", {}, "Waiting: " + (w.reason || "")));
    const answer = async (payload) => {
      if (!confirm("Send this answer?")) return;
      await command("resume", { wait_key: w.wait_key, payload }).catch((e) => toast(e.message));
    };
    if (w.reason === "user" && w.details && w.details.mode === "approval_required") {
      card.appendChild(el("div", {}, "Tool calls wait for approval:"));
      card.appendChild(json(w.details.tool_calls || []));
      card.appendChild(el("div", { class: "row" },
        el("button", { id: "approve", onclick: () => answer({ approved: true }) }, "Approve"),
        el("button", { class: "danger", id: "deny", onclick: () => answer({ approved: false }) }, "Deny")));
    } else if (w.reason === "user") {
      card.appendChild(el("div", { id: "prompt" }, w.prompt || "(no prompt)"));
      const choices = Array.isArray(w.choices) ? w.choices : [];
      if (choices.length) {
        card.appendChild(el("div", { class: "row" }, choices.map((c, i) =>
          el("button", { class: "secondary choice", "data-choice": i, onclick: () => answer({ response: typeof c === "string" ? c : JSON.stringify(c) }) }, typeof c === "string" ? c : JSON.stringify(c)))));
      }
      if (!choices.length || w.allow_free_text !== false) {
        const input = el("input", { id: "answer", placeholder: "Your answer", size: 50 });
        card.appendChild(el("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); answer({ response: input.value }); } },
          input, el("button", { type: "submit", id: "answer-submit" }, "Answer")));
      }
    } else {
      card.appendChild(el("div", { class: "muted" }, "wait key " + (w.wait_key || "") + (w.until ? " · until " + w.until : "")));
    }
    waitBox.appendChild(card);
  };

  const showRecords = (title, recs) => {
    detail.textContent = "";
    detail.appendChild(el("h2", {}, title));
    if (!recs.length) detail.appendChild(el("div", { class: "muted" }, "No records for this node yet."));
    for (const r of recs) {
      detail.appendChild(el("div", {}, el("strong", {}, "#" + r.cursor + " " + (r.record.status || "")), " ", r.record.node_id || ""));
      const rec = r.record;
      if (rec.error) detail.appendChild(el("div", { class: "error" }, rec.error));
      detail.appendChild(el("div", { class: "muted" }, "input / effect"));
      detail.appendChild(json(rec.effect || null));
      detail.appendChild(el("div", { class: "muted" }, "output / result"));
      detail.appendChild(json(rec.result === undefined ? null : rec.result));
    }
  };

  const addRecord = (cursor, record) => {
    records.push({ cursor, record });
    // A node that failed once stays marked failed (later records of the run may name it too).
    if (record.node_id && nodeStatus.get(record.node_id) !== "failed") nodeStatus.set(record.node_id, record.status);
    const eff = record.effect && record.effect.type ? record.effect.type : "";
    timeline.appendChild(el("div", { class: "rec", "data-cursor": cursor, onclick: () => showRecords("Record #" + cursor, [{ cursor, record }]) },
      "#" + cursor + " ", record.status || "", " ", record.node_id || "", eff ? " [" + eff + "]" : "",
      record.error ? " ✗ " + short(record.error, 80) : ""));
    timeline.scrollTop = timeline.scrollHeight;
  };

  let refreshing = null;
  const refresh = async () => {
    if (refreshing) return;
    refreshing = (async () => {
      try {
        run = await api("GET", "/runs/" + encodeURIComponent(runId));
        renderHead();
        await Promise.all([loadChildren(), loadArtifacts()]);
      } catch (e) { toast(e.message); }
    })();
    await refreshing;
    refreshing = null;
  };

  const loadChildren = async () => {
    const q = new URLSearchParams({ limit: "200" });
    if (run.session_id) q.set("session_id", run.session_id);
    const data = await api("GET", "/runs?" + q.toString());
    const kids = (data.items || []).filter((r) => r.parent_run_id === run.run_id);
    children.textContent = "";
    if (!kids.length) { children.appendChild(el("div", { class: "muted" }, "No child runs.")); return; }
    for (const k of kids) {
      children.appendChild(el("div", {}, statusBadge(k.status), " ", el("a", { href: "#/runs/" + encodeURIComponent(k.run_id) }, k.workflow_id), " ", el("span", { class: "muted" }, k.run_id)));
    }
  };

  const loadArtifacts = async () => {
    const data = await api("GET", "/runs/" + encodeURIComponent(run.run_id) + "/artifacts");
    artifacts.textContent = "";
    const items = data.items || data.artifacts || [];
    if (!items.length) { artifacts.appendChild(el("div", { class: "muted" }, "No artifacts.")); return; }
    for (const a of items) {
      const name = (a.tags && a.tags.filename) || a.artifact_id;
      artifacts.appendChild(el("div", {}, el("a", {
        href: "#", class: "artifact", onclick: async (ev) => {
          ev.preventDefault();
          const r = await api("GET", "/runs/" + encodeURIComponent(run.run_id) + "/artifacts/" + encodeURIComponent(a.artifact_id) + "/content", undefined, true);
          const url = URL.createObjectURL(await r.blob());
          const link = el("a", { href: url, download: name });
          document.body.appendChild(link);
          link.click();
          link.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10000);
        },
      }, name), " ", el("span", { class: "muted" }, (a.content_type || "") + " · " + a.size_bytes + " bytes")));
    }
  };

  // The ledger, live: a signed stream token (EventSource cannot send the bearer header); on an error the stream is
  // reopened with a fresh token after the last record seen, so nothing is missed or shown twice.
  let source = null;
  let closed = false;
  let lastCursor = 0;
  const follow = async () => {
    if (closed) return;
    let tok;
    try { tok = (await api("POST", "/runs/" + encodeURIComponent(run.run_id) + "/stream_token")).token; } catch (e) { setTimeout(follow, 2000); return; }
    const url = API + "/runs/" + encodeURIComponent(run.run_id) + "/ledger/stream?after=" + lastCursor + "&stream_token=" + encodeURIComponent(tok);
    source = new EventSource(url);
    source.addEventListener("step", (ev) => {
      const data = JSON.parse(ev.data);
      if (data.cursor <= lastCursor) return;
      lastCursor = data.cursor;
      addRecord(data.cursor, data.record || {});
      clearTimeout(follow.t);
      follow.t = setTimeout(refresh, 150);
    });
    source.addEventListener("done", () => { source.close(); refresh(); });
    // The browser's own retry would reuse the token, which expires: reopen with a fresh one instead.
    source.onerror = () => {
      source.close();
      setTimeout(follow, 1000);
    };
  };
  cleanup.push(() => { closed = true; if (source) source.close(); });

  // The flow's graph.
  try {
    const flow = await api("GET", "/workflows/" + encodeURIComponent(run.workflow_id) + "/flow");
    graph = drawGraph(flow.flow || flow, (nodeId) => showRecords("Node " + nodeId, records.filter((r) => r.record.node_id === nodeId)));
    graphBox.appendChild(graph.element);
  } catch (e) {
    graphBox.appendChild(el("div", { class: "muted" }, "No graph for this workflow: " + e.message));
  }

  const emitName = el("input", { id: "event-name", placeholder: "event name" });
  const emitScope = el("select", { id: "event-scope" }, ["session", "run", "workflow", "global"].map((s) => el("option", { value: s }, s)));
  const emitPayload = el("textarea", { id: "event-payload", placeholder: "{\"key\": \"value\"}" });
  const emitForm = el("form", {
    class: "card", id: "emit-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      let payload = {};
      if (emitPayload.value.trim()) {
        try { payload = JSON.parse(emitPayload.value); } catch (e) { toast("payload is not JSON: " + e.message); return; }
      }
      if (!emitName.value.trim()) { toast("an event needs a name"); return; }
      if (!confirm("Emit event " + emitName.value.trim() + "?")) return;
      const body = { name: emitName.value.trim(), scope: emitScope.value, payload };
      if (emitScope.value === "session") body.session_id = run.session_id;
      if (emitScope.value === "workflow") body.workflow_id = run.workflow_id;
      if (emitScope.value === "run") body.run_id = run.run_id;
      await command("emit_event", body).catch((e) => toast(e.message));
    },
  }, el("h2", {}, "Emit an event"), el("div", { class: "row" }, emitName, emitScope), emitPayload, el("button", { type: "submit" }, "Emit"));

  app.appendChild(head);
  app.appendChild(waitBox);
  app.appendChild(el("div", { class: "grid" },
    el("div", {}, graphBox, el("div", { class: "card" }, el("h2", {}, "Ledger"), timeline)),
    el("div", {}, detail, el("div", { class: "card" }, el("h2", {}, "Child runs"), children),
      el("div", { class: "card" }, el("h2", {}, "Artifacts"), artifacts), emitForm)));
  renderHead();
  await Promise.all([loadChildren().catch(() => {}), loadArtifacts().catch(() => {})]);
  follow();
}

// The VisualFlow graph: nodes at their saved positions, edges from handle to handle; execution edges darker.
function drawGraph(flow, onClick) {
  const nodes = Array.isArray(flow.nodes) ? flow.nodes : [];
  const edges = Array.isArray(flow.edges) ? flow.edges : [];
  const W = 150, H = 40;
  const pos = new Map();
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  nodes.forEach((n, i) => {
    const p = n.position || {};
    const x = Number.isFinite(p.x) ? p.x : i * 200;
    const y = Number.isFinite(p.y) ? p.y : 0;
    pos.set(String(n.id), { x, y });
    minX = Math.min(minX, x); minY = Math.min(minY, y); maxX = Math.max(maxX, x + W); maxY = Math.max(maxY, y + H);
  });
  if (!nodes.length) { minX = 0; minY = 0; maxX = 400; maxY = 100; }
  // Saved positions may be closer than the boxes drawn here: spread them until no two boxes on a row (or in a
  // column) overlap.
  const ps = [...pos.values()];
  let scale = 1;
  for (let i = 0; i < ps.length; i++) {
    for (let j = i + 1; j < ps.length; j++) {
      const dx = Math.abs(ps[i].x - ps[j].x), dy = Math.abs(ps[i].y - ps[j].y);
      if (dy < H && dx > 0) scale = Math.max(scale, (W + 24) / dx);
      else if (dx < W && dy > 0) scale = Math.max(scale, (H + 16) / dy);
    }
  }
  scale = Math.min(scale, 20);
  if (scale > 1) {
    for (const p of pos.values()) { p.x *= scale; p.y *= scale; }
    minX *= scale; minY *= scale; maxX = (maxX - W) * scale + W; maxY = (maxY - H) * scale + H;
  }
  const pad = 20;
  const root = svg("svg", { class: "graph", viewBox: `${minX - pad} ${minY - pad} ${maxX - minX + 2 * pad} ${maxY - minY + 2 * pad}` });
  for (const e of edges) {
    const a = pos.get(String(e.source)), b = pos.get(String(e.target));
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const dx = Math.max(30, Math.abs(x2 - x1) / 2);
    const exec = /exec/i.test(String(e.sourceHandle || "")) || /exec/i.test(String(e.targetHandle || ""));
    root.appendChild(svg("path", { class: "edge" + (exec ? " exec" : ""), d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}` }));
  }
  const groups = new Map();
  for (const n of nodes) {
    const p = pos.get(String(n.id));
    const label = String((n.data && (n.data.label || n.data.title)) || n.type || n.id);
    const kind = String(n.type || "");
    const g = svg("g", { class: "node", "data-node": String(n.id), transform: `translate(${p.x},${p.y})`, onclick: () => onClick(String(n.id)) },
      svg("rect", { width: W, height: H }),
      svg("text", { x: 8, y: kind && kind !== label ? 16 : 24 }, short(label, 22)),
      kind && kind !== label ? svg("text", { x: 8, y: 31, fill: "#6b7588" }, short(kind, 24)) : null);
    groups.set(String(n.id), g);
    root.appendChild(g);
  }
  return {
    element: root,
    mark(current, statuses) {
      for (const [id, g] of groups) {
        const s = statuses.get(id);
        g.setAttribute("class", "node" + (s ? " " + s : "") + (id === current ? " current" : ""));
      }
    },
  };
}

// ---- bundles ---------------------------------------------------------------------------------------------------

async function bundlesPage() {
  app.appendChild(el("h1", {}, "Bundles"));
  const file = el("input", { type: "file", id: "bundle-file", accept: ".flow" });
  const overwrite = el("input", { type: "checkbox", id: "bundle-overwrite" });
  app.appendChild(el("form", {
    class: "card", id: "upload-form",
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (!file.files.length) { toast("choose a .flow file"); return; }
      const fd = new FormData();
      fd.append("file", file.files[0]);
      if (overwrite.checked) fd.append("overwrite", "true");
      try {
        const r = await api("POST", "/bundles/upload", fd);
        toast("uploaded " + (r.bundle_ref || r.bundle_id || ""));
        route();
      } catch (e) { toast("upload failed: " + e.message); }
    },
  }, el("h2", {}, "Upload a bundle"), el("div", { class: "row" }, file, el("label", {}, overwrite, " overwrite"), el("button", { type: "submit", id: "upload-submit" }, "Upload"))));
  const data = await api("GET", "/bundles");
  const starter = el("div", { id: "starter" });
  const table = el("table", {}, el("thead", {}, el("tr", {}, ["Bundle", "Version", "Entrypoints"].map((h) => el("th", {}, h)))));
  const body = el("tbody", {});
  for (const b of data.items || []) {
    body.appendChild(el("tr", {},
      el("td", {}, b.bundle_id), el("td", {}, b.bundle_version || ""),
      el("td", {}, (b.entrypoints || []).map((ep) => el("button", {
        class: "secondary start", "data-bundle": b.bundle_id, "data-flow": ep.flow_id,
        onclick: () => startForm(starter, b.bundle_id, ep.flow_id).catch((e) => toast(e.message)),
      }, "Start " + (ep.name || ep.flow_id))))));
  }
  table.appendChild(body);
  app.appendChild(table);
  app.appendChild(starter);
}

// A form from the entrypoint's start pins: strings as text, numbers as numbers, booleans as checkboxes, the rest
// as JSON.
async function startForm(box, bundleId, flowId) {
  const b = await api("GET", "/bundles/" + encodeURIComponent(bundleId));
  const ep = (b.entrypoints || []).find((e) => e.flow_id === flowId) || {};
  const fields = [];
  const form = el("form", { class: "card", id: "start-form" }, el("h2", {}, "Start " + (ep.name || flowId)));
  for (const pin of ep.inputs || []) {
    const ty = pin.type || "string";
    let input;
    if (ty === "boolean") input = el("input", { type: "checkbox", checked: pin.default === true });
    else if (ty === "number" || ty === "integer") input = el("input", { type: "number", step: "any", value: pin.default ?? "" });
    else if (ty === "string" || ty === "text") input = el("input", { type: "text", size: 60, value: pin.default ?? "" });
    else input = el("textarea", {}, pin.default === undefined || pin.default === null ? "" : JSON.stringify(pin.default, null, 2));
    input.setAttribute("data-pin", pin.id);
    input.id = "pin-" + pin.id;
    fields.push({ pin, ty, input });
    form.appendChild(el("label", { for: input.id }, pin.label || pin.id, el("span", { class: "muted" }, " (" + ty + ")")));
    form.appendChild(input);
  }
  const session = el("input", { id: "start-session", placeholder: "session id (optional)" });
  form.appendChild(el("label", { for: "start-session" }, "Session"));
  form.appendChild(session);
  form.appendChild(el("div", { class: "row" }, el("button", { type: "submit", id: "start-submit" }, "Start run")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = {};
    for (const { pin, ty, input: i } of fields) {
      if (ty === "boolean") input[pin.id] = i.checked;
      else if (ty === "number" || ty === "integer") { if (i.value !== "") input[pin.id] = Number(i.value); }
      else if (ty === "string" || ty === "text") input[pin.id] = i.value;
      else if (i.value.trim()) {
        try { input[pin.id] = JSON.parse(i.value); } catch (e) { toast(pin.id + " is not JSON: " + e.message); return; }
      }
    }
    const body = { bundle_id: bundleId, flow_id: flowId, input_data: input };
    if (session.value.trim()) body.session_id = session.value.trim();
    try {
      const r = await api("POST", "/runs/start", body);
      location.hash = "#/runs/" + encodeURIComponent(r.run_id);
    } catch (e) { toast("start failed: " + e.message); }
  });
  box.textContent = "";
  box.appendChild(form);
}

route();
