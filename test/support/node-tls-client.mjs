// A game client over TLS in Node (not Bun), so the gateway's TLS is checked against an
// implementation that is not the one serving it. argv: port [certFile keyFile].
// Prints one JSON line when the handshake ends ({event:"secure", cn, protocol} or
// {event:"error", code, message} / {event:"closed"}); then for each stdin line
// "<serverId> <text>" sends one 8-byte-header frame and prints {event:"reply", body} per frame back.
import { readFileSync } from "node:fs";
import { connect } from "node:tls";
import { createInterface } from "node:readline";

const [port, certFile, keyFile] = process.argv.slice(2);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const socket = connect({
  host: "127.0.0.1",
  port: Number(port),
  rejectUnauthorized: false, // self-signed; the test checks the certificate's CN itself
  ...(certFile ? { cert: readFileSync(certFile), key: readFileSync(keyFile) } : {}),
});
let secure = false;
socket.on("secureConnect", () => {
  secure = true;
  out({ event: "secure", cn: socket.getPeerCertificate().subject.CN, protocol: socket.getProtocol() });
});
let pending = Buffer.alloc(0);
socket.on("data", (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  while (pending.length >= 8 && pending.length >= 8 + pending.readUInt16LE(0)) {
    const len = pending.readUInt16LE(0);
    out({ event: "reply", body: pending.subarray(8, 8 + len).toString() });
    pending = pending.subarray(8 + len);
  }
});
socket.on("error", (e) => out({ event: "error", code: e.code, message: e.message }));
socket.on("close", () => {
  out({ event: "closed", secure });
  process.exit(0);
});
createInterface({ input: process.stdin }).on("line", (line) => {
  const space = line.indexOf(" ");
  const body = Buffer.from(line.slice(space + 1));
  const header = Buffer.alloc(8);
  header.writeUInt16LE(body.length, 0);
  header.writeUInt16LE(1, 2);
  header.writeUInt32LE(Number(line.slice(0, space)), 4);
  socket.write(Buffer.concat([header, body]));
});
