// The admin page's keyboard: move between doodles, confirm, discard, relabel by typing,
// select several for a bulk decision; and the models page's cycle polling. Plain JS.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]');
  const grid = document.getElementById("grid");
  const status = document.getElementById("status");
  const box = document.getElementById("relabel");
  const input = document.getElementById("relabel-input");
  const propose = document.getElementById("propose");
  const proposeText = document.getElementById("propose-text");
  const proposeYes = document.getElementById("propose-yes");
  let proposal = null; // the refused decision, to send again as a new word

  function say(text) {
    if (status) status.textContent = text;
  }

  function cards() {
    return grid ? Array.from(grid.querySelectorAll(".card")) : [];
  }

  function focused() {
    const active = document.activeElement;
    return active && active.classList && active.classList.contains("card") ? active : null;
  }

  function columns() {
    const all = cards();
    if (all.length < 2) return 1;
    const top = all[0].offsetTop;
    const n = all.findIndex((c) => c.offsetTop !== top);
    return n === -1 ? all.length : n;
  }

  function move(from, step, extend) {
    const all = cards();
    const i = from ? all.indexOf(from) : -1;
    const next = all[Math.max(0, Math.min(all.length - 1, i + step))];
    if (!next) return;
    if (extend) {
      if (from) from.classList.add("selected");
      next.classList.add("selected");
    }
    next.focus();
  }

  // The doodles a decision is about: the selection, or the focused one.
  function targets(current) {
    const selected = cards().filter((c) => c.classList.contains("selected"));
    if (selected.length) return selected;
    return current ? [current] : [];
  }

  function nextUndecided(after) {
    const all = cards();
    const start = after ? all.indexOf(after) : -1;
    for (let i = start + 1; i < all.length; i++) {
      if (!all[i].classList.contains("decided")) return all[i];
    }
    return null;
  }

  async function decide(action, label, current, newWord, only) {
    const chosen = only || targets(current);
    if (!chosen.length) return;
    const body = { ids: chosen.map((c) => c.dataset.id), action: action };
    if (label !== undefined) body.label = label;
    if (newWord) body.new_word = true;
    say("saving " + chosen.length + " decision" + (chosen.length > 1 ? "s" : "") + "…");
    let answer;
    try {
      const response = await fetch(grid.dataset.decide || "/admin/doodles/decisions", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf ? csrf.content : "" },
        body: JSON.stringify(body),
      });
      answer = await response.json();
      const details = (answer.error && answer.error.details) || {};
      if (response.status === 422 && details.reason === "unknown_word") {
        // Not a known word: nothing was saved. Ask before proposing it as a new word.
        askToPropose(answer.error.message, { action, label, current, chosen });
        return;
      }
      if (!response.ok) {
        // All or nothing: nothing was saved; mark the doodles the server named.
        const named = (answer.error && answer.error.details) || {};
        const bad = new Set([...(named.unknown || []), ...Object.keys(named.refused || {})]);
        chosen.forEach((c) => bad.has(c.dataset.id) && c.classList.add("failed"));
        say("refused: " + ((answer.error && answer.error.message) || response.status));
        return;
      }
    } catch (err) {
      say("could not save: " + err);
      return;
    }
    let done = 0;
    for (const card of chosen) {
      const result = answer.results[card.dataset.id];
      card.classList.remove("selected");
      if (result && result.ok) {
        done++;
        card.classList.add("decided", "decided-ok");
        card.querySelector(".label").textContent =
          result.decision === "discard" ? "discarded" : result.label + " (reviewer)";
        card.querySelector(".review").textContent = "resolved";
      } else {
        card.classList.add("failed");
        card.title = result ? result.error : "not saved";
      }
    }
    say(action + ": " + done + " saved");
    const last = chosen[chosen.length - 1];
    const next = nextUndecided(last) || last;
    next.focus(); // on to the next doodle by itself
  }

  function askToPropose(message, decision) {
    proposal = decision;
    say("refused: " + message);
    proposeText.textContent = message;
    propose.hidden = false;
    proposeYes.focus();
  }

  function closePropose() {
    propose.hidden = true;
    const back = proposal && proposal.current;
    proposal = null;
    if (back) back.focus();
  }

  function openRelabel(first, current) {
    box.hidden = false;
    box.dataset.for = current.dataset.id;
    input.value = first;
    input.focus();
  }

  function closeRelabel() {
    box.hidden = true;
    const back = cards().find((c) => c.dataset.id === box.dataset.for);
    if (back) back.focus();
  }

  if (grid) {
    grid.dataset.decide = "/admin/doodles/decisions";
    const first = cards()[0];
    if (first && !document.querySelector("[autofocus]")) first.focus();

    grid.addEventListener("keydown", (event) => {
      const current = focused();
      if (!current || event.ctrlKey || event.metaKey || event.altKey) return;
      const key = event.key;
      if (key === "ArrowRight") move(current, 1, event.shiftKey);
      else if (key === "ArrowLeft") move(current, -1, event.shiftKey);
      else if (key === "ArrowDown") move(current, columns(), event.shiftKey);
      else if (key === "ArrowUp") move(current, -columns(), event.shiftKey);
      else if (key === " ") current.classList.toggle("selected");
      else if (key === "Enter") decide("confirm", undefined, current);
      else if (key === "Delete") decide("discard", undefined, current);
      else if (key === "Escape") cards().forEach((c) => c.classList.remove("selected"));
      else if (key.length === 1 && /\S/.test(key)) {
        openRelabel(key, current);
      } else return;
      event.preventDefault();
    });

    proposeYes.addEventListener("click", () => {
      const p = proposal;
      propose.hidden = true;
      proposal = null;
      if (p) decide(p.action, p.label, p.current, true, p.chosen);
    });
    propose.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        closePropose();
      }
    });

    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        closeRelabel();
      } else if (event.key === "Enter") {
        event.preventDefault();
        const label = input.value.trim();
        const current = cards().find((c) => c.dataset.id === box.dataset.for);
        box.hidden = true;
        if (label && current) decide("label", label, current);
        else closeRelabel();
      }
    });
  }

  // Models page: follow the cycles still requested or running until they finish.
  const active = Array.from(document.querySelectorAll('tr.cycle[data-active="yes"]'));
  if (active.length) {
    const timer = setInterval(async () => {
      let pending = 0;
      for (const row of active) {
        if (row.dataset.active !== "yes") continue;
        try {
          const response = await fetch(row.dataset.url, { credentials: "same-origin" });
          if (!response.ok) continue;
          const cycle = await response.json();
          row.querySelector(".cycle-status").textContent = cycle.status;
          row.querySelector(".cycle-stage").textContent = cycle.stage || "";
          row.querySelector(".cycle-summary").textContent = cycle.summary;
          const still = cycle.status === "requested" || cycle.status === "running";
          row.dataset.active = still ? "yes" : "no";
          if (still) pending++;
        } catch (err) {
          pending++;
        }
      }
      if (!pending) clearInterval(timer);
    }, 1500);
  }
})();
