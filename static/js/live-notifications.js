// The header bell: live notifications for the signed-in user (reminders, signed reports,
// critical findings) pushed by the web app and the jobs over the live server's /live/user
// socket. Included by templates/_live_notifications.html.
import { LiveSocket } from "./_live.js";

const bell = document.getElementById("live-bell");
if (bell) {
  const count = document.getElementById("live-bell-count");
  const list = document.getElementById("live-bell-list");
  let unread = 0;
  bell.addEventListener("click", (event) => {
    event.preventDefault();
    list.hidden = !list.hidden;
    unread = 0;
    count.hidden = true;
  });
  const socket = new LiveSocket({
    ticketUrl: bell.dataset.ticketUrl,
    onState: (state) => {
      bell.dataset.state = state;
    },
    onFrame: (frame) => {
      if (frame.type !== "notification") return;
      unread += 1;
      count.textContent = String(unread);
      count.hidden = false;
      const item = document.createElement("li");
      item.dataset.kind = frame.kind || "";
      const link = document.createElement("a");
      link.href = frame.link || "#";
      link.textContent = frame.title || frame.kind;
      item.append(link);
      list.prepend(item);
    },
  });
  socket.start();
  window.telemedBell = socket;
}
