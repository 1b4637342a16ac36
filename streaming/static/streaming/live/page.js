/* The live page of one camera (templates/live.html): player, detection overlay,
 * controls (fullscreen, picture-in-picture, snapshot), status poll, activity chart
 * and, for roles that may record, the record button. */
import {startActivityChart} from "../../detections/activity_chart.js";
import {startControls} from "./controls.js";
import {startOverlay} from "./overlay.js";
import {startPlayer} from "./player.js";
import {startRecordButton} from "./record_button.js";
import {startStatusPoll} from "./status.js";

const stage = document.getElementById("stage");
// The player first: it listens for the status poll's events.
const player = startPlayer(stage);
startOverlay(stage, player);
startControls(stage, player);
startStatusPoll(stage.dataset.camera);
startActivityChart(document.getElementById("activity"));
const recbar = document.getElementById("recbar");  // absent for viewers
if (recbar) startRecordButton(recbar, stage);
