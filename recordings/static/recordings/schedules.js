/* The recording schedules page (templates/recording_schedules.html): one form to add or
 * edit a camera's schedule (POST / PATCH /api/cameras/{camera}/recording-schedules/[id/]),
 * a button to turn one off or on (PATCH {enabled}) and one to delete it. The form says
 * the schedule back in words as it is filled ("Record continuously: weekdays 08:00–18:00,
 * in 10-minute files"), like the list does (recordings/schedule_fields.py: describe). */
import {csrfToken as csrf} from "../petcam/csrf.js";
import {formZone} from "../petcam/zone.js";

const schedules = JSON.parse(document.getElementById("schedules-data").textContent);
const form = document.getElementById("schedule-form");
const actionError = document.getElementById("sch-status-error");
const WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"], WEEKEND = ["sat", "sun"];
let editing = null;  // the schedule being edited, or null for a new one

function url(camera, id) {
  return "/api/cameras/" + encodeURIComponent(camera) + "/recording-schedules/" + (id ? id + "/" : "");
}

async function send(method, target, data, errorEl) {
  errorEl.hidden = true;
  const resp = await fetch(target, {method, credentials: "same-origin",
                                    headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
                                    body: data ? JSON.stringify(data) : undefined});
  if (resp.ok) { window.location.reload(); return; }
  let text = interpolate(gettext("Could not save (%(status)s)."), {status: resp.status}, true);
  try { text = (await resp.json()).detail || text; } catch { /* not JSON */ }
  errorEl.textContent = text;
  errorEl.hidden = false;
}

function find(id) { return schedules.find((s) => String(s.id) === String(id)); }

document.getElementById("schedules").addEventListener("click", (ev) => {
  const button = ev.target.closest("button[data-action]");
  if (!button) return;
  const row = button.closest("[data-testid=schedule-row]");
  const schedule = row && find(row.dataset.id);
  if (button.dataset.action === "add") openForm(button.dataset.camera, null);
  else if (button.dataset.action === "edit") openForm(schedule.camera, schedule);
  else if (button.dataset.action === "toggle") {
    send("PATCH", url(schedule.camera, schedule.id), {enabled: !schedule.enabled}, actionError);
  } else if (button.dataset.action === "delete" &&
             confirm(gettext("Delete this schedule? Its recordings stay."))) {
    send("DELETE", url(schedule.camera, schedule.id), null, actionError);
  }
});

// ---- the form ----------------------------------------------------------------------------

function field(name) { return form.elements.namedItem(name); }
function dayBoxes() { return [...form.querySelectorAll("input[name=day]")]; }

function daysInWords(days) {
  if (days.length === 7) return gettext("every day");
  if (days.join() === WEEKDAYS.join()) return gettext("weekdays");
  if (days.join() === WEEKEND.join()) return gettext("weekends");
  return dayBoxes().filter((b) => days.includes(b.value)).map((b) => b.parentElement.textContent.trim()).join(", ");
}

function preview() {
  const days = dayBoxes().filter((b) => b.checked).map((b) => b.value);
  const start = field("start").value, end = field("end").value;
  const minutes = parseInt(field("segment_minutes").value, 10);
  const out = document.getElementById("sch-preview");
  if (!days.length || !start || !end || !(minutes > 0)) { out.textContent = ""; return; }
  let window = start + "–" + end;
  if (start === end) {
    window = start === "00:00" ? gettext("all day")
      : interpolate(gettext("for 24 hours from %(start)s"), {start: start}, true);
  } else if (end < start) window = interpolate(gettext("%(window)s (overnight)"), {window: window}, true);
  out.textContent = interpolate(ngettext(
    "Record continuously: %(days)s %(window)s, in %(minutes)s-minute files",
    "Record continuously: %(days)s %(window)s, in %(minutes)s-minute files", minutes),
    {days: daysInWords(days), window: window, minutes: minutes}, true);
}

function openForm(camera, schedule) {
  editing = schedule;
  form.hidden = false;
  document.getElementById("sch-error").hidden = true;
  document.getElementById("sch-form-title").textContent = interpolate(
    schedule ? gettext("Edit a schedule of %(camera)s") : gettext("New schedule for %(camera)s"),
    {camera: camera}, true);
  field("camera").value = camera;
  const days = schedule ? schedule.days : WEEKDAYS;
  for (const box of dayBoxes()) box.checked = days.includes(box.value);
  field("start").value = schedule ? schedule.start : "08:00";
  field("end").value = schedule ? schedule.end : "18:00";
  field("timezone").value = schedule ? schedule.timezone
    : formZone();
  field("segment_minutes").value = schedule ? schedule.segment_minutes : 10;
  field("enabled").checked = schedule ? schedule.enabled : true;
  preview();
  form.scrollIntoView({block: "nearest"});
  field("start").focus();
}

if (form) {
  form.addEventListener("input", preview);
  form.addEventListener("change", preview);
  document.getElementById("sch-cancel").addEventListener("click", () => { form.hidden = true; editing = null; });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const minutes = Number(field("segment_minutes").value);
    const data = {
      days: dayBoxes().filter((b) => b.checked).map((b) => b.value),
      start: field("start").value,
      end: field("end").value,
      timezone: field("timezone").value.trim(),
      segment_minutes: Number.isInteger(minutes) ? minutes : field("segment_minutes").value,
      enabled: field("enabled").checked,
    };
    const camera = field("camera").value;
    send(editing ? "PATCH" : "POST", url(camera, editing && editing.id), data,
         document.getElementById("sch-error"));
  });
}
