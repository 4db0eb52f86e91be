// The header bell: live notifications for the signed-in user (reminders, signed reports,
// critical findings) pushed by the web app and the jobs over the live server's /live/user
// socket. The bell itself is rendered by base.html with the unread count of the page load;
// this raises the count as notifications arrive and lists them under the bell.
import { LiveSocket } from "./_live.js";

const bell = document.getElementById("notification-bell");
if (bell && bell.dataset.ticketUrl) {
  const badge = bell.querySelector("[data-unread-count]");
  const list = document.getElementById("live-bell-list");
  let unread = Number(bell.dataset.unread || 0);
  const socket = new LiveSocket({
    ticketUrl: bell.dataset.ticketUrl,
    onState: (state) => {
      bell.dataset.state = state;
    },
    onFrame: (frame) => {
      if (frame.type !== "notification") return;
      unread += 1;
      bell.dataset.unread = String(unread);
      bell.classList.add("has-unread");
      badge.textContent = String(unread);
      badge.hidden = false;
      const item = document.createElement("li");
      item.dataset.kind = frame.kind || "";
      item.className = "unread";
      const link = document.createElement("a");
      link.href = frame.link || bell.href;
      const title = document.createElement("strong");
      title.textContent = frame.title || frame.kind;
      link.append(title);
      item.append(link);
      list.querySelector("[data-empty]")?.remove();
      list.prepend(item);
    },
  });
  socket.start();
  window.telemedBell = socket;
}
