// The live board: follows the board's event stream and fetches the rows again when the
// board changes. The rows come from the server, escaped by its templates.
"use strict";

(function () {
  const body = document.getElementById("board-rows");
  if (!body || !window.EventSource) {
    return;
  }
  const status = document.getElementById("live-status");
  let pending = false;
  let running = false;

  function editing() {
    const active = document.activeElement;
    return active && body.contains(active) && active.closest("form") !== null;
  }

  async function refresh() {
    if (running) {
      pending = true;
      return;
    }
    if (editing()) {
      // Not under someone's fingers: once they leave the form.
      pending = true;
      return;
    }
    running = true;
    pending = false;
    try {
      const answer = await fetch(body.dataset.source, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      if (answer.redirected || !answer.ok) {
        return;
      }
      const html = await answer.text();
      const template = document.createElement("template");
      template.innerHTML = "<table><tbody>" + html + "</tbody></table>";
      const rows = template.content.querySelector("tbody").children;
      const open = new Set(
        Array.from(body.querySelectorAll("tr details[open]")).map(
          (d) => d.closest("tr").dataset.entry
        )
      );
      body.replaceChildren(...Array.from(rows));
      body.querySelectorAll("tr").forEach((row) => {
        if (open.has(row.dataset.entry)) {
          const details = row.querySelector("details");
          if (details) {
            details.open = true;
          }
        }
      });
      const count = body.querySelectorAll("tr").length;
      if (status) {
        status.textContent = count + " deltagare på tavlan";
      }
      body.dataset.updated = String(Date.now());
    } finally {
      running = false;
      if (pending) {
        setTimeout(refresh, 250);
      }
    }
  }

  body.addEventListener("focusout", () => {
    if (pending) {
      setTimeout(refresh, 0);
    }
  });

  const events = new EventSource(body.dataset.events);
  events.addEventListener("board", refresh);
  events.addEventListener("open", () => {
    body.dataset.live = "open";
  });
  events.addEventListener("error", () => {
    body.dataset.live = "closed";
  });
})();
