/* Every page (templates/base.html): register the service worker that makes the portal an
 * installable app (petcam_site/app_shell.py). It caches only static files. */
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", {scope: "/", type: "classic"}).catch((err) => {
    console.warn("petcam: service worker not registered", err);
  });
}
