// facetrust's web page: three views over the server's Rekognition JSON protocol (POST / with
// X-Amz-Target), every request signed in the browser with AWS Signature Version 4 (WebCrypto).
// No framework, no build step, nothing fetched from elsewhere. See docs/http.md, "Web page".
"use strict";

const REGION = "us-east-1";
const SERVICE = "rekognition";
const CONTENT_TYPE = "application/x-amz-json-1.1";
// what the server requires: every header that selects behaviour; the body is signed by its hash
const SIGNED_HEADERS = "content-type;host;x-amz-date;x-amz-target";
const STORE_ID = "facetrust.keyId";
const STORE_SECRET = "facetrust.secret";
const FACES_PER_PAGE = 25;

const encoder = new TextEncoder();
const $ = (id) => document.getElementById(id);

// ---- SigV4 ----------------------------------------------------------------------------------

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(bytes) {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmac(keyBytes, text) {
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", key, encoder.encode(text));
}

/** "2024-01-31T23:59:59.123Z" → "20240131T235959Z" */
function amzDate(now) {
  return now.toISOString().replace(/\.\d+Z$/, "Z").replace(/[-:]/g, "");
}

/** The headers of a request to POST / signed with `key` ({id, secret}). */
async function signedHeaders(key, target, body, now = new Date()) {
  const stamp = amzDate(now);
  const day = stamp.slice(0, 8);
  const scope = `${day}/${REGION}/${SERVICE}/aws4_request`;
  const canonical = [
    "POST",
    "/",
    "",
    `content-type:${CONTENT_TYPE}`,
    `host:${location.host}`,
    `x-amz-date:${stamp}`,
    `x-amz-target:${target}`,
    "",
    SIGNED_HEADERS,
    await sha256Hex(body),
  ].join("\n");
  const toSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256Hex(encoder.encode(canonical))].join("\n");
  let signingKey = encoder.encode("AWS4" + key.secret);
  for (const part of [day, REGION, SERVICE, "aws4_request"]) signingKey = await hmac(signingKey, part);
  const signature = hex(await hmac(signingKey, toSign));
  return {
    "Content-Type": CONTENT_TYPE,
    "X-Amz-Date": stamp,
    "X-Amz-Target": target,
    Authorization: `AWS4-HMAC-SHA256 Credential=${key.id}/${scope}, SignedHeaders=${SIGNED_HEADERS}, Signature=${signature}`,
  };
}

// ---- The API --------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(type, message, status = 0, requestId = "") {
    super(message);
    this.type = type;
    this.status = status;
    this.requestId = requestId;
  }
}

function currentKey() {
  const id = sessionStorage.getItem(STORE_ID);
  const secret = sessionStorage.getItem(STORE_SECRET);
  return id && secret ? { id, secret } : null;
}

/** Call one operation; its JSON answer, or ApiError with the server's __type and message. */
async function call(operation, params) {
  if (!window.crypto || !crypto.subtle) {
    throw new ApiError(
      "InsecureContext",
      "This browser cannot sign requests on this page: open it over HTTPS (or on localhost).",
    );
  }
  const key = currentKey();
  if (!key) throw new ApiError("NoKey", "Enter your access key id and secret above first.");
  const body = encoder.encode(JSON.stringify(params));
  const headers = await signedHeaders(key, `RekognitionService.${operation}`, body);
  let response;
  try {
    response = await fetch("/", { method: "POST", headers, body, cache: "no-store", credentials: "omit" });
  } catch (err) {
    throw new ApiError("NetworkError", `The server could not be reached (${err.message}).`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = null;
  }
  const requestId = response.headers.get("x-amzn-RequestId") || "";
  if (!response.ok) {
    const type = String((data && data.__type) || response.headers.get("x-amzn-ErrorType") || `HTTP ${response.status}`);
    const message = (data && (data.message || data.Message)) || text.slice(0, 300) || response.statusText;
    throw new ApiError(type.split("#").pop(), String(message), response.status, requestId);
  }
  if (data === null || typeof data !== "object") {
    throw new ApiError("InvalidResponse", "The server's answer is not JSON.", response.status, requestId);
  }
  return data;
}

/** The base64 text of a file's bytes (what Image.Bytes carries). */
function fileBase64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
    reader.onerror = () => reject(new ApiError("FileError", `Could not read ${file.name}.`));
    reader.readAsDataURL(file);
  });
}

