/* petcam detection boxes: how a detector result is drawn over a <video> on a <canvas>.
 *
 * The live overlay (streaming/live/overlay.js) and the playback page
 * (recordings/playback.js) draw the same way:
 *   rect  = contentRect(video)               picture's rectangle in the element (object-fit: contain)
 *   sizeCanvas(canvas, ctx, rect, video)     canvas sized to the element, CSS pixel transform, cleared
 *   boxes = boxesFor(result, rect)           result {frame_width, frame_height, detections[]} ->
 *                                            [{class_name, confidence, video: {x,y,w,h}, css: {x,y,w,h}}]
 *   drawBoxes(ctx, boxes, rect)              labelled rectangles, one colour per class
 *   classColor(name)                         that colour (timelines and charts use it too)
 */
const PALETTE = ["#ffb000", "#3ddc84", "#8ab4f8", "#ff6e9c", "#c58af9", "#4ecde6", "#f28b50", "#e8eaed"];
const FIXED = {cat: 0, dog: 1, person: 2};

export function classColor(name) {
  if (name in FIXED) return PALETTE[FIXED[name]];
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
  return PALETTE[3 + h % (PALETTE.length - 3)];
}

export function contentRect(video) {
  // object-fit: contain, centred (fractional CSS pixels: clientWidth/Height round).
  const box = video.getBoundingClientRect();
  const cw = box.width, ch = box.height;
  const vw = video.videoWidth, vh = video.videoHeight;
  if (!cw || !ch || !vw || !vh) return null;
  const scale = Math.min(cw / vw, ch / vh);
  const w = vw * scale, h = vh * scale;
  return {x: (cw - w) / 2, y: (ch - h) / 2, w: w, h: h, scale: scale, cw: cw, ch: ch, vw: vw, vh: vh};
}

export function sizeCanvas(canvas, ctx, rect, video) {
  const dpr = window.devicePixelRatio || 1;
  const box = rect ? {width: rect.cw, height: rect.ch} : video.getBoundingClientRect();
  const cw = box.width, ch = box.height;
  const w = Math.max(1, Math.round(cw * dpr)), h = Math.max(1, Math.round(ch * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  ctx.setTransform(w / Math.max(cw, 1), 0, 0, h / Math.max(ch, 1), 0, 0);  // CSS px from here on
  ctx.clearRect(0, 0, cw, ch);
}

export function boxesFor(result, rect) {
  if (!result || !rect) return [];
  // Results are in the detector's frame pixels; they can differ from the decoded size.
  const sx = result.frame_width ? rect.vw / result.frame_width : 1;
  const sy = result.frame_height ? rect.vh / result.frame_height : 1;
  return result.detections.filter((d) => d && d.bbox).map((d) => {
    const v = {x: d.bbox.x * sx, y: d.bbox.y * sy, w: d.bbox.w * sx, h: d.bbox.h * sy};
    return {
      class_name: String(d.class_name), confidence: Number(d.confidence), video: v,
      css: {x: rect.x + v.x * rect.scale, y: rect.y + v.y * rect.scale,
            w: v.w * rect.scale, h: v.h * rect.scale},
    };
  });
}

export function drawBoxes(ctx, boxes, rect) {
  if (!rect) return;
  const font = Math.round(Math.max(11, Math.min(15, rect.w / 45)));
  ctx.font = "600 " + font + "px system-ui, sans-serif";
  ctx.lineWidth = font > 12 ? 2.5 : 2;
  ctx.textBaseline = "top";
  for (const b of boxes) {
    const color = classColor(b.class_name);
    const c = b.css;
    ctx.strokeStyle = color;
    ctx.strokeRect(c.x, c.y, c.w, c.h);
    const label = b.class_name + " " + Math.round(b.confidence * 100) + "%";
    const tw = ctx.measureText(label).width + 8, th = font + 6;
    // Above the box, or inside it when the box touches the top of the picture.
    const ly = c.y - th >= rect.y ? c.y - th : c.y;
    const lx = Math.min(c.x, rect.x + rect.w - tw);
    ctx.fillStyle = color;
    ctx.fillRect(lx - ctx.lineWidth / 2, ly, tw, th);
    ctx.fillStyle = "#111418";
    ctx.fillText(label, lx + 4 - ctx.lineWidth / 2, ly + 3);
  }
}
