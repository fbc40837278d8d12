// facetrust's console tabs: People (clusters, crops, merge/split/name), Review (searches awaiting
// review: probe beside candidates, decision recorded) and Audit (read, verify, export the chain).
// Uses app.js's signed `call` and its rendering helpers; see docs/people.md and docs/http.md.
"use strict";

const people = { collection: null, cluster: null, next: null, shown: 0 };
let PEOPLE_PAGE = 50; // people a page: each shows its representative's crop (a test shortens it)
const cropUrls = [];

/** An <img> of a face's review crop, or a placeholder when none is kept (or it cannot be read). */
async function cropFigure(collection, faceId, caption) {
  const figure = el("figure", null, { class: "crop" });
  try {
    const out = await call("GetFaceCrop", { CollectionId: collection, FaceId: faceId });
    const bytes = Uint8Array.from(atob(out.Image), (c) => c.charCodeAt(0));
    const url = URL.createObjectURL(new Blob([bytes], { type: out.ContentType }));
    cropUrls.push(url);
    figure.append(el("img", null, { src: url, alt: `Face ${faceId}`, width: "64", height: "64" }));
  } catch (err) {
    const why = err instanceof ApiError && err.type === "ResourceNotFoundException" ? "no crop kept" : err.message;
    figure.append(el("div", why, { class: "no-crop", role: "img", "aria-label": `Face ${faceId}: ${why}` }));
  }
  figure.append(el("figcaption", caption));
  return figure;
}

function releaseCrops() {
  while (cropUrls.length) URL.revokeObjectURL(cropUrls.pop());
}

// ---- People ---------------------------------------------------------------------------------

/** Show a page of people: the first (replacing what was shown) or, with `more`, the next one after it. */
function renderPeople(out, more = false) {
  if (!more) {
    releaseCrops();
    people.shown = 0;
  }
  people.shown += out.People.length;
  people.next = out.NextToken || null;
  const noun = people.shown === 1 ? "person" : "people";
  const count = `${people.shown} ${noun}${people.next ? " shown, largest first" : ""}`;
  $("people-summary").textContent =
    `${count}, ${out.UnclusteredFaces} ` +
    `${out.UnclusteredFaces === 1 ? "face" : "faces"} unclustered (Similarity threshold ${out.Threshold}).`;
  const items = out.People.map((p) => {
    const li = el("li", null, { "data-cluster": p.ClusterId });
    const tick = el("input", null, { type: "checkbox", id: `merge-${p.ClusterId}`, value: p.ClusterId });
    const label = el("label", `${p.UserId || "unnamed"}: ${p.Size} faces, cohesion ${formatSimilarity(p.Cohesion)}`, {
      for: `merge-${p.ClusterId}`,
      "data-field": "person",
    });
    const open = el("button", "Open", { type: "button", class: "secondary", "aria-label": `Open cluster ${p.ClusterId}` });
    open.addEventListener("click", () => openPerson(p.ClusterId));
    const holder = el("span", null, { class: "rep" });
    if (p.RepresentativeFaceId) {
      cropFigure(people.collection, p.RepresentativeFaceId, "representative").then((f) => holder.append(f));
    }
    li.append(holder, tick, label, open);
    return li;
  });
  if (more) $("people-list").append(...items);
  else $("people-list").replaceChildren(...items);
  $("people-more").hidden = !people.next;
  $("people-result").hidden = false;
}

function firstPeople() {
  return call("ListPeople", { CollectionId: people.collection, MaxResults: PEOPLE_PAGE });
}

async function morePeople() {
  await busy("people", "Listing more people…", $("people-more"), async () => {
    const page = { CollectionId: people.collection, MaxResults: PEOPLE_PAGE, NextToken: people.next };
    renderPeople(await call("ListPeople", page), true);
  });
}

async function listPeople(event, full = false) {
  if (event) event.preventDefault();
  people.collection = $("people-collection").value.trim();
  $("person-detail").hidden = true;
  $("people-result").hidden = true; // another collection's clusters never stay to be acted on
  $("people-list").replaceChildren();
  const button = full ? $("people-full") : $("people-form").querySelector("button[type=submit]");
  await busy("people", full ? "Clustering every face…" : "Listing people…", button, async () => {
    const pass = { CollectionId: people.collection, MaxResults: PEOPLE_PAGE };
    renderPeople(full ? await call("ClusterFaces", pass) : await firstPeople());
  });
}

