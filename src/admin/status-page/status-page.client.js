// @ts-check
// The status page's script (inlined into status-page.html by status-page.ts). Type-checked against
// the DOM: tsc -p src/admin/status-page. The /api/status body is treated as untrusted JSON: every
// value goes through isNum/str before it is shown, and only ever as text.
(function () {
  "use strict";
  var INTERVAL_MS = 1000;
  var TIMEOUT_MS = 3000;
  var SPARK_POINTS = 60;
  var intFmt = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  var polls = 0;
  var lastOkAt = 0;
  /** @type {{ in: number[], out: number[] }} */
  var history = { "in": [], "out": [] };

  /** @param {string} id */
  function $(id) { return document.getElementById(id); }
  /** @param {unknown} v @returns {v is number} */
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  /** @param {unknown} v @returns {string} */
  function str(v) { return v === null || v === undefined ? "" : String(v); }

  // Sets text (never HTML) and the raw value for scripts.
  /** @param {Element | null} node @param {string} text @param {unknown} [raw] */
  function put(node, text, raw) {
    if (!node) return;
    node.textContent = text;
    if (raw === undefined || raw === null) node.removeAttribute("data-value");
    else node.setAttribute("data-value", String(raw));
  }
  /** @param {string} tag @param {Record<string, unknown> | null} attrs @param {unknown} [text] */
  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) n.setAttribute(k, String(attrs[k]));
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  /** @param {unknown} v */
  function count(v) { return isNum(v) ? intFmt.format(v) : "\u2013"; }
  /** @param {unknown} v */
  function rate(v) {
    if (!isNum(v)) return "\u2013";
    if (v === 0) return "0";
    if (v < 10) return v.toFixed(1);
    return intFmt.format(Math.round(v));
  }
  /** @param {unknown} v @param {unknown} samples */
  function ms(v, samples) {
    if (isNum(v)) {
      if (v < 1) return String(Math.round(v * 1000) / 1000) + " ms";
      if (v < 100) return String(Math.round(v * 10) / 10) + " ms";
      return intFmt.format(Math.round(v)) + " ms";
    }
    return isNum(samples) && samples > 0 ? "over range" : "\u2013";
  }
  /** @param {unknown} v */
  function bytes(v) {
    if (!isNum(v)) return "\u2013";
    var units = ["B", "KiB", "MiB", "GiB"];
    var i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    return (i === 0 ? String(v) : v.toFixed(1)) + " " + units[i];
  }
  /** @param {unknown} s */
  function duration(s) {
    if (!isNum(s)) return "\u2013";
    var t = Math.max(0, Math.floor(s));
    var d = Math.floor(t / 86400), h = Math.floor(t % 86400 / 3600), m = Math.floor(t % 3600 / 60), sec = t % 60;
    if (d > 0) return d + "d " + h + "h " + m + "m";
    if (h > 0) return h + "h " + m + "m " + sec + "s";
    if (m > 0) return m + "m " + sec + "s";
    return sec + "s";
  }
  /** @param {number} n */
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  /** @param {Date} d */
  function clock(d) { return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
  /** @param {unknown} iso */
  function when(iso) {
    var d = new Date(str(iso));
    if (isNaN(d.getTime())) return str(iso);
    var today = new Date();
    var sameDay = d.toDateString() === today.toDateString();
    return (sameDay ? "" : d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " ") + clock(d);
  }

  /** @param {string} id @param {number[]} values */
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
  /** @param {"in" | "out"} key @param {unknown} v */
  function pushHistory(key, v) {
    var h = history[key];
    h.push(isNum(v) ? v : 0);
    if (h.length > SPARK_POINTS) h.shift();
    spark("spark-" + key, h);
  }

  /** @param {unknown} list */
  function renderBackends(list) {
    var body = $("backends");
    if (!body) return;
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

  /** @param {unknown} list */
  function renderRoutes(list) {
    var body = $("routes");
    if (!body) return;
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

  // Only a group's supervisor (server.workers > 1) reports workers; a single process hides the panel.
  /** @param {unknown} list */
  function renderWorkers(list) {
    var panel = $("workers-panel"), body = $("workers");
    if (!panel || !body) return;
    if (!Array.isArray(list)) { panel.hidden = true; return; }
    panel.hidden = false;
    var rows = [];
    for (var i = 0; i < list.length; i++) {
      var w = list[i] || {};
      var tr = el("tr", { "data-testid": "worker-row", "data-worker": str(w.worker) });
      tr.appendChild(el("td", { "class": "mono" }, str(w.worker)));
      var state = el("td", { "data-testid": "worker-state", "data-value": str(w.state) });
      var good = w.state === "running" && w.ready === true;
      state.appendChild(el("span", { "class": "pill " + (good ? "ok" : w.state === "running" ? "warn" : "bad") }, w.state === "running" && w.ready !== true ? "not ready" : str(w.state)));
      tr.appendChild(state);
      tr.appendChild(el("td", { "class": "num", "data-testid": "worker-pid", "data-value": str(w.pid) }, str(w.pid)));
      tr.appendChild(el("td", { "class": "num", "data-testid": "worker-uptime", "data-value": str(w.uptime_s) }, duration(w.uptime_s)));
      tr.appendChild(el("td", { "class": "num", "data-testid": "worker-connections", "data-value": str(w.connections) }, count(w.connections)));
      tr.appendChild(el("td", { "class": "num", "data-testid": "worker-sessions", "data-value": str(w.sessions) }, count(w.sessions)));
      tr.appendChild(el("td", { "class": "num", "data-testid": "worker-restarts", "data-value": str(w.restarts) }, count(w.restarts)));
      rows.push(tr);
    }
    body.replaceChildren.apply(body, rows);
  }

  /** @param {unknown} list */
  function renderReloads(list) {
    var body = $("reloads");
    if (!body) return;
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

  /** @param {{ [key: string]: any }} s the /api/status body (Gateway.status()), unvalidated */
  function render(s) {
    var msgs = s.messages || {};
    var totIn = msgs["in"], totOut = msgs.out;
    // The gateway reports the rates (over its last second or two), so the first paint has them.
    var rIn = isNum(msgs.in_per_s) ? msgs.in_per_s : null;
    var rOut = isNum(msgs.out_per_s) ? msgs.out_per_s : null;

    put($("gateway-name"), str(s.gateway) || "gateway", s.gateway);
    document.title = (str(s.gateway) || "gateway") + " \u00b7 game-gateway status";
    var ready = $("ready");
    if (ready && s.ready === true) { put(ready, "ready", "true"); ready.className = "pill ok"; }
    else if (ready) { put(ready, "not ready" + (s.not_ready_reason ? ": " + str(s.not_ready_reason) : ""), "false"); ready.className = "pill bad"; }
    put($("config-version"), isNum(s.config_version) ? "v" + s.config_version : "\u2013", s.config_version);
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
    // A group (server.workers > 1) says how it merged the workers' figures: quantiles do not add up.
    put($("latency-merged"), lat.merged ? "; " + str(lat.merged) : "", lat.merged || null);
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
    renderWorkers(s.workers);
  }

  /** @param {string} message */
  function showError(message) {
    document.body.setAttribute("data-state", "error");
    var since = lastOkAt ? " \u2013 showing data from " + clock(new Date(lastOkAt)) : "";
    put($("error"), "Cannot reach /api/status: " + message + since);
    put($("messages-in-rate"), "\u2013");
    put($("messages-out-rate"), "\u2013");
  }

  function poll() {
    var ctrl = typeof AbortController === "function" ? new AbortController() : null;
    var timer = ctrl ? setTimeout(function () { if (ctrl) ctrl.abort(); }, TIMEOUT_MS) : 0;
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
