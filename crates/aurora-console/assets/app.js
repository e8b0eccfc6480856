// Aurora console: plain JavaScript over the server's /v1 API. No library,
// no build step. Event streams are read with fetch (EventSource cannot send
// the API key), resumed with Last-Event-ID after a broken connection.
"use strict";

const $ = (sel) => document.querySelector(sel);
const PAGE_SIZE = 20;
// The longest text a table cell, a tail row or a live result shows (a
// document of megabytes stays whole in the editor, not in the DOM of lists).
const CELL_CHARS = 300;
const ROW_CHARS = 2000;
const clip = (text, max) => (text.length > max ? text.slice(0, max) + ` … (${text.length} characters)` : text);
// A change badge: its type as text, its class from a fixed list (never markup from the server).
const BADGES = ["insert", "update", "delete", "snapshot", "added", "removed", "modified"];
function badge(type) {
  const b = document.createElement("span");
  b.className = "badge" + (BADGES.includes(type) ? " " + type : "");
  b.textContent = type;
  return b;
}
const state = {
  key: localStorage.getItem("aurora.key") || "",
  collections: [],
  collection: null,
  cursors: [null], // the cursor of each page seen (page 0 has none)
  page: 0,
  nextCursor: null,
  selected: null, // the id (JSON) of the document in the editor, or null for a new one
  live: null, // AbortController of the live query
};

// ---- the API ---------------------------------------------------------------

class ApiError extends Error {
  constructor(status, error) {
    super(error && error.message ? error.message : `HTTP ${status}`);
    this.status = status;
    this.code = (error && error.code) || "http_" + status;
    this.details = error || {};
  }
}

function headers(extra) {
  const h = Object.assign({}, extra);
  if (state.key) h["Authorization"] = "Bearer " + state.key;
  return h;
}

async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!res.ok) {
    if (res.status === 401) refusedKey("The server refused the key: " + ((json && json.error && json.error.message) || "unauthorized"));
    throw new ApiError(res.status, json && json.error);
  }
  return json !== null ? json : text;
}

const enc = encodeURIComponent;
const idText = (id) => (typeof id === "string" ? id : JSON.stringify(id));
// An id (its JSON form) as the server reads a path segment: a text id
// spelled like a UUID ({"$text": …}) or starting with `~` goes behind a `~`.
const idSegment = (id) => {
  if (typeof id === "string") return id.startsWith("~") ? "~" + id : id;
  if (id && typeof id.$text === "string") return "~" + id.$text;
  return JSON.stringify(id);
};
const docPath = (c, id) => `/v1/collections/${enc(c)}/documents/${enc(idSegment(id))}`;

function explain(err) {
  if (!(err instanceof ApiError)) return String(err);
  const d = err.details;
  let where = "";
  if (d.field) where += ` — field ${d.field}`;
  if (d.at !== undefined && d.at !== "") where += ` — at ${d.at}`;
  return `${err.code}${where}: ${err.message}`;
}

function showError(el, err) {
  el.hidden = !err;
  el.textContent = err ? explain(err) : "";
}

// ---- Server-Sent Events over fetch -----------------------------------------

// Reads an event stream until it ends; `onEvent({event, data, id})`.
async function readEvents(path, lastId, signal, onEvent) {
  const h = headers({ Accept: "text/event-stream" });
  if (lastId !== null && lastId !== undefined) h["Last-Event-ID"] = String(lastId);
  const res = await fetch(path, { headers: h, signal });
  if (!res.ok) {
    let error = null;
    try { error = (await res.json()).error; } catch (_) { error = null; }
    if (res.status === 401) refusedKey("The server refused the key.");
    throw new ApiError(res.status, error);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
    let end;
    while ((end = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const ev = { event: "message", data: [], id: null };
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const i = line.indexOf(":");
        const name = i < 0 ? line : line.slice(0, i);
        let v = i < 0 ? "" : line.slice(i + 1);
        if (v.startsWith(" ")) v = v.slice(1);
        if (name === "event") ev.event = v;
        else if (name === "data") ev.data.push(v);
        else if (name === "id") ev.id = v;
      }
      if (ev.data.length || ev.id !== null) {
        ev.data = ev.data.join("\n");
        onEvent(ev);
      }
    }
  }
}

