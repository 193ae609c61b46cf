// Lookalike's page: search by an image or a part of it, by a text, or both; see why each
// result matched; and fix the people the faces channel found. It only calls the HTTP API
// (docs/http-api.md). The text, filters, annotations and clicks are in clues.js; the
// people view is in people.js.

import { $, api, attempt, element, fmt, showError, token } from "./api.js";
import {
  appendClues, clueFacts, closeAnnotations, describeQuery, evidenceOf, loadCategories, otherFacts,
  logClick, queryText, regionLabel, showAnnotations, takeText, wireClues,
} from "./clues.js";
import { loadPeople } from "./people.js";

const state = {
  file: null,      // the query, as a Blob
  bitmap: null,    // the query, decoded
  box: null,       // [x0, y0, x1, y1] in the query's own pixels, or null
  asked: null,     // the query image and box of the search shown ({bitmap: null} for text)
  offset: 0,
  results: [],
  response: null,
  ticket: 0,       // the latest search asked for; older answers are dropped
};

// -- the query and its box ----------------------------------------------------------------

const canvas = $("#query-canvas");
let drag = null;  // the box being drawn, in canvas pixels

function queryScale() {
  return state.bitmap ? canvas.width / state.bitmap.width : 1;
}

function drawQuery() {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.bitmap) return;
  ctx.drawImage(state.bitmap, 0, 0, canvas.width, canvas.height);
  const s = queryScale();
  const box = drag || (state.box && state.box.map((v) => v * s));
  if (box) {
    const [x0, y0, x1, y1] = box;
    ctx.fillStyle = "rgba(0, 0, 0, 0.45)";  // dim what lies outside the box
    ctx.fillRect(0, 0, canvas.width, y0);
    ctx.fillRect(0, y1, canvas.width, canvas.height - y1);
    ctx.fillRect(0, y0, x0, y1 - y0);
    ctx.fillRect(x1, y0, canvas.width - x1, y1 - y0);
    ctx.strokeStyle = "#ffd60a";
    ctx.lineWidth = 2;
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  }
}

function setBox(box) {
  state.box = box;
  $("#clear-box").disabled = !box;
  $("#box-info").textContent = box ? `Box ${box.join(",")}: drag again to change it.` :
    state.bitmap ? "Drag on the query to search by a part of it." : "";
  drawQuery();
}

async function setQuery(file) {
  if (!file || !file.type.startsWith("image/")) {
    showError(`expected an image file, got ${file ? file.type || file.name : "nothing"}`);
    return;
  }
  const bitmap = await attempt(() => createImageBitmap(file));
  if (!bitmap) return;
  state.file = file;
  state.bitmap = bitmap;
  const scale = Math.min(480 / bitmap.width, 360 / bitmap.height, 1);
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.dataset.naturalWidth = bitmap.width;
  $("#drop-zone").classList.add("has-query");
  $("#clear-query").disabled = false;
  setBox(null);
  search(0);
  suggestObjects(file);
}

// The objects the collection's detector sees in the query (its regions channel), as
// buttons: one searches by that object's box, as a drawn box would.
async function suggestObjects(file) {
  const holder = $("#objects");
  holder.replaceChildren();
  holder.hidden = true;
  const form = new FormData();
  form.append("image", file, file.name || "query.png");
  const found = await api("/objects", { method: "POST", body: form }).catch(() => null);
  if (!found || state.file !== file || !found.objects.length) return;
  holder.append(element("span", { className: "muted", textContent: "Search by: " }));
  for (const item of found.objects) {
    const box = item.box.map(Math.round);
    holder.append(element("button", {
      type: "button", className: "chip", textContent: `${item.label} ${Math.round(100 * item.score)}%`,
      title: `the ${item.label} at ${box.join(",")}`,
      onclick: () => { setBox(box); search(0); },
    }));
  }
  holder.hidden = false;
}

function canvasPoint(event) {
  const rect = canvas.getBoundingClientRect();
  const x = (event.clientX - rect.left) * canvas.width / rect.width;
  const y = (event.clientY - rect.top) * canvas.height / rect.height;
  return [Math.max(0, Math.min(canvas.width, x)), Math.max(0, Math.min(canvas.height, y))];
}

canvas.addEventListener("mousedown", (event) => {
  if (!state.bitmap || event.button !== 0) return;
  const [x, y] = canvasPoint(event);
  drag = [x, y, x, y];
  event.preventDefault();
});

window.addEventListener("mousemove", (event) => {
  if (!drag) return;
  const [x, y] = canvasPoint(event);
  drag[2] = x;
  drag[3] = y;
  drawQuery();
});

