// facetrust's web page, redaction: upload a photo, get it back with every face blurred or
// pixelated (RedactImage, facetrust's extension operation), preview it and download it.
// Uses app.js's signed `call`, `fileBase64` and `busy`; self-contained otherwise.
"use strict";

let redactedUrl = null;

function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function redactedName(original, format) {
  const stem = original.replace(/\.[^.]*$/, "") || "photo";
  return `${stem}-redacted.${format === "JPEG" ? "jpg" : "png"}`;
}

async function redactPhoto(event) {
  event.preventDefault();
  const file = $("redact-image").files[0];
  const button = event.submitter || $("redact-form").querySelector("button[type=submit]");
  await busy("redact", "Redacting…", button, async () => {
    const params = {
      Image: { Bytes: await fileBase64(file) },
      Method: $("redact-method").value,
      Strength: Number($("redact-strength").value),
    };
    const out = await call("RedactImage", params);
    const format = out.ImageFormat;
    const blob = new Blob([base64Bytes(out.Image.Bytes)], { type: format === "JPEG" ? "image/jpeg" : "image/png" });
    if (redactedUrl) URL.revokeObjectURL(redactedUrl);
    redactedUrl = URL.createObjectURL(blob);
    const found = out.FacesFound;
    $("redact-summary").textContent =
      found === 0 ? "No face was found: the photo comes back unchanged." : `${found} face${found === 1 ? "" : "s"} found, ${out.FacesRedacted} redacted.`;
    const img = $("redact-preview");
    img.src = redactedUrl;
    img.alt = `${file.name} with every face ${params.Method === "pixelate" ? "pixelated" : "blurred"}`;
    const link = $("redact-download");
    link.href = redactedUrl;
    link.download = redactedName(file.name, format);
    $("redact-result").hidden = false;
  });
}

$("redact-form").addEventListener("submit", redactPhoto);
