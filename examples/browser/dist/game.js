// examples/browser/game.ts
var Msg = { Join: 65281, Name: 65285, Chat: 65286, Presence: 65287 };
var HEADER = 8;
var MAX_BODY = 65535;
var ROOM = "lobby";
var encoder = new TextEncoder;
var decoder = new TextDecoder;
function meta(name) {
  const v = document.querySelector(`meta[name="${name}"]`)?.content;
  if (v === undefined || v === "")
    throw new Error(`the page has no <meta name="${name}">`);
  return v;
}
function el(testId) {
  const e = document.querySelector(`[data-testid="${testId}"]`);
  if (e === null)
    throw new Error(`the page has no [data-testid=${testId}]`);
  return e;
}
function frame(messageId, serverId, body) {
  const b = encoder.encode(body);
  if (b.length > MAX_BODY)
    throw new RangeError(`a message is at most ${MAX_BODY} bytes`);
  const f = new Uint8Array(HEADER + b.length);
  const dv = new DataView(f.buffer);
  dv.setUint16(0, b.length, true);
  dv.setUint16(2, messageId, true);
  dv.setUint32(4, serverId, true);
  f.set(b, HEADER);
  return f;
}

class FrameSplitter {
  onFrame;
  buf = new Uint8Array(0);
  constructor(onFrame) {
    this.onFrame = onFrame;
  }
  push(chunk) {
    const joined = new Uint8Array(this.buf.length + chunk.length);
    joined.set(this.buf);
    joined.set(chunk, this.buf.length);
    let at = 0;
    while (joined.length - at >= HEADER) {
      const len = joined[at] | joined[at + 1] << 8;
      if (joined.length - at < HEADER + len)
        break;
      this.onFrame(joined[at + 2] | joined[at + 3] << 8, joined.subarray(at + HEADER, at + HEADER + len));
      at += HEADER + len;
    }
    this.buf = joined.slice(at);
  }
}
function setState(state, status) {
  document.body.dataset.state = state;
  el("status").textContent = status;
}
function addLine(from, text) {
  const li = document.createElement("li");
  li.dataset.testid = "line";
  li.dataset.from = from;
  const who = document.createElement("b");
  who.textContent = `${from}: `;
  li.append(who, text);
  const log = el("log");
  log.append(li);
  log.scrollTop = log.scrollHeight;
}
function showPresence(p) {
  const list = el("online");
  list.replaceChildren(...p.online.map((name) => {
    const li = document.createElement("li");
    li.dataset.testid = "player";
    li.textContent = name;
    return li;
  }));
}
function connect(name) {
  const serverId = Number(meta("game-server-id"));
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.hostname}:${meta("game-ws-port")}${meta("game-ws-path")}`;
  setState("connecting", `connecting to ${url}`);
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const splitter = new FrameSplitter((id, body) => {
    try {
      if (id === Msg.Chat) {
        const line = JSON.parse(decoder.decode(body));
        addLine(String(line.from), String(line.text));
      } else if (id === Msg.Presence) {
        showPresence(JSON.parse(decoder.decode(body)));
      } else if (id === Msg.Name) {
        el("name").value = decoder.decode(body);
      }
    } catch {}
  });
  ws.onopen = () => {
    setState("open", `in ${ROOM} as ${name}`);
    ws.send(frame(Msg.Name, serverId, name));
    ws.send(frame(Msg.Join, serverId, ROOM));
    el("send").disabled = false;
    el("message").focus();
  };
  ws.onmessage = (e) => splitter.push(new Uint8Array(e.data));
  ws.onclose = (e) => {
    setState("closed", `disconnected (${e.code}${e.reason === "" ? "" : `: ${e.reason}`})`);
    el("send").disabled = true;
    el("join").disabled = false;
  };
  el("chat").onsubmit = (e) => {
    e.preventDefault();
    const input = el("message");
    if (input.value === "" || ws.readyState !== WebSocket.OPEN)
      return;
    ws.send(frame(Msg.Chat, serverId, input.value));
    input.value = "";
  };
}
el("login").onsubmit = (e) => {
  e.preventDefault();
  el("join").disabled = true;
  connect(el("name").value);
};
setState("closed", "choose a name and join");
