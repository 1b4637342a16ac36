/* The grid of every camera (templates/live_grid.html): one player per tile; tap a
 * tile's picture to watch that camera alone. */
import {startGridStatusPoll} from "./grid_status.js";
import {startPlayers} from "./player.js";

// The players first: they listen for the status poll's events.
startPlayers();
startGridStatusPoll();
for (const stage of document.querySelectorAll("[data-live-stage][data-focus]")) {
  stage.addEventListener("click", () => { location.href = stage.dataset.focus; });
}
