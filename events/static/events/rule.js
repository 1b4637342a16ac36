/* The event rule editor (templates/event_rule_edit.html): the form as JSON to
 * POST /api/event-rules/ or PATCH /api/event-rules/{id}/, and the zone drawn as a polygon
 * on a still of the camera (GET /api/cameras/{camera}/still/), in fractions of the picture. */
import {csrfToken as csrf} from "../petcam/csrf.js";
import {formZone} from "../petcam/zone.js";

const rule = JSON.parse(document.getElementById("rule-data").textContent);
const form = document.getElementById("rule-form"), error = document.getElementById("rule-error");
const still = document.getElementById("still"), canvas = document.getElementById("zone");
const note = document.getElementById("zone-note");
let zone = rule ? rule.zone.map(p => [p[0], p[1]]) : [];

function field(name) { return form.elements.namedItem(name); }

function fill() {
  field("timezone").value = formZone();
  if (!rule) return;
  field("camera").value = rule.camera;
  field("name").value = rule.name;
  field("classes").value = rule.classes.join(", ");
  field("min_confidence").value = rule.min_confidence;
  field("min_seconds").value = rule.min_seconds;
  field("cooldown_seconds").value = rule.cooldown_seconds;
  field("enabled").checked = rule.enabled;
  field("timezone").value = rule.timezone;
  field("webhook_url").value = rule.webhook_url;
  if (rule.schedule) {
    field("start").value = rule.schedule.start;
    field("end").value = rule.schedule.end;
    for (const box of form.querySelectorAll("input[name=day]")) box.checked = rule.schedule.days.includes(box.value);
  }
}

function draw() {
  const w = canvas.width = canvas.clientWidth, h = canvas.height = canvas.clientHeight;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, w, h);
  note.textContent = zone.length >= 3 ? gettext("Only this area counts (a pet counts when the middle of it is inside).")
    : zone.length ? interpolate(ngettext("Add at least %(n)s more corner.", "Add at least %(n)s more corners.", 3 - zone.length), {n: 3 - zone.length}, true)
    : gettext("No area: the whole picture counts.");
  if (!zone.length) return;
  ctx.strokeStyle = "#ff4000"; ctx.fillStyle = "rgba(255, 64, 0, 0.2)"; ctx.lineWidth = 2;
  ctx.beginPath();
  zone.forEach(([x, y], i) => (i ? ctx.lineTo(x * w, y * h) : ctx.moveTo(x * w, y * h)));
  ctx.closePath();
  if (zone.length >= 3) ctx.fill();
  ctx.stroke();
  for (const [x, y] of zone) { ctx.beginPath(); ctx.arc(x * w, y * h, 4, 0, 2 * Math.PI); ctx.fillStyle = "#ff4000"; ctx.fill(); }
}

function loadStill() {
  still.src = "/api/cameras/" + encodeURIComponent(field("camera").value) + "/still/?t=" + Date.now();
}

canvas.addEventListener("click", (e) => {
  const r = canvas.getBoundingClientRect();
  const x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
  const y = Math.min(1, Math.max(0, (e.clientY - r.top) / r.height));
  zone.push([Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000]);
  draw();
});
document.getElementById("zone-clear").addEventListener("click", () => { zone = []; draw(); });
field("camera").addEventListener("change", loadStill);
window.addEventListener("resize", draw);

function body() {
  const data = {
    name: field("name").value.trim(),
    classes: field("classes").value.split(",").map(s => s.trim()).filter(Boolean),
    min_confidence: Number(field("min_confidence").value),
    min_seconds: Number(field("min_seconds").value),
    cooldown_seconds: Number(field("cooldown_seconds").value),
    enabled: field("enabled").checked,
    zone: zone.length >= 3 ? zone : [],
    timezone: field("timezone").value.trim(),
    schedule: null,
  };
  const start = field("start").value, end = field("end").value;
  if (start || end) {
    data.schedule = {start, end, days: [...form.querySelectorAll("input[name=day]:checked")].map(b => b.value)};
  }
  if (!rule) data.camera = field("camera").value;
  data.webhook_url = field("webhook_url").value.trim();
  if (field("webhook_secret").value) data.webhook_secret = field("webhook_secret").value;
  return data;
}

async function send(method, url, data) {
  const resp = await fetch(url, {method, headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
                                 body: data ? JSON.stringify(data) : undefined});
  if (resp.ok) { window.location.assign("/events/rules/"); return; }
  let text = interpolate(gettext("Could not save (%(status)s)."), {status: resp.status}, true);
  try { text = (await resp.json()).detail || text; } catch { /* not JSON */ }
  error.textContent = text;
  error.hidden = false;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  send(rule ? "PATCH" : "POST", rule ? "/api/event-rules/" + rule.id + "/" : "/api/event-rules/", body());
});
const del = document.getElementById("rule-delete");
if (del) del.addEventListener("click", () => confirm("Delete this rule? Its events stay.") && send("DELETE", "/api/event-rules/" + rule.id + "/"));

fill();
loadStill();
still.addEventListener("load", draw);
draw();