async function openPerson(clusterId) {
  await busy("people", "Loading the cluster…", null, async () => {
    const { Person: p } = await call("DescribePerson", { CollectionId: people.collection, ClusterId: clusterId });
    people.cluster = clusterId;
    $("person-title").textContent = `Cluster ${clusterId}`;
    $("person-facts").textContent =
      `${p.Size} faces, cohesion ${formatSimilarity(p.Cohesion)}, user ${p.UserId || "none yet"}.`;
    const faces = await Promise.all(
      (p.FaceIds || []).map(async (faceId) => {
        const li = el("li", null, { "data-face": faceId });
        const tick = el("input", null, { type: "checkbox", id: `split-${faceId}`, value: faceId });
        li.append(
          await cropFigure(people.collection, faceId, faceId === p.RepresentativeFaceId ? "representative" : ""),
          tick,
          el("label", `not this person (${faceId.slice(0, 8)}…)`, { for: `split-${faceId}` }),
        );
        return li;
      }),
    );
    $("person-faces").replaceChildren(...faces);
    $("person-detail").hidden = false;
    $("person-title").focus();
  });
}

function ticked(container) {
  return Array.from(container.querySelectorAll("input[type=checkbox]:checked"), (box) => box.value);
}

async function mergePeople() {
  const ids = ticked($("people-list"));
  await busy("people", "Merging…", $("people-merge"), async () => {
    if (ids.length < 2) throw new ApiError("InvalidParameterException", "Tick at least two clusters to merge.");
    await call("MergePeople", { CollectionId: people.collection, ClusterIds: ids });
    renderPeople(await firstPeople());
  });
  if (ids.length >= 2 && $("people-error").hidden) await openPerson(ids[0]);
}

async function splitPerson() {
  const faces = ticked($("person-faces"));
  let kept = false; // whether the cluster is still there (not if the split left it under two faces)
  await busy("people", "Splitting…", $("person-split"), async () => {
    if (!faces.length) throw new ApiError("InvalidParameterException", "Tick the faces that are not this person.");
    await call("SplitPerson", { CollectionId: people.collection, ClusterId: people.cluster, FaceIds: faces });
    renderPeople(await firstPeople());
    try {
      await call("DescribePerson", { CollectionId: people.collection, ClusterId: people.cluster });
      kept = true;
    } catch (err) {
      if (!(err instanceof ApiError && err.type === "ResourceNotFoundException")) throw err;
    }
  });
  if (!$("people-error").hidden) return;
  if (kept) await openPerson(people.cluster);
  else $("person-detail").hidden = true;
}

async function namePerson(event) {
  event.preventDefault();
  const userId = $("person-name").value.trim();
  await busy("people", "Naming…", $("person-name-form").querySelector("button"), async () => {
    await call("NamePerson", { CollectionId: people.collection, ClusterId: people.cluster, UserId: userId });
    renderPeople(await firstPeople());
  });
  if ($("people-error").hidden) await openPerson(people.cluster);
}

// ---- Review ---------------------------------------------------------------------------------

function probeFigure(item) {
  if (item.SearchedFaceId) return cropFigure(item.CollectionId, item.SearchedFaceId, "probe (stored face)");
  const file = $("review-probe").files[0];
  if (file) {
    const url = URL.createObjectURL(file);
    cropUrls.push(url);
    const figure = el("figure", null, { class: "crop probe" });
    figure.append(el("img", null, { src: url, alt: "Probe photo", class: "probe-photo" }), el("figcaption", "probe"));
    return Promise.resolve(figure);
  }
  const figure = el("figure", null, { class: "crop probe" });
  figure.append(el("div", "probe photo not kept: choose it above", { class: "no-crop" }), el("figcaption", "probe"));
  return Promise.resolve(figure);
}

async function reviewItem(item) {
  const li = el("li", null, { "data-search": String(item.SearchSequence) });
  li.append(
    el("h3", `Search ${item.SearchSequence} in ${item.CollectionId}`),
    el("p", `${item.Operation} at ${formatTime(item.At)}, threshold ${item.Threshold}, ${item.GallerySize} faces searched.`, {
      class: "note",
    }),
  );
  const row = el("div", null, { class: "side-by-side" });
  row.append(await probeFigure(item));
  for (const c of item.Candidates) {
    const figure = await cropFigure(item.CollectionId, c.FaceId, "");
    figure.querySelector("figcaption").replaceChildren(
      el("span", formatSimilarity(c.Similarity), { "data-field": "similarity" }),
      document.createTextNode(" similarity, est. FMR "),
      el("span", formatFmr(c.EstimatedFMR, Boolean(c.FalseMatchRateIsBound)), { "data-field": "fmr" }),
    );
    row.append(figure);
  }
  if (!item.Candidates.length) row.append(el("p", "No candidates were returned.", { class: "note" }));
  const form = el("form", null, { class: "decision" });
  const seq = item.SearchSequence;
  const select = el("select", null, { id: `decision-${seq}` });
  for (const value of ["confirmed", "rejected", "inconclusive"]) select.append(el("option", value, { value }));
  const note = el("input", null, { id: `note-${seq}`, maxlength: "2000" });
  const decide = el("button", "Record decision", { type: "submit" });
  const fieldOf = (label, input) => {
    const field = el("div", null, { class: "field" });
    field.append(el("label", label, { for: input.id }), input);
    return field;
  };
  form.append(fieldOf("Decision", select), fieldOf("Note", note), decide);
  form.addEventListener("submit", (event) => recordDecision(event, li, seq, select, note, decide));
  li.append(row, form);
  return li;
}

