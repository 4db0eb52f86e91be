// A live-server socket that reconnects by itself: each (re)connect asks the web app for a
// fresh single-use ticket, says hello with the last sequence number it has, and is
// replayed what it missed. Record messages not yet acknowledged are sent again after a
// reconnect with the same id, and the server answers with the stored event (no duplicate).
import { api } from "./_common.js";

// Close codes after which reconnecting cannot help (4401 only once signed out; an
// expired or used ticket is simply replaced on the next attempt).
const FINAL = new Set([4400, 4403, 4404]);
const SIGNED_OUT = new Set(["signed out", "account disabled"]);
const RECORD_KINDS = new Set([
  "chat", "annotation.add", "annotation.remove", "ecg.caliper", "ecg.caliper.remove",
  "report.draft", "report.sign", "report.amend", "session.start", "session.end",
]);

export class LiveSocket {
  constructor({ ticketUrl, onFrame, onState }) {
    this.ticketUrl = ticketUrl;
    this.onFrame = onFrame || (() => {});
    this.onState = onState || (() => {});
    this.lastSeq = 0;
    this.pending = new Map(); // id -> {kind, body}: record messages awaiting their ack
    this.ws = null;
    this.ready = false;
    this.retry = 0;
    this.stopped = false;
    this.counter = 0;
  }

  start() {
    this.connect();
    window.addEventListener("online", () => this.connect());
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close(1000, "page left");
  }

  async connect() {
    if (this.stopped || (this.ws && this.ws.readyState <= 1)) return;
    this.setState("connecting");
    let grant;
    try {
      grant = await api("POST", this.ticketUrl);
    } catch (error) {
      if (error.status === 401 || error.status === 403 || error.status === 404) {
        this.setState("closed", error.message);
        return;
      }
      this.scheduleReconnect();
      return;
    }
    const ws = new WebSocket(grant.url);
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "hello", v: 1, ticket: grant.ticket, last_seq: this.lastSeq }));
    };
    ws.onmessage = (message) => this.receive(JSON.parse(message.data));
    ws.onclose = (event) => {
      this.ready = false;
      if (this.ws === ws) this.ws = null;
      if (FINAL.has(event.code) || SIGNED_OUT.has(event.reason) || this.stopped) {
        this.setState("closed", event.reason);
        return;
      }
      this.scheduleReconnect(event.reason);
    };
  }

  scheduleReconnect(reason) {
    this.setState("offline", reason);
    const delay = Math.min(10000, 500 * 2 ** this.retry) * (0.75 + Math.random() / 2);
    this.retry = Math.min(this.retry + 1, 5);
    setTimeout(() => this.connect(), delay);
  }

  setState(state, reason) {
    this.state = state;
    this.onState(state, reason || "");
  }

  receive(frame) {
    if (frame.type === "event") {
      if (frame.seq <= this.lastSeq) return; // already seen (replay overlap)
      this.lastSeq = frame.seq;
    } else if (frame.type === "ack") {
      this.pending.delete(frame.id);
    } else if (frame.type === "error" && frame.id) {
      this.pending.delete(frame.id);
    } else if (frame.type === "replayed") {
      this.ready = true;
      this.retry = 0;
      this.setState("online");
      for (const [id, message] of this.pending) this.transmit(id, message.kind, message.body);
    } else if (frame.type === "welcome" && frame.room === undefined) {
      this.ready = true;
      this.retry = 0;
      this.setState("online");
    }
    this.onFrame(frame);
  }

  send(kind, body = {}) {
    const id = `${Date.now().toString(36)}-${(this.counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    if (RECORD_KINDS.has(kind)) this.pending.set(id, { kind, body });
    if (this.ready) this.transmit(id, kind, body);
    return id;
  }

  transmit(id, kind, body) {
    if (this.ws && this.ws.readyState === 1) {
      this.ws.send(JSON.stringify({ type: "send", id, kind, body }));
    }
  }
}
