// The consult room: participants, chat, the shared image and ECG views (synced viewport,
// annotations, calipers), the video call (WebRTC, signalled through the room) and the
// report editor. Everything that belongs to the record arrives as numbered events; the
// page rebuilds its state from them, so a reconnect (replay) or a reload shows the same.
// A first join is sent only the events that make up the room's present state and its
// last chat lines; older lines are fetched on demand ("Earlier messages").
import { api, t } from "./_common.js";
import { LiveSocket } from "./_live.js";

const root = document.getElementById("consult-room");
const role = root.dataset.role;
const media = JSON.parse(root.dataset.media || "{}");
const $ = (id) => document.getElementById(id);

// A status shown by its word in the page's language; its code stays in data-status.
function showStatus(id, kind, code) {
  const element = $(id);
  element.dataset.status = code;
  element.textContent = t(`${kind}_${code}`);
  if (element.classList.contains("tag")) element.className = `tag tag-${code}`;
}

const state = {
  conn: null,
  participants: new Map(), // conn -> {conn, user, name, role}
  marks: new Map(), // mark id -> annotation body
  calipers: new Map(),
  viewport: { target: "image", frame: 0, zoom: 1, pan: [0, 0] },
  tool: "arrow",
  signed: null,
};

// -- the socket ---------------------------------------------------------------------------
const linkState = $("link-state");
const socket = new LiveSocket({
  ticketUrl: root.dataset.ticketUrl,
  heartbeatMs: Number(root.dataset.heartbeatMs) || 0,
  onState: (s, serverReason, code) => {
    const worded = t(`close_${code}`);
    const reason = worded === `close_${code}` ? serverReason : worded;
    linkState.dataset.state = s;
    linkState.textContent =
      s === "online" ? t("online")
        : s === "connecting" ? t("connecting")
          : s === "closed" ? t("closed", { reason })
            : reason ? t("offline_because", { reason }) : t("offline");
  },
  onFrame: handle,
});
window.telemedRoom = { socket, state };
socket.start();

function handle(frame) {
  switch (frame.type) {
    case "welcome":
      state.conn = frame.conn;
      break;
    case "replayed":
      if (frame.state) showEarlier(frame.oldest_chat_seq, frame.earlier_chat);
      // Presence after a (re)connect: ask who is here now rather than trust old joins.
      state.participants.clear();
      socket.send("presence.who");
      renderParticipants();
      break;
    case "presence":
      for (const who of frame.here) state.participants.set(who.conn, who);
      renderParticipants();
      break;
    case "event":
      applyEvent(frame);
      break;
    case "relay":
      applyRelay(frame);
      break;
    case "error":
      $("report-state").textContent = `${frame.code}: ${frame.message}`;
      break;
  }
}

function applyEvent(event) {
  const body = event.body || {};
  switch (event.kind) {
    case "presence.join":
      state.participants.set(body.conn, body);
      renderParticipants();
      break;
    case "presence.leave":
      state.participants.delete(body.conn);
      renderParticipants();
      break;
    case "chat":
      addChat(event);
      break;
    case "annotation.add":
      state.marks.set(body.mark, { ...body, by: event.sender_name });
      drawImage();
      break;
    case "annotation.remove":
      state.marks.delete(body.mark);
      drawImage();
      break;
    case "ecg.caliper":
      state.calipers.set(body.mark, body);
      drawEcg();
      break;
    case "ecg.caliper.remove":
      state.calipers.delete(body.mark);
      drawEcg();
      break;
    case "report.draft":
    case "report.amend":
      fillReport(body);
      $("report-state").textContent = t("draft_saved", { version: body.version });
      $("signed-report").hidden = state.signed === null;
      setReportEditable(role === "specialist");
      break;
    case "report.signed":
      state.signed = body;
      fillReport(body);
      showSigned(body);
      setReportEditable(false);
      $("report-state").textContent = t("signed");
      $("report-state").dataset.signed = "1";
      showStatus("case-status", "case", "reported");
      break;
    case "session.started":
      showStatus("session-status", "session", "live");
      $("session-start")?.setAttribute("hidden", "");
      showStatus("case-status", "case", "in_session");
      break;
    case "session.ended":
      showStatus("session-status", "session", "ended");
      break;
  }
}

