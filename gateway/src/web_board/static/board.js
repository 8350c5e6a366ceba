// The live pages: the board's rows and the meeting's agenda follow the board's event stream
// and are fetched again when the board changes. What is fetched comes from the server,
// escaped by its templates; the page is never reloaded.
"use strict";

(function () {
  const body = document.querySelector("[data-events]");
  if (!body || !window.EventSource) {
    return;
  }
  const status = document.getElementById("live-status");
  const noun = body.tagName === "TBODY" ? " deltagare på tavlan" : " deltagare på dagordningen";
  let pending = false;
  let running = false;

  function editing() {
    const active = document.activeElement;
    return active && body.contains(active) && active.closest("form") !== null;
  }

  // The new children: the rows of a fragment, or the same element of a whole page.
  function children(html) {
    if (body.dataset.extract === "page") {
      const page = new DOMParser().parseFromString(html, "text/html");
      const same = page.getElementById(body.id);
      return same ? Array.from(same.children) : null;
    }
    const template = document.createElement("template");
    template.innerHTML = "<table><tbody>" + html + "</tbody></table>";
    return Array.from(template.content.querySelector("tbody").children);
  }

  async function refresh() {
    if (running || editing()) {
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
      const fresh = children(await answer.text());
      if (fresh === null) {
        return;
      }
      if (editing()) {
        // Someone started typing while the fetch was under way: their text stays.
        pending = true;
        return;
      }
      const open = new Set(
        Array.from(body.querySelectorAll("details[open]")).map(
          (d) => d.closest("[data-entry]") && d.closest("[data-entry]").dataset.entry
        )
      );
      body.replaceChildren(...fresh);
      body.querySelectorAll("[data-entry]").forEach((row) => {
        const details = row.querySelector("details");
        if (details && open.has(row.dataset.entry)) {
          details.open = true;
        }
      });
      if (status) {
        status.textContent = body.children.length + noun;
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