window.addEventListener("mouseup", () => {
  if (!drag) return;
  const [ax, ay, bx, by] = drag;
  drag = null;
  if (Math.abs(bx - ax) < 4 || Math.abs(by - ay) < 4) {  // a click, not a box
    drawQuery();
    return;
  }
  // From display pixels to the query's own pixels.
  const s = queryScale();
  const { width, height } = state.bitmap;
  setBox([Math.min(ax, bx) / s, Math.min(ay, by) / s, Math.max(ax, bx) / s, Math.max(ay, by) / s]
    .map((v, i) => Math.round(Math.min(v, i % 2 ? height : width))));
  search(0);
});

$("#clear-box").addEventListener("click", () => {
  setBox(null);
  search(0);
});

// Drops the query image: the text, if any, is searched alone.
$("#clear-query").addEventListener("click", () => {
  state.file = null;
  state.bitmap = null;
  $("#file-input").value = "";
  $("#drop-zone").classList.remove("has-query");
  $("#clear-query").disabled = true;
  $("#objects").hidden = true;
  setBox(null);
  search(0);
});

$("#file-input").addEventListener("change", (event) => setQuery(event.target.files[0]));

document.addEventListener("paste", (event) => {
  const item = [...event.clipboardData.items].find((i) => i.type.startsWith("image/"));
  if (item) setQuery(item.getAsFile());
});

document.addEventListener("dragover", (event) => {
  event.preventDefault();
  $("#drop-zone").classList.add("dragging");
});
document.addEventListener("dragleave", () => $("#drop-zone").classList.remove("dragging"));
document.addEventListener("drop", (event) => {
  $("#drop-zone").classList.remove("dragging");
  if (!event.dataTransfer.files.length && event.target.matches("input")) return;  // text
  event.preventDefault();
  const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (file) {
    showView("search");
    setQuery(file);
  }
});

// -- searching and the results ------------------------------------------------------------

function pageSize() {
  return Math.max(1, Math.min(200, parseInt($("#k").value, 10) || 24));
}

function showResults(response) {
  state.response = response;
  state.results = response ? response.results : [];
  state.offset = response ? response.offset : 0;
  renderResults();
}

// Searches by the query image, the text box's text, or both, with the filters. A new search
// takes the text box as it is; another page of results keeps the text it was for.
async function search(offset, { paging = false } = {}) {
  const text = paging ? queryText() : takeText();
  const ticket = ++state.ticket;
  if (!state.file && !text) {  // nothing left to search by
    $("#search-status").textContent = "";
    showResults(null);
    return;
  }
  const form = new FormData();
  if (state.file) {
    form.append("image", state.file, state.file.name || "query.png");
    if (state.box) form.append("box", state.box.join(","));
  }
  // A text alone is the text channel's to search, whichever image channel is picked.
  form.append("channel", state.file ? $("#channel").value : "auto");
  form.append("k", String(pageSize()));
  form.append("offset", String(offset));
  appendClues(form);
  const asked = { bitmap: state.file ? state.bitmap : null, box: state.file ? state.box : null };
  $("#search-status").textContent = "Searching…";
  const response = await attempt(() => api("/search", { method: "POST", body: form }));
  if (ticket !== state.ticket) return;  // a newer search was asked for meanwhile
  if (!response) {
    $("#search-status").textContent = "";
    return;
  }
  state.asked = asked;
  state.searches = (state.searches || 0) + 1;
  $("#results").dataset.searches = state.searches;  // lets tests wait for an answer
  const fusion = response.fusion !== "auto" ? `, ${response.fusion} fusion` : "";
  // A split collection whose shards did not all answer says so: results may be missing.
  const missing = Object.keys(response.missing_shards || {});
  const partial = response.partial ? ` (partial: ${missing.join(", ")} did not answer)` : "";
  $("#search-status").textContent = `${response.results.length} results for ` +
    `${describeQuery(response)} by ${response.channel}${fusion} in ${response.took_ms} ms` +
    partial;
  showResults(response);
}

// The evidence of one channel for a result (null when that channel did not find it).
function evidence(result, channel) {
  return evidenceOf(result, channel);
}

// Why a result matched, in one line: the server says it from the typed evidence.
function reason(result) {
  return result.reason || "";
}

// The calibrated confidence that a result is a true match, as a percentage.
function confidence(result) {
  return result.score === null || result.score === undefined
    ? "–" : `${Math.round(100 * result.score)}%`;
}

