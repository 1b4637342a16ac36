/* The grid of every camera (templates/live_grid.html): one player per tile. */
import {startGridStatusPoll} from "./grid_status.js";
import {startPlayers} from "./player.js";

// The players first: they listen for the status poll's events.
startPlayers();
startGridStatusPoll();