// Follows a stream forever: reconnects after a break, resuming after the
// last event id; a refusal (4xx) or an error event other than
// `slow_consumer` stops it. `status(text)` reports the state.
function follow(pathFn, onEvent, status, signal) {
  let last = null;
  let wait = 250;
  (async () => {
    while (!signal.aborted) {
      try {
        status("connected");
        let stop = null;
        await readEvents(pathFn(), last, signal, (ev) => {
          if (ev.id !== null) last = ev.id;
          if (ev.event === "error") {
            let e = {};
            try { e = JSON.parse(ev.data).error || {}; } catch (_) { e = { code: "bad_event", message: "an error event that is not JSON" }; }
            // A key revoked while the stream runs ends it with `unauthorized`.
            if (e.code === "unauthorized") refusedKey("The server refused the key: " + (e.message || "unauthorized"));
            if (e.code !== "slow_consumer") stop = new ApiError(200, e);
            return;
          }
          wait = 250;
          onEvent(ev);
        });
        if (stop) throw stop;
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof ApiError && (err.status < 500 || err.status === 200)) {
          status("stopped: " + explain(err));
          return;
        }
      }
      status("reconnecting…");
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 3000);
    }
  })();
}

// ---- the key ---------------------------------------------------------------

// A key the server refused (unknown or revoked) is forgotten, not kept
// in storage to be sent again; the person is asked for another.
function refusedKey(message) {
  if (state.key) {
    state.key = "";
    localStorage.removeItem("aurora.key");
  }
  askForKey(message);
}

function askForKey(message) {
  $("#key-dialog").hidden = false;
  $("#key-input").value = state.key;
  $("#key-error").hidden = !message;
  $("#key-error").textContent = message || "";
  $("#key-input").focus();
}

$("#key-button").onclick = () => askForKey("");
$("#key-clear").onclick = () => useKey("");
$("#key-form").onsubmit = (e) => { e.preventDefault(); useKey($("#key-input").value.trim()); };

function useKey(key) {
  state.key = key;
  if (key) localStorage.setItem("aurora.key", key); else localStorage.removeItem("aurora.key");
  $("#key-dialog").hidden = true;
  start();
}

// ---- tabs ------------------------------------------------------------------

for (const b of document.querySelectorAll(".tabs button")) {
  b.onclick = () => showTab(b.dataset.tab);
}

function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const t of document.querySelectorAll(".tab")) t.classList.toggle("active", t.id === "tab-" + name);
  if (name === "jobs") loadJobs();
  if (name === "metrics") drawCharts();
}

// ---- collections -----------------------------------------------------------

async function loadCollections() {
  const { collections } = await api("GET", "/v1/collections");
  const infos = await Promise.all(collections.map((c) => api("GET", `/v1/collections/${enc(c)}`).catch(() => ({ name: c, count: "?" }))));
  state.collections = infos;
  const ul = $("#collections");
  ul.textContent = "";
  for (const info of infos) {
    const li = document.createElement("li");
    li.dataset.name = info.name;
    li.innerHTML = `<span class="name"></span><span class="count"></span>`;
    li.querySelector(".name").textContent = info.name;
    li.querySelector(".count").textContent = info.count;
    li.classList.toggle("active", info.name === state.collection);
    li.onclick = () => selectCollection(info.name);
    ul.appendChild(li);
  }
  if (!state.collection && infos.length) selectCollection(infos[0].name);
  else renderSchema();
}

function renderSchema() {
  const info = state.collections.find((c) => c.name === state.collection);
  const box = $("#schema");
  box.textContent = "";
  if (!info || !info.schema) return;
  const h = document.createElement("h2");
  h.textContent = `Schema of ${info.name}`;
  box.appendChild(h);
  const fields = Object.entries(info.schema.fields || {});
  const table = document.createElement("table");
  for (const [path, def] of fields) {
    const tr = table.insertRow();
    tr.insertCell().textContent = path;
    const flags = [def.type, def.unique ? "unique" : def.indexed ? "indexed" : "", def.nullable ? "nullable" : ""].filter(Boolean);
    tr.insertCell().textContent = flags.join(" · ");
  }
  if (!fields.length) table.insertRow().insertCell().textContent = "no declared fields";
  box.appendChild(table);
  const p = document.createElement("p");
  p.className = "muted";
  p.textContent = `unknown fields: ${info.schema.unknown_fields}; ${(info.indexes || []).length} index(es)`;
  box.appendChild(p);
}

