// Certificates for TLS tests, made by openssl (not by anything of ours) in a temp dir.
import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function openssl(dir: string, ...args: string[]): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd: dir, stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
}

/**
 * A temp dir holding: gw-a.crt/.key and gw-b.crt/.key (self-signed, CN gw-a and gw-b), ca.crt/.key
 * (a self-signed CA), client.crt/.key (CN player, signed by that CA), and server.crt/.key: copies
 * of gw-a's, what a gateway is configured with (a rotation test overwrites them in place).
 */
export function makeCertificates(): string {
  const dir = mkdtempSync(join(tmpdir(), "gw-tls-"));
  for (const cn of ["gw-a", "gw-b", "ca"]) {
    openssl(dir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${cn}.key`, "-out", `${cn}.crt`, "-days", "1", "-subj", `/CN=${cn}`);
  }
  openssl(dir, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=player");
  openssl(dir, "x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "client.crt", "-days", "1");
  copyFileSync(join(dir, "gw-a.crt"), join(dir, "server.crt"));
  copyFileSync(join(dir, "gw-a.key"), join(dir, "server.key"));
  return dir;
}
