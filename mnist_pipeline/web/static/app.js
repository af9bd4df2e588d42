// Draw on the canvas with pointer events (mouse, pen or finger); after each stroke send the
// canvas as a PNG to /api/predict and show each model's answer (one, or two side by side). Only
// the latest drawing's answer is shown. Where the server collects drawings (mnist-web --collect),
// each answer is followed by "Right" and "It is a 0-9", which send the picture the network was
// given to /api/collect with its digit.
"use strict";

const INK_WIDTH = 18; // px on the 280 px canvas: about MNIST's stroke width for a full-size digit

const pad = document.getElementById("pad");
const pen = pad.getContext("2d");
const result = document.getElementById("result");
const seen = document.getElementById("seen").getContext("2d");
const collect = document.getElementById("collect");
const collected = document.getElementById("collected");
let panels = []; // one per model the server reads with, in its order
let collecting = false; // whether the server collects drawings (its health says)
let shown = null; // the answer shown, if any: what "Right" and "It is a" file
let latestCollect = 0; // the last click on "Right" or "It is a": only its answer is shown

let strokes = 0; // strokes on the canvas since it was last cleared
let activePointer = null; // the pointer drawing the current stroke, if any
let lastPoint = null;
let latestRequest = 0; // answers to older requests (or from before a Clear) are dropped

function percent(probability) {
  return `${(100 * probability).toFixed(1)}%`;
}

// A reading's panel: its model, its answer and ten bars, from the page's template.
function makePanel(model, index) {
  const panel = document.getElementById("reading").content.firstElementChild.cloneNode(true);
  const heading = panel.querySelector(".model");
  heading.id = `model-${index}`;
  heading.textContent =
    model.accuracy === null
      ? model.label
      : `${model.label}: test accuracy ${percent(model.accuracy)}`;
  panel.setAttribute("aria-labelledby", heading.id);
  const barsHeading = panel.querySelector(".bars-heading");
  barsHeading.id = `bars-heading-${index}`;
  const bars = panel.querySelector(".bars");
  bars.setAttribute("aria-labelledby", barsHeading.id);
  const rows = Array.from({ length: 10 }, (_, digit) => {
    const row = document.createElement("li");
    row.innerHTML =
      `<span class="label"><span class="visually-hidden">digit </span>${digit}</span>` +
      '<span class="bar" aria-hidden="true"><span class="fill"></span></span>' +
      '<span class="value">0.0%</span>';
    bars.append(row);
    return row;
  });
  document.getElementById("readings").append(panel);
  return {
    answer: panel.querySelector(".answer"),
    digit: panel.querySelector(".digit"),
    summary: panel.querySelector(".summary"),
    unsure: panel.querySelector(".unsure"),
    rows,
  };
}

function clearDrawing() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, pad.width, pad.height);
  strokes = 0;
  latestRequest += 1;
  seen.clearRect(0, 0, 28, 28);
  panels.forEach(emptyPanel);
  offerToCollect(null);
  result.dataset.strokes = "0";
}

function emptyPanel(panel) {
  showBars(panel, new Array(10).fill(0), null);
  showAnswer(panel, "", "Nothing drawn yet.");
}

// A panel's answer: the digit, the line beside it, and whether the model is unsure of it.
function showAnswer(panel, digit, summary, { error = false, unsure = false } = {}) {
  panel.answer.classList.toggle("error", error);
  panel.answer.classList.remove("pending");
  panel.digit.textContent = digit;
  panel.summary.textContent = summary;
  panel.unsure.hidden = !unsure;
}

// An answer is on its way: said at once, the last answer dimmed until it comes (the network
// may take a second on a busy machine, and "Nothing drawn yet" beside a drawing is wrong).
function showPending() {
  for (const panel of panels) {
    showAnswer(panel, panel.digit.textContent, "Reading…");
    panel.answer.classList.add("pending");
  }
}