function selectCollection(name) {
  state.collection = name;
  state.cursors = [null];
  state.page = 0;
  for (const li of document.querySelectorAll("#collections li")) li.classList.toggle("active", li.dataset.name === name);
  $("#documents-title").textContent = `Documents in ${name}`;
  renderSchema();
  newDocument();
  loadDocuments();
}

$("#new-collection-form").onsubmit = async (e) => {
  e.preventDefault();
  const name = $("#new-collection-name").value.trim();
  const text = $("#new-collection-schema").value.trim();
  try {
    const body = { name };
    if (text) body.schema = JSON.parse(text);
    await api("POST", "/v1/collections", body);
    showError($("#new-collection-error"), null);
    $("#new-collection-name").value = "";
    state.collection = name;
    await loadCollections();
    selectCollection(name);
  } catch (err) {
    showError($("#new-collection-error"), err);
  }
};

// ---- documents -------------------------------------------------------------

function columnsOf(docs) {
  const cols = ["_id"];
  for (const d of docs) for (const k of Object.keys(d)) if (!cols.includes(k) && cols.length < 9) cols.push(k);
  return cols;
}

function cellText(v) {
  if (v === undefined) return "";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

function renderTable(el, docs, onClick) {
  el.textContent = "";
  if (!docs.length) {
    el.innerHTML = `<p class="muted">No documents.</p>`;
    return;
  }
  const cols = columnsOf(docs);
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const c of cols) { const th = document.createElement("th"); th.textContent = c; head.appendChild(th); }
  const body = table.createTBody();
  for (const d of docs) {
    const tr = body.insertRow();
    tr.dataset.id = idText(d._id);
    for (const c of cols) { const td = tr.insertCell(); const text = cellText(d[c]); td.textContent = clip(text, CELL_CHARS); td.title = clip(text, ROW_CHARS); }
    if (onClick) { tr.className = "clickable"; tr.onclick = () => onClick(d, tr); }
  }
  el.appendChild(table);
}

async function loadDocuments() {
  if (!state.collection) return;
  const body = { limit: PAGE_SIZE };
  const cursor = state.cursors[state.page];
  if (cursor) body.cursor = cursor;
  // An answer that arrives after another collection or page was chosen
  // is stale: showing it would put one collection's documents (and
  // cursor) under another's name.
  const asked = { collection: state.collection, page: state.page, cursor };
  const current = () => state.collection === asked.collection && state.page === asked.page && state.cursors[state.page] === asked.cursor;
  try {
    const res = await api("POST", `/v1/collections/${enc(state.collection)}/query`, body);
    if (!current()) return;
    state.nextCursor = res.next_cursor;
    renderTable($("#documents-table"), res.results, (d, tr) => editDocument(d, tr));
    $("#page-label").textContent = `page ${state.page + 1}`;
    $("#page-prev").disabled = state.page === 0;
    $("#page-next").disabled = !res.next_cursor;
    if (state.selected !== null) {
      const tr = [...document.querySelectorAll("#documents-table tr")].find((r) => r.dataset.id === idText(state.selected));
      if (tr) tr.classList.add("selected");
    }
  } catch (err) {
    if (current()) $("#documents-table").textContent = explain(err);
  }
}

$("#page-next").onclick = () => { if (state.nextCursor) { state.cursors[state.page + 1] = state.nextCursor; state.page += 1; loadDocuments(); } };
$("#page-prev").onclick = () => { if (state.page > 0) { state.page -= 1; loadDocuments(); } };

function editDocument(doc, tr) {
  state.selected = doc._id;
  for (const r of document.querySelectorAll("#documents-table tr")) r.classList.remove("selected");
  if (tr) tr.classList.add("selected");
  $("#editor").value = JSON.stringify(doc, null, 2);
  $("#editor-title").textContent = "Edit " + idText(doc._id);
  $("#doc-delete").disabled = false;
  setEditorError(null);
  $("#editor-status").textContent = "";
}

function newDocument() {
  state.selected = null;
  $("#editor").value = "{\n  \n}";
  $("#editor-title").textContent = "New document";
  $("#doc-delete").disabled = true;
  setEditorError(null);
}

function setEditorError(err) {
  showError($("#editor-error"), err);
  $("#editor").classList.toggle("invalid", !!err);
}

$("#doc-new").onclick = () => { newDocument(); $("#editor").focus(); };

