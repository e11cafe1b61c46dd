// The demo chat room in a browser: one WebSocket to the gateway's dedicated listener carrying
// the same framed stream as TCP (8-byte header: u16 body length, u16 MessageID, u32 ServerID,
// little-endian). The page serving this script names the WebSocket address and the ServerID in
// <meta> tags, so the script needs no configuration. Bundled by scripts/build-browser-example.ts.
//
// Hooks for tests: body[data-state] = connecting | open | closed; [data-testid=name|join|
// message|send|status]; li[data-testid=line] per chat line (data-from holds the sender),
// li[data-testid=player] per player online.

/** The demo backend's chat MessageIDs (src/demo/demo-connection.ts, DemoMessage). */
const Msg = { Join: 0xff01, Name: 0xff05, Chat: 0xff06, Presence: 0xff07 } as const;
const HEADER = 8;
const MAX_BODY = 0xffff;
const ROOM = "lobby";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function meta(name: string): string {
  const v = document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content;
  if (v === undefined || v === "") throw new Error(`the page has no <meta name="${name}">`);
  return v;
}

function el<T extends HTMLElement>(testId: string): T {
  const e = document.querySelector<T>(`[data-testid="${testId}"]`);
  if (e === null) throw new Error(`the page has no [data-testid=${testId}]`);
  return e;
}

function frame(messageId: number, serverId: number, body: string): Uint8Array {
  const b = encoder.encode(body);
  if (b.length > MAX_BODY) throw new RangeError(`a message is at most ${MAX_BODY} bytes`);
  const f = new Uint8Array(HEADER + b.length);
  const dv = new DataView(f.buffer);
  dv.setUint16(0, b.length, true);
  dv.setUint16(2, messageId, true);
  dv.setUint32(4, serverId, true);
  f.set(b, HEADER);
  return f;
}

/** Gathers the stream into frames: a frame may span WebSocket messages, and a message may hold several. */
class FrameSplitter {
  private buf = new Uint8Array(0);

  constructor(private readonly onFrame: (messageId: number, body: Uint8Array) => void) {}

  push(chunk: Uint8Array): void {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    let at = 0;
    while (joined.length - at >= HEADER) {
      const len = joined[at]! | (joined[at + 1]! << 8);
      if (joined.length - at < HEADER + len) break;
      this.onFrame(joined[at + 2]! | (joined[at + 3]! << 8), joined.subarray(at + HEADER, at + HEADER + len));
      at += HEADER + len;
    }
    this.buf = joined.slice(at);
  }
}

interface ChatLine {
  readonly from: string;
  readonly text: string;
}

interface Presence {
  readonly room: string;
  readonly online: readonly string[];
}

function setState(state: "connecting" | "open" | "closed", status: string): void {
  document.body.dataset.state = state;
  el("status").textContent = status;
}

function addLine(from: string, text: string): void {
  const li = document.createElement("li");
  li.dataset.testid = "line";
  li.dataset.from = from;
  const who = document.createElement("b");
  who.textContent = `${from}: `;
  li.append(who, text);
  const log = el<HTMLUListElement>("log");
  log.append(li);
  log.scrollTop = log.scrollHeight;
}

function showPresence(p: Presence): void {
  const list = el<HTMLUListElement>("online");
  list.replaceChildren(
    ...p.online.map((name) => {
      const li = document.createElement("li");
      li.dataset.testid = "player";
      li.textContent = name;
      return li;
    }),
  );
}

function connect(name: string): void {
  const serverId = Number(meta("game-server-id"));
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:${meta("game-ws-port")}${meta("game-ws-path")}`;
  setState("connecting", `connecting to ${url}`);
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const splitter = new FrameSplitter((id, body) => {
    // Bodies from the backend are JSON it built; anything unparsable is ignored, never rendered as HTML.
    try {
      if (id === Msg.Chat) {
        const line = JSON.parse(decoder.decode(body)) as ChatLine;
        addLine(String(line.from), String(line.text));
      } else if (id === Msg.Presence) {
        showPresence(JSON.parse(decoder.decode(body)) as Presence);
      } else if (id === Msg.Name) {
        el<HTMLInputElement>("name").value = decoder.decode(body);
      }
    } catch {
      /* not JSON: not one of ours */
    }
  });
  ws.onopen = () => {
    setState("open", `in ${ROOM} as ${name}`);
    // Name first: the room announces only named players.
    ws.send(frame(Msg.Name, serverId, name));
    ws.send(frame(Msg.Join, serverId, ROOM));
    el<HTMLButtonElement>("send").disabled = false;
    el<HTMLInputElement>("message").focus();
  };
  ws.onmessage = (e) => splitter.push(new Uint8Array(e.data as ArrayBuffer));
  ws.onclose = (e) => {
    setState("closed", `disconnected (${e.code}${e.reason === "" ? "" : `: ${e.reason}`})`);
    el<HTMLButtonElement>("send").disabled = true;
    el<HTMLButtonElement>("join").disabled = false;
  };
  el<HTMLFormElement>("chat").onsubmit = (e) => {
    e.preventDefault();
    const input = el<HTMLInputElement>("message");
    if (input.value === "" || ws.readyState !== WebSocket.OPEN) return;
    ws.send(frame(Msg.Chat, serverId, input.value));
    input.value = "";
  };
}

el<HTMLFormElement>("login").onsubmit = (e) => {
  e.preventDefault();
  el<HTMLButtonElement>("join").disabled = true;
  connect(el<HTMLInputElement>("name").value);
};
setState("closed", "choose a name and join");