// ---- Rendering helpers ----------------------------------------------------------------------

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function row(cells) {
  const tr = el("tr");
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", cell));
  return tr;
}

function td(text, field) {
  return el("td", text, field ? { "data-field": field } : {});
}

function codeTd(text, field) {
  const cell = td(null, field);
  cell.append(el("code", text ?? ""));
  return cell;
}

function showError(view, err) {
  const box = $(`${view}-error`);
  box.replaceChildren();
  const type = err instanceof ApiError ? err.type : "Error";
  box.append(el("strong", type), document.createTextNode(`: ${err.message}`));
  if (err instanceof ApiError && err.status) {
    const extra = err.requestId ? `HTTP ${err.status}, request id ${err.requestId}` : `HTTP ${err.status}`;
    box.append(el("span", ` (${extra})`, { class: "detail" }));
  }
  box.hidden = false;
}

function clearError(view) {
  $(`${view}-error`).hidden = true;
  $(`${view}-error`).replaceChildren();
}

/** Run `work` for a view: busy text, the submit button disabled, errors shown in the view. */
async function busy(view, text, button, work) {
  clearError(view);
  $(`${view}-busy`).textContent = text;
  if (button) button.disabled = true;
  try {
    await work();
  } catch (err) {
    showError(view, err);
  } finally {
    $(`${view}-busy`).textContent = "";
    if (button) {
      button.disabled = false;
      // a disabled button loses focus: give it back unless the work moved it on purpose
      if (document.activeElement === document.body) button.focus();
    }
  }
}

function formatSimilarity(value) {
  return typeof value === "number" ? value.toFixed(1) : "—";
}

/** An estimated false-match rate as "1 in 12,300 (8.1e-5)"; "at most …" when it is a bound. */
function formatFmr(fmr, isBound) {
  if (typeof fmr !== "number") return "—";
  if (fmr <= 0) return "below what the calibration can resolve";
  const oneIn = fmr >= 1 ? "1 in 1" : `1 in ${Number((1 / fmr).toPrecision(3)).toLocaleString("en")}`;
  return `${isBound ? "at most " : ""}${oneIn} (${fmr.toExponential(1)})`;
}

function formatRaw(match) {
  return typeof match.RawScore === "number" ? match.RawScore.toFixed(3) : "not returned";
}

/** 0.63 → "63 %", 0.0003 → "0.03 %" (two significant digits below 10 %). */
function percent(rate) {
  if (typeof rate !== "number") return "—";
  const pct = rate * 100;
  if (pct > 0 && pct < 0.0001) return "less than 0.0001 %";
  return `${pct >= 10 ? pct.toFixed(0) : Number(pct.toPrecision(2)).toString()} %`;
}

const pictureUrls = new Map();

/** Show `file` in `container` with face boxes: [{box: BoundingBox ratios, label, kind}]. */
function showPicture(container, file, boxes, alt) {
  const old = pictureUrls.get(container.id);
  if (old) URL.revokeObjectURL(old);
  const url = URL.createObjectURL(file);
  pictureUrls.set(container.id, url);
  const frame = el("div", null, { class: "frame" });
  frame.append(el("img", null, { src: url, alt }));
  for (const { box, label, kind } of boxes) {
    if (!box) continue;
    const outline = el("div", null, { class: `box ${kind}`, "aria-hidden": "true" });
    outline.style.left = `${box.Left * 100}%`;
    outline.style.top = `${box.Top * 100}%`;
    outline.style.width = `${box.Width * 100}%`;
    outline.style.height = `${box.Height * 100}%`;
    if (label) outline.append(el("span", label));
    frame.append(outline);
  }
  container.replaceChildren(frame);
}

// ---- Compare --------------------------------------------------------------------------------

async function compare(event) {
  event.preventDefault();
  const source = $("compare-source").files[0];
  const target = $("compare-target").files[0];
  const threshold = Number($("compare-threshold").value || 80);
  await busy("compare", "Comparing…", event.submitter, async () => {
    $("compare-result").hidden = true;
    const out = await call("CompareFaces", {
      SourceImage: { Bytes: await fileBase64(source) },
      TargetImage: { Bytes: await fileBase64(target) },
      SimilarityThreshold: threshold,
    });
    renderCompare(out, source, target, threshold);
  });
}

