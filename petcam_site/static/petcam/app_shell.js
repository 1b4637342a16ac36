/* Every page (templates/base.html): register the service worker that makes the portal an
 * installable app (petcam_site/app_shell.py). It caches only static files. */
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", {scope: "/", type: "classic"}).catch((err) => {
    console.warn("petcam: service worker not registered", err);
  });
}

// The browser's time zone, for the times the server writes into pages (petcam_site/
// user_locale.py; the account page's choice wins). Zone names are letters, digits, / _ + -.
try {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && /^[\w\/+-]+$/.test(zone)) {
    document.cookie = "petcam_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
  }
} catch {
  // no Intl time zones: the server keeps UTC
}
