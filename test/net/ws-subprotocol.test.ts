// The subprotocol a sniffed WebSocket is answered: the first one the client offered, as Bun's
// dedicated listener answers (browsers refuse a 101 naming none when they offered some).
import { describe, expect, test } from "bun:test";
import { firstOfferedSubprotocol } from "../../src/net/ws-stream.ts";

describe("firstOfferedSubprotocol", () => {
  test("the first of a comma-separated offer, without its spaces", () => {
    expect(firstOfferedSubprotocol("game, chat")).toBe("game");
    expect(firstOfferedSubprotocol(" game ,chat")).toBe("game");
    expect(firstOfferedSubprotocol("game")).toBe("game");
  });

  test("no offer, no answer", () => {
    expect(firstOfferedSubprotocol(undefined)).toBe("");
    expect(firstOfferedSubprotocol("")).toBe("");
  });
});
