// The live status page served at `/` of the admin server: one self-contained HTML document (inline
// CSS and JS, no external assets, no build step) that polls /api/status (Gateway.status()) every
// second. Every value taken from the JSON is put into the page as text (textContent /
// setAttribute), never parsed as HTML.
//
// Stable hooks for tests and scripts (raw numbers in data-value, formatted text as content):
//   body[data-polls]            successful polls so far; body[data-state] = loading | ok | error
//   [data-testid=gateway-name|ready|config-version|uptime|last-updated]
//   [data-testid=connections|pending|sessions]
//   [data-testid=messages-in-rate|messages-out-rate|messages-in-total|messages-out-total]
//                               (rates as the gateway reports them: shown from the first poll)
//   [data-testid=latency-<upstream|downstream>-<p50|p90|p99|count>]
//   tr[data-testid=backend-row][data-endpoint=<host:port>] with cells
//     [data-testid=backend-connections|backend-sessions|backend-queued-bytes|backend-breaker]
//   tr[data-testid=route-row] with cells [data-testid=route-name|route-reachable] (data-value:
//     reachable endpoints; the text says "n / total")
//   tr[data-testid=reload-row] (newest first) with cells
//     [data-testid=reload-time|reload-ok|reload-version|reload-source|reload-detail]
//
// The script below avoids backticks and dollar-brace so it can live in this template literal.

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; connect-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="color-scheme" content="light dark">
<title>game-gateway status</title>
<link rel="icon" href="data:,">
<style>
  :root {
    --bg: #f6f7f9; --panel: #ffffff; --border: #e3e6ea; --text: #1c2024; --muted: #6b737c;
    --accent: #3b6fd4; --ok: #1f8a4c; --ok-bg: #e3f4ea; --warn: #a15c00; --warn-bg: #fbefd9;
    --bad: #c0362c; --bad-bg: #fbe5e3; --row: #f9fafb;
    --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --bg: #121417; --panel: #1a1d21; --border: #2b3036; --text: #e4e7eb; --muted: #8d96a0;
      --accent: #7aa2f7; --ok: #5cc98a; --ok-bg: #16321f; --warn: #e2b15c; --warn-bg: #3a2c12;
      --bad: #f07b70; --bad-bg: #3d1a17; --row: #1e2226;
    }
  }
  * { box-sizing: border-box; }
  html, body { margin: 0; background: var(--bg); color: var(--text); }
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
  header { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 8px 24px;
           padding: 14px 24px; background: var(--panel); border-bottom: 1px solid var(--border); }
  .title { display: flex; align-items: center; gap: 10px; }
  h1 { font-size: 17px; margin: 0; font-weight: 600; }
  .product { color: var(--muted); font-weight: 400; }
  .meta { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 18px; color: var(--muted); }
  .meta b { color: var(--text); font-weight: 600; font-variant-numeric: tabular-nums; }
  .dot { width: 9px; height: 9px; border-radius: 50%; background: var(--muted); flex: none; }
  body[data-state="ok"] .dot { background: var(--ok); }
  body[data-state="error"] .dot { background: var(--bad); }
  .pill { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600;
          letter-spacing: .02em; background: var(--row); color: var(--muted); border: 1px solid var(--border); }
  .pill.ok { background: var(--ok-bg); color: var(--ok); border-color: transparent; }
  .pill.warn { background: var(--warn-bg); color: var(--warn); border-color: transparent; }
  .pill.bad { background: var(--bad-bg); color: var(--bad); border-color: transparent; }
  main { max-width: 1180px; margin: 0 auto; padding: 20px 24px 8px; }
  .banner { display: none; margin-bottom: 16px; padding: 10px 14px; border-radius: 8px;
            background: var(--bad-bg); color: var(--bad); }
  body[data-state="error"] .banner { display: block; }
  body[data-state="error"] main > section { opacity: .55; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 14px; margin-bottom: 18px; }
  .card, .panel { background: var(--panel); border: 1px solid var(--border); border-radius: 10px; }
  .card { padding: 14px 16px 12px; position: relative; overflow: hidden; }
  .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; }
  .big { font-size: 30px; font-weight: 600; margin-top: 2px; font-variant-numeric: tabular-nums; }
  .unit { font-size: 14px; color: var(--muted); font-weight: 400; margin-left: 3px; }
  .sub { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
  .sub b { color: var(--text); font-weight: 500; }
  .spark { position: absolute; right: 12px; top: 14px; width: 96px; height: 30px; }
  .spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
  .spark polygon { fill: var(--accent); opacity: .14; stroke: none; }
  .spark line { stroke: var(--border); stroke-width: 1; vector-effect: non-scaling-stroke; }
  .grid2 { display: grid; grid-template-columns: minmax(0, 1fr); gap: 18px; margin-bottom: 18px; }
  .panel h2 { font-size: 13px; margin: 0; padding: 11px 16px; border-bottom: 1px solid var(--border);
              font-weight: 600; display: flex; justify-content: space-between; align-items: baseline; gap: 12px; }
  .panel h2 .hint { font-weight: 400; color: var(--muted); font-size: 12px; }
  .scroll { overflow-x: auto; }
  table { width: 100%; border-collapse: collapse; }
  th, td { padding: 7px 16px; text-align: left; border-bottom: 1px solid var(--border); vertical-align: middle; }
  th { font-size: 12px; color: var(--muted); font-weight: 500; white-space: nowrap; }
  tbody tr:last-child td { border-bottom: none; }
  tbody tr:nth-child(even) td { background: var(--row); }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.mono { font-family: var(--mono); font-size: 13px; }
  td.detail { white-space: pre-wrap; word-break: break-word; font-family: var(--mono); font-size: 12px; }
  td.empty { color: var(--muted); text-align: center; padding: 16px; }
  footer { max-width: 1180px; margin: 0 auto; padding: 4px 24px 24px; color: var(--muted); font-size: 12px; }
  a { color: var(--accent); }
</style>
</head>
<body data-state="loading" data-polls="0">
<header>
  <div class="title">
    <span class="dot" title="live"></span>
    <h1><span data-testid="gateway-name" id="gateway-name">&hellip;</span> <span class="product">game-gateway</span></h1>
  </div>
  <div class="meta">
    <span class="pill" data-testid="ready" id="ready">loading</span>
    <span>config <b data-testid="config-version" id="config-version">&ndash;</b></span>
    <span>uptime <b data-testid="uptime" id="uptime">&ndash;</b></span>
    <span>updated <b data-testid="last-updated" id="last-updated">&ndash;</b></span>
  </div>
</header>
<main>
  <div class="banner" data-testid="error" id="error" role="status"></div>
  <section class="cards">
    <div class="card">
      <div class="label">Connections</div>
      <div class="big" data-testid="connections" id="connections">&ndash;</div>
      <div class="sub"><b data-testid="pending" id="pending">&ndash;</b> awaiting first frame</div>
    </div>
    <div class="card">
      <div class="label">Sessions</div>
      <div class="big" data-testid="sessions" id="sessions">&ndash;</div>
      <div class="sub">bound to a backend</div>
    </div>
    <div class="card">
      <div class="label">Messages in</div>
      <svg class="spark" viewBox="0 0 59 30" preserveAspectRatio="none" aria-hidden="true"><title>last 60 s</title><line x1="0" y1="29.5" x2="59" y2="29.5"/><polygon id="spark-in-area" points=""/><polyline id="spark-in" points=""/></svg>
      <div class="big"><span data-testid="messages-in-rate" id="messages-in-rate">&ndash;</span><span class="unit">/s</span></div>
      <div class="sub">total <b data-testid="messages-in-total" id="messages-in-total">&ndash;</b> client &rarr; backend</div>
    </div>
    <div class="card">
      <div class="label">Messages out</div>
      <svg class="spark" viewBox="0 0 59 30" preserveAspectRatio="none" aria-hidden="true"><title>last 60 s</title><line x1="0" y1="29.5" x2="59" y2="29.5"/><polygon id="spark-out-area" points=""/><polyline id="spark-out" points=""/></svg>
      <div class="big"><span data-testid="messages-out-rate" id="messages-out-rate">&ndash;</span><span class="unit">/s</span></div>
      <div class="sub">total <b data-testid="messages-out-total" id="messages-out-total">&ndash;</b> backend &rarr; client</div>
    </div>
  </section>
  <div class="grid2">
    <section class="panel">
      <h2>Request latency <span class="hint">arrival to write toward the other side; histogram bucket upper bounds</span></h2>
      <div class="scroll"><table>
        <thead><tr><th>direction</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">samples</th></tr></thead>
        <tbody>
          <tr><td>upstream <span class="sub">client &rarr; backend</span></td>
            <td class="num" data-testid="latency-upstream-p50" id="latency-upstream-p50">&ndash;</td>
            <td class="num" data-testid="latency-upstream-p90" id="latency-upstream-p90">&ndash;</td>
            <td class="num" data-testid="latency-upstream-p99" id="latency-upstream-p99">&ndash;</td>
            <td class="num" data-testid="latency-upstream-count" id="latency-upstream-count">&ndash;</td></tr>
          <tr><td>downstream <span class="sub">backend &rarr; client</span></td>
            <td class="num" data-testid="latency-downstream-p50" id="latency-downstream-p50">&ndash;</td>
            <td class="num" data-testid="latency-downstream-p90" id="latency-downstream-p90">&ndash;</td>
            <td class="num" data-testid="latency-downstream-p99" id="latency-downstream-p99">&ndash;</td>
            <td class="num" data-testid="latency-downstream-count" id="latency-downstream-count">&ndash;</td></tr>
        </tbody>
      </table></div>
    </section>
    <section class="panel">
      <h2>Backends <span class="hint" data-testid="backend-count" id="backend-count"></span></h2>
      <div class="scroll"><table>
        <thead><tr><th>endpoint</th><th>breaker</th><th class="num">connections</th><th class="num">sessions</th><th class="num">queued</th></tr></thead>
        <tbody id="backends"><tr><td class="empty" colspan="5">loading&hellip;</td></tr></tbody>
      </table></div>
    </section>
    <section class="panel">
      <h2>Routes <span class="hint">endpoints that answer</span></h2>
      <div class="scroll"><table>
        <thead><tr><th>server type / world</th><th>service</th><th class="num">reachable</th></tr></thead>
        <tbody id="routes"><tr><td class="empty" colspan="3">loading&hellip;</td></tr></tbody>
      </table></div>
    </section>
    <section class="panel">
      <h2>Config reloads <span class="hint">newest first</span></h2>
      <div class="scroll"><table>
        <thead><tr><th>time</th><th>result</th><th class="num">version</th><th>source</th><th>detail</th></tr></thead>
        <tbody id="reloads"><tr><td class="empty" colspan="5">loading&hellip;</td></tr></tbody>
      </table></div>
    </section>
  </div>
</main>
<footer>Polls <a href="/api/status">/api/status</a> every second &middot; Prometheus: <a href="/metrics">/metrics</a></footer>
<script>
(function () {
  "use strict";
  var INTERVAL_MS = 1000;
  var TIMEOUT_MS = 3000;
  var SPARK_POINTS = 60;
  var intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var polls = 0;
  var lastOkAt = 0;
  var history = { "in": [], "out": [] };

  function $(id) { return document.getElementById(id); }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  function str(v) { return v === null || v === undefined ? "" : String(v); }

  // Sets text (never HTML) and the raw value for scripts.
  function put(node, text, raw) {
    if (!node) return;
    node.textContent = text;
    if (raw === undefined || raw === null) node.removeAttribute("data-value");
    else node.setAttribute("data-value", String(raw));
  }
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) n.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function count(v) { return isNum(v) ? intFmt.format(v) : "\\u2013"; }
  function rate(v) {
    if (!isNum(v)) return "\\u2013";
    if (v === 0) return "0";
    if (v < 10) return v.toFixed(1);
    return intFmt.format(Math.round(v));
  }
  function ms(v, samples) {
    if (isNum(v)) {
      if (v < 1) return String(Math.round(v * 1000) / 1000) + " ms";
      if (v < 100) return String(Math.round(v * 10) / 10) + " ms";
      return intFmt.format(Math.round(v)) + " ms";
    }
    return isNum(samples) && samples > 0 ? "over range" : "\\u2013";
  }
  function bytes(v) {
    if (!isNum(v)) return "\\u2013";
    var units = ["B", "KiB", "MiB", "GiB"];
    var i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
  }
  function duration(s) {
    if (!isNum(s)) return "\\u2013";
    s = Math.max(0, Math.floor(s));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    if (d > 0) return d + "d " + h + "h " + m + "m";
    if (h > 0) return h + "h " + m + "m " + sec + "s";
    if (m > 0) return m + "m " + sec + "s";
    return sec + "s";
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function clock(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
  function when(iso) {
    var d = new Date(str(iso));
    if (isNaN(d.getTime())) return str(iso);
    var today = new Date();
    var sameDay = d.toDateString() === today.toDateString();
    return (sameDay ? "" : d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " ") + clock(d);
  }

  function spark(id, values) {
    var line = $(id);
    var area = $(id + "-area");
    if (!line || !area) return;
    var max = 0;
    for (var i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
    var pts = [];
    var offset = SPARK_POINTS - values.length;
    for (var j = 0; j < values.length; j++) {
      var y = max > 0 ? 29 - (values[j] / max) * 27 : 29;
      pts.push(String(offset + j) + "," + y.toFixed(1));
    }
    line.setAttribute("points", pts.join(" "));
    area.setAttribute("points", pts.length > 1 ? pts.join(" ") + " " + (SPARK_POINTS - 1) + ",30 " + offset + ",30" : "");
  }
  function pushHistory(key, v) {
    var h = history[key];
    h.push(isNum(v) ? v : 0);
    if (h.length > SPARK_POINTS) h.shift();
    spark("spark-" + key, h);
  }

  function renderBackends(list) {
    var body = $("backends");
    var rows = [];
    if (!Array.isArray(list) || list.length === 0) {
      rows.push(el("tr", null));
      rows[0].appendChild(el("td", { "class": "empty", colspan: 5 }, "no backend endpoints"));
    } else {
      for (var i = 0; i < list.length; i++) {
        var b = list[i] || {};
        var tr = el("tr", { "data-testid": "backend-row", "data-endpoint": str(b.endpoint) });
        tr.appendChild(el("td", { "class": "mono", "data-testid": "backend-endpoint" }, str(b.endpoint)));
        var state = str(b.breaker);
        var cls = state === "closed" ? "ok" : state === "open" ? "bad" : state === "half-open" ? "warn" : "";
        var cell = el("td", { "data-testid": "backend-breaker", "data-value": state });
        cell.appendChild(el("span", { "class": "pill " + cls }, state || "unknown"));
        tr.appendChild(cell);
        tr.appendChild(el("td", { "class": "num", "data-testid": "backend-connections", "data-value": str(b.connections_open) }, count(b.connections_open)));
        tr.appendChild(el("td", { "class": "num", "data-testid": "backend-sessions", "data-value": str(b.sessions) }, count(b.sessions)));
        tr.appendChild(el("td", { "class": "num", "data-testid": "backend-queued-bytes", "data-value": str(b.queued_bytes) }, bytes(b.queued_bytes)));
        rows.push(tr);
      }
    }
    body.replaceChildren.apply(body, rows);
    put($("backend-count"), Array.isArray(list) ? list.length + (list.length === 1 ? " endpoint" : " endpoints") : "", Array.isArray(list) ? list.length : null);
  }

  function renderRoutes(list) {
    var body = $("routes");
    var rows = [];
    if (!Array.isArray(list) || list.length === 0) {
      rows.push(el("tr", null));
      rows[0].appendChild(el("td", { "class": "empty", colspan: 3 }, "no routes"));
    } else {
      for (var i = 0; i < list.length; i++) {
        var r = list[i] || {};
        var tr = el("tr", { "data-testid": "route-row" });
        tr.appendChild(el("td", { "class": "mono", "data-testid": "route-name" }, str(r.server_type) + " / " + (r.world_id === 0 ? "any" : str(r.world_id))));
        tr.appendChild(el("td", null, str(r.service_name)));
        var all = r.reachable === r.endpoints;
        var cell = el("td", { "class": "num", "data-testid": "route-reachable", "data-value": str(r.reachable) });
        cell.appendChild(el("span", { "class": "pill " + (all ? "ok" : r.reachable === 0 ? "bad" : "warn") }, str(r.reachable) + " / " + str(r.endpoints)));
        tr.appendChild(cell);
        rows.push(tr);
      }
    }
    body.replaceChildren.apply(body, rows);
  }

  function renderReloads(list) {
    var body = $("reloads");
    var rows = [];
    if (!Array.isArray(list) || list.length === 0) {
      rows.push(el("tr", null));
      rows[0].appendChild(el("td", { "class": "empty", colspan: 5 }, "no reloads since start"));
    } else {
      for (var i = 0; i < list.length; i++) {
        var r = list[i] || {};
        var tr = el("tr", { "data-testid": "reload-row" });
        tr.appendChild(el("td", { "data-testid": "reload-time", title: str(r.at) }, when(r.at)));
        var ok = r.ok === true;
        var restart = Array.isArray(r.needsRestart) && r.needsRestart.length > 0;
        var res = el("td", { "data-testid": "reload-ok", "data-value": String(ok) });
        res.appendChild(el("span", { "class": "pill " + (!ok ? "bad" : restart ? "warn" : "ok") }, !ok ? "refused" : restart ? "partial" : "applied"));
        tr.appendChild(res);
        tr.appendChild(el("td", { "class": "num", "data-testid": "reload-version", "data-value": str(r.version) }, "v" + str(r.version)));
        tr.appendChild(el("td", { "data-testid": "reload-source" }, str(r.source)));
        var detail = !ok ? str(r.error) : restart ? "needs restart (old values kept): " + r.needsRestart.map(str).join(", ") : "";
        tr.appendChild(el("td", { "class": "detail", "data-testid": "reload-detail" }, detail));
        rows.push(tr);
      }
    }
    body.replaceChildren.apply(body, rows);
  }

  function render(s) {
    var msgs = s.messages || {};
    var totIn = msgs["in"], totOut = msgs.out;
    // The gateway reports the rates (over its last second or two), so the first paint has them.
    var rIn = isNum(msgs.in_per_s) ? msgs.in_per_s : null;
    var rOut = isNum(msgs.out_per_s) ? msgs.out_per_s : null;

    put($("gateway-name"), str(s.gateway) || "gateway", s.gateway);
    document.title = (str(s.gateway) || "gateway") + " \\u00b7 game-gateway status";
    var ready = $("ready");
    if (s.ready === true) { put(ready, "ready", "true"); ready.className = "pill ok"; }
    else { put(ready, "not ready" + (s.not_ready_reason ? ": " + str(s.not_ready_reason) : ""), "false"); ready.className = "pill bad"; }
    put($("config-version"), isNum(s.config_version) ? "v" + s.config_version : "\\u2013", s.config_version);
    put($("uptime"), duration(s.uptime_s), s.uptime_s);
    put($("connections"), count(s.connections), s.connections);
    put($("pending"), count(s.pending_first_frame), s.pending_first_frame);
    put($("sessions"), count(s.sessions), s.sessions);
    put($("messages-in-total"), count(totIn), totIn);
    put($("messages-out-total"), count(totOut), totOut);
    put($("messages-in-rate"), rate(rIn), rIn);
    put($("messages-out-rate"), rate(rOut), rOut);
    if (rIn !== null) { pushHistory("in", rIn); pushHistory("out", rOut); }

    var lat = s.latency || {};
    ["upstream", "downstream"].forEach(function (dir) {
      var l = lat[dir] || {};
      ["p50", "p90", "p99"].forEach(function (q) {
        put($("latency-" + dir + "-" + q), ms(l[q + "_ms"], l.count), l[q + "_ms"]);
      });
      put($("latency-" + dir + "-count"), count(l.count), l.count);
    });
    renderBackends(s.backends);
    renderRoutes(s.routes);
    renderReloads(s.reloads);
  }

  function showError(message) {
    document.body.setAttribute("data-state", "error");
    var since = lastOkAt ? " \\u2013 showing data from " + clock(new Date(lastOkAt)) : "";
    put($("error"), "Cannot reach /api/status: " + message + since);
    put($("messages-in-rate"), "\\u2013");
    put($("messages-out-rate"), "\\u2013");
  }

  function poll() {
    var ctrl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { ctrl.abort(); }, TIMEOUT_MS) : 0;
    fetch("/api/status", { cache: "no-store", headers: { accept: "application/json" }, signal: ctrl ? ctrl.signal : undefined })
      .then(function (res) {
        if (!res.ok) throw new Error("HTTP " + res.status);
        return res.json();
      })
      .then(function (s) {
        if (!s || typeof s !== "object") throw new Error("unexpected response");
        var now = Date.now();
        render(s);
        lastOkAt = now;
        polls++;
        put($("last-updated"), clock(new Date(now)), now);
        put($("error"), "");
        document.body.setAttribute("data-polls", String(polls));
        document.body.setAttribute("data-state", "ok");
      })
      .catch(function (e) {
        showError(e && e.name === "AbortError" ? "timed out" : str(e && e.message ? e.message : e));
      })
      .then(function () {
        clearTimeout(timer);
        setTimeout(poll, INTERVAL_MS);
      });
  }
  poll();
})();
</script>
</body>
</html>
`;