$("#doc-save").onclick = async () => {
  let doc;
  try { doc = JSON.parse($("#editor").value); } catch (e) { setEditorError("The document is not JSON: " + e.message); return; }
  try {
    if (state.selected !== null) {
      const saved = await api("PUT", docPath(state.collection, state.selected), doc);
      $("#editor").value = JSON.stringify(saved, null, 2);
      $("#editor-status").textContent = "saved";
    } else {
      const { _id } = await api("POST", `/v1/collections/${enc(state.collection)}/documents`, doc);
      state.selected = _id;
      $("#editor-title").textContent = "Edit " + idText(_id);
      $("#doc-delete").disabled = false;
      $("#editor-status").textContent = "inserted " + idText(_id);
    }
    setEditorError(null);
    await loadDocuments();
    refreshCounts();
  } catch (err) {
    setEditorError(err);
  }
};

$("#doc-delete").onclick = async () => {
  if (state.selected === null) return;
  try {
    await api("DELETE", docPath(state.collection, state.selected));
    $("#editor-status").textContent = "deleted " + idText(state.selected);
    newDocument();
    await loadDocuments();
    refreshCounts();
  } catch (err) {
    setEditorError(err);
  }
};

async function refreshCounts() {
  for (const li of document.querySelectorAll("#collections li")) {
    try {
      const info = await api("GET", `/v1/collections/${enc(li.dataset.name)}`);
      li.querySelector(".count").textContent = info.count;
    } catch (_) { /* shown on the next full load */ }
  }
}

// ---- queries ---------------------------------------------------------------

function parseOrder(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean).map((s) => {
    const [field, dir] = s.split(/\s+/);
    return { field, order: dir && dir.toLowerCase() === "desc" ? "desc" : "asc" };
  });
}

function querySpec(filterEl, orderEl, limitEl) {
  const spec = {};
  const f = filterEl.value.trim();
  if (f) spec.filter = JSON.parse(f);
  const order = parseOrder(orderEl.value);
  if (order.length) spec.order = order;
  const limit = parseInt(limitEl.value, 10);
  if (limit > 0) spec.limit = limit;
  return spec;
}

function describeAccess(a) {
  if (!a) return "?";
  switch (a.type) {
    case "full_scan": return "full scan";
    case "ids": return `read by id (${a.count} id${a.count === 1 ? "" : "s"})`;
    case "index": return `index on ${a.field} (${a.scans} range${a.scans === 1 ? "" : "s"})`;
    case "index_order": return `index order on ${a.field}${a.descending ? " (descending)" : ""}`;
    case "compound": return `compound index (${a.fields.join(", ")})`;
    case "intersection": return "intersection of " + a.of.map(describeAccess).join(" and ");
    default: return a.type;
  }
}

$("#query-run").onclick = async () => {
  let spec;
  try { spec = querySpec($("#query-filter"), $("#query-order"), $("#query-limit")); } catch (e) { showError($("#query-error"), "The filter is not JSON: " + e.message); return; }
  spec.explain = true;
  try {
    const res = await api("POST", `/v1/collections/${enc(state.collection)}/query`, spec);
    showError($("#query-error"), null);
    renderTable($("#query-results"), res.results, null);
    $("#query-count").textContent = `${res.results.length}${res.next_cursor ? "+" : ""} in ${state.collection}`;
    const p = res.plan;
    $("#query-plan").textContent = JSON.stringify(p, null, 2);
    const s = $("#query-plan-summary");
    s.className = "plan-summary";
    s.innerHTML = "";
    for (const [k, v] of [["access", describeAccess(p.access)], ["estimated rows", p.estimated_rows], ["examined rows", p.examined_rows], ["returned rows", p.returned_rows]]) {
      const a = document.createElement("b"); a.textContent = k; s.appendChild(a);
      const b = document.createElement("span"); b.textContent = v; s.appendChild(b);
    }
  } catch (err) {
    showError($("#query-error"), err);
  }
};

// ---- live tail -------------------------------------------------------------