// -- the time to the seat's start --------------------------------------------------------
// Counted from the server's "now" at page load (the server's clock is the one that counts).
const startTime = $("start-time");
if (startTime) {
  const startsAt = Date.parse(startTime.dataset.startsAt);
  const offset = Date.parse(startTime.dataset.now) - Date.now();
  const tick = () => {
    const minutes = Math.round((startsAt - (Date.now() + offset)) / 60000);
    $("time-to-start").textContent = minutes > 0 ? t("starts_in", { minutes })
      : minutes < 0 ? t("started_ago", { minutes: -minutes }) : t("starts_now");
  };
  setInterval(tick, 30000);
}

// -- participants and chat ---------------------------------------------------------------
function renderParticipants() {
  const list = $("participants");
  list.replaceChildren();
  const seen = new Set();
  for (const who of state.participants.values()) {
    const key = `${who.user}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const item = document.createElement("li");
    item.dataset.user = who.user;
    item.dataset.role = who.role;
    item.textContent = `${who.name} (${t(`role_${who.role}`)})`;
    list.append(item);
  }
}

const shownChat = new Set(); // sequence numbers of the chat lines on the page

function chatLine(event) {
  shownChat.add(event.seq);
  const item = document.createElement("li");
  item.dataset.seq = event.seq;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = event.sender_name || "";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = event.body.text;
  item.append(who, text);
  return item;
}

function addChat(event) {
  if (shownChat.has(event.seq)) return;
  const item = chatLine(event);
  $("chat-log").append(item);
  item.scrollIntoView({ block: "nearest" });
}

// Joining brings the last chat lines only; older ones come a page at a time on demand.
const earlier = $("chat-earlier");
let oldestChat = null;

function showEarlier(oldest, more) {
  if (oldest != null && (oldestChat === null || oldest < oldestChat)) oldestChat = oldest;
  earlier.hidden = !more;
}

earlier.addEventListener("click", async () => {
  if (earlier.disabled) return;
  earlier.disabled = true;
  const note = $("chat-earlier-state");
  note.textContent = t("loading");
  try {
    const query = oldestChat === null ? "" : `?before=${oldestChat}`;
    const page = await api("GET", `${root.dataset.chatUrl}${query}`);
    const log = $("chat-log");
    const keep = log.scrollHeight - log.scrollTop; // the lines in view stay in view
    const lines = document.createDocumentFragment();
    for (const event of page.events) if (!shownChat.has(event.seq)) lines.append(chatLine(event));
    log.prepend(lines);
    log.scrollTop = log.scrollHeight - keep;
    note.textContent = "";
    if (page.oldest_seq == null) earlier.hidden = true;
    else showEarlier(page.oldest_seq, page.more);
  } catch (error) {
    note.textContent = t("earlier_failed", { reason: error.message });
  } finally {
    earlier.disabled = false;
  }
});

const chatForm = $("chat-form");
if (chatForm) {
  chatForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("chat-input");
    const text = input.value.trim();
    if (!text) return;
    socket.send("chat", { text });
    input.value = "";
  });
}

// -- the image view: any viewer can stand here; marks live in image coordinates ----------
const canvas = $("image-canvas");
const ctx = canvas.getContext("2d");
const images = media.images || [];
const loaded = new Map();
$("image-note").textContent = images.length
  ? t("frames", { count: images.length })
  : t("no_frames");

function frameImage(frame) {
  const info = images[frame];
  if (!info) return null;
  if (!loaded.has(frame)) {
    const img = new Image();
    img.onload = drawImage;
    img.src = info.url;
    loaded.set(frame, img);
  }
  const img = loaded.get(frame);
  return img.complete && img.naturalWidth ? img : null;
}

// Millimetres per canvas pixel: the frame is drawn stretched to the canvas width.
function pixelSpacing() {
  const info = images[state.viewport.frame || 0];
  if (!info || !info.pixel_spacing_mm) return null;
  return info.pixel_spacing_mm * (info.columns || canvas.width) / canvas.width;
}

function drawImage() {
  const vp = state.viewport;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.setTransform(vp.zoom, 0, 0, vp.zoom, vp.pan[0], vp.pan[1]);
  const img = frameImage(vp.frame || 0);
  if (img) {
    ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  } else {
    ctx.strokeStyle = "#333";
    for (let x = 0; x <= canvas.width; x += 32) {
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, canvas.height); ctx.stroke();
      ctx.beginPath(); ctx.moveTo(0, x); ctx.lineTo(canvas.width, x); ctx.stroke();
    }
  }
  for (const mark of state.marks.values()) {
    if (mark.target !== "image" || (mark.frame || 0) !== (vp.frame || 0)) continue;
    drawMark(mark);
  }
}

function drawMark(mark) {
  const [[x0, y0], [x1, y1]] = mark.points;
  ctx.strokeStyle = "#ffdd00";
  ctx.fillStyle = "#ffdd00";
  ctx.lineWidth = 2 / state.viewport.zoom;
  ctx.beginPath();
  if (mark.shape === "ellipse") {
    ctx.ellipse((x0 + x1) / 2, (y0 + y1) / 2, Math.abs(x1 - x0) / 2 || 1, Math.abs(y1 - y0) / 2 || 1, 0, 0, 2 * Math.PI);
    ctx.stroke();
  } else {
    ctx.moveTo(x0, y0);
    ctx.lineTo(x1, y1);
    ctx.stroke();
    if (mark.shape === "arrow") {
      const a = Math.atan2(y1 - y0, x1 - x0);
      ctx.beginPath();
      ctx.moveTo(x1, y1);
      ctx.lineTo(x1 - 12 * Math.cos(a - 0.4), y1 - 12 * Math.sin(a - 0.4));
      ctx.lineTo(x1 - 12 * Math.cos(a + 0.4), y1 - 12 * Math.sin(a + 0.4));
      ctx.fill();
    }
  }
  const label = mark.shape === "length" ? (mark.mm != null ? `${mark.mm} mm` : `${Math.round(Math.hypot(x1 - x0, y1 - y0))} px`) : mark.label || "";
  if (label) {
    ctx.font = `${14 / state.viewport.zoom}px sans-serif`;
    ctx.fillText(label, x1 + 4, y1 - 4);
  }
}

function toImage(event) {
  const rect = canvas.getBoundingClientRect();
  const sx = ((event.clientX - rect.left) * canvas.width) / rect.width;
  const sy = ((event.clientY - rect.top) * canvas.height) / rect.height;
  const vp = state.viewport;
  return [(sx - vp.pan[0]) / vp.zoom, (sy - vp.pan[1]) / vp.zoom];
}

let dragStart = null;
if (role !== "observer") {
  for (const button of document.querySelectorAll("#image-tools [data-tool]")) {
    button.addEventListener("click", () => {
      state.tool = button.dataset.tool;
      for (const b of document.querySelectorAll("#image-tools [data-tool]")) b.setAttribute("aria-pressed", String(b === button));
    });
  }
  canvas.addEventListener("pointerdown", (e) => { dragStart = toImage(e); });
  canvas.addEventListener("pointerup", (e) => {
    if (!dragStart) return;
    const end = toImage(e);
    const start = dragStart;
    dragStart = null;
    const body = {
      mark: `m${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
      target: "image",
      frame: state.viewport.frame || 0,
      shape: state.tool,
      points: [start, end],
    };
    const spacing = pixelSpacing();
    if (state.tool === "length" && spacing) body.mm = Math.hypot(end[0] - start[0], end[1] - start[1]) * spacing;
    socket.send("annotation.add", body);
  });
  const sendViewport = () => socket.send("viewport", state.viewport);
  $("zoom-in").addEventListener("click", () => { state.viewport.zoom = Math.min(50, state.viewport.zoom * 1.25); drawImage(); sendViewport(); });
  $("zoom-out").addEventListener("click", () => { state.viewport.zoom = Math.max(0.05, state.viewport.zoom / 1.25); drawImage(); sendViewport(); });
  // The field counts frames from 1, as the reader does; the viewport keeps the index.
  $("frame").max = String(Math.max(1, images.length));
  $("frame").addEventListener("change", (e) => {
    const last = Math.max(0, images.length - 1);
    state.viewport.frame = Math.min(last, Math.max(0, (Number(e.target.value) || 1) - 1));
    e.target.value = String(state.viewport.frame + 1);
    drawImage();
    sendViewport();
  });
}

