/* The time zone the pages' scripts show times in: the one chosen on the account page
 * (templates/base.html's data-time-zone, from petcam_site/user_locale.py), else the
 * browser's own, so times written by the server and by the scripts agree. */

export const pageZone = document.documentElement.dataset.timeZone || undefined;

/* Intl date/time options in the page's zone: toLocaleString([], inZone({...})). */
export function inZone(options) {
  return pageZone ? {...(options || {}), timeZone: pageZone} : {...(options || {})};
}

/* The zone to preset in a form (rules, schedules, notifications). */
export function formZone() {
  return pageZone || Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

const partsOf = new Intl.DateTimeFormat("en-US", {
  timeZone: pageZone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
  hour: "numeric", minute: "numeric", second: "numeric",
});

/* The wall clock at instant `ms` in the page's zone, read as if it were UTC. */
function wallAsUtc(ms) {
  const p = Object.fromEntries(partsOf.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
}

/* How far the page's zone's wall clock is ahead of UTC at instant `ms`, in ms. */
export function offsetAt(ms) {
  const whole = Math.floor(ms / 1000) * 1000;  // the wall clock is read to the second
  return wallAsUtc(whole) - whole;
}

/* Midnight starting the day of `date` in the page's zone, `plusDays` days on (a Date).
 * Calendar arithmetic, then the zone's offset at that midnight: right across DST. */
export function midnightIn(date, plusDays) {
  const wall = new Date(wallAsUtc(date.getTime()));
  const target = Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate() + (plusDays || 0));
  let guess = target;
  for (let i = 0; i < 3; i++) {  // the offset at the guess moves the guess; settles at once
    const next = target - (wallAsUtc(guess) - guess);
    if (next === guess) break;
    guess = next;
  }
  return new Date(guess);
}