function renderCompare(out, source, target, threshold) {
  const matches = out.FaceMatches || [];
  const unmatched = out.UnmatchedFaces || [];
  const verdict = $("compare-verdict");
  verdict.dataset.verdict = matches.length ? "match" : "no-match";
  verdict.className = `verdict ${matches.length ? "match" : "no-match"}`;
  verdict.textContent = matches.length
    ? `Match: the source face matches ${matches.length} of ${matches.length + unmatched.length} face(s) in the target ` +
      `at similarity ${threshold} or above (best ${formatSimilarity(matches[0].Similarity)}).`
    : `No match: none of the ${unmatched.length} face(s) in the target reaches similarity ${threshold}.`;
  const rows = matches.map((m, i) =>
    row([
      td(String(i + 1)),
      td(formatSimilarity(m.Similarity), "similarity"),
      td(formatFmr(m.EstimatedFalseMatchRate, m.FalseMatchRateIsBound), "fmr"),
      td(formatRaw(m), "raw"),
      td("match", "result"),
    ]),
  );
  unmatched.forEach((_, i) =>
    rows.push(row([td(String(matches.length + i + 1)), td(`below ${threshold}`), td("—"), td("—"), td("no match", "result")])),
  );
  if (!rows.length) rows.push(row([el("td", "The target photo has no recognisable face.", { colspan: "5" })]));
  $("compare-rows").replaceChildren(...rows);
  showPicture($("compare-source-picture"), source, [{ box: out.SourceImageFace?.BoundingBox, label: "", kind: "probe" }], "Source photo");
  const boxes = [
    ...matches.map((m, i) => ({ box: m.Face?.BoundingBox, label: `${i + 1}: ${formatSimilarity(m.Similarity)}`, kind: "match" })),
    ...unmatched.map((f, i) => ({ box: f.BoundingBox, label: String(matches.length + i + 1), kind: "other" })),
  ];
  showPicture($("compare-target-picture"), target, boxes, "Target photo");
  $("compare-result").hidden = false;
}

// ---- Search ---------------------------------------------------------------------------------

async function search(event) {
  event.preventDefault();
  const collection = $("search-collection").value.trim();
  const image = $("search-image").files[0];
  const threshold = Number($("search-threshold").value || 80);
  const maxFaces = Number($("search-max").value || 10);
  await busy("search", "Searching…", event.submitter, async () => {
    $("search-result").hidden = true;
    const out = await call("SearchFacesByImage", {
      CollectionId: collection,
      Image: { Bytes: await fileBase64(image) },
      FaceMatchThreshold: threshold,
      MaxFaces: maxFaces,
    });
    renderSearch(out, collection, image, threshold);
  });
}

function renderSearch(out, collection, image, threshold) {
  const matches = out.FaceMatches || [];
  const entry = out.AuditSequence ?? "?";
  $("search-review").hidden = out.ReviewRequired !== true;
  $("search-review-entry").textContent = String(entry);
  const gallery = typeof out.GallerySize === "number" ? out.GallerySize.toLocaleString("en") : "?";
  $("search-summary").textContent =
    `${matches.length} candidate(s) at similarity ${threshold} or above, ` +
    `from ${gallery} face(s) in collection "${collection}". This search is audit entry ${entry}.`;
  const fpir = $("search-fpir");
  fpir.replaceChildren(
    el("strong", `Chance of at least one wrong candidate: about ${percent(out.GalleryFalsePositiveIdentificationRate)}`, {
      "data-field": "fpir",
    }),
    document.createTextNode(
      ` (gallery false-positive identification rate: for a person who is not in this collection, the estimated ` +
        `chance that a search at threshold ${threshold} still returns someone). It grows with the collection's size.`,
    ),
  );
  const rows = matches.map((m, i) =>
    row([
      td(String(i + 1)),
      td(m.Face?.ExternalImageId ?? "(none)", "external-image-id"),
      codeTd(m.Face?.FaceId, "face-id"),
      td(formatSimilarity(m.Similarity), "similarity"),
      td(formatFmr(m.EstimatedFalseMatchRate, m.FalseMatchRateIsBound), "fmr"),
    ]),
  );
  if (!rows.length) rows.push(row([el("td", "No candidate reaches the threshold.", { colspan: "5" })]));
  $("search-rows").replaceChildren(...rows);
  showPicture($("search-picture"), image, [{ box: out.SearchedFaceBoundingBox, label: "", kind: "probe" }], "Searched photo");
  $("search-result").hidden = false;
}