function renderResults() {
  const list = $("#results");
  list.replaceChildren(...state.results.map((result, i) => {
    const card = element("div", { className: "result", tabIndex: 0 },
      element("img", { src: result.thumbnail, alt: result.name, loading: "lazy" }),
      element("div", { className: "meta" },
        element("span", { className: "rank", textContent: `#${result.rank}` }),
        element("span", { className: "score", textContent: confidence(result),
          title: "confidence that this is a true match" })),
      element("div", { className: "name", textContent: result.name, title: result.path }),
      element("div", { className: "reason", textContent: reason(result) }));
    card.dataset.testid = "result";
    card.dataset.index = i;
    card.dataset.imageId = result.image_id;
    card.setAttribute("role", "listitem");
    card.addEventListener("click", () => openDetail(i));
    return card;
  }));
  if (state.response && !state.results.length) {
    list.append(element("p", { className: "muted", textContent: "No results." }));
  }
  const k = pageSize();
  $("#prev-page").disabled = state.offset === 0;
  $("#next-page").disabled = state.results.length < k;
  $("#page-info").textContent = state.results.length ?
    `${state.offset + 1}–${state.offset + state.results.length}` : "";
}

$("#channel").addEventListener("change", () => search(0));
$("#prev-page").addEventListener("click", () =>
  search(Math.max(0, state.offset - pageSize()), { paging: true }));
$("#next-page").addEventListener("click", () =>
  search(state.offset + pageSize(), { paging: true }));
wireClues(() => search(0));

// Arrow keys move between results (up and down by a row), Enter opens one.
$("#results").addEventListener("keydown", (event) => {
  const card = event.target.closest(".result");
  if (!card) return;
  const cards = [...document.querySelectorAll("#results .result")];
  const index = cards.indexOf(card);
  const perRow = cards.filter((c) => c.offsetTop === cards[0].offsetTop).length || 1;
  const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -perRow, ArrowDown: perRow }[event.key];
  if (event.key === "Enter") {
    openDetail(index);
  } else if (step !== undefined) {
    const next = cards[Math.max(0, Math.min(cards.length - 1, index + step))];
    next.focus();
  } else {
    return;
  }
  event.preventDefault();
});

// -- the detail view: query and result side by side, with the evidence drawn --------------

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`could not load ${src}`));
    image.src = src;
  });
}

function strokeBox(ctx, box, dx, scale, colour, label) {
  const [x0, y0, x1, y1] = box.map((v) => v * scale);
  ctx.strokeStyle = colour;
  ctx.lineWidth = 3;
  ctx.strokeRect(dx + x0, y0, x1 - x0, y1 - y0);
  if (label) {
    ctx.fillStyle = colour;
    ctx.font = "bold 14px sans-serif";
    ctx.fillText(label, dx + x0 + 2, Math.max(14, y0 - 4));
  }
}

// The query (when the search had one) and the result side by side, with the evidence drawn:
// the query's box, the local matches, the faces and the region matched.
function drawEvidence(result, image) {
  const query = state.asked.bitmap;
  const gap = query ? 24 : 0;
  const queryWidth = (h) => (query ? query.width * h / query.height : 0);
  const maxWidth = Math.min(1200, window.innerWidth - 80);
  let height = Math.min(440, window.innerHeight - 360);
  const widthAt = (h) => queryWidth(h) + gap + image.width * h / image.height;
  if (widthAt(height) > maxWidth) height = height * maxWidth / widthAt(height);
  const qs = query ? height / query.height : 0;
  const rs = height / image.height;
  const dx = queryWidth(height) + gap;  // where the result starts
  const detail = $("#detail-canvas");
  detail.width = Math.round(widthAt(height));
  detail.height = Math.round(height);
  const ctx = detail.getContext("2d");
  if (query) ctx.drawImage(query, 0, 0, query.width * qs, height);
  ctx.drawImage(image, dx, 0, image.width * rs, height);
  if (query && state.asked.box) strokeBox(ctx, state.asked.box, 0, qs, "#ffd60a", "box");

  const local = evidence(result, "local");
  const matches = (query && local && local.matches) || [];
  ctx.lineWidth = 1.5;
  matches.forEach(([qx, qy, x, y], i) => {
    ctx.strokeStyle = `hsla(${(i * 47) % 360}, 90%, 55%, 0.8)`;
    ctx.beginPath();
    ctx.moveTo(qx * qs, qy * qs);
    ctx.lineTo(dx + x * rs, y * rs);
    ctx.stroke();
  });
  const faces = evidence(result, "faces");
  if (query && faces && faces.query_face_box) {
    strokeBox(ctx, faces.query_face_box, 0, qs, "#2ec4b6", "face");
  }
  if (faces && faces.face_box) {
    strokeBox(ctx, faces.face_box, dx, rs, "#2ec4b6", faces.person && faces.person.name);
  }
  const region = evidence(result, "regions");
  const part = region && region.region_box && region.region !== "image";  // not all of it
  if (part) strokeBox(ctx, region.region_box, dx, rs, "#f77f00", regionLabel(region));
  detail.dataset.matches = matches.length;
  detail.dataset.faces = faces && faces.face_box ? 1 : 0;
  detail.dataset.regions = part ? 1 : 0;
  detail.dataset.drawn = "true";
}

