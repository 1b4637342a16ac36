/* The live picture's controls (templates/live.html): full screen, picture-in-picture,
 * snapshot, and hiding them while the pet is on screen.
 *
 * The controls sit over the picture, inside the stage, so they go full screen with it
 * (with the detection boxes). While the video is live they fade out after
 * HIDE_AFTER_MS without a touch or mouse move; a tap on the picture brings them back
 * (that tap does nothing else), another tap on the bare picture hides them. A
 * double click or double tap on the picture toggles full screen.
 *
 * Buttons the browser cannot serve stay hidden: no dead controls. iPhone Safari has no
 * element full screen: its video's own full screen (webkitEnterFullscreen) is used.
 *
 * window.petcamControls exposes {hidden(), snapshots: [{filename, width, height, bytes}]}
 * for tests.
 */
const HIDE_AFTER_MS = 3000;
const TOAST_MS = 2500;
const JPEG_QUALITY = 0.92;

// `stage` holds the <video> and #controls; `player` is its live player (live/player.js).
export function startControls(stage, player) {
  const video = stage.querySelector("video");
  const controls = stage.querySelector("#controls");
  const fullscreenButton = stage.querySelector("#fullscreen-button");
  const pipButton = stage.querySelector("#pip-button");
  const snapshotButton = stage.querySelector("#snapshot-button");
  const toast = stage.querySelector("#toast");
  const cameraName = stage.dataset.cameraName || stage.dataset.camera;
  // Hidden only counts while live: page.css shows the controls in any other state.
  const state = {snapshots: [],
                 hidden: () => stage.classList.contains("controls-hidden") && stage.dataset.state === "live"};
  window.petcamControls = state;

  // ---- full screen -----------------------------------------------------------

  const elementFullscreen = !!(document.fullscreenEnabled && stage.requestFullscreen);
  const videoFullscreen = !elementFullscreen && typeof video.webkitEnterFullscreen === "function";
  const isFullscreen = () => document.fullscreenElement === stage;

  async function toggleFullscreen() {
    if (videoFullscreen) { video.webkitEnterFullscreen(); return; }
    if (!elementFullscreen) return;
    try {
      if (isFullscreen()) {
        await document.exitFullscreen();
      } else {
        await stage.requestFullscreen({navigationUI: "hide"});
        // A phone held upright: turn the picture sideways where the browser allows it.
        if (screen.orientation && screen.orientation.lock && matchMedia("(pointer: coarse)").matches) {
          screen.orientation.lock("landscape").catch(() => {});
        }
      }
    } catch (err) {
      showToast(gettext("Full screen is not available here."));
    }
  }

  function showFullscreenState() {
    const on = isFullscreen();
    stage.classList.toggle("fullscreen", on);
    fullscreenButton.setAttribute("aria-label", on ? gettext("Leave full screen") : gettext("Full screen"));
    fullscreenButton.title = on ? gettext("Leave full screen") : gettext("Full screen");
    fullscreenButton.setAttribute("aria-pressed", on ? "true" : "false");
  }

  if (elementFullscreen || videoFullscreen) {
    fullscreenButton.hidden = false;
    fullscreenButton.addEventListener("click", toggleFullscreen);
    document.addEventListener("fullscreenchange", showFullscreenState);
    video.addEventListener("dblclick", toggleFullscreen);
  }

  // Full screen: the heading's state line, copied over the picture.
  const pageState = document.getElementById("state");
  const stageState = stage.querySelector("#stage-state");
  if (pageState && stageState) {
    const copy = () => {
      stageState.textContent = pageState.textContent;
      stageState.className = pageState.className;
    };
    new MutationObserver(copy).observe(pageState, {childList: true, characterData: true, subtree: true,
                                                   attributes: true, attributeFilter: ["class"]});
    copy();
  }

  // ---- picture-in-picture ----------------------------------------------------

  const standardPip = !!(document.pictureInPictureEnabled && video.requestPictureInPicture);
  const safariPip = !standardPip && typeof video.webkitSetPresentationMode === "function"
    && video.webkitSupportsPresentationMode && video.webkitSupportsPresentationMode("picture-in-picture");

  async function togglePip() {
    try {
      if (safariPip) {
        const inPip = video.webkitPresentationMode === "picture-in-picture";
        video.webkitSetPresentationMode(inPip ? "inline" : "picture-in-picture");
      } else if (document.pictureInPictureElement === video) {
        await document.exitPictureInPicture();
      } else {
        await video.requestPictureInPicture();
      }
    } catch (err) {
      showToast(video.readyState < 2 ? gettext("No picture yet.") : gettext("Picture-in-picture is not available here."));
    }
  }

  function showPipState() {
    const on = document.pictureInPictureElement === video;
    pipButton.setAttribute("aria-pressed", on ? "true" : "false");
    pipButton.setAttribute("aria-label", on ? gettext("Leave picture in picture") : gettext("Picture in picture"));
  }

  if (standardPip || safariPip) {
    pipButton.hidden = false;
    pipButton.addEventListener("click", togglePip);
    video.addEventListener("enterpictureinpicture", showPipState);
    video.addEventListener("leavepictureinpicture", showPipState);
  }

  // ---- snapshot --------------------------------------------------------------

  function pad(n) { return String(n).padStart(2, "0"); }

  // "Garden 2026-12-04 21.03.15.jpg": the camera's name and the local time; characters
  // file systems refuse are left out.
  function snapshotName(when) {
    const name = cameraName.replace(/[\\\/:*?\x22<>|\u0000-\u001f]+/g, "").trim() || "petcam";
    const date = when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate());
    const time = pad(when.getHours()) + "." + pad(when.getMinutes()) + "." + pad(when.getSeconds());
    return name + " " + date + " " + time + ".jpg";
  }

  function snapshot() {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) { showToast(gettext("No picture to save yet.")); return; }
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    canvas.getContext("2d").drawImage(video, 0, 0, w, h);  // the frame on screen now, full size
    const filename = snapshotName(new Date());
    canvas.toBlob((blob) => {
      if (!blob) { showToast(gettext("The snapshot could not be made.")); return; }
      const url = URL.createObjectURL(blob);
      const link = document.createElement("a");
      link.href = url;
      link.download = filename;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      state.snapshots.push({filename: filename, width: w, height: h, bytes: blob.size});
      showToast(interpolate(gettext("Saved %(file)s"), {file: filename}, true));
    }, "image/jpeg", JPEG_QUALITY);
  }
  snapshotButton.addEventListener("click", snapshot);

  // ---- a short note over the picture ------------------------------------------

  let toastTimer = null;
  function showToast(text) {
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, TOAST_MS);
  }

  // ---- showing and hiding the controls -----------------------------------------

  let hideTimer = null;
  let hiddenAtPointerDown = false;
  let pointerType = "mouse";

  // Only while the picture plays: otherwise the state and message matter more.
  const mayHide = () => stage.dataset.state === "live" && !controls.querySelector(":focus-visible")
    && !controls.matches(":hover");

  function hide() {
    if (mayHide()) stage.classList.add("controls-hidden");
    else scheduleHide();
  }

  function scheduleHide() {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hide, HIDE_AFTER_MS);
  }

  function show() {
    stage.classList.remove("controls-hidden");
    scheduleHide();
  }

  stage.addEventListener("pointermove", (ev) => { if (ev.pointerType === "mouse") show(); });
  stage.addEventListener("pointerdown", (ev) => {
    pointerType = ev.pointerType || "mouse";
    hiddenAtPointerDown = state.hidden();
  }, true);
  // Capture: a tap that brings the controls back must not also press the button under it.
  stage.addEventListener("click", (ev) => {
    if (hiddenAtPointerDown) {
      hiddenAtPointerDown = false;
      ev.preventDefault();
      ev.stopPropagation();
      show();
      return;
    }
    const onPicture = !controls.contains(ev.target);
    if (onPicture && pointerType !== "mouse" && mayHide()) {
      clearTimeout(hideTimer);
      stage.classList.add("controls-hidden");
    } else {
      show();
    }
  }, true);
  stage.addEventListener("focusin", show);
  stage.addEventListener("mouseleave", () => {
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hide, 800);
  });
  scheduleHide();
  return state;
}
