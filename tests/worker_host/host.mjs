#!/usr/bin/env node
// Local host for a Python Worker: runs the entry file under Pyodide in Node and
// serves HTTP + WebSocket on 127.0.0.1, emulating the parts of workerd that the
// gateway relies on. workerd itself cannot run Python Workers offline (it
// downloads its Pyodide bundle at start-up), so this is how tests exercise the
// real Worker code path. What is and is not emulated: README.md next to this file.
//
//   node tests/worker_host/host.mjs --entry worker/entry.py --port 8787 [--var NAME=VALUE]...
//        [--durable-object BINDING=ClassName]...
//        [--d1 BINDING=FILE]...
//
// On start-up it prints one line to stdout, which tests wait for:
//   worker-host: listening on http://127.0.0.1:8787 (ready in 1234 ms)

import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { Readable } from "node:stream";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { WebSocketServer, WebSocket as NodeWebSocket } from "ws";
import { loadPyodide, version as PYODIDE_VERSION } from "pyodide";

const T0 = performance.now();
const ROOT_DEFAULT = path.resolve(fileURLToPath(import.meta.url), "../../..");

const { values: opts } = parseArgs({
  options: {
    entry: { type: "string", default: "worker/entry.py" },
    port: { type: "string", default: "8787" },
    host: { type: "string", default: "127.0.0.1" },
    var: { type: "string", multiple: true, default: [] },
    "durable-object": { type: "string", multiple: true, default: [] },
    d1: { type: "string", multiple: true, default: [] },
    root: { type: "string", default: ROOT_DEFAULT },
    "python-modules": { type: "string" },
    "cache-dir": { type: "string" },
    "no-cache": { type: "boolean", default: false },
    prepare: { type: "boolean", default: false },
    assets: { type: "string" },
    "assets-binding": { type: "string" },
    "assets-run-worker-first": { type: "string", multiple: true, default: [] },
    "assets-html-handling": { type: "string", default: "auto-trailing-slash" },
    "assets-not-found-handling": { type: "string", default: "none" },
  },
});
const ROOT = path.resolve(opts.root);
const ENTRY = path.resolve(opts.entry);
const PYTHON_MODULES = path.resolve(opts["python-modules"] ?? path.join(ROOT, "python_modules"));
const CACHE_DIR = path.resolve(opts["cache-dir"] ?? path.join(ROOT, "node_modules/.cache/worker-host"));

// workerd's limit for one WebSocket message (WEBSOCKET_MAX_MESSAGE_SIZE).
const MAX_MESSAGE = 32 << 20;

// The compatibility flags in force for a Worker with compatibility date 2026-09-08
// (the first date on which Python Workers run Python 3.14). Python sees them as
// the `_cloudflare_compat_flags` module; the JS emulation below follows the
// WebSocket ones (auto reply to close, "blob" default binaryType, 123-byte reasons).
const COMPAT_FLAGS = Object.fromEntries(
  [
    "python_workers",
    "python_workers_20260610",
    "python_no_global_handlers",
    "python_workers_force_new_vendor_path",
    "python_dedicated_snapshot",
    "python_workflows",
    "python_workflows_implicit_dependencies",
    "python_check_rng_state",
    "python_request_headers_preserve_commas",
    "python_process_pth_files",
    "enable_python_external_sdk",
    "fetch_refuses_unknown_protocols",
    "web_socket_compression",
    "websocket_close_reason_byte_limit",
    "websocket_standard_binary_type",
    "web_socket_auto_reply_to_close",
  ].map((flag) => [flag, true]),
);

const log = (...args) => console.error("worker-host:", ...args);
// A PythonError's message is the full Python traceback; its JS stack is noise.
const describe = (err) => (err?.name === "PythonError" ? err.message : (err?.stack ?? String(err)));

// ---------------------------------------------------------------------------
// workerd's WebSocket, WebSocketPair and event objects.
//
// A socket moves frames, {type: "text"|"binary"|"close"|"error"}, in two
// directions: its `#send` function carries what the Worker sends (to the pair
// peer, or to a real `ws` socket), and `[DELIVER]` receives inbound frames. Inbound
// frames wait in `#inbox` until accept() (then they become events) or until the
// host couples the socket to a real connection (then they are forwarded).
// ---------------------------------------------------------------------------

const INTERNAL = Symbol("internal");
const DELIVER = Symbol("deliver");
const COUPLE = Symbol("couple");

class MessageEvent {
  constructor(data) { this.type = "message"; this.data = data; }
}
class CloseEvent {
  constructor(code, reason, wasClean) {
    this.type = "close"; this.code = code; this.reason = reason; this.wasClean = wasClean;
  }
}
class ErrorEvent {
  constructor(error) { this.type = "error"; this.error = error; this.message = String(error?.message ?? error); }
}

const copyBytes = (view) =>
  new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));

class WebSocket {
  static READY_STATE_CONNECTING = 0; static CONNECTING = 0;
  static READY_STATE_OPEN = 1; static OPEN = 1;
  static READY_STATE_CLOSING = 2; static CLOSING = 2;
  static READY_STATE_CLOSED = 3; static CLOSED = 3;

  #state = "pending"; // -> "accepted" (Worker reads it) | "released" (handed to the runtime)
  #send;
  #inbox = [];
  #forward = null;
  #draining = false;
  #listeners = new Map();
  #closedIncoming = false;
  #closedOutgoing = false;
  #aborted = false;
  #error = null;
  #binaryType = "blob";
  #protocol;

  constructor(token, send, protocol = null) {
    if (token !== INTERNAL) {
      throw new TypeError(
        "new WebSocket(url) is not emulated by tests/worker_host; use fetch() with an 'Upgrade: websocket' header",
      );
    }
    this.#send = send;
    this.#protocol = protocol;
  }