function canvasPoint(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

function drawTo(point) {
  pen.beginPath();
  pen.moveTo(lastPoint.x, lastPoint.y);
  pen.lineTo(point.x, point.y);
  pen.stroke();
  lastPoint = point;
}

pad.addEventListener("pointerdown", (event) => {
  if (activePointer !== null) return;
  event.preventDefault();
  activePointer = event.pointerId;
  pad.setPointerCapture(event.pointerId);
  pen.strokeStyle = "#000";
  pen.lineWidth = INK_WIDTH;
  pen.lineCap = "round";
  pen.lineJoin = "round";
  lastPoint = canvasPoint(event);
  drawTo(lastPoint); // a dot, for a tap without a move
});

pad.addEventListener("pointermove", (event) => {
  if (event.pointerId !== activePointer) return;
  // A fast pen delivers several positions per event: draw them all, for a smooth line.
  const events = event.getCoalescedEvents?.() ?? [];
  for (const each of events.length ? events : [event]) drawTo(canvasPoint(each));
});

function endStroke(event) {
  if (event.pointerId !== activePointer) return;
  activePointer = null;
  strokes += 1;
  readDrawing(strokes);
}

pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

function showBars(panel, probabilities, top) {
  probabilities.forEach((probability, digit) => {
    const row = panel.rows[digit];
    row.classList.toggle("top", digit === top);
    row.querySelector(".fill").style.width = percent(probability);
    row.querySelector(".value").textContent = percent(probability);
  });
}

function showInput(pixels) {
  const image = seen.createImageData(28, 28);
  pixels.flat().forEach((value, index) => {
    image.data.set([value, value, value, 255], 4 * index);
  });
  seen.putImageData(image, 0, 0);
}

function showReadings(answer) {
  answer.readings.forEach((reading, index) => {
    const panel = panels[index];
    const summary =
      `${percent(reading.probability)} sure; ` +
      `runner-up ${reading.runner_up} (${percent(reading.runner_up_probability)})`;
    showAnswer(panel, String(reading.digit), summary, { unsure: reading.unsure });
    showBars(panel, reading.probabilities, reading.digit);
  });
  showInput(answer.input);
  offerToCollect(answer);
}

function showError(message) {
  for (const panel of panels) {
    showAnswer(panel, "?", `Could not read the drawing: ${message}`, { error: true });
  }
}

// The collect controls, for the answer shown (null: none, and no controls).
function offerToCollect(answer) {
  shown = answer;
  collect.hidden = !(collecting && answer);
  collected.textContent = "";
  delete collected.dataset.outcome;
}

// File the picture the network was given as `label`; "Right" files it as the first model's digit.
// `data-outcome` says the server's answer once it is shown: added, already collected,
// relabelled, or refused.
async function collectAs(label) {
  const answer = shown;
  const click = ++latestCollect;
  let outcome = "refused";
  let message;
  delete collected.dataset.outcome;
  collected.textContent = "Saving…";
  try {
    const response = await fetch("api/collect", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ input: answer.input, label }),
    });
    const body = await response.json();
    if (response.ok) {
      outcome = body.outcome;
      const was = outcome === "relabelled" ? ` (was a ${body.relabelled_from})` : "";
      const already = outcome === "already collected" ? "Already saved" : "Saved";
      message = `${already} as a ${label}${was}: ${body.path}`;
    } else {
      message = `Not saved: ${body.error || `${response.status} ${response.statusText}`}`;
    }
  } catch (error) {
    message = `Not saved: the server did not answer (${error.message})`;
  }
  if (answer !== shown || click !== latestCollect) return; // another drawing, or a later click
  collected.textContent = message;
  collected.dataset.outcome = outcome;
}

async function readDrawing(strokeCount) {
  const request = ++latestRequest;
  offerToCollect(null); // the answer shown is not this drawing's any more
  showPending();
  const png = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  let reading = null;
  let failure = null;
  try {
    const response = await fetch("api/predict", {
      method: "POST",
      headers: { "Content-Type": "image/png" },
      body: png,
    });
    const body = await response.json();
    if (response.ok) reading = body;
    else failure = body.error || `${response.status} ${response.statusText}`;
  } catch (error) {
    failure = `the server did not answer (${error.message})`;
  }
  await panelsMade;
  if (request !== latestRequest) return; // the drawing has changed since
  if (reading) showReadings(reading);
  else showError(failure);
  result.dataset.strokes = String(strokeCount); // the answer shown is for this many strokes
}

document.getElementById("clear").addEventListener("click", clearDrawing);
document.getElementById("right").addEventListener("click", () => collectAs(shown.readings[0].digit));
const labels = document.getElementById("labels");
for (let digit = 0; digit < 10; digit++) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = String(digit);
  button.setAttribute("aria-label", `It is a ${digit}`);
  button.addEventListener("click", () => collectAs(digit));
  labels.append(" ", button);
}
clearDrawing();

// A panel for each model the server reads with; answers wait for them.
const panelsMade = fetch("api/health")
  .then((response) => response.json())
  .then((health) => {
    collecting = health.collecting;
    panels = health.models.map(makePanel);
    panels.forEach(emptyPanel);
    if (strokes > 0) showPending(); // drawn on before the panels were made: its answer waits
  });