async function refreshCollectionNames() {
  if (!currentKey()) return;
  try {
    const out = await call("ListCollections", { MaxResults: 1000 });
    $("collection-names").replaceChildren(...(out.CollectionIds || []).map((name) => el("option", null, { value: name })));
  } catch {
    // A hint only: the search itself reports any error.
  }
}

// ---- Browse ---------------------------------------------------------------------------------

const browse = { nextCollections: null, collection: null, tokens: [null], page: 0 };

async function listCollections(more) {
  await busy("browse", "Loading collections…", more ? $("collections-more") : $("browse-refresh"), async () => {
    const params = { MaxResults: 100 };
    if (more && browse.nextCollections) params.NextToken = browse.nextCollections;
    const out = await call("ListCollections", params);
    const names = out.CollectionIds || [];
    const models = out.FaceModelVersions || [];
    const rows = names.map((name, i) => {
      const open = el("button", "Open", { type: "button", class: "secondary", "aria-label": `Open collection ${name}` });
      open.addEventListener("click", () => openCollection(name));
      const action = el("td");
      action.append(open);
      return row([el("td", name, { "data-field": "collection" }), td(models[i] ?? ""), action]);
    });
    if (!more) $("collections-rows").replaceChildren();
    if (!rows.length && !more) rows.push(row([el("td", "There are no collections yet.", { colspan: "3" })]));
    $("collections-rows").append(...rows);
    $("collections-table").hidden = false;
    browse.nextCollections = out.NextToken || null;
    $("collections-more").hidden = !browse.nextCollections;
  });
}

function formatTime(value) {
  if (typeof value === "number") return new Date(value * 1000).toISOString().replace(/\.\d+Z$/, "Z");
  return value == null ? "—" : String(value);
}

async function openCollection(name) {
  $("collection-detail").hidden = true; // never one collection's title over another's faces
  $("faces-rows").replaceChildren();
  await busy("browse", `Loading ${name}…`, null, async () => {
    const info = await call("DescribeCollection", { CollectionId: name });
    browse.collection = name;
    browse.tokens = [null];
    browse.page = 0;
    $("collection-title").textContent = `Collection ${name}`;
    const facts = [
      ["Faces", info.FaceCount, "face-count"],
      ["Users", info.UserCount, "user-count"],
      ["Model", info.FaceModelVersion, "model"],
      ["Created", formatTime(info.CreationTimestamp), "created"],
    ];
    $("collection-facts").replaceChildren(
      ...facts.flatMap(([term, value, field]) => [el("dt", term), el("dd", value ?? "—", { "data-field": field })]),
    );
    await loadFaces();
    $("collection-detail").hidden = false;
    $("collection-title").focus();
  });
}

async function loadFaces() {
  const params = { CollectionId: browse.collection, MaxResults: FACES_PER_PAGE };
  const token = browse.tokens[browse.page];
  if (token) params.NextToken = token;
  const out = await call("ListFaces", params);
  const faces = out.Faces || [];
  const rows = faces.map((f) =>
    row([
      codeTd(f.FaceId, "face-id"),
      td(f.ExternalImageId ?? "", "external-image-id"),
      td(f.UserId ?? ""),
      td(f.ImageId ?? ""),
      td(typeof f.Confidence === "number" ? f.Confidence.toFixed(1) : ""),
    ]),
  );
  if (!rows.length) rows.push(row([el("td", "No faces on this page.", { colspan: "5" })]));
  $("faces-rows").replaceChildren(...rows);
  browse.tokens[browse.page + 1] = out.NextToken || null;
  const first = browse.page * FACES_PER_PAGE + 1;
  $("faces-caption").textContent = faces.length
    ? `Faces ${first}–${first + faces.length - 1} (page ${browse.page + 1})`
    : `Faces (page ${browse.page + 1})`;
  updatePager();
}