function applyRelay(frame) {
  if (frame.kind === "viewport") {
    if (!$("follow").checked) return;
    if (frame.body.target === "image") {
      state.viewport = { zoom: 1, pan: [0, 0], frame: 0, ...frame.body };
      $("frame").value = String((state.viewport.frame || 0) + 1);
      drawImage();
    }
  } else if (frame.kind.startsWith("signal.")) {
    onSignal(frame);
  }
}

// -- the ECG view: 25 mm/s on a 3 px/mm grid; calipers in milliseconds --------------------
const ecg = $("ecg-canvas");
const ectx = ecg.getContext("2d");
const PX_PER_MM = 3;
const msToX = (ms) => (ms / 1000) * 25 * PX_PER_MM;
const xToMs = (x) => (x / PX_PER_MM / 25) * 1000;
let ecgImage = null;
if (media.ecg && media.ecg.url) {
  ecgImage = new Image();
  ecgImage.onload = drawEcg;
  ecgImage.src = media.ecg.url;
}

function drawEcg() {
  ectx.clearRect(0, 0, ecg.width, ecg.height);
  if (ecgImage && ecgImage.complete && ecgImage.naturalWidth) {
    ectx.drawImage(ecgImage, 0, 0, ecg.width, ecg.height);
  } else {
    for (let x = 0; x <= ecg.width; x += PX_PER_MM) {
      ectx.strokeStyle = x % (5 * PX_PER_MM) === 0 ? "#f3a0a0" : "#fbdcdc";
      ectx.beginPath(); ectx.moveTo(x, 0); ectx.lineTo(x, ecg.height); ectx.stroke();
    }
    for (let y = 0; y <= ecg.height; y += PX_PER_MM) {
      ectx.strokeStyle = y % (5 * PX_PER_MM) === 0 ? "#f3a0a0" : "#fbdcdc";
      ectx.beginPath(); ectx.moveTo(0, y); ectx.lineTo(ecg.width, y); ectx.stroke();
    }
  }
  const list = $("calipers");
  list.replaceChildren();
  for (const c of state.calipers.values()) {
    ectx.strokeStyle = "#1144cc";
    ectx.lineWidth = 2;
    for (const ms of [c.start_ms, c.end_ms]) {
      ectx.beginPath(); ectx.moveTo(msToX(ms), 0); ectx.lineTo(msToX(ms), ecg.height); ectx.stroke();
    }
    const item = document.createElement("li");
    item.dataset.mark = c.mark;
    item.textContent = `${c.lead || ""} ${c.interval_ms} ms${c.rate_bpm ? ` (${c.rate_bpm} bpm)` : ""}`;
    list.append(item);
  }
}

