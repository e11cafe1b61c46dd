// The upgrade request's decisions as pure functions: X-Forwarded-For read as nginx's realip module
// reads it with real_ip_recursive on (a real nginx, run here, is the judge), and the Origin
// allow-list's matching rules.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CidrBlock, CidrList } from "../../src/net/cidr.ts";
import { forwardedClientAddress, OriginAllowList, originEntryProblem, readHeaderFields } from "../../src/net/upgrade-request.ts";

const TRUSTED = ["127.0.0.1/32", "10.0.0.0/8", "2001:db8::/32"];
const trusted = new CidrList(TRUSTED.map((t) => CidrBlock.parse(t)!));

const NGINX = "/usr/sbin/nginx";
const haveNginx = Bun.spawnSync(["test", "-x", NGINX]).exitCode === 0;

describe.skipIf(!haveNginx)("X-Forwarded-For from a trusted peer, against nginx's real_ip_recursive", () => {
  let proc: ReturnType<typeof Bun.spawn>;
  let port = 0;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-realip-"));
    // A free port: bind one, let it go, give it to nginx.
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    port = probe.port;
    probe.stop(true);
    writeFileSync(
      join(dir, "nginx.conf"),
      `daemon off; master_process off; pid ${dir}/nginx.pid; error_log stderr;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
${TRUSTED.map((t) => `    set_real_ip_from ${t};`).join("\n")}
    real_ip_header X-Forwarded-For;
    real_ip_recursive on;
    location / { return 200 "$remote_addr"; }
  }
}
`,
    );
    proc = Bun.spawn([NGINX, "-p", dir, "-c", join(dir, "nginx.conf")], { stdout: "pipe", stderr: "pipe" });
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        await fetch(`http://127.0.0.1:${port}/`);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await Bun.sleep(50);
      }
    }
  });
  afterAll(() => proc?.kill());

  const cases = [
    "203.0.113.7",
    "198.51.100.1, 203.0.113.7",
    "198.51.100.1, 203.0.113.7, 10.1.2.3",
    "203.0.113.7,10.1.2.3,10.9.9.9",
    "10.1.2.3, 10.4.5.6", // every hop trusted: the left-most
    "203.0.113.7:5678, 10.1.2.3",
    "2001:db9::1, 2001:db8::5",
    "[2001:db9::1]:443, 10.1.2.3",
    "::ffff:203.0.113.7",
    "unknown, 203.0.113.7", // a bad hop left of the client is never reached
    "203.0.113.7, unknown", // a bad right-most hop: the peer
    "",
    " , ",
  ];
  for (const xff of cases) {
    test(JSON.stringify(xff), async () => {
      const nginx = await (await fetch(`http://127.0.0.1:${port}/`, { headers: { "X-Forwarded-For": xff } })).text();
      expect(forwardedClientAddress("127.0.0.1", xff, trusted).address).toBe(nginx);
    });
  }
});

describe("forwardedClientAddress", () => {
  test("an untrusted peer's header is ignored; a trusted peer's unusable header is flagged", () => {
    expect(forwardedClientAddress("192.0.2.1", "203.0.113.7", trusted)).toEqual({ address: "192.0.2.1", malformed: false });
    expect(forwardedClientAddress("127.0.0.1", null, trusted)).toEqual({ address: "127.0.0.1", malformed: false });
    expect(forwardedClientAddress("127.0.0.1", "203.0.113.7, unknown", trusted)).toEqual({ address: "127.0.0.1", malformed: true });
    expect(forwardedClientAddress("127.0.0.1", "203.0.113.7", new CidrList([]))).toEqual({ address: "127.0.0.1", malformed: false });
    // Where nginx differs: past trusted hops it stops at a bad one and takes the last trusted hop
    // (10.4.5.6) as the client. A proxy is never the player: here the peer stands, flagged.
    expect(forwardedClientAddress("127.0.0.1", "10.1.2.3, garbage, 10.4.5.6", trusted)).toEqual({ address: "127.0.0.1", malformed: true });
  });
});

