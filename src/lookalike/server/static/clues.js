// The clues of a search beyond its image: a text, filters and the fusion of the channels;
// the reasons the regions and text channels give for a result; an image's annotations
// (what people and models wrote about it), which an owner with the token can edit; and the
// clicks on results, which train the learned ranker.

import { $, api, element, fmt, plural, token } from "./api.js";

// -- the text, the filters and the fusion -------------------------------------------------

let text = "";  // the text of the search shown (pages of it keep it)

// Takes the text box's text as the text of the next searches; returns it.
export function takeText() {
  text = $("#text-query").value.trim();
  $("#clear-text").disabled = !$("#text-query").value;
  return text;
}

export function queryText() {
  return text;
}

function filters() {
  return {
    category: $("#filter-category").value,
    folder: $("#filter-folder").value.trim(),
    date_from: $("#filter-from").value,
    date_to: $("#filter-to").value,
  };
}

let searchedWith = "";  // the filters and fusion of the last search, to skip repeats

// Adds the text, the fusion and the filters to a search's form.
export function appendClues(form) {
  if (text) form.append("text", text);
  form.append("fusion", $("#fusion").value);
  form.append("log", "true");  // so that opening a result can be logged as a click
  const chosen = filters();
  for (const [name, value] of Object.entries(chosen)) {
    if (value) form.append(name, value);
  }
  searchedWith = JSON.stringify([chosen, $("#fusion").value]);
}

// What a search was for, in words: "the image inside 1,2,3,4 and “kitty”, in drinks".
export function describeQuery(response) {
  const what = [];
  if (response.query) {
    const box = response.query.box;
    what.push(`the image${box ? ` inside ${box.map(Math.round).join(",")}` : ""}`);
  }
  if (response.text) what.push(`“${response.text}”`);
  const f = response.filters || {};
  const limits = [];
  if (f.categories && f.categories.length) limits.push(`in ${f.categories.join(" or ")}`);
  if (f.folder) limits.push(`under ${f.folder}`);
  if (f.date_from) limits.push(`from ${f.date_from}`);
  if (f.date_to) limits.push(`to ${f.date_to}`);
  return [what.join(" and "), ...limits].join(", ");
}

// Fills the category filter from the server, keeping the one chosen.
export async function loadCategories() {
  const categories = await api("/categories");
  const select = $("#filter-category");
  const chosen = select.value;
  const names = categories.map((c) => c.name);
  if (chosen && !names.includes(chosen)) categories.push({ name: chosen, images: 0 });
  select.replaceChildren(element("option", { value: "", textContent: "any" }),
    ...categories.map((c) => element("option", { value: c.name,
      textContent: `${c.name} (${c.images})` })));
  select.value = chosen;
}

// Wires the text box and the filters; ``search()`` runs the current search again.
export function wireClues(search) {
  $("#text-form").addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  $("#text-query").addEventListener("input", () => {
    $("#clear-text").disabled = !$("#text-query").value;
  });
  $("#clear-text").addEventListener("click", () => {
    $("#text-query").value = "";
    search();
    $("#text-query").focus();
  });
  // A filter's change searches again; typing a folder counts when it is done (Enter or
  // leaving the field), and a change back to what was searched is no new search.
  const changed = () => {
    if (JSON.stringify([filters(), $("#fusion").value]) !== searchedWith) search();
  };
  for (const id of ["#filter-category", "#filter-folder", "#filter-from", "#filter-to", "#fusion"]) {
    $(id).addEventListener("change", changed);
  }
  $("#filter-folder").addEventListener("keydown", (event) => {
    if (event.key === "Enter") changed();
  });
}

// -- evidence -------------------------------------------------------------------------------

// The evidence of one channel for a result, or null when that channel did not find it:
// every result's evidence is nested by channel, with the channels' scores beside.
export function evidenceOf(result, channel) {
  const own = (result.evidence || {})[channel];
  return own && typeof own === "object" && !Array.isArray(own) ? own : null;
}

function boxText(box) {
  return box.map(Math.round).join(",");
}

// "cat" or "window": what a region match is, for a box's label.
export function regionLabel(region) {
  if (region.region === "object") return region.label || "object";
  return region.region === "image" ? "whole image" : "window";
}

