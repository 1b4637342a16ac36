/* Rename a recording in place (the recordings list's cards, the playback page's title):
 * PATCH /api/recordings/{id}/ {name}. Only shown to roles that may change recordings. */
import {csrfToken as csrf} from "../petcam/csrf.js";
import {fileName, recordingTitle} from "./title.js";

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;  // never innerHTML: names are user text
  return e;
}

// The ✎ button after `nameEl` in `row`; onRenamed(rec) after a saved change.
export function renameButton(rec, row, nameEl, onRenamed) {
  const button = el("button", {"type": "button", "class": "rename", "data-testid": "recording-rename",
                               "title": gettext("Rename"), "aria-label": interpolate(gettext("Rename %(title)s"), {title: recordingTitle(rec)}, true)}, "✎");
  button.addEventListener("click", () => editName(rec, row, nameEl, button, onRenamed));
  return button;
}

// Rename in place: the name becomes a text box; Enter or leaving it saves (PATCH name),
// Escape cancels, an empty name goes back to the automatic title.
function editName(rec, row, nameEl, button, onRenamed) {
  const input = el("input", {"type": "text", "class": "name-edit", "maxlength": "100",
                             "data-testid": "recording-name-input", "aria-label": gettext("Recording name"),
                             "placeholder": recordingTitle({...rec, name: ""})});
  input.value = rec.name || "";
  const error = el("div", {"class": "error name-error", "data-testid": "recording-name-error", "role": "alert"});
  error.hidden = true;
  row.replaceChildren(input);
  row.after(error);
  input.focus();
  input.select();
  let done = false, saving = false;
  const finish = () => {
    done = true;
    error.remove();
    nameEl.textContent = recordingTitle(rec);
    nameEl.title = recordingTitle(rec) + " (" + fileName(rec) + ")";
    button.setAttribute("aria-label", interpolate(gettext("Rename %(title)s"), {title: recordingTitle(rec)}, true));
    row.replaceChildren(nameEl, button);
    button.focus();
  };
  const save = async () => {
    if (done || saving) return;
    if (input.value.trim() === (rec.name || "")) { finish(); return; }
    saving = true;
    input.readOnly = true;
    let resp, data = {};
    try {
      resp = await fetch("/api/recordings/" + rec.id + "/", {
        method: "PATCH", credentials: "same-origin",
        headers: {"X-CSRFToken": csrf(), "Content-Type": "application/json"},
        body: JSON.stringify({name: input.value})});
      try { data = await resp.json(); } catch (e) { /* not JSON */ }
    } catch (e) { data = {detail: e.message}; }
    input.readOnly = false;
    saving = false;
    if (resp && resp.ok) { rec.name = data.name; finish(); if (onRenamed) onRenamed(rec); return; }
    error.textContent = interpolate(gettext("Not renamed: %(reason)s"), {reason: data.detail || (resp && resp.statusText) || gettext("network error")}, true);
    error.hidden = false;
    input.focus();
  };
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); save(); }
    else if (ev.key === "Escape") { ev.preventDefault(); finish(); }
  });
  input.addEventListener("blur", () => { if (error.hidden) save(); });
}
