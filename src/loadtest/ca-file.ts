import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";

// --tls-ca is checked before the run: a file that is not a CA certificate (a private key, a
// truncated copy) would otherwise start the load and fail every connection with an error that
// names the handshake, not the file.

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The CA file's PEM text, or why it cannot serve as one: "cannot read it (...)", "not a PEM certificate (...)". */
export function readCaFile(path: string): { pem: string } | { problem: string } {
  let pem: string;
  try {
    pem = readFileSync(path, "utf8");
  } catch (e) {
    return { problem: `cannot read it (${(e as Error).message})` };
  }
  const blocks = pem.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    const found = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(pem)?.[1];
    return { problem: `not a PEM certificate (${found === undefined ? "no PEM block in it" : `it holds a ${found}, no CERTIFICATE`})` };
  }
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (e) {
      return { problem: `not a PEM certificate (certificate ${i + 1} of ${blocks.length} does not parse: ${(e as Error).message})` };
    }
  }
  return { pem };
}