let tail = null;
function startTail() {
  if (tail) tail.abort();
  tail = new AbortController();
  follow(() => "/v1/changes", (ev) => {
    if (ev.event !== "commit") return;
    const c = JSON.parse(ev.data);
    const body = $("#tail");
    for (const ch of c.changes) {
      const tr = document.createElement("tr");
      tr.className = "fresh";
      const cells = [c.sequence, new Date().toLocaleTimeString(), ch.collection, null, clip(idText(ch.id), CELL_CHARS), ch.document ? clip(JSON.stringify(ch.document), CELL_CHARS) : ""];
      cells.forEach((v, i) => {
        const td = tr.insertCell();
        if (i === 3) td.appendChild(badge(String(ch.type)));
        else td.textContent = v;
      });
      body.insertBefore(tr, body.firstChild);
    }
    while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
    if (c.changes.some((ch) => ch.collection === state.collection)) scheduleRefresh();
    // A write to a collection the sidebar does not list (made since it loaded).
    if (c.changes.some((ch) => !state.collections.some((i) => i.name === ch.collection))) scheduleCollections();
  }, (s) => { $("#tail-status").textContent = s; }, tail.signal);
}
$("#tail-clear").onclick = () => { $("#tail").textContent = ""; };

let collectionsTimer = null;
function scheduleCollections() {
  if (collectionsTimer) return;
  collectionsTimer = setTimeout(() => { collectionsTimer = null; loadCollections().catch(() => {}); }, 500);
}

let refreshTimer = null;
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => { refreshTimer = null; loadDocuments(); refreshCounts(); }, 300);
}

// ---- live query ------------------------------------------------------------

function renderLive(list, changed) {
  const ol = $("#live-results");
  ol.textContent = "";
  list.forEach((d) => {
    const li = document.createElement("li");
    li.textContent = clip(JSON.stringify(d), ROW_CHARS);
    if (changed.has(idText(d._id))) li.className = "fresh";
    ol.appendChild(li);
  });
}

function liveLog(text, type) {
  const li = document.createElement("li");
  li.appendChild(badge(type));
  li.appendChild(document.createTextNode(" " + clip(text, ROW_CHARS)));
  const log = $("#live-log");
  log.insertBefore(li, log.firstChild);
  while (log.children.length > 200) log.removeChild(log.lastChild);
}

$("#live-start").onclick = () => {
  let spec;
  try { spec = querySpec($("#live-filter"), $("#live-order"), $("#live-limit")); } catch (e) { showError($("#live-error"), "The filter is not JSON: " + e.message); return; }
  showError($("#live-error"), null);
  if (state.live) state.live.abort();
  state.live = new AbortController();
  const collection = state.collection;
  let list = [];
  $("#live-log").textContent = "";
  follow(() => `/v1/collections/${enc(collection)}/live?q=${enc(JSON.stringify(spec))}`, (ev) => {
    const data = JSON.parse(ev.data);
    if (ev.event === "snapshot") {
      list = data.results;
      renderLive(list, new Set());
      liveLog(`#${data.sequence}: ${list.length} result(s)`, "snapshot");
    } else if (ev.event === "update") {
      const changed = new Set();
      for (const ch of data.changes) {
        if (ch.type === "removed" || ch.type === "modified") list.splice(ch.old_index, 1);
        if (ch.type === "added" || ch.type === "modified") { list.splice(ch.new_index, 0, ch.document); changed.add(idText(ch.document._id)); }
        const id = ch.document ? ch.document._id : ch.id;
        const where = ch.type === "removed" ? `from ${ch.old_index}` : ch.type === "added" ? `at ${ch.new_index}` : `${ch.old_index} → ${ch.new_index}`;
        liveLog(`#${data.sequence} ${idText(id)} ${where}`, ch.type);
      }
      renderLive(list, changed);
    }
  }, (s) => { $("#live-status").textContent = `${collection}: ${s}`; }, state.live.signal);
};
$("#live-stop").onclick = () => { if (state.live) state.live.abort(); state.live = null; $("#live-status").textContent = "stopped"; };

// ---- jobs ------------------------------------------------------------------

const JOB_STATES = ["pending", "scheduled", "running", "failed", "dead_letter", "completed", "cancelled"];
let jobState = "pending";
let jobQueue = null; // the queue whose jobs are listed (null: every queue)