let ecgStart = null;
if (role !== "observer") {
  const ecgX = (e) => ((e.clientX - ecg.getBoundingClientRect().left) * ecg.width) / ecg.getBoundingClientRect().width;
  ecg.addEventListener("pointerdown", (e) => { ecgStart = ecgX(e); });
  ecg.addEventListener("pointerup", (e) => {
    if (ecgStart === null) return;
    const a = xToMs(Math.min(ecgStart, ecgX(e)));
    const b = xToMs(Math.max(ecgStart, ecgX(e)));
    ecgStart = null;
    socket.send("ecg.caliper", { mark: `c${Date.now().toString(36)}`, lead: "II", start_ms: Math.round(a), end_ms: Math.round(b) });
  });
}

// -- the report ---------------------------------------------------------------------------
const form = $("report-form");
const FIELDS = ["findings", "impression", "advice", "disposition", "follow_up_date"];

function fillReport(body) {
  for (const name of FIELDS) {
    const input = form.elements[name];
    if (input && input !== document.activeElement && name in body) input.value = body[name] || "";
  }
}

function setReportEditable(editable) {
  for (const name of FIELDS) {
    const input = form.elements[name];
    if (!input) continue;
    if (input.tagName === "SELECT") input.disabled = !editable;
    else input.readOnly = !editable;
  }
  const sign = $("report-sign");
  if (sign) sign.disabled = !editable;
}

function showSigned(body) {
  const box = $("signed-report");
  box.hidden = false;
  box.replaceChildren();
  const title = document.createElement("h3");
  title.textContent = t("signed_title", { version: body.version });
  box.append(title);
  for (const name of ["findings", "impression", "advice", "disposition", "follow_up_date"]) {
    if (!body[name]) continue;
    const p = document.createElement("p");
    p.dataset.field = name;
    // A disposition is a code: the page says it in words.
    const value = name === "disposition" ? t(`disposition_${body[name]}`) : body[name];
    p.textContent = `${t(name)}: ${value}`;
    box.append(p);
  }
  if (body.referral) {
    const link = document.createElement("a");
    link.href = `/referrals/${body.referral}`;
    link.dataset.referral = String(body.referral);
    link.textContent = t("referral_opened", { referral: body.referral });
    const p = document.createElement("p");
    p.append(link);
    box.append(p);
  }
}