function updatePager() {
  $("faces-prev").disabled = browse.page === 0;
  $("faces-next").disabled = !browse.tokens[browse.page + 1];
}

async function turnPage(step) {
  const button = step > 0 ? $("faces-next") : $("faces-prev");
  await busy("browse", "Loading faces…", button, async () => {
    browse.page = Math.max(0, browse.page + step);
    try {
      await loadFaces();
    } catch (err) {
      browse.page -= step;
      throw err;
    }
  });
  updatePager(); // busy() re-enabled the button it disabled
}

// ---- Key and tabs ---------------------------------------------------------------------------

function showKeyStatus() {
  const key = currentKey();
  $("key-status").textContent = key ? `Signing requests with key ${key.id}.` : "No key entered yet.";
}

function saveKey(event) {
  event.preventDefault();
  const id = $("key-id").value.trim();
  const secret = $("key-secret").value;
  if (!/^[A-Za-z0-9]{1,128}$/.test(id)) {
    $("key-status").textContent = "An access key id is letters and digits only (e.g. FTK…).";
    return;
  }
  sessionStorage.setItem(STORE_ID, id);
  sessionStorage.setItem(STORE_SECRET, secret);
  clearResults();
  showKeyStatus();
  refreshCollectionNames();
}

const RESULTS = [
  "compare-result", "search-result", "search-review", "collections-table", "collections-more", "collection-detail",
  "people-result", "person-detail", "audit-verdict", "audit-download", "audit-table", "redact-result",
];

/** Take down what the last key fetched: another key, or none, must not be shown it. */
function clearResults() {
  for (const id of RESULTS) $(id).hidden = true;
  for (const id of ["faces-rows", "collections-rows", "people-list", "review-list", "audit-rows"]) $(id).replaceChildren();
  $("review-summary").textContent = "";
  for (const view of ["compare", "search", "browse", "people", "review", "audit", "redact"]) clearError(view);
  if (typeof releaseCrops === "function") releaseCrops(); // console.js: the review and people crops
}

function forgetKey() {
  sessionStorage.removeItem(STORE_ID);
  sessionStorage.removeItem(STORE_SECRET);
  $("key-id").value = "";
  $("key-secret").value = "";
  clearResults();
  showKeyStatus();
}

const TABS = Array.from(document.querySelectorAll('[role="tab"]'), (tab) => tab.id.replace("tab-", ""));

function selectTab(name, focus = false) {
  for (const other of TABS) {
    const tab = $(`tab-${other}`);
    const selected = other === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`view-${other}`).hidden = !selected;
    if (selected && focus) tab.focus();
  }
  if (name === "search") refreshCollectionNames();
}

function tabKeys(event) {
  const at = TABS.indexOf(event.target.id.replace("tab-", ""));
  const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: TABS.length - 1 };
  if (!(event.key in moves)) return;
  event.preventDefault();
  selectTab(TABS[(moves[event.key] + TABS.length) % TABS.length], true);
}

function start() {
  const key = currentKey();
  if (key) {
    $("key-id").value = key.id;
    $("key-secret").value = key.secret;
  }
  showKeyStatus();
  $("key-form").addEventListener("submit", saveKey);
  $("key-forget").addEventListener("click", forgetKey);
  for (const name of TABS) {
    $(`tab-${name}`).addEventListener("click", () => selectTab(name));
    $(`tab-${name}`).addEventListener("keydown", tabKeys);
  }
  $("compare-form").addEventListener("submit", compare);
  $("search-form").addEventListener("submit", search);
  $("browse-refresh").addEventListener("click", () => listCollections(false));
  $("collections-more").addEventListener("click", () => listCollections(true));
  $("faces-prev").addEventListener("click", () => turnPage(-1));
  $("faces-next").addEventListener("click", () => turnPage(1));
  $("collection-search").addEventListener("click", () => {
    $("search-collection").value = browse.collection || "";
    selectTab("search", true);
  });
  $("collection-title").tabIndex = -1;
}

start();
