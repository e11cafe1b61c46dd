// The reference's first-bytes rule (../shared/reference/reference-gateway.md, "WebSocket on the client port").
import { describe, expect, test } from "bun:test";
import { classifyFirstBytes, httpHeaderEnd, isWebSocketHandshake } from "../../src/net/protocol-sniff.ts";
import { encodeClientFrame } from "../../src/protocol/client-frame.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("classifyFirstBytes", () => {
  test.each(["GET ", "POST", "PUT ", "HEAD", "HTTP"])("%p starts HTTP", (start) => {
    expect(classifyFirstBytes(bytes(`${start}/ HTTP/1.1\r\n`))).toBe("http");
  });

  test("fewer than 4 bytes that could still start HTTP wait; bytes that cannot are a game client at once", () => {
    expect(classifyFirstBytes(bytes("G"))).toBe("undecided");
    expect(classifyFirstBytes(bytes("PU"))).toBe("undecided");
    expect(classifyFirstBytes(bytes("GEX"))).toBe("game");
    expect(classifyFirstBytes(new Uint8Array([0x05]))).toBe("game");
  });

  test("a game client's first frame is a game client, and so is a method in the wrong case", () => {
    expect(classifyFirstBytes(encodeClientFrame(1, 0x000a_0000, bytes("hello")))).toBe("game");
    expect(classifyFirstBytes(bytes("get / HTTP/1.1"))).toBe("game");
  });
});

describe("the HTTP header", () => {
  test("ends after the blank line, and not before it has arrived", () => {
    expect(httpHeaderEnd(bytes("GET / HTTP/1.1\r\nHost: x\r\n"))).toBe(-1);
    const h = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    expect(httpHeaderEnd(bytes(`${h}rest`))).toBe(h.length);
  });

  test("is a WebSocket handshake when it names upgrade and websocket in any case", () => {
    expect(isWebSocketHandshake(bytes("GET /x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n\r\n"))).toBe(true);
    expect(isWebSocketHandshake(bytes("GET /x HTTP/1.1\r\nHost: x\r\n\r\n"))).toBe(false);
  });
});