if (role === "specialist") {
  let timer = null;
  const changed = {};
  const flush = () => {
    timer = null;
    if (!Object.keys(changed).length) return;
    socket.send("report.draft", { ...changed });
    for (const k of Object.keys(changed)) delete changed[k];
  };
  for (const name of FIELDS) {
    const input = form.elements[name];
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => {
      changed[name] = input.value;
      // A follow-up is saved with its date: the two go together.
      if (name === "disposition" || name === "follow_up_date") {
        changed.disposition = form.elements.disposition.value;
        changed.follow_up_date = form.elements.follow_up_date.value;
      }
      clearTimeout(timer);
      timer = setTimeout(flush, 600);
    });
  }
  // Signing is final: ask first. Without the script the button opens the confirmation page.
  const dialog = $("sign-dialog");
  $("report-sign").addEventListener("click", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    flush();
    $("sign-dialog-summary").textContent = form.elements.impression.value;
    dialog.returnValue = "";
    dialog.showModal();
  });
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "sign") socket.send("report.sign");
  });
  $("session-start").addEventListener("click", () => socket.send("session.start"));
  $("session-end").addEventListener("click", () => socket.send("session.end"));
}

// -- the video call: WebRTC peer to peer, offer/answer/ICE relayed to the addressed peer --
let pc = null;
let peerConn = null;
const callState = $("call-state");

function otherParticipant() {
  for (const who of state.participants.values()) {
    if (who.conn !== state.conn && who.role !== "observer") return who.conn;
  }
  return null;
}

async function ensurePeer(conn) {
  peerConn = conn;
  if (pc) return pc;
  pc = new RTCPeerConnection({ iceServers: JSON.parse(root.dataset.iceServers || "[]") });
  pc.onicecandidate = (e) => {
    if (e.candidate) socket.send("signal.ice", { to: peerConn, candidate: e.candidate.toJSON() });
  };
  pc.ontrack = (e) => { $("remote-video").srcObject = e.streams[0]; };
  pc.onconnectionstatechange = () => {
    // The connection's state is a WebRTC code: the page says it in words.
    const state = pc ? t(`call_${pc.connectionState}`) : t("call_ended");
    callState.textContent = t("call_state", { state });
    callState.dataset.state = pc ? pc.connectionState : "ended";
  };
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  $("local-video").srcObject = stream;
  for (const track of stream.getTracks()) pc.addTrack(track, stream);
  return pc;
}

function hangup() {
  if (pc) {
    for (const sender of pc.getSenders()) if (sender.track) sender.track.stop();
    pc.close();
  }
  pc = null;
  callState.textContent = t("no_call");
  callState.dataset.state = "ended";
}

async function onSignal(frame) {
  const body = frame.body;
  try {
    if (frame.kind === "signal.offer") {
      const peer = await ensurePeer(frame.from);
      await peer.setRemoteDescription({ type: "offer", sdp: body.sdp });
      const answer = await peer.createAnswer();
      await peer.setLocalDescription(answer);
      socket.send("signal.answer", { to: frame.from, sdp: answer.sdp });
    } else if (frame.kind === "signal.answer" && pc) {
      await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
    } else if (frame.kind === "signal.ice" && pc && body.candidate) {
      await pc.addIceCandidate(body.candidate);
    } else if (frame.kind === "signal.hangup") {
      hangup();
    }
  } catch (error) {
    callState.textContent = t("call_error", { reason: error.message });
  }
}

if ($("call-start")) {
  $("call-start").addEventListener("click", async () => {
    const conn = otherParticipant();
    if (!conn) { callState.textContent = t("nobody_to_call"); return; }
    const peer = await ensurePeer(conn);
    const offer = await peer.createOffer();
    await peer.setLocalDescription(offer);
    socket.send("signal.offer", { to: conn, sdp: offer.sdp });
    callState.textContent = t("calling");
  });
  $("call-hangup").addEventListener("click", () => {
    if (peerConn) socket.send("signal.hangup", { to: peerConn });
    hangup();
  });
}

drawImage();
drawEcg();
setReportEditable(role === "specialist");
