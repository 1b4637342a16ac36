/* The CSRF token for fetch() calls that change something (Django's X-CSRFToken header). */

// The cookie is the current token (it rotates at login); `fallback` is the one the page
// was rendered with, for a browser that hides the cookie from scripts.
export function csrfToken(fallback = "") {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : fallback;
}
