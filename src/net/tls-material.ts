import { readFileSync } from "node:fs";
import { createPrivateKey, X509Certificate } from "node:crypto";

// The certificate, key and optional client CA the client listeners serve TLS with
// (server.tls.*). Read and checked in full before anything binds or rotates, so a bad file
// refuses a start, or a reload, with the key, the path and what is wrong with it.

/** Where the PEM files are; cert and key both "" = TLS off. */
export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** "" = no client certificates asked for. */
  readonly clientCaFile: string;
}

/** The files' contents, ready for Bun.listen / Bun.serve's `tls`. */
export interface TlsMaterial {
  readonly cert: string;
  readonly key: string;
  /** Set: clients must present a certificate signed by it, or the handshake fails. */
  readonly ca?: string;
  readonly requestCert?: boolean;
  readonly rejectUnauthorized?: boolean;
}

/** A TLS file is missing, unreadable or not what its key says. */
export class TlsFileError extends Error {
  constructor(
    readonly key: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${key} ${JSON.stringify(path)}: ${problem}`);
  }
}

function read(key: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    const problem = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : String((e as Error).message);
    throw new TlsFileError(key, path, problem);
  }
}

function checkCertificate(key: string, path: string, pem: string): void {
  try {
    new X509Certificate(pem);
  } catch {
    throw new TlsFileError(key, path, "not a PEM certificate (expected -----BEGIN CERTIFICATE-----)");
  }
}

/** Reads and checks the files; null when TLS is off. Throws TlsFileError. */
export function loadTlsMaterial(files: TlsFiles, keyPrefix = "server.tls"): TlsMaterial | null {
  const certKey = `${keyPrefix}.cert_file`;
  const keyKey = `${keyPrefix}.key_file`;
  if (files.certFile === "" && files.keyFile === "") {
    if (files.clientCaFile !== "") throw new TlsFileError(`${keyPrefix}.client_ca_file`, files.clientCaFile, `needs ${certKey} and ${keyKey} (client certificates are asked for over TLS)`);
    return null;
  }
  if (files.certFile === "") throw new TlsFileError(certKey, "", `required when ${keyKey} is set`);
  if (files.keyFile === "") throw new TlsFileError(keyKey, "", `required when ${certKey} is set`);
  const cert = read(certKey, files.certFile);
  checkCertificate(certKey, files.certFile, cert);
  const key = read(keyKey, files.keyFile);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new TlsFileError(keyKey, files.keyFile, "not a PEM private key (unencrypted; expected -----BEGIN PRIVATE KEY-----)");
  }
  if (!new X509Certificate(cert).checkPrivateKey(privateKey)) {
    throw new TlsFileError(keyKey, files.keyFile, `not the private key of the certificate in ${certKey} (${files.certFile})`);
  }
  if (files.clientCaFile === "") return { cert, key };
  const caKey = `${keyPrefix}.client_ca_file`;
  const ca = read(caKey, files.clientCaFile);
  checkCertificate(caKey, files.clientCaFile, ca);
  return { cert, key, ca, requestCert: true, rejectUnauthorized: true };
}

/** Whether two loads serve the same thing (a reload rotates only when they differ). */
export function sameTlsMaterial(a: TlsMaterial | null, b: TlsMaterial | null): boolean {
  return a?.cert === b?.cert && a?.key === b?.key && a?.ca === b?.ca;
}