async function loadJobs() {
  try {
    const lists = await Promise.all(JOB_STATES.map((s) => api("GET", `/v1/jobs?status=${s}&limit=1000`).then((r) => r.jobs)));
    showError($("#jobs-error"), null);
    const byQueue = {};
    lists.forEach((jobs, i) => {
      for (const j of jobs) {
        byQueue[j.queue] = byQueue[j.queue] || {};
        byQueue[j.queue][JOB_STATES[i]] = (byQueue[j.queue][JOB_STATES[i]] || 0) + 1;
      }
    });
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const h of ["queue", ...JOB_STATES]) { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); }
    const body = table.createTBody();
    for (const q of Object.keys(byQueue).sort()) {
      const tr = body.insertRow();
      tr.insertCell().textContent = q;
      for (const s of JOB_STATES) {
        const td = tr.insertCell();
        td.textContent = byQueue[q][s] || 0;
        td.className = "clickable";
        td.onclick = () => { jobState = s; jobQueue = q; renderJobs(lists[JOB_STATES.indexOf(s)], q); };
      }
    }
    if (!body.rows.length) body.insertRow().insertCell().textContent = "no jobs";
    $("#jobs-summary").textContent = "";
    $("#jobs-summary").appendChild(table);
    // A reload (Refresh, or after Retry/Cancel) keeps the list the person chose.
    renderJobs(lists[JOB_STATES.indexOf(jobState)], jobQueue);
  } catch (err) {
    showError($("#jobs-error"), err);
  }
}

function renderJobs(jobs, queue) {
  const shown = queue ? jobs.filter((j) => j.queue === queue) : jobs;
  $("#jobs-title").textContent = `Jobs ${jobState}${queue ? " in " + queue : ""} (${shown.length})`;
  const el = $("#jobs-list");
  el.textContent = "";
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const h of ["id", "type", "queue", "priority", "attempts", "last error", ""]) { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); }
  const body = table.createTBody();
  for (const j of shown) {
    const tr = body.insertRow();
    for (const v of [idText(j.id), j.type, j.queue, j.priority, j.attempts, j.last_error || ""]) tr.insertCell().textContent = clip(String(v), CELL_CHARS);
    const actions = tr.insertCell();
    // Retry applies to failed and dead-letter jobs; cancel to unfinished ones.
    const ops = [];
    if (j.status === "failed" || j.status === "dead_letter") ops.push(["Retry", "retry", "retried"]);
    if (j.status === "pending" || j.status === "scheduled" || j.status === "running") ops.push(["Cancel", "cancel", "cancelled"]);
    for (const [label, op, done] of ops) {
      const b = document.createElement("button");
      b.className = "ghost";
      b.textContent = label;
      b.onclick = async () => {
        try {
          const r = await api("POST", `/v1/jobs/${enc(idText(j.id))}/${op}`);
          $("#jobs-status").textContent = r[done] ? `${idText(j.id)} ${done}: now ${r.status}` : `${idText(j.id)} not ${done} (${r.status})`;
          loadJobs();
        } catch (err) { showError($("#jobs-error"), err); }
      };
      actions.appendChild(b);
    }
  }
  el.appendChild(table);
}
$("#jobs-refresh").onclick = loadJobs;

// ---- metrics ---------------------------------------------------------------

const samples = []; // {t, commits, hits, misses, lag, queue}
const MAX_SAMPLES = 300;

function parseMetrics(text) {
  const m = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    const name = line.slice(0, i);
    m[name] = parseFloat(line.slice(i + 1));
  }
  return m;
}

function sum(m, prefix, filter) {
  let total = 0;
  for (const [k, v] of Object.entries(m)) if (k.startsWith(prefix) && (!filter || k.includes(filter))) total += v;
  return total;
}

async function sampleMetrics() {
  try {
    const res = await fetch("/v1/metrics", { headers: headers({}) });
    if (!res.ok) return;
    const m = parseMetrics(await res.text());
    samples.push({
      t: Date.now() / 1000,
      commits: m["aurora_commits_total"] || 0,
      hits: m["aurora_cache_hits_total"] || 0,
      misses: m["aurora_cache_misses_total"] || 0,
      lag: m["aurora_listener_max_lag_events"] || 0,
      queue: sum(m, "aurora_jobs{", 'status="pending"') + sum(m, "aurora_jobs{", 'status="scheduled"'),
    });
    if (m["aurora_feed_head"] !== undefined) $("#feed-head").textContent = m["aurora_feed_head"];
    if (samples.length > MAX_SAMPLES) samples.shift();
    if ($("#tab-metrics").classList.contains("active")) drawCharts();
  } catch (_) { /* the next sample retries */ }
}

function series() {
  const out = { commits: [], cache: [], lag: [], queue: [] };
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i];
    out.lag.push([s.t, s.lag]);
    out.queue.push([s.t, s.queue]);
    if (i === 0) continue;
    const p = samples[i - 1];
    const dt = Math.max(s.t - p.t, 0.001);
    out.commits.push([s.t, Math.max(0, s.commits - p.commits) / dt]);
    const lookups = s.hits - p.hits + (s.misses - p.misses);
    out.cache.push([s.t, lookups > 0 ? (s.hits - p.hits) / lookups : (out.cache.length ? out.cache[out.cache.length - 1][1] : 1)]);
  }
  return out;
}

