// The live status page served at `/` of the admin server: one self-contained HTML document (inline
// CSS and JS, no external assets, no build step for the page) that polls /api/status (Gateway.status()) every
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
//   tr[data-testid=worker-row][data-worker=<index>] (only with server.workers > 1) with cells
//     [data-testid=worker-state|worker-pid|worker-uptime|worker-connections|worker-sessions|worker-restarts]
//
// The page and its script are real files (status-page/), imported as text so the bundler embeds
// them in the compiled binary; the script is type-checked against the DOM by
// status-page/tsconfig.json (`// @ts-check`). The script goes inline because the page's CSP
// allows no script from elsewhere.

import page from "./status-page/status-page.html" with { type: "text" };
import script from "./status-page/status-page.client.js" with { type: "text" };

const SCRIPT_SLOT = "<script>\n</script>";

/** bun-types call every *.html import an HTMLBundle; imported `with { type: "text" }` it is the file's text. */
function asText(imported: unknown, file: string): string {
  if (typeof imported !== "string") throw new Error(`${file} must be imported with { type: "text" }`);
  return imported;
}

function inline(html: string, js: string): string {
  const at = html.indexOf(SCRIPT_SLOT);
  if (at < 0 || html.indexOf(SCRIPT_SLOT, at + 1) >= 0) throw new Error("status-page.html must hold exactly one empty <script> slot");
  return html.slice(0, at) + "<script>\n" + js + "</script>" + html.slice(at + SCRIPT_SLOT.length);
}

export const STATUS_PAGE_HTML = inline(asText(page, "status-page.html"), script);