  get readyState() {
    if ((this.#closedIncoming && this.#closedOutgoing) || this.#error) return 3;
    if (this.#closedIncoming || this.#closedOutgoing) return 2;
    return 1;
  }
  get url() { return null; }
  get protocol() { return this.#protocol; }
  get extensions() { return null; }
  get binaryType() { return this.#binaryType; }
  set binaryType(value) {
    // Unknown values are ignored, as in workerd.
    if (value === "blob" || value === "arraybuffer") this.#binaryType = value;
  }

  accept() {
    if (this.#state === "released") {
      throw new TypeError("Can't accept() WebSocket that was already used in a response.");
    }
    if (this.#state === "accepted") return;
    this.#state = "accepted";
    this.#drainSoon();
  }

  send(data) {
    if (this.#closedOutgoing) throw new TypeError("Can't call WebSocket send() after close().");
    if (this.#aborted || this.#state === "released") return; // workerd drops these silently
    this.#requireAccepted();
    let frame;
    if (typeof data === "string") frame = { type: "text", data };
    else if (data instanceof ArrayBuffer) frame = { type: "binary", data: new Uint8Array(data.slice(0)) };
    else if (ArrayBuffer.isView(data)) frame = { type: "binary", data: copyBytes(data) };
    // workerd coerces anything else to a string: a Python `bytes` arrives here as a
    // PyProxy and is sent as the text "b'...'". Python code must pass to_js(data).
    else frame = { type: "text", data: String(data) };
    this.#send(frame);
  }

  close(code, reason) {
    if (code !== undefined && !(Number.isInteger(code) && code >= 1000 && code < 5000 && ![1004, 1005, 1006, 1015].includes(code))) {
      throw new DOMException(`Invalid WebSocket close code: ${code}.`, "InvalidAccessError");
    }
    if (reason !== undefined && Buffer.byteLength(String(reason)) > 123) {
      throw new DOMException(
        "WebSocket close reason must not be longer than 123 bytes when UTF-8 encoded.", "SyntaxError");
    }
    if (reason !== undefined && code === undefined) {
      throw new DOMException(
        "If you specify a WebSocket close reason, you must also specify a code.", "InvalidAccessError");
    }
    if (this.#closedOutgoing || this.#aborted || this.#state === "released") return;
    this.#requireAccepted();
    this.#closedOutgoing = true;
    // 1005 means "a close frame without a status code", as in workerd.
    this.#send({ type: "close", code: code ?? 1005, reason: reason === undefined ? "" : String(reason), clean: true });
  }

  addEventListener(type, listener, options) {
    if (listener == null) return;
    const list = this.#listeners.get(type) ?? [];
    if (list.some((entry) => entry.listener === listener)) return;
    list.push({ listener, once: typeof options === "object" && !!options?.once });
    this.#listeners.set(type, list);
  }

  removeEventListener(type, listener) {
    const list = this.#listeners.get(type);
    if (list) this.#listeners.set(type, list.filter((entry) => entry.listener !== listener));
  }

  dispatchEvent(event) {
    event.target = event.currentTarget = this;
    for (const entry of [...(this.#listeners.get(event.type) ?? [])]) {
      if (entry.once) this.removeEventListener(event.type, entry.listener);
      // workerd reports a throwing listener and carries on; Node's EventTarget would
      // crash the process instead, hence a hand-rolled dispatch.
      try {
        const fn = typeof entry.listener === "function" ? entry.listener : entry.listener.handleEvent.bind(entry.listener);
        const result = fn(event);
        if (result && typeof result.then === "function") {
          Promise.resolve(result).catch((err) => log(`uncaught error in ${event.type} listener:\n${describe(err)}`));
        }
      } catch (err) {
        log(`uncaught error in ${event.type} listener:\n${describe(err)}`);
      }
    }
    return true;
  }

  [DELIVER](frame) {
    this.#inbox.push(frame);
    this.#drainSoon();
  }

  // Hands the socket to the runtime (returned in a Response): from now on inbound
  // frames go to `forward`; the returned function sends frames out on its behalf.
  [COUPLE](forward) {
    if (this.#state === "accepted") {
      throw new TypeError("Can't return WebSocket in a Response after calling accept().");
    }
    if (this.#state === "released") {
      throw new TypeError("Can't return WebSocket that was already used in a response.");
    }
    this.#state = "released";
    this.#forward = forward;
    this.#drainSoon();
    return this.#send;
  }

  #requireAccepted() {
    if (this.#state !== "accepted") {
      throw new TypeError(
        "You must call one of accept() or state.acceptWebSocket() on this WebSocket before sending messages.");
    }
  }

  #drainSoon() {
    if (this.#draining || this.#state === "pending" || this.#inbox.length === 0) return;
    this.#draining = true;
    // Events are never delivered synchronously from send()/accept(), as in workerd.
    queueMicrotask(() => {
      this.#draining = false;
      while (this.#inbox.length) {
        const frame = this.#inbox.shift();
        if (this.#forward) this.#forward(frame);
        else this.#dispatchFrame(frame);
      }
    });
  }

  #dispatchFrame(frame) {
    switch (frame.type) {
      case "text":
        return this.dispatchEvent(new MessageEvent(frame.data));
      case "binary":
        return this.dispatchEvent(new MessageEvent(
          this.#binaryType === "arraybuffer" ? copyBytes(frame.data).buffer : new Blob([frame.data])));
      case "close":
        this.#closedIncoming = true;
        // Compat flag web_socket_auto_reply_to_close: answer a close frame with the
        // same code before the close event, so readyState is CLOSED inside it.
        if (frame.clean && !this.#closedOutgoing && !this.#aborted) {
          this.#closedOutgoing = true;
          this.#send({ type: "close", code: frame.code, reason: frame.reason, clean: true });
        }
        return this.dispatchEvent(new CloseEvent(frame.code, frame.reason, frame.clean));
      case "error":
        if (this.#error) return;
        this.#error = frame.error;
        this.#aborted = true;
        return this.dispatchEvent(new ErrorEvent(frame.error));
    }
  }
}

class WebSocketPair {
  constructor() {
    const ends = [];
    ends[0] = new WebSocket(INTERNAL, (frame) => ends[1][DELIVER](frame));
    ends[1] = new WebSocket(INTERNAL, (frame) => ends[0][DELIVER](frame));
    Object.defineProperty(this, 0, { value: ends[0], enumerable: true });
    Object.defineProperty(this, 1, { value: ends[1], enumerable: true });
  }
}

// Frames to and from a real connection (npm `ws`, server or client side).
function sendToNode(nodeWs, frame) {
  if (nodeWs.readyState !== NodeWebSocket.OPEN) return;
  if (frame.type === "text") nodeWs.send(frame.data);
  else if (frame.type === "binary") nodeWs.send(frame.data, { binary: true });
  else if (frame.type === "error" || !frame.clean) nodeWs.terminate();
  else if (frame.code === 1005) nodeWs.close();
  else nodeWs.close(frame.code, frame.reason);
}

function receiveFromNode(nodeWs, onFrame) {
  nodeWs.on("message", (data, isBinary) =>
    onFrame(isBinary ? { type: "binary", data: copyBytes(data) } : { type: "text", data: data.toString("utf8") }));
  nodeWs.on("error", (error) => onFrame({ type: "error", error }));
  nodeWs.on("close", (code, reason) => onFrame(code === 1006
    ? { type: "close", code, reason: "WebSocket disconnected without sending Close frame.", clean: false }
    : { type: "close", code, reason: reason.toString("utf8"), clean: true }));
}

// ---------------------------------------------------------------------------
// Response and fetch, as workerd has them.
// ---------------------------------------------------------------------------

const NodeResponse = globalThis.Response;

// Node's Response refuses status 101; workerd's accepts it exactly when a
// webSocket is attached. Same class name, since the SDK checks constructor.name.
class Response extends NodeResponse {
  #status;
  #webSocket;
  constructor(body, init) {
    const status = init?.status ?? 200;
    const webSocket = init?.webSocket ?? null;
    if (webSocket === null && !(status >= 200 && status <= 599)) {
      throw new RangeError("Responses may only be constructed with status codes in the range 200 to 599, inclusive.");
    }
    if (webSocket !== null && status !== 101) {
      throw new RangeError("Responses with a WebSocket must have status code 101.");
    }
    super(body, webSocket ? { ...init, status: 200 } : init);
    this.#status = status;
    this.#webSocket = webSocket;
  }
  // undici reads these from inside super(), before our fields exist.
  get status() { return #status in this ? this.#status : super.status; }
  get ok() { return #status in this ? this.#status >= 200 && this.#status <= 299 : super.ok; }
  get webSocket() { return #webSocket in this ? this.#webSocket : null; }
  clone() {
    if (this.#webSocket) throw new TypeError("Cannot clone a response to a WebSocket handshake.");
    return super.clone();
  }
}

const nodeFetch = globalThis.fetch;

async function fetch(input, init) {
  const request = new Request(input, init);
  const { protocol } = new URL(request.url);
  // Compat flag fetch_refuses_unknown_protocols: workerd wants http(s) URLs even
  // for WebSockets; ws:// and wss:// are rejected.
  if (protocol !== "http:" && protocol !== "https:") {
    throw new TypeError(`Fetch API cannot load: ${request.url}`);
  }
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") return nodeFetch(request);
  return fetchWebSocket(request);
}

// The handshake headers are the client library's to write; everything else the
// Worker set is sent as is.
const HANDSHAKE_HEADERS = new Set([
  "upgrade", "connection", "host", "sec-websocket-key", "sec-websocket-version",
  "sec-websocket-extensions", "sec-websocket-protocol", "content-length",
]);

function fetchWebSocket(request) {
  const url = new URL(request.url);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const headers = {};
  for (const [name, value] of request.headers) if (!HANDSHAKE_HEADERS.has(name)) headers[name] = value;
  const protocols = (request.headers.get("sec-websocket-protocol") ?? "")
    .split(",").map((p) => p.trim()).filter(Boolean);

  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (fn, value) => { if (!settled) { settled = true; fn(value); } };
    const nodeWs = new NodeWebSocket(url, protocols, {
      headers, perMessageDeflate: false, maxPayload: MAX_MESSAGE, followRedirects: false,
    });
    let upgradeHeaders = new Headers();
    nodeWs.on("upgrade", (res) => { upgradeHeaders = headersFromNode(res.rawHeaders); });
    nodeWs.once("open", () => {
      const ws = new WebSocket(INTERNAL, (frame) => sendToNode(nodeWs, frame), nodeWs.protocol || null);
      receiveFromNode(nodeWs, (frame) => ws[DELIVER](frame));
      settle(resolve, new Response(null, { status: 101, webSocket: ws, headers: upgradeHeaders }));
    });
    // A refused handshake is an ordinary HTTP response in workerd, not an error.
    nodeWs.on("unexpected-response", async (req, res) => {
      const chunks = [];
      try { for await (const chunk of res) chunks.push(chunk); } catch {}
      const status = res.statusCode;
      const body = [204, 205, 304].includes(status) ? null : Buffer.concat(chunks);
      settle(resolve, new Response(body, { status, statusText: res.statusMessage, headers: headersFromNode(res.rawHeaders) }));
      req.destroy();
    });
    nodeWs.on("error", (err) => settle(reject, new TypeError(`fetch failed: ${err.message}`, { cause: err })));
    request.signal?.addEventListener("abort", () => {
      settle(reject, request.signal.reason);
      nodeWs.terminate();
    });
  });
}

function headersFromNode(rawHeaders) {
  const headers = new Headers();
  for (let i = 0; i < rawHeaders.length; i += 2) headers.append(rawHeaders[i], rawHeaders[i + 1]);
  return headers;
}

// ---------------------------------------------------------------------------
// Static assets (wrangler.toml [assets]), as Cloudflare's router and asset
// workers serve them (workers-shared, as bundled in miniflare): the router sends
// a request to the assets when a run_worker_first rule says so ("!" rules) or
// when a file matches and no rule sends it to the Worker first; the asset
// server answers GET and HEAD with the file, its ETag (If-None-Match -> 304)
// and content type, and the _headers file's headers; other methods on a file
// get 405, a path with no file 404. The Worker reaches the same server through
// its binding (env.<binding>.fetch). Only html_handling and not_found_handling
// "none" are emulated (exact file paths, no trailing-slash redirects, no SPA or
// 404 page).
// ---------------------------------------------------------------------------

// wrangler's content types (its `mime` lookup, with the charset added to text/*).
const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8",
  ".json": "application/json", ".map": "application/json", ".wasm": "application/wasm",
  ".svg": "image/svg+xml", ".png": "image/png", ".ico": "image/vnd.microsoft.icon",
  ".wav": "audio/wav", ".woff2": "font/woff2",
};
// Files of the assets directory that configure it rather than being served (wrangler's defaults).
const ASSET_METAFILES = new Set(["/_headers", "/_redirects", "/.assetsignore"]);
const CACHE_CONTROL_BROWSER = "public, max-age=0, must-revalidate";

const escapeRegex = (text) => text.replace(/[-/\\^$*+?.()|[\]{}]/g, "\\$&");
// A run_worker_first rule: `*` matches anything, the rest literally.
const globRule = (rule) => new RegExp(`^${rule.split("*").map(escapeRegex).join(".*")}$`);
// A _headers path: `*` is the splat, `:name` a segment; both can be used in values.
function headersRule(rule) {
  let pattern = rule.split("*").map(escapeRegex).join("(?<splat>.*)");
  pattern = pattern.replace(/:([A-Za-z]\w*)/g, (_, name) => `(?<${name}>[^/]+)`);
  return new RegExp(`^${pattern}$`);
}

function parseHeadersFile(text) {
  const rules = [];
  let rule = null;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (line.startsWith("/") || line.startsWith("https://")) {
      rule = { path: headersRule(line), set: [], unset: [] };
      rules.push(rule);
    } else if (rule && line.startsWith("!")) {
      rule.unset.push(line.slice(1).trim());
    } else if (rule && line.includes(":")) {
      const colon = line.indexOf(":");
      rule.set.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
    }
  }
  return rules;
}

function loadAssets(directory) {
  const files = new Map();
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) { walk(full); continue; }
      const served = "/" + path.relative(directory, full).split(path.sep).join("/");
      if (ASSET_METAFILES.has(served)) continue;
      const body = fs.readFileSync(full);
      files.set(served, {
        body,
        eTag: createHash("sha256").update(body).digest("hex").slice(0, 32),
        contentType: CONTENT_TYPES[path.extname(served).toLowerCase()],
      });
    }
  };
  walk(directory);
  const headersFile = path.join(directory, "_headers");
  const headers = fs.existsSync(headersFile) ? parseHeadersFile(fs.readFileSync(headersFile, "utf8")) : [];
  return { files, headers };
}

function assetsConfig() {
  if (!opts.assets) return null;
  for (const [option, value] of [["html-handling", opts["assets-html-handling"]], ["not-found-handling", opts["assets-not-found-handling"]]]) {
    if (value !== "none") {
      log(`--assets-${option} ${value} is not emulated: only "none" is`);
      process.exit(2);
    }
  }
  const rules = opts["assets-run-worker-first"];
  return {
    ...loadAssets(path.resolve(opts.assets)),
    binding: opts["assets-binding"] ?? null,
    assetFirst: rules.filter((rule) => rule.startsWith("!")).map((rule) => globRule(rule.slice(1))),
    workerFirst: rules.filter((rule) => !rule.startsWith("!")).map((rule) => globRule(rule)),
  };
}
const ASSETS = assetsConfig();

function decodedPath(request) {
  const { pathname } = new URL(request.url);
  try { return decodeURIComponent(pathname); } catch { return pathname; }
}

/** The router's choice for a request: the asset server or the Worker. */
function routesToAssets(request) {
  if (!ASSETS) return false;
  const { pathname } = new URL(request.url);
  if (ASSETS.assetFirst.some((rule) => rule.test(pathname))) return true;
  if (ASSETS.workerFirst.some((rule) => rule.test(pathname))) return false;
  return ASSETS.files.has(decodedPath(request));
}

/** The asset server's answer. */
function serveAsset(request) {
  const pathname = decodedPath(request);
  const asset = ASSETS.files.get(pathname);
  const method = request.method.toUpperCase();
  let response;
  if (!asset) {
    response = new NodeResponse(null, { status: 404, statusText: "Not Found" });
  } else if (method !== "GET" && method !== "HEAD") {
    response = new NodeResponse(null, { status: 405, statusText: "Method Not Allowed" });
  } else {
    const headers = new Headers({ ETag: `"${asset.eTag}"` });
    if (asset.contentType) headers.set("Content-Type", asset.contentType);
    if (!request.headers.has("authorization") && !request.headers.has("range")) headers.set("Cache-Control", CACHE_CONTROL_BROWSER);
    const ifNoneMatch = request.headers.get("if-none-match") ?? "";
    if ([`"${asset.eTag}"`, `W/"${asset.eTag}"`].includes(ifNoneMatch)) {
      response = new NodeResponse(null, { status: 304, statusText: "Not Modified", headers });
    } else {
      response = new NodeResponse(method === "HEAD" ? null : asset.body, { status: 200, headers });
    }
  }
  const seen = new Set();
  for (const rule of ASSETS.headers) {
    const match = rule.path.exec(pathname);
    if (!match) continue;
    for (const name of rule.unset) response.headers.delete(name);
    for (const [name, value] of rule.set) {
      const filled = Object.entries(match.groups ?? {}).reduce((text, [key, part]) => text.replaceAll(`:${key}`, part), value);
      if (seen.has(name.toLowerCase())) response.headers.append(name, filled);
      else { response.headers.set(name, filled); seen.add(name.toLowerCase()); }
    }
  }
  return response;
}

// The assets binding: a Fetcher (the SDK wraps bindings by that class name) onto the asset server.
class Fetcher {
  async fetch(input, init) {
    return serveAsset(new Request(input, init));
  }
}

// Installed before Pyodide starts, so Python's `js` module sees workerd's API.
Object.assign(globalThis, { WebSocket, WebSocketPair, Response, fetch, MessageEvent, CloseEvent, ErrorEvent });

// ---------------------------------------------------------------------------
// env, ctx and the modules workerd gives Python.
// ---------------------------------------------------------------------------

// Bindings are plain strings here (vars and secrets): every upper-case
// environment variable, then --var NAME=VALUE.
const env = {};
for (const [name, value] of Object.entries(process.env)) {
  if (/^[A-Z][A-Z0-9_]*$/.test(name)) env[name] = value;
}
for (const item of opts.var) {
  const eq = item.indexOf("=");
  if (eq < 1) { log(`--var expects NAME=VALUE, got ${JSON.stringify(item)}`); process.exit(2); }
  env[item.slice(0, eq)] = item.slice(eq + 1);
}
if (ASSETS?.binding) env[ASSETS.binding] = new Fetcher();

// ---------------------------------------------------------------------------
// Durable Objects: each --durable-object BINDING=ClassName is bound in env as a
// DurableObjectNamespace, as `[[durable_objects.bindings]]` is in wrangler.toml;
// the class must be a workers.DurableObject subclass exported by the entry
// module. One instance per id, in this process, built at its first call and
// never evicted. Its calls are delivered one at a time, in the order they were
// made (a simplified input gate: a call runs to completion before the next
// starts). Arguments and results cross by structured clone, as over RPC, and an
// error reaches the caller as an Error with its message only. Storage is an
// in-memory key-value map per id (get/put/delete/deleteAll/list); it outlives
// the instance only as long as the host runs.
// ---------------------------------------------------------------------------

class DurableObjectId {
  #hex; #name;
  constructor(hex, name) { this.#hex = hex; this.#name = name; }
  get name() { return this.#name; }
  toString() { return this.#hex; }
  equals(other) { return other instanceof DurableObjectId && other.toString() === this.#hex; }
}

class DurableObjectStorage {
  #values = new Map();
  async get(key) {
    if (Array.isArray(key)) return new Map(key.filter((k) => this.#values.has(k)).map((k) => [k, structuredClone(this.#values.get(k))]));
    return structuredClone(this.#values.get(key));
  }
  async put(key, value) {
    if (typeof key === "object" && key !== null) {
      for (const [k, v] of Object.entries(key)) this.#values.set(k, structuredClone(v));
    } else {
      this.#values.set(key, structuredClone(value));
    }
  }
  async delete(key) {
    if (Array.isArray(key)) return key.filter((k) => this.#values.delete(k)).length;
    return this.#values.delete(key);
  }
  async deleteAll() { this.#values.clear(); }
  async list() { return new Map([...this.#values].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))); }
}

class DurableObjectState {
  constructor(id, storage) { this.id = id; this.storage = storage; }
  waitUntil(promise) { waitUntil(promise); }
  // Calls are already delivered one at a time.
  async blockConcurrencyWhile(callback) { return await callback(); }
}

// Names Pyodide looks up on a JS object to decide what kind of proxy to make;
// a stub answers every other name with an RPC method.
const NOT_RPC_METHODS = new Set(["then", "next", "length", "size", "toJSON"]);

class DurableObjectNamespace {
  #binding; #className; #instances = new Map();
  constructor(binding, className) { this.#binding = binding; this.#className = className; }
  idFromName(name) {
    const hex = createHash("sha256").update(`${this.#binding}\0${name}`).digest("hex");
    return new DurableObjectId(hex, String(name));
  }
  idFromString(hex) { return new DurableObjectId(String(hex), undefined); }
  newUniqueId() { return new DurableObjectId(randomBytes(32).toString("hex"), undefined); }
  getByName(name) { return this.get(this.idFromName(name)); }
  get(id) {
    const key = id.toString();
    let instance = this.#instances.get(key);
    if (!instance) {
      instance = { id, storage: new DurableObjectStorage(), python: null, queue: Promise.resolve() };
      this.#instances.set(key, instance);
    }
    const deliver = (method, args) => this.#deliver(instance, method, args);
    return new Proxy({ id, name: id.name }, {
      get(target, prop, receiver) {
        if (typeof prop !== "string" || prop in target || NOT_RPC_METHODS.has(prop)) {
          return Reflect.get(target, prop, receiver);
        }
        return (...args) => deliver(prop, args);
      },
    });
  }
  #deliver(instance, method, args) {
    const sent = structuredClone(args);
    const run = async () => {
      const call = (fn, ...rest) => (JSPI ? fn.callWithOptions({ promising: true }, ...rest) : fn(...rest));
      if (instance.python === null) {
        const cls = durableObjectClasses.get(this.#className);
        instance.python = await call(cls, new DurableObjectState(instance.id, instance.storage), env);
      }
      try {
        return structuredClone(await call(callHandler, instance.python, method, ...sent));
      } catch (err) {
        throw new Error(err?.name === "PythonError" ? err.message.trim().split("\n").at(-1) : String(err?.message ?? err));
      }
    };
    const result = instance.queue.then(run);
    instance.queue = result.catch(() => {});
    return result;
  }
}

// Durable Object classes by name, loaded from the entry module at start-up.
const durableObjectClasses = new Map();
const durableObjectBindings = [];
for (const item of opts["durable-object"]) {
  const eq = item.indexOf("=");
  if (eq < 1) { log(`--durable-object expects BINDING=ClassName, got ${JSON.stringify(item)}`); process.exit(2); }
  const [binding, className] = [item.slice(0, eq), item.slice(eq + 1)];
  durableObjectBindings.push(className);
  env[binding] = new DurableObjectNamespace(binding, className);
}

// D1 databases (--d1 BINDING=FILE), each a SQLite file through better-sqlite3
// (npm), with the D1 client API a Worker uses: prepare(sql).bind(...values) and
// the statement's run() / all() / first(column) / raw(), batch([...]) as one
// transaction, exec(sql). Everything returns a promise, as in workerd; results
// have D1's shape ({success, meta, results}). Values bind as D1 binds them:
// null, numbers, strings, booleans as 1/0, ArrayBuffers as blobs; undefined is
// refused with D1's error. Not emulated: read replication, sessions, D1's limits.
class D1PreparedStatement {
  #db; #sql; #params;
  constructor(db, sql, params = []) { this.#db = db; this.#sql = sql; this.#params = params; }
  bind(...values) {
    const params = values.map((value, index) => {
      if (value === undefined) {
        throw new Error(`D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined' at position ${index}`);
      }
      if (typeof value === "boolean") return value ? 1 : 0;
      if (value instanceof ArrayBuffer) return Buffer.from(value);
      if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      return value;
    });
    return new D1PreparedStatement(this.#db, this.#sql, params);
  }
  // The statement run now, synchronously: D1's result object.
  execute() {
    const started = performance.now();
    const statement = this.#db.prepare(this.#sql);
    let results = [];
    let changes = 0;
    let lastRowId = 0;
    if (statement.reader) {
      results = statement.all(...this.#params);
    } else {
      const info = statement.run(...this.#params);
      changes = info.changes;
      lastRowId = Number(info.lastInsertRowid);
    }
    const meta = {
      duration: performance.now() - started, changes, last_row_id: lastRowId, changed_db: changes > 0,
      rows_read: results.length, rows_written: changes, size_after: 0, served_by: "worker-host",
    };
    return { success: true, meta, results };
  }
  async run() { return this.execute(); }
  async all() { return this.execute(); }
  async first(column) {
    const [row] = this.execute().results;
    if (row === undefined) return null;
    if (column === undefined) return row;
    if (!(column in row)) throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${column})`);
    return row[column];
  }
  async raw(options) {
    const statement = this.#db.prepare(this.#sql);
    if (!statement.reader) { statement.run(...this.#params); return []; }
    const rows = statement.raw(true).all(...this.#params);
    return options?.columnNames ? [statement.columns().map((c) => c.name), ...rows] : rows;
  }
}

class D1Database {
  #db;
  constructor(file) {
    const Database = createRequire(import.meta.url)("better-sqlite3");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.#db = new Database(file);
    this.#db.pragma("journal_mode = WAL");
    this.#db.pragma("busy_timeout = 5000");
  }
  prepare(sql) { return new D1PreparedStatement(this.#db, sql); }
  async batch(statements) {
    return this.#db.transaction(() => statements.map((statement) => statement.execute()))();
  }
  async exec(sql) {
    const started = performance.now();
    this.#db.exec(sql);
    return { count: sql.split(";").filter((part) => part.trim()).length, duration: performance.now() - started };
  }
}

for (const item of opts.d1) {
  const eq = item.indexOf("=");
  if (eq < 1) { log(`--d1 expects BINDING=FILE, got ${JSON.stringify(item)}`); process.exit(2); }
  env[item.slice(0, eq)] = new D1Database(path.resolve(item.slice(eq + 1)));
}

// Background work (ctx.waitUntil) is awaited for its errors only: there is no
// request lifetime to extend.
function waitUntil(promise) {
  // A Python awaitable reaches JS as a PyProxy that Pyodide destroys when the
  // call returns; keep our own handle until it settles.
  const owned = typeof promise?.copy === "function" ? promise.copy() : promise;
  Promise.resolve(owned)
    .catch((err) => log(`waitUntil() promise rejected:\n${describe(err)}`))
    .finally(() => owned?.destroy?.());
}

class ExecutionContext {
  get [Symbol.toStringTag]() { return "ExecutionContext"; }
  props = {};
  waitUntil(promise) { waitUntil(promise); }
  // There is no origin to fall back to.
  passThroughOnException() {}
}

class WorkerEntrypoint {}
const cloudflareWorkers = {
  env, waitUntil, WorkerEntrypoint,
  DurableObject: class DurableObject {}, WorkflowEntrypoint: class WorkflowEntrypoint {}, RpcTarget: class RpcTarget {},
};
const cloudflareSockets = {
  connect() { throw new Error("cloudflare:sockets connect() is not emulated by tests/worker_host"); },
};

// `_pyodide_entrypoint_helper`: the JS module through which workers-runtime-sdk
// reaches the runtime (imports, env, and the waitUntil patch for ctx).
const entrypointHelper = {
  cloudflareWorkersModule: cloudflareWorkers,
  cloudflareSocketsModule: cloudflareSockets,
  workerEntrypoint: WorkerEntrypoint,
  async doAnImport(name) {
    if (name === "cloudflare:workers") return cloudflareWorkers;
    if (name === "cloudflare:sockets") return cloudflareSockets;
    if (name.startsWith("python_modules/")) {
      return import(pathToFileURL(path.join(PYTHON_MODULES, name.slice("python_modules/".length))).href);
    }
    return import(name);
  },
  // workerd wraps ctx.waitUntil here so that it keeps a Python awaitable alive;
  // our ExecutionContext.waitUntil already does that.
  patchWaitUntil() {},
};

// Python half of the host: sys.path as workerd lays it out, loading the entry,
// and calling a handler the way workerd's entrypoint wrapper does.
const GLUE_PY = `
import sys, site

def setup(paths, python_modules, pycache_prefix):
    # Bytecode goes to the host's cache, never next to the sources (Pyodide's
    # default is not to write any).
    sys.pycache_prefix = pycache_prefix or None
    sys.dont_write_bytecode = not pycache_prefix
    # Vendored packages sit just before site-packages, and their .pth files are
    # processed (compat flag python_process_pth_files).
    index = next(i for i, p in enumerate(sys.path) if "site-packages" in p)
    sys.path.insert(index, python_modules)
    site.addsitedir(python_modules)
    sys.path[0:0] = list(paths)
    if "random" in sys.modules:
        # The memory snapshot froze the seed; workerd reseeds after restoring too.
        import random
        random.seed()

def load_durable_object(module_name, class_name):
    import importlib
    import workers
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, workers.DurableObject)):
        raise TypeError(f"{module.__file__} must export '{class_name}', a workers.DurableObject subclass")
    return cls

def load_entry(module_name):
    import importlib
    import workers
    module = importlib.import_module(module_name)
    cls = getattr(module, "Default", None)
    if not (isinstance(cls, type) and issubclass(cls, workers.WorkerEntrypoint)):
        raise TypeError(f"{module.__file__} must define 'class Default(WorkerEntrypoint)'")
    if not callable(getattr(cls, "fetch", None)):
        raise TypeError(f"{module.__file__}: Default has no fetch() method")
    return cls

async def call_handler(instance, name, *args):
    from inspect import isawaitable
    from pyodide.code import relaxed_call
    from workers import python_from_rpc, python_to_rpc
    result = relaxed_call(getattr(instance, name), *[python_from_rpc(a) for a in args])
    if isawaitable(result):
        result = await result
    return python_to_rpc(result)
`;

// ---------------------------------------------------------------------------
// Pyodide start-up. A cold start spends ~3 s initialising CPython and then
// compiles every stdlib module it imports from source (Pyodide ships .py only).
// So the first run builds, under CACHE_DIR, a stdlib zip with precompiled .pyc
// and a memory snapshot of a freshly started interpreter using it; later runs
// restore the snapshot. Bytecode of python_modules/ and the project is cached
// there too (sys.pycache_prefix), keeping __pycache__ out of the tree.
// ---------------------------------------------------------------------------

const BUILD_STDLIB_PY = `
import importlib.util, zipfile
from importlib._bootstrap_external import _code_to_hash_pyc
with zipfile.ZipFile("/lib/python314.zip") as src, zipfile.ZipFile("/tmp/stdlib.zip", "w") as out:
    for info in src.infolist():
        data = src.read(info)
        out.writestr(info, data)
        if info.filename.endswith(".py"):
            try:
                code = compile(data, "/lib/python314.zip/" + info.filename, "exec", dont_inherit=True)
            except SyntaxError:
                continue
            # Unchecked hash-based pyc: zipimport uses it without looking at the source.
            pyc = _code_to_hash_pyc(code, importlib.util.source_hash(data), checked=False)
            out.writestr(info.filename + "c", bytes(pyc))
`;

function writeAtomically(file, data) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file); // concurrent hosts may race to build the cache; last one wins
}

async function startPyodide() {
  const quiet = { stdout: (s) => console.log(s), stderr: (s) => console.error(s) };
  if (opts["no-cache"]) return { pyodide: await loadPyodide(quiet), cached: false };

  const pkgDir = path.dirname(fileURLToPath(import.meta.resolve("pyodide")));
  const stamp = ["python_stdlib.zip", "pyodide.asm.wasm"]
    .map((f) => fs.statSync(path.join(pkgDir, f))).map((s) => `${s.size}-${Math.floor(s.mtimeMs)}`).join("-");
  const dir = path.join(CACHE_DIR, `pyodide-${PYODIDE_VERSION}-${stamp}`);
  const stdlib = path.join(dir, "python_stdlib_pyc.zip");
  const snapshot = path.join(dir, "snapshot.bin");
  fs.mkdirSync(dir, { recursive: true });

  if (!fs.existsSync(stdlib)) {
    log(`first run: precompiling the stdlib into ${path.relative(ROOT, stdlib)} ...`);
    const py = await loadPyodide(quiet);
    py.runPython(BUILD_STDLIB_PY);
    writeAtomically(stdlib, py.FS.readFile("/tmp/stdlib.zip"));
  }
  if (!fs.existsSync(snapshot)) {
    log(`first run: writing a memory snapshot to ${path.relative(ROOT, snapshot)} ...`);
    const py = await loadPyodide({ ...quiet, stdLibURL: stdlib, _makeSnapshot: true });
    writeAtomically(snapshot, py.makeMemorySnapshot());
  }
  try {
    const pyodide = await loadPyodide({ ...quiet, stdLibURL: stdlib, _loadSnapshot: fs.readFileSync(snapshot) });
    return { pyodide, cached: true, pycache: path.join(dir, "pycache") };
  } catch (err) {
    log(`cached snapshot unusable (${err.message}); delete ${dir} to rebuild. Starting uncached.`);
    return { pyodide: await loadPyodide(quiet), cached: false };
  }
}

// The bundle as workerd lays it out under /session/metadata: the entry's
// directory first on sys.path (the main module is top-level, its siblings
// importable), then a directory holding the project's shared/ and worker/.
function mountSources(pyodide, pycacheDir) {
  const BUNDLE = "/session/metadata";
  const emPath = (host) => {
    const rel = path.relative(ROOT, host);
    return rel.startsWith("..") || path.isAbsolute(rel) ? "/session/entry" : path.posix.join(BUNDLE, rel.split(path.sep).join("/"));
  };
  const entryDir = path.dirname(ENTRY);
  const wanted = [entryDir, path.join(ROOT, "shared"), path.join(ROOT, "worker")]
    .filter((dir) => fs.existsSync(dir))
    .sort((a, b) => a.length - b.length);
  const mounted = [];
  for (const dir of wanted) {
    if (mounted.some((m) => dir === m || dir.startsWith(m + path.sep))) continue;
    pyodide.FS.mkdirTree(path.posix.dirname(emPath(dir)));
    pyodide.mountNodeFS(emPath(dir), dir);
    mounted.push(dir);
  }
  const modulesEm = path.posix.join(BUNDLE, "python_modules");
  pyodide.mountNodeFS(modulesEm, PYTHON_MODULES);
  let pycacheEm = null;
  if (pycacheDir) {
    fs.mkdirSync(pycacheDir, { recursive: true });
    pycacheEm = "/host-cache/pycache";
    pyodide.FS.mkdirTree("/host-cache");
    pyodide.mountNodeFS(pycacheEm, pycacheDir);
  }
  return { paths: [emPath(entryDir), BUNDLE], modulesEm, pycacheEm };
}

function checkInputs() {
  const missing = [];
  if (!fs.existsSync(ENTRY)) missing.push(`entry ${ENTRY}`);
  if (!fs.existsSync(path.join(PYTHON_MODULES, "workers"))) {
    missing.push(`${PYTHON_MODULES} (run: python tests/worker_host/vendor.py)`);
  }
  if (!ENTRY.endsWith(".py")) missing.push(`a .py entry (got ${ENTRY})`);
  if (missing.length) { log(`missing: ${missing.join("; ")}`); process.exit(2); }
}

// ---------------------------------------------------------------------------
// HTTP side.
// ---------------------------------------------------------------------------

let DefaultClass, callHandler, JSPI;
let listenUrl;

// Called once per request, as workerd does for a WorkerEntrypoint: a new
// instance Default(ctx, env), then its fetch(request) through the SDK's
// python_from_rpc/python_to_rpc conversions.
async function invokeFetch(request) {
  const call = (fn, ...args) => (JSPI ? fn.callWithOptions({ promising: true }, ...args) : fn(...args));
  const instance = await call(DefaultClass, new ExecutionContext(), env);
  try {
    const result = await call(callHandler, instance, "fetch", request);
    if (!(result instanceof NodeResponse)) {
      result?.destroy?.();
      throw new TypeError("Incorrect type for Promise: the Promise did not resolve to 'Response'.");
    }
    return result;
  } finally {
    instance.destroy();
  }
}

function toRequest(req, withBody) {
  const headers = headersFromNode(req.rawHeaders);
  // As wrangler dev does; the Worker may log or rate-limit on it.
  if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", req.socket.remoteAddress ?? "127.0.0.1");
  const init = { method: req.method, headers };
  if (withBody && req.method !== "GET" && req.method !== "HEAD") {
    init.body = Readable.toWeb(req);
    init.duplex = "half";
  }
  const request = new Request(new URL(req.url, `http://${req.headers.host ?? listenUrl.host}`), init);
  // A small stand-in for workerd's IncomingRequestCfProperties.
  Object.defineProperty(request, "cf", {
    value: { colo: "LOCAL", country: "XX", httpProtocol: `HTTP/${req.httpVersion}`, clientTcpRtt: 0, asn: 0 },
    enumerable: true,
  });
  return request;
}

const failure = () => new NodeResponse("Worker threw exception\n", { status: 500, headers: { "content-type": "text/plain" } });

async function onRequest(req, res) {
  let response;
  try {
    const request = toRequest(req, true);
    if (routesToAssets(request)) response = serveAsset(request);
    else response = await invokeFetch(request);
    if (response.webSocket) {
      throw new TypeError(
        'Worker tried to return a WebSocket in a response to a request which did not contain the header "Upgrade: websocket".');
    }
  } catch (err) {
    log(`fetch() failed for ${req.method} ${req.url}:\n${describe(err)}`);
    response = failure();
  }
  try {
    const headers = {};
    for (const [name, value] of response.headers) if (name !== "set-cookie") headers[name] = value;
    const cookies = response.headers.getSetCookie();
    if (cookies.length) headers["set-cookie"] = cookies;
    res.writeHead(response.status, response.statusText || undefined, headers);
    if (response.body) for await (const chunk of response.body) res.write(chunk);
    res.end();
  } catch (err) {
    log(`writing the response failed: ${describe(err)}`);
    res.destroy();
  }
}

async function writeRawResponse(socket, response) {
  const body = Buffer.from(await response.arrayBuffer());
  let head = `HTTP/1.1 ${response.status} ${response.statusText || http.STATUS_CODES[response.status] || ""}\r\n`;
  for (const [name, value] of response.headers) {
    if (!["content-length", "transfer-encoding", "connection"].includes(name)) head += `${name}: ${value}\r\n`;
  }
  head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
  socket.end(Buffer.concat([Buffer.from(head, "latin1"), body]));
}

// Per-upgrade data for the `ws` server callbacks below.
const upgrades = new WeakMap();
const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  maxPayload: MAX_MESSAGE,
  // The Worker, not `ws`, picks the subprotocol: whatever its Response says.
  handleProtocols: (_offered, req) => upgrades.get(req)?.protocol || false,
});
wss.on("headers", (lines, req) => {
  const { response } = upgrades.get(req);
  const written = new Set(lines.map((line) => line.split(":")[0].toLowerCase()));
  for (const [name, value] of response.headers) {
    if (!written.has(name) && !["upgrade", "connection", "content-length", "sec-websocket-extensions"].includes(name)) {
      lines.push(`${name}: ${value}`);
    }
  }
});

async function onUpgrade(req, socket, head) {
  socket.on("error", () => {}); // the client may vanish mid-handshake
  let response;
  try {
    const request = toRequest(req, false);
    // The router does not look at Upgrade: a path the assets serve gets the file.
    response = routesToAssets(request) ? serveAsset(request) : await invokeFetch(request);
  } catch (err) {
    log(`fetch() failed for upgrade ${req.url}:\n${describe(err)}`);
    return writeRawResponse(socket, failure());
  }
  const webSocket = response.webSocket ?? null;
  if (response.status !== 101 || !webSocket) return writeRawResponse(socket, response);

  // Frames the Worker sends before the handshake completes wait here.
  let nodeWs = null;
  const early = [];
  let sendOut;
  try {
    sendOut = webSocket[COUPLE]((frame) => (nodeWs ? sendToNode(nodeWs, frame) : early.push(frame)));
  } catch (err) {
    log(`bad WebSocket response for ${req.url}:\n${describe(err)}`);
    return writeRawResponse(socket, failure());
  }
  upgrades.set(req, { response, protocol: response.headers.get("sec-websocket-protocol") });
  wss.handleUpgrade(req, socket, head, (ws) => {
    nodeWs = ws;
    receiveFromNode(ws, sendOut);
    for (const frame of early.splice(0)) sendToNode(ws, frame);
  });
}

// ---------------------------------------------------------------------------

if (!opts.prepare) checkInputs();
// workerd logs unhandled rejections and keeps serving; so do we.
process.on("unhandledRejection", (err) => log(`unhandled rejection:\n${describe(err)}`));

const { pyodide, cached, pycache } = await startPyodide();
const T1 = performance.now();
if (opts.prepare) {
  // --prepare: build the start-up caches (a test fixture can do this once, up front).
  log(`caches ready under ${CACHE_DIR} (${Math.round(T1 - T0)} ms)`);
  process.exit(0);
}
JSPI = !!pyodide._module?.jspiSupported;
pyodide.registerJsModule("_pyodide_entrypoint_helper", entrypointHelper);
pyodide.registerJsModule("_cloudflare_compat_flags", COMPAT_FLAGS);
const { paths, modulesEm, pycacheEm } = mountSources(pyodide, pycache);
const glue = pyodide.toPy({});
pyodide.runPython(GLUE_PY, { globals: glue });
try {
  glue.get("setup")(pyodide.toPy(paths), modulesEm, pycacheEm);
  DefaultClass = glue.get("load_entry")(path.basename(ENTRY, ".py"));
  for (const className of durableObjectBindings) {
    durableObjectClasses.set(className, glue.get("load_durable_object")(path.basename(ENTRY, ".py"), className));
  }
} catch (err) {
  log(`loading ${path.relative(process.cwd(), ENTRY)} failed:\n${describe(err)}`);
  process.exit(1);
}
callHandler = glue.get("call_handler");
const T2 = performance.now();

const server = http.createServer(onRequest);
server.on("upgrade", onUpgrade);
server.listen(Number(opts.port), opts.host, () => {
  const { address, port } = server.address();
  listenUrl = new URL(`http://${address.includes(":") ? `[${address}]` : address}:${port}`);
  log(`pyodide ${PYODIDE_VERSION} ${cached ? "from snapshot" : "cold"} in ${Math.round(T1 - T0)} ms, ` +
    `entry imported in ${Math.round(T2 - T1)} ms`);
  console.log(`worker-host: listening on ${listenUrl.origin} (ready in ${Math.round(performance.now() - T0)} ms)`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(0));
// SIGUSR2: a full garbage collection (when node runs with --expose-gc), then one line with the
// process's memory, the Pyodide heap (WebAssembly memory, which only grows) included. Leak checks
// read it, so that what they compare is live memory rather than where the collector happened to be.
process.on("SIGUSR2", () => {
  const collected = typeof globalThis.gc === "function";
  if (collected) globalThis.gc();
  const { rss, heapUsed, heapTotal, external, arrayBuffers } = process.memoryUsage();
  const pyodideHeap = pyodide._module.HEAP8.length;
  log(`memory ${JSON.stringify({ collected, rss, heapUsed, heapTotal, external, arrayBuffers, pyodideHeap })}`);
});
