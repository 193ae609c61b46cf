// The people view: the faces channel's people, which the owner names, merges and splits, and
// the faces rejected from them ("not this person"). Only calls the HTTP API.

import { $, api, attempt, element, plural, showMessage } from "./api.js";

const view = {
  person: null,    // the person shown
  merging: [],     // people ticked for a merge, in the order ticked
};

// -- people -------------------------------------------------------------------------------

function personLabel(person) {
  return person.name || `Unnamed #${person.id}`;
}

function faceImage(faceId, alt) {
  return element("img", { src: `/faces/${faceId}/thumbnail`, alt, loading: "lazy" });
}

export async function loadPeople() {
  const data = await attempt(() => api("/people"));
  if (!data) return;
  view.merging = view.merging.filter((id) => data.people.some((p) => p.id === id));
  $("#people-info").textContent =
    `${data.people.length} people, ${plural(data.unassigned_faces, "face")} not grouped yet`;
  $("#people").replaceChildren(...data.people.map((person) => {
    const tick = element("input", { type: "checkbox", className: "person-select",
      checked: view.merging.includes(person.id), title: "select to merge" });
    tick.setAttribute("aria-label", `select ${personLabel(person)} to merge`);
    tick.addEventListener("change", () => {
      view.merging = view.merging.filter((id) => id !== person.id);
      if (tick.checked) view.merging.push(person.id);
      $("#merge-button").disabled = view.merging.length < 2;
    });
    const card = element("div", { className: "person", tabIndex: 0 },
      person.cover ? faceImage(person.cover.face_id, personLabel(person)) : element("div"),
      element("div", { className: "person-name", textContent: personLabel(person) }),
      element("div", { className: "muted", textContent: plural(person.faces, "face") }), tick);
    card.dataset.personId = person.id;
    card.dataset.testid = "person";
    card.setAttribute("role", "listitem");
    if (view.person && view.person.id === person.id) card.classList.add("chosen");
    card.addEventListener("click", (event) => {
      if (event.target !== tick) openPerson(person.id);
    });
    card.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === card) openPerson(person.id);
    });
    return card;
  }));
  $("#merge-button").disabled = view.merging.length < 2;
  if (view.person && !data.people.some((p) => p.id === view.person.id)) {
    view.person = null;
    $("#person-panel").hidden = true;
  }
}

function selectedFaces() {
  return [...document.querySelectorAll("#faces .face-select:checked")]
    .map((tick) => Number(tick.dataset.faceId));
}

function updateFaceButtons() {
  const count = selectedFaces().length;
  $("#split-button").disabled = count === 0;
  $("#reject-button").disabled = count === 0;
  $("#hide-button").disabled = count === 0;
}

async function openPerson(id) {
  const data = await attempt(() => api(`/people/${id}/faces`));
  if (!data) return;
  view.person = data.person;
  document.querySelectorAll("#people .person").forEach((card) =>
    card.classList.toggle("chosen", Number(card.dataset.personId) === id));
  $("#person-panel").hidden = false;
  $("#person-title").textContent = `${personLabel(data.person)}: ${plural(data.person.faces, "face")}`;
  $("#person-name-input").value = data.person.name || "";
  $("#faces").replaceChildren(...data.faces.map((face) => {
    const name = face.path.split("/").pop();
    const tick = element("input", { type: "checkbox", className: "face-select" });
    tick.dataset.faceId = face.face_id;
    tick.setAttribute("aria-label", `select the face in ${name}`);
    tick.addEventListener("change", updateFaceButtons);
    const card = element("label", { className: "face", title: face.path },
      faceImage(face.face_id, `face in ${name}`), element("span", { textContent: name }), tick);
    card.dataset.faceId = face.face_id;
    if (face.confirmed) card.classList.add("confirmed");
    return card;
  }));
  updateFaceButtons();
}

async function afterChange(message, personId) {
  showMessage(message);
  await loadPeople();
  if (personId !== undefined) await openPerson(personId);
}

$("#rename-button").addEventListener("click", () => attempt(async () => {
  const name = $("#person-name-input").value.trim() || null;
  const person = await api(`/people/${view.person.id}/name`, { method: "POST", json: { name } });
  await afterChange(`Renamed to ${personLabel(person)}.`, person.id);
}));
$("#person-name-input").addEventListener("keydown", (event) => {
  if (event.key === "Enter") $("#rename-button").click();
});

$("#merge-button").addEventListener("click", () => attempt(async () => {
  const person = await api("/people/merge", { method: "POST", json: { people: view.merging } });
  view.merging = [];
  await afterChange(`Merged into ${personLabel(person)}.`, person.id);
}));

$("#split-button").addEventListener("click", () => attempt(async () => {
  const faces = selectedFaces();
  const person = await api(`/people/${view.person.id}/split`, { method: "POST", json: { faces } });
  await afterChange(`${plural(faces.length, "face")} split off into ${personLabel(person)}.`, person.id);
}));

$("#reject-button").addEventListener("click", () => attempt(async () => {
  const faces = selectedFaces();
  const data = await api("/faces/reject", { method: "POST", json: { faces } });
  await afterChange(`${plural(data.rejected.length, "face")} no longer ${personLabel(view.person)}.`,
    view.person.id);
}));

$("#hide-button").addEventListener("click", () => attempt(async () => {
  const faces = selectedFaces();
  const everyFace = faces.length === document.querySelectorAll("#faces .face-select").length;
  const data = await api("/faces/hide", { method: "POST", json: { faces } });
  // A person left without faces is gone: then only the list is shown again.
  await afterChange(`${plural(data.hidden.length, "face")} hidden: not a face.`,
    everyFace ? undefined : view.person.id);
}));

$("#update-people").addEventListener("click", () => attempt(async () => {
  const report = await api("/people/update", { method: "POST", json: { reset: false } });
  await afterChange(`${plural(report.clustered, "face")} grouped: ${report.new_people} new people, ` +
    `${report.joined} joined known people.`);
}));