async function recordDecision(event, li, seq, select, note, button) {
  event.preventDefault();
  await busy("review", "Recording…", button, async () => {
    const out = await call("RecordReview", { SearchSequence: seq, Decision: select.value, Note: note.value });
    li.replaceChildren(el("p", `Search ${seq}: ${out.Decision}, recorded as audit entry ${out.AuditSequence}.`, {
      "data-field": "recorded",
    }));
  });
}

async function loadReviews(event) {
  event.preventDefault();
  releaseCrops();
  $("review-summary").textContent = ""; // the queue shown is the one just loaded, or none
  $("review-list").replaceChildren();
  await busy("review", "Loading the review queue…", $("review-form").querySelector("button"), async () => {
    const out = await call("ListReviewQueue", {});
    const n = out.Searches.length;
    const searches = n === 1 ? "1 search" : `${n} searches`;
    // a page of the queue: with a NextToken more searches wait after the ones shown
    $("review-summary").textContent = !n
      ? "No searches await review."
      : out.NextToken
        ? `The oldest ${searches} awaiting review; more wait after them.`
        : `${searches} ${n === 1 ? "awaits" : "await"} review, oldest first.`;
    $("review-list").replaceChildren(...(await Promise.all(out.Searches.map(reviewItem))));
  });
}

// ---- Audit ----------------------------------------------------------------------------------

async function auditEntries() {
  // Everything up to the head the first page reported: NextSequence stops before this key's own
  // reads at the end of the log (docs/http.md#getauditlog), so go on from the last entry to it.
  const entries = [];
  let after = 0;
  let head = null;
  for (;;) {
    const out = await call("GetAuditLog", { AfterSequence: after, MaxResults: 1000 });
    entries.push(...out.Entries);
    head = head ?? out.Head;
    const last = entries.length ? entries[entries.length - 1].Sequence : 0;
    const upto = Number(String(head).split(":")[0]);
    if (out.NextSequence != null) after = out.NextSequence;
    else if (out.Entries.length && last < upto) after = last;
    else return { entries, head };
  }
}

async function readAudit() {
  $("audit-table").hidden = true; // a failed read shows no earlier one
  await busy("audit", "Reading the log…", $("audit-read"), async () => {
    const { entries } = await auditEntries();
    const rows = entries.slice(-200).reverse().map((e) =>
      row([
        td(e.Sequence, "seq"),
        td(formatTime(e.At), "at"),
        td(e.Entry.operation, "operation"),
        codeTd(e.Entry.key_id || "", "key"),
        td(e.Entry.role || "", "role"),
        td(e.Entry.collection || "", "collection"),
        td(e.Entry.outcome || "", "outcome"),
      ]),
    );
    $("audit-caption").textContent = `Latest ${rows.length} of ${entries.length} entries, newest first`;
    $("audit-rows").replaceChildren(...rows);
    $("audit-table").hidden = false;
  });
}

async function verifyAudit() {
  $("audit-verdict").hidden = true; // never an earlier "intact" beside a failed verification
  await busy("audit", "Verifying the chain…", $("audit-verify"), async () => {
    const out = await call("VerifyAuditLog", {});
    const verdict = $("audit-verdict");
    verdict.dataset.valid = String(out.Valid);
    verdict.className = `verdict ${out.Valid ? "match" : "no-match"}`;
    verdict.textContent = out.Valid
      ? `The chain is intact: ${out.Entries} entries, head ${out.Head}.`
      : `The chain is broken at entry ${out.FirstBadSequence}: ${out.Problem}`;
    verdict.hidden = false;
  });
}

async function exportAudit() {
  $("audit-download").hidden = true; // an earlier export's link does not stand for a failed one
  await busy("audit", "Exporting…", $("audit-export"), async () => {
    const { entries, head } = await auditEntries();
    const blob = new Blob([JSON.stringify({ head, entries }, null, 1)], { type: "application/json" });
    const link = $("audit-download");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.download = `facetrust-audit-${head.replace(":", "-").slice(0, 24)}.json`;
    link.textContent = `Download the exported log (${entries.length} entries, head ${head})`;
    link.hidden = false;
  });
}

function startConsole() {
  $("people-form").addEventListener("submit", listPeople);
  $("people-full").addEventListener("click", () => listPeople(null, true));
  $("people-merge").addEventListener("click", mergePeople);
  $("people-more").addEventListener("click", morePeople);
  $("person-split").addEventListener("click", splitPerson);
  $("person-name-form").addEventListener("submit", namePerson);
  $("review-form").addEventListener("submit", loadReviews);
  $("audit-read").addEventListener("click", readAudit);
  $("audit-verify").addEventListener("click", verifyAudit);
  $("audit-export").addEventListener("click", exportAudit);
}

startConsole();
