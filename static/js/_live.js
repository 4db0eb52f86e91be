// A live-server socket that reconnects by itself: each (re)connect uses a single-use
// ticket (fetched ahead while online, so a reconnect after a cut skips that round trip),
// says hello with the last sequence number it has, and is replayed what it missed (a
// first hello, with none, gets the room's present state and its last chat lines). Record
// messages not yet acknowledged are sent again after a reconnect with the same id, and the
// server answers with the stored event (no duplicate). With a heartbeat, the page pings
// every few seconds and drops a socket it has not heard from in two beats: a dead link
// is noticed without waiting for the page to send something.
import { api } from "./_common.js";

// Reconnect delays: the tries of the first ten seconds come at most a second apart (a
// township link's outages last seconds), later ones back off to spare the server. Each
// is jittered by ±25%.
const RETRY_MS = [250, 500, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 2000, 4000, 8000, 10000];
const TICKET_LIFE_MS = 60000;
const SPARE_REFRESH_MS = 40000; // a spare ticket is replaced before it is too old to use
const REQUEST_TIMEOUT_MS = 5000;
const CHECK_MS = 250; // a ticket or a handshake stuck on a dead link is abandoned

// Close codes after which reconnecting cannot help (4401 only once signed out; an
// expired or used ticket is simply replaced on the next attempt).
const FINAL = new Set([4400, 4403, 4404]);
const SIGNED_OUT = new Set(["signed out", "account disabled"]);
const RECORD_KINDS = new Set([
  "chat", "annotation.add", "annotation.remove", "ecg.caliper", "ecg.caliper.remove",
  "report.draft", "report.sign", "report.amend", "session.start", "session.end",
]);

export class LiveSocket {
  constructor({ ticketUrl, onFrame, onState, heartbeatMs = 0 }) {
    this.ticketUrl = ticketUrl;
    this.onFrame = onFrame || (() => {});
    this.onState = onState || (() => {});
    this.heartbeatMs = heartbeatMs;
    this.spare = null; // {grant, at}: a ticket fetched ahead of need
    this.heard = 0;
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
    clearInterval(this.beat);
    clearInterval(this.spareTimer);
    clearTimeout(this.again);
    if (this.ws) this.ws.close(1000, "page left");
  }

  async ticket() {
    const spare = this.spare;
    this.spare = null;
    if (spare && Date.now() - spare.at < TICKET_LIFE_MS - 10000) return spare;
    const at = Date.now();
    return { grant: await withTimeout(api("POST", this.ticketUrl), REQUEST_TIMEOUT_MS), at };
  }

  async fetchSpare() {
    // Only a socket with a heartbeat (the room) keeps a spare: the bell can wait.
    if (this.stopped || !this.ready || !this.heartbeatMs) return;
    if (this.spare && Date.now() - this.spare.at < SPARE_REFRESH_MS) return;
    try {
      const at = Date.now();
      this.spare = { grant: await withTimeout(api("POST", this.ticketUrl), REQUEST_TIMEOUT_MS), at };
    } catch {
      this.spare = null; // fetched again when needed
    }
  }

  async connect() {
    if (this.stopped || this.connecting || (this.ws && this.ws.readyState <= 1)) return;
    this.connecting = true;
    // After a loss the page goes on saying so until the room is back.
    if (this.state !== "offline") this.setState("connecting");
    let ticket;
    try {
      ticket = await this.ticket();
    } catch (error) {
      this.connecting = false;
      if (error.status === 401 || error.status === 403 || error.status === 404) {
        this.setState("closed", error.message);
        return;
      }
      this.scheduleReconnect();
      return;
    }
    this.connecting = false;
    const grant = ticket.grant;
    const ws = new WebSocket(grant.url);
    this.ws = ws;
    this.heard = Date.now();
    this.unspent = ticket; // a socket that never opened leaves its ticket for the next try
    ws.onopen = () => {
      this.unspent = null;
      ws.send(JSON.stringify({ type: "hello", v: 1, ticket: grant.ticket, last_seq: this.lastSeq }));
    };
    ws.onmessage = (message) => {
      this.heard = Date.now();
      this.receive(JSON.parse(message.data));
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return; // already given up on by the heartbeat
      this.lost(event.code, event.reason);
    };
    this.watch(ws);
  }

  // Until welcomed the socket must answer within the request timeout; once online, with
  // a heartbeat, within two beats and a half second. A socket that stays silent is let go
  // and a new one opened: on a cut link its close handshake would wait for the link.
  watch(ws) {
    clearInterval(this.beat);
    let pinged = Date.now();
    this.beat = setInterval(() => {
      if (this.ws !== ws) {
        clearInterval(this.beat);
        return;
      }
      if (this.ready && !this.heartbeatMs) return;
      const now = Date.now();
      const limit = this.ready ? this.heartbeatMs * 2 + 500 : REQUEST_TIMEOUT_MS;
      if (now - this.heard < limit) {
        // Ping only a quiet link: frames that arrive already prove it alive, and on a
        // lossy link every extra segment is one more a chat line can queue behind.
        const quiet = now - this.heard >= this.heartbeatMs;
        if (this.ready && ws.readyState === 1 && quiet && now - pinged >= this.heartbeatMs) {
          pinged = now;
          ws.send(JSON.stringify({ type: "ping", t: now }));
        }
        return;
      }
      this.ws = null;
      try {
        ws.close();
      } catch {
        // already closing
      }
      this.lost(0, "");
    }, CHECK_MS);
  }

  lost(code, reason) {
    this.ready = false;
    this.ws = null;
    if (this.unspent && !this.spare) this.spare = this.unspent;
    this.unspent = null;
    clearInterval(this.beat);
    if (FINAL.has(code) || SIGNED_OUT.has(reason) || this.stopped) {
      this.setState("closed", reason, code);
      return;
    }
    this.scheduleReconnect(reason, code);
  }

  scheduleReconnect(reason, code) {
    this.setState("offline", reason, code);
    const delay = RETRY_MS[Math.min(this.retry, RETRY_MS.length - 1)] * (0.75 + Math.random() / 2);
    this.retry += 1;
    clearTimeout(this.again);
    this.again = setTimeout(() => this.connect(), delay);
  }

  // The close code goes with the server's reason: the page words the code in the
  // reader's language; the reason is the protocol's English, for logs and programs.
  setState(state, reason, code) {
    this.state = state;
    this.onState(state, reason || "", code || 0);
  }

  receive(frame) {
    if (frame.type === "event") {
      if (frame.seq <= this.lastSeq) return; // already seen (replay overlap)
      this.lastSeq = frame.seq;
    } else if (frame.type === "ack") {
      this.pending.delete(frame.id);
    } else if (frame.type === "error" && frame.id) {
      this.pending.delete(frame.id);
    } else if (frame.type === "pong") {
      return; // heard: that is all a pong says
    } else if (frame.type === "replayed") {
      // A first join is sent the room's state, not its whole record: it stands at
      // last_seq even if the last events it was sent are older.
      this.lastSeq = Math.max(this.lastSeq, frame.last_seq || 0);
      this.ready = true;
      this.retry = 0;
      this.setState("online");
      if (this.heartbeatMs) {
        this.fetchSpare();
        clearInterval(this.spareTimer);
        this.spareTimer = setInterval(() => this.fetchSpare(), SPARE_REFRESH_MS / 4);
      }
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

function withTimeout(promise, ms) {
  let timer;
  const expired = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), ms);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