// The span shown: from the first sample (at least a minute) up to 10 minutes.
function chartSpan() {
  if (!samples.length) return 60;
  return Math.min(600, Math.max(60, Date.now() / 1000 - samples[0].t));
}

// A round top for the y axis (1, 2 or 5 times a power of ten).
function niceMax(v) {
  if (v <= 0) return 4;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return Math.max(m * p, 4 * (p >= 1 ? 1 : p));
  return 10 * p;
}

function drawChart(canvas, points, fixedMax, format) {
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, left = 40, right = 8, top = 8, bottom = 18;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  const now = Date.now() / 1000, span = chartSpan();
  const max = fixedMax || niceMax(Math.max(0, ...points.map((p) => p[1])) * 1.1);
  const x = (t) => left + ((t - (now - span)) / span) * (w - left - right);
  const y = (v) => h - bottom - (Math.min(v, max) / max) * (h - top - bottom);
  ctx.strokeStyle = "#e1e4ea";
  ctx.lineWidth = 1;
  ctx.fillStyle = "#6b7385";
  ctx.textAlign = "right";
  for (let g = 0; g <= 4; g++) {
    const v = (g / 4) * max;
    ctx.beginPath(); ctx.moveTo(left, y(v)); ctx.lineTo(w - right, y(v)); ctx.stroke();
    ctx.fillText(format(v), left - 4, y(v) + 4);
  }
  // Time ticks: every 10 s under two minutes, else every minute (or two).
  const step = span <= 120 ? 10 : span <= 300 ? 60 : 120;
  ctx.textAlign = "center";
  for (let ago = 0; ago <= span; ago += step) {
    const label = ago === 0 ? "now" : step < 60 ? `-${ago}s` : `-${ago / 60}m`;
    ctx.textAlign = ago === 0 ? "right" : "center";
    ctx.fillText(label, ago === 0 ? w - right : x(now - ago), h - 4);
  }
  if (!points.length) return;
  ctx.strokeStyle = "#5b4bdb";
  ctx.fillStyle = "rgba(91, 75, 219, 0.12)";
  ctx.lineWidth = 2;
  ctx.beginPath();
  points.forEach(([t, v], i) => { if (i === 0) ctx.moveTo(x(t), y(v)); else ctx.lineTo(x(t), y(v)); });
  ctx.stroke();
  // The area under the line.
  ctx.lineTo(x(points[points.length - 1][0]), y(0));
  ctx.lineTo(x(points[0][0]), y(0));
  ctx.closePath();
  ctx.fill();
  // The last sample as a dot.
  const [lt, lv] = points[points.length - 1];
  ctx.fillStyle = "#5b4bdb";
  ctx.beginPath(); ctx.arc(x(lt), y(lv), 3, 0, 2 * Math.PI); ctx.fill();
}

function drawCharts() {
  const s = series();
  const last = (a) => (a.length ? a[a.length - 1][1] : 0);
  const num = (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  drawChart($("#c-commits"), s.commits, 0, num);
  drawChart($("#c-cache"), s.cache, 1, (v) => (v * 100).toFixed(0) + "%");
  drawChart($("#c-lag"), s.lag, 0, num);
  drawChart($("#c-queue"), s.queue, 0, num);
  $("#m-commits").textContent = last(s.commits).toFixed(1);
  $("#m-cache").textContent = (last(s.cache) * 100).toFixed(1) + "%";
  $("#m-lag").textContent = last(s.lag).toFixed(0);
  $("#m-queue").textContent = last(s.queue).toFixed(0);
}

// ---- start -----------------------------------------------------------------

let metricsTimer = null;
async function start() {
  try {
    const health = await api("GET", "/v1/health");
    $("#server-status").innerHTML = `Aurora <span id="version"></span> · feed at <span id="feed-head"></span>`;
    $("#version").textContent = health.version;
    $("#feed-head").textContent = health.feed_head;
    await loadCollections();
  } catch (err) {
    $("#server-status").textContent = explain(err);
    return;
  }
  startTail();
  if (!metricsTimer) { sampleMetrics(); metricsTimer = setInterval(sampleMetrics, 2000); }
}

start();
