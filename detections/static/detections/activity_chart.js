/* petcam activity chart: sightings per class in 5-minute steps over the last hour.
 *
 * GET /api/cameras/{camera}/detections/?bucket=300 (the server's default range
 * is the last hour) every REFRESH_MS, drawn as stacked bars on a <canvas>
 * with a legend of the classes and their totals. It counts sightings, not the
 * history's samples: a cat in view for ten minutes is one sighting (breaks up to
 * the server's sighting_gap_seconds joined), counted where it starts, where it
 * was ~600 samples (detections/history.py sighting_counts).
 *
 * window.petcamActivity exposes {series, classes, totals (sightings), sampleTotals,
 * gapSeconds, fetchedAt, error} and refresh() (a Promise), for tests.
 */
import {classColor} from "./box_drawing.js";
import {inZone} from "../petcam/zone.js";

const REFRESH_MS = 60000;

// `panel` carries data-camera and holds the chart's canvas, legend and note.
export function startActivityChart(panel) {
  const canvas = panel.querySelector("#activity-chart");
  const legend = panel.querySelector("#activity-legend");
  const note = panel.querySelector("#activity-note");
  const ctx = canvas.getContext("2d");
  const url = "/api/cameras/" + encodeURIComponent(panel.dataset.camera) + "/detections/?bucket=300";

  const activity = {series: [], classes: [], totals: {}, sampleTotals: {}, gapSeconds: null,
                    fetchedAt: null, error: null, refresh: load};
  window.petcamActivity = activity;

  async function load() {
    try {
      const response = await fetch(url, {credentials: "same-origin", signal: AbortSignal.timeout(15000)});
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.detail || "HTTP " + response.status);
      const totals = {}, sampleTotals = {};
      for (const bucket of body.series || []) {
        for (const [name, n] of Object.entries(bucket.sightings || {})) totals[name] = (totals[name] || 0) + n;
        for (const [name, n] of Object.entries(bucket.counts || {})) sampleTotals[name] = (sampleTotals[name] || 0) + n;
      }
      Object.assign(activity, {
        series: body.series || [],
        totals: totals,
        sampleTotals: sampleTotals,
        gapSeconds: body.sighting_gap_seconds,
        classes: Object.keys(totals).sort((a, b) => totals[b] - totals[a] || a.localeCompare(b)),
        fetchedAt: new Date(),
        error: null,
      });
    } catch (err) {
      activity.error = String(err && err.message || err);
    }
    showLegend();
    draw();
    return activity;
  }

  function showLegend() {
    legend.replaceChildren(...activity.classes.map((name) => {
      const item = document.createElement("span");
      item.dataset.class = name;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = classColor(name);
      const n = activity.totals[name];
      item.append(swatch, name + " · " + interpolate(ngettext("%(n)s sighting", "%(n)s sightings", n), {n: n}, true));
      return item;
    }));
    if (activity.error) note.textContent = interpolate(gettext("History unavailable: %(error)s"), {error: activity.error}, true);
    else if (!activity.classes.length) note.textContent = gettext("Nothing seen in the last hour.");
    else note.textContent = interpolate(gettext("A sighting: in view, with breaks of up to %(gap)s s. Updated %(time)s."), {
      gap: Math.round(activity.gapSeconds),
      time: activity.fetchedAt.toLocaleTimeString([], inZone({hour: "2-digit", minute: "2-digit"}))}, true);
  }

  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const cw = canvas.clientWidth, ch = canvas.clientHeight;
    if (!cw || !ch) return;
    canvas.width = Math.round(cw * dpr);
    canvas.height = Math.round(ch * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, cw, ch);
    const series = activity.series;
    const pad = {left: 30, right: 4, top: 6, bottom: 18};
    const plotW = cw - pad.left - pad.right, plotH = ch - pad.top - pad.bottom;
    let max = 0;
    for (const b of series) max = Math.max(max, Object.values(b.sightings || {}).reduce((a, n) => a + n, 0));
    const top = niceCeil(max);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#9aa0a6";
    ctx.strokeStyle = "rgba(154,160,166,.25)";
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const frac of [0, 0.5, 1]) {
      const y = Math.round(pad.top + plotH * (1 - frac)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, y);
      ctx.lineTo(cw - pad.right, y);
      ctx.stroke();
      ctx.fillText(String(Math.round(top * frac)), pad.left - 4, y);
    }
    if (series.length) {
      const slot = plotW / series.length;
      const barW = Math.max(1, slot - (slot > 4 ? 1 : 0));
      series.forEach((b, i) => {
        let y = pad.top + plotH;
        activity.classes.forEach((name) => {
          const n = (b.sightings || {})[name] || 0;
          if (!n) return;
          const h = plotH * n / top;
          ctx.fillStyle = classColor(name);
          ctx.fillRect(pad.left + i * slot, y - h, barW, h);
          y -= h;
        });
      });
      ctx.fillStyle = "#9aa0a6";
      ctx.textBaseline = "alphabetic";
      ctx.textAlign = "left";
      ctx.fillText(ago(series[0].start), pad.left, ch - 4);
      ctx.textAlign = "right";
      ctx.fillText(gettext("now"), cw - pad.right, ch - 4);
    }
  }

  function niceCeil(n) {
    if (n <= 4) return 4;
    const p = Math.pow(10, Math.floor(Math.log10(n)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= n) return m * p;
    return 10 * p;
  }

  function ago(iso) {
    const minutes = Math.round((Date.now() - Date.parse(iso)) / 60000);
    return minutes >= 55 && minutes <= 65 ? gettext("−1 h") : interpolate(gettext("−%(minutes)s min"), {minutes: minutes}, true);
  }

  if (window.ResizeObserver) new ResizeObserver(draw).observe(canvas);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) load(); });
  setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
  load();
  return activity;
}