function facts(result) {
  const rows = [["rank", result.rank], ["confidence", confidence(result)],
    ["size", `${result.width}×${result.height}`], ["path", result.path]];
  const local = evidence(result, "local");
  if (local && local.inliers !== undefined) rows.push(["inliers", local.inliers]);
  if (local && local.transform) {
    rows.push(["transform", local.transform.map((r) => r.map(fmt).join(" ")).join(" | ")]);
  }
  const faces = evidence(result, "faces");
  if (faces && faces.similarity !== undefined) {
    rows.push(["face similarity", fmt(faces.similarity)], ["same person", faces.same_person ? "yes" : "no"]);
    if (faces.person) rows.push(["person", faces.person.name || `#${faces.person.id}`]);
  }
  rows.push(...clueFacts(result, (channel) => evidence(result, channel)));
  const scores = (result.evidence || {}).channel_scores || {};
  if (Object.keys(scores).length > 0) {
    rows.push(["channel scores", Object.entries(scores)
      .map(([name, score]) => `${name} ${fmt(score)}`).join(" · ")]);
  }
  rows.push(...otherFacts(result, ["global", "local", "faces", "regions", "text"]));
  return rows.flatMap(([term, value]) => [element("dt", { textContent: term }),
    element("dd", { textContent: String(value) })]);
}

let detailIndex = null;

async function openDetail(index) {
  const result = state.results[index];
  detailIndex = index;
  const dialog = $("#detail");
  $("#detail-title").textContent = result.name;
  $("#detail-reason").textContent = reason(result);
  $("#detail-facts").replaceChildren(...facts(result));
  $("#detail-canvas").dataset.drawn = "false";
  if (!dialog.open) dialog.showModal();
  $("#detail-previous").disabled = index === 0;
  $("#detail-next").disabled = index === state.results.length - 1;
  logClick(state.response, result);
  showAnnotations(result.image_id);
  const image = await attempt(() => loadImage(`/images/${result.image_id}`));
  if (image && detailIndex === index && dialog.open) drawEvidence(result, image);
}

$("#detail-close").addEventListener("click", () => $("#detail").close());

// Previous and next result without closing the view: the buttons, or the arrow keys.
function stepDetail(by) {
  const next = detailIndex + by;
  if (detailIndex !== null && next >= 0 && next < state.results.length) openDetail(next);
}
$("#detail-previous").addEventListener("click", () => stepDetail(-1));
$("#detail-next").addEventListener("click", () => stepDetail(1));
$("#detail").addEventListener("keydown", (event) => {
  if (event.target.closest("input, textarea")) return;  // typing a tag moves nothing
  if (event.key === "ArrowLeft") stepDetail(-1);
  if (event.key === "ArrowRight") stepDetail(1);
});

// More like this: the result becomes the query, as if its file had been dropped.
$("#more-like-this").addEventListener("click", () => attempt(async () => {
  const result = state.results[detailIndex];
  const response = await fetch(`/images/${result.image_id}`);
  if (!response.ok) throw new Error(`GET /images/${result.image_id}: ${response.status}`);
  const blob = await response.blob();
  $("#detail").close();
  await setQuery(new File([blob], result.name, { type: blob.type }));
}));
$("#detail").addEventListener("close", () => {
  closeAnnotations();
  const card = document.querySelector(`#results .result[data-index="${detailIndex}"]`);
  if (card) card.focus();
});

// -- tabs, token and start ----------------------------------------------------------------

function showView(view) {
  document.querySelectorAll("nav [role=tab]").forEach((tab) =>
    tab.setAttribute("aria-selected", String(tab.dataset.view === view)));
  $("#search-view").hidden = view !== "search";
  $("#people-view").hidden = view !== "people";
  if (location.hash !== `#${view}`) history.replaceState(null, "", `#${view}`);
  if (view === "people") loadPeople();
}

document.querySelectorAll("nav [role=tab]").forEach((tab) =>
  tab.addEventListener("click", () => showView(tab.dataset.view)));

$("#token").value = localStorage.getItem("lookalike-token") || "";
$("#token").addEventListener("input", () => localStorage.setItem("lookalike-token", token()));

async function start() {
  const health = await attempt(() => api("/health"));
  if (health) {
    $("#health").textContent = `${health.images} images`;
    for (const channel of health.channels) {
      $("#channel").append(element("option", { value: channel, textContent: channel }));
    }
    $("#people-tab").hidden = !health.channels.includes("faces");
    const text = health.channels.includes("text");  // else the button searches by the image
    $("#text-query").hidden = !text;
    $("#clear-text").hidden = !text;
    await attempt(loadCategories);
  }
  showView(location.hash === "#people" && health && health.channels.includes("faces") ?
    "people" : "search");
  document.body.dataset.ready = "true";
}

start();