describe("OriginAllowList", () => {
  test("exact origins (any case), subdomain wildcards, '*', and requests without Origin", () => {
    const list = new OriginAllowList(["https://play.example.com", "https://*.example.org", "http://localhost:5173"]);
    for (const ok of ["https://play.example.com", "HTTPS://PLAY.EXAMPLE.COM", "https://a.example.org", "https://a.b.example.org", "http://localhost:5173", null, undefined]) {
      expect(list.allows(ok), String(ok)).toBe(true);
    }
    for (const no of ["https://example.org", "http://a.example.org", "https://a.example.org:8443", "https://play.example.com:443", "https://evilexample.org", "http://localhost:5174", "null", ""]) {
      expect(list.allows(no), no).toBe(false);
    }
    expect(new OriginAllowList([]).allows("https://anything.example")).toBe(true);
    expect(new OriginAllowList(["*"]).allows("https://anything.example")).toBe(true);
  });

  test("the header must be a serialized origin: strings that only end in the domain are refused by a wildcard", () => {
    const list = new OriginAllowList(["https://*.example.com"]);
    expect(list.allows("https://x.example.com")).toBe(true);
    // The outside review's list (each got 101 before): a path, query, fragment, userinfo, a space,
    // an empty label, and two Origin headers joined by the HTTP layer.
    for (const no of [
      "https://evil.net/.example.com",
      "https://evil.net?.example.com",
      "https://evil.net#.example.com",
      "https://user@evil.net/x.example.com",
      "https:// .example.com",
      "https://a..example.com",
      "https://evil.net, x.example.com",
      "https://x.example.com.",
      "https://x.example.com/",
      "https://-x.example.com",
      "https://x.example.com:",
      "https://x.example.com:8443",
      "null",
    ]) {
      expect(list.allows(no), no).toBe(false);
    }
    // "*" still allows whatever is sent.
    expect(new OriginAllowList(["*"]).allows("https://evil.net/.example.com")).toBe(true);
  });

  test('"null" is listed as an exact entry: the opaque origin of file:// pages and sandboxed iframes', () => {
    const list = new OriginAllowList(["null", "https://play.example.com"]);
    expect(list.allows("null")).toBe(true);
    expect(list.allows("NULL")).toBe(true);
    expect(list.allows("https://play.example.com")).toBe(true);
    expect(new OriginAllowList(["https://play.example.com"]).allows("null")).toBe(false);
  });

  test("config entries: what is not an origin is named", () => {
    for (const ok of ["https://play.example.com", "http://localhost:5173", "https://*.example.com", "*", "http://[::1]:8080", "null", "https://play.example.com:8443", "https://*.co.uk"]) {
      expect(originEntryProblem(ok), ok).toBeNull();
    }
    for (const no of ["https://play.example.com/", "play.example.com", "https://*.example.com/game", "https://a.*.example.com", "*.example.com", "", "https://a..example.com", "https://x:70000"]) {
      expect(originEntryProblem(no), no).not.toBeNull();
    }
  });

  test("config entries that could never match (a default port) or allow a whole public suffix are refused, saying why", () => {
    expect(originEntryProblem("https://play.example.com:443")).toContain('browsers send "https://play.example.com", never ":443"');
    expect(originEntryProblem("http://localhost:80")).toContain('browsers send "http://localhost", never ":80"');
    expect(originEntryProblem("https://*.example.com:443")).toContain('browsers send "https://*.example.com", never ":443"');
    expect(originEntryProblem("https://*.com")).toContain('every site under the public suffix ".com"');
  });
});

describe("readHeaderFields", () => {
  test("names lower-cased, repeated fields joined as Fetch's Headers.get joins them", () => {
    const header = new TextEncoder().encode(
      "GET /game HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.1\r\nx-forwarded-for: 10.1.2.3\r\nOrigin:  https://play.example.com \r\n\r\n",
    );
    const fields = readHeaderFields(header);
    expect(fields.get("x-forwarded-for")).toBe("198.51.100.1, 10.1.2.3");
    expect(fields.get("origin")).toBe("https://play.example.com");
    expect(new Headers([["X-Forwarded-For", "198.51.100.1"], ["x-forwarded-for", "10.1.2.3"]]).get("x-forwarded-for")).toBe(fields.get("x-forwarded-for")!);
  });
});