// The regions and text channels' rows of a result's facts.
export function clueFacts(result, evidence) {
  const rows = [];
  const region = evidence("regions");
  if (region && region.region_box) {
    const score = region.label_score !== undefined ? ` (${fmt(region.label_score)})` : "";
    rows.push(["region", `${regionLabel(region)}${score} at ${boxText(region.region_box)}`]);
    if (region.similarity !== undefined) rows.push(["region similarity", fmt(region.similarity)]);
  }
  const words = evidence("text");
  if (words) {
    if (words.matched) rows.push(["matched text", words.matched]);
    if (words.bm25 !== undefined) rows.push(["bm25", fmt(words.bm25)]);
    if (words.semantic !== undefined) rows.push(["text similarity", fmt(words.semantic)]);
    if (words.query_labels) rows.push(["query labels", words.query_labels.join(", ")]);
  }
  return rows;
}

// Rows for the evidence of channels the page draws nothing for (a channel added later):
// each channel's plain values, so every clue still shows.
export function otherFacts(result, known) {
  const rows = [];
  for (const [channel, own] of Object.entries(result.evidence || {})) {
    if (channel === "channel_scores" || known.includes(channel) || !own) continue;
    const values = Object.entries(own).filter(([, v]) => v === null || typeof v !== "object")
      .map(([key, v]) => `${key} ${typeof v === "number" ? fmt(v) : v}`);
    rows.push([channel, values.join(", ")]);
  }
  return rows;
}

// -- clicks ---------------------------------------------------------------------------------

// Logs that a result of the search shown was opened (no token needed); it trains the learned
// ranker. A failure is only noted: opening the result matters more.
export function logClick(response, result) {
  const dialog = $("#detail");
  delete dialog.dataset.clickRank;
  if (!response || !response.query_id) return;
  api("/clicks", { method: "POST", json: { query_id: response.query_id, image_id: result.image_id } })
    .then((answer) => { dialog.dataset.clickRank = answer.rank; })
    .catch((error) => console.warn("the click was not logged:", error.message));
}

// -- annotations ----------------------------------------------------------------------------

let noted = null;  // the id of the image whose annotations the detail shows

function showDetailError(error) {
  $("#detail-error").textContent = error ? String(error.message || error) : "";
  $("#detail-error").hidden = !error;
}

// Runs an edit of the annotations, then shows them (and the categories) as they now are.
async function edit(action) {
  const imageId = noted;
  showDetailError(null);
  try {
    await action();
  } catch (error) {
    showDetailError(error);
  }
  if (noted === imageId) await showAnnotations(imageId);
  await loadCategories().catch(showDetailError);
}

function annotationItem(note, editable) {
  const source = note.score === null ? note.source : `${note.source} ${fmt(note.score)}`;
  const item = element("li", { className: "annotation" },
    element("span", { className: "kind", textContent: note.kind }),
    element("span", { className: "note-text", textContent: note.text }),
    element("span", { className: "muted note-source", textContent: source }));
  item.dataset.annotationId = note.id;
  if (editable) {
    const remove = element("button", { type: "button", className: "remove-annotation",
      textContent: "×", title: `remove the ${note.kind} “${note.text}”` });
    remove.setAttribute("aria-label", remove.title);
    remove.addEventListener("click", () => edit(async () => {
      await api(`/annotations/${note.id}`, { method: "DELETE" });
    }));
    item.append(remove);
  }
  return item;
}

// Shows what is written about an image: people's texts first, then the models' labels.
export async function showAnnotations(imageId) {
  noted = imageId;
  const list = $("#annotations");
  list.dataset.loaded = "false";
  let info;
  try {
    info = await api(`/images/${imageId}/info`);
  } catch (error) {
    if (noted === imageId) showDetailError(error);
    return;
  }
  if (noted !== imageId) return;
  const editable = Boolean(token());
  const notes = [...info.annotations].sort((a, b) =>
    (a.source === "user" ? 0 : 1) - (b.source === "user" ? 0 : 1));
  list.replaceChildren(...notes.map((note) => annotationItem(note, editable)));
  $("#annotations-info").textContent = (notes.length ? `${plural(notes.length, "annotation")}.` :
    "Nothing is written about this image yet.") + (editable ? "" : " Enter the token to edit.");
  $("#add-tag-form").hidden = !editable;
  list.dataset.loaded = "true";
}

export function closeAnnotations() {
  noted = null;
  showDetailError(null);
}

$("#add-tag-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const tag = $("#add-tag").value.trim();
  if (!tag || noted === null) return;
  const imageId = noted;
  edit(async () => {
    await api(`/images/${imageId}/annotations`, { method: "POST", json: { kind: "tag", text: tag } });
    $("#add-tag").value = "";
  });
});
