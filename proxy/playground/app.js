// The playground: controls -> builder options -> a signed path from the server
// (POST /playground/sign; the key stays there) -> the image and its /info numbers.
"use strict";

const $ = (id) => document.getElementById(id);
const FORMATS = ["jpeg", "webp", "avif", "png"];
const NUMBERS = [
  ["bytes", "bytes", (v) => v.toLocaleString("en")],
  ["compression_ratio", "compression ratio", (v) => v.toFixed(1)],
  ["psnr", "PSNR dB", (v) => v.toFixed(2)],
  ["ssim", "SSIM", (v) => v.toFixed(4)],
  ["ssimulacra2", "SSIMULACRA2", (v) => v.toFixed(1)],
  ["quality", "quality", (v) => String(v)],
  ["encodes", "encodes", (v) => String(v)],
  ["width", "width", (v) => String(v)],
];
let generation = 0;

function show(value, format) {
  return value === null || value === undefined ? "—" : format(value);
}

function builderOptions(format) {
  const options = {
    resize: [$("resizing-type").value, Number($("width").value), Number($("height").value)],
  };
  if ($("gravity").value !== "ce") options.gravity = $("gravity").value;
  options.quality = $("quality-auto").checked ? "auto" : Number($("quality").value);
  const maxBytes = Number($("max-bytes").value);
  if (maxBytes > 0) options.max_bytes = maxBytes;
  for (const effect of ["blur", "sharpen", "pixelate", "monochrome", "duotone", "gradient"]) {
    const value = Number($(effect).value);
    if (value > 0) options[effect] = value;
  }
  // imgproxy Pro's adjustments: only what differs from "unchanged" goes into the URL.
  const brightness = Number($("brightness").value);
  if (brightness !== 0) options.brightness = brightness;
  for (const factor of ["contrast", "saturation"]) {
    const value = Number($(factor).value);
    if (value !== 1) options[factor] = value;
  }
  const opacity = Number($("colorize").value);
  if (opacity > 0) options.colorize = [opacity, $("colorize-colour").value.slice(1)];
  if ($("unsharp").value) options.unsharp_masking = $("unsharp").value;
  // The builder base64-encodes it; the server checks the markup before drawing it.
  if ($("watermark-text").value.trim()) options.watermark_text = $("watermark-text").value;
  options.format = format;
  return options;
}

function source() {
  return $("source-url").value.trim() || $("sample").value;
}

async function sign(options) {
  const response = await fetch("/playground/sign", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ source: source(), options }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || `sign: HTTP ${response.status}`);
  return answer;
}

async function info(signed) {
  const response = await fetch(signed.info_path);
  if (!response.ok) throw new Error((await response.text()).split("\n")[0]);
  return response.json();
}

// The faces /info found in the source (boxes in its upright pixels).
function renderFaces(faces) {
  const shown = $("source-faces");
  if (faces === null || faces === undefined) {
    shown.textContent = "Faces: not looked for (smart or faces gravity with a crop looks)";
  } else if (faces.length === 0) {
    shown.textContent = "Faces: none found";
  } else {
    const boxes = faces.map((f) => `${f.width}x${f.height} at ${f.left},${f.top}`);
    shown.textContent = `Faces: ${faces.length} (${boxes.join("; ")})`;
  }
  shown.dataset.faces = JSON.stringify(faces);
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function update() {
  const mine = ++generation;
  setStatus("working…");
  try {
    const chosen = $("format").value;
    const signed = {};
    await Promise.all(FORMATS.map(async (format) => {
      signed[format] = await sign(builderOptions(format));
    }));
    if (mine !== generation) return;
    const main = signed[chosen];
    $("result-image").src = main.path;
    $("result-image").dataset.path = main.path;
    $("url").value = location.origin + main.path;
    $("python").value = main.python.replace("http://127.0.0.1:8080", location.origin);
    const reports = {};
    let faces = null;
    await Promise.all(FORMATS.map(async (format) => {
      const report = await info(signed[format]);
      reports[format] = report.result;
      if (format === chosen) faces = report.source.faces;
    }));
    if (mine !== generation) return;
    renderNumbers(reports[chosen]);
    renderFaces(faces);
    renderRows(signed, reports);
    setStatus("");
  } catch (error) {
    if (mine === generation) setStatus(error.message, true);
  }
}

function renderNumbers(report) {
  const list = $("result-numbers");
  list.replaceChildren();
  for (const [key, label, format] of NUMBERS) {
    const term = document.createElement("dt");
    term.textContent = label;
    const value = document.createElement("dd");
    value.id = `result-${key.replace("_", "-")}`;
    value.textContent = show(report[key], format);
    list.append(term, value);
  }
}

function renderRows(signed, reports) {
  const body = $("format-rows");
  body.replaceChildren();
  for (const format of FORMATS) {
    const row = document.createElement("tr");
    row.dataset.format = format;
    const name = document.createElement("td");
    name.textContent = format;
    const picture = document.createElement("td");
    const image = document.createElement("img");
    image.src = signed[format].path;
    image.alt = `${format} result`;
    picture.append(image);
    row.append(name, picture);
    for (const [key, , format_] of NUMBERS.slice(0, 7)) {
      const cell = document.createElement("td");
      cell.className = key;
      cell.textContent = show(reports[format][key], format_);
      row.append(cell);
    }
    body.append(row);
  }
}

async function sweep() {
  const format = $("format").value;
  const chart = $("sweep-chart");
  if (format === "png") {
    chart.textContent = "PNG is lossless: it has no quality to sweep.";
    return;
  }
  chart.textContent = "measuring…";
  const points = [];
  for (let quality = 10; quality <= 100; quality += 10) {
    const options = builderOptions(format);
    options.quality = quality;
    delete options.max_bytes;
    const report = (await info(await sign(options))).result;
    points.push({ quality, bytes: report.bytes, ssim: report.ssim });
  }
  chart.replaceChildren(drawSweep(points, format));
  chart.dataset.points = JSON.stringify(points);
}

function drawSweep(points, format) {
  const svgNs = "http://www.w3.org/2000/svg";
  const width = 640, height = 260, left = 60, right = 60, top = 20, bottom = 34;
  const maxBytes = Math.max(...points.map((p) => p.bytes));
  const minSsim = Math.min(...points.map((p) => p.ssim));
  const x = (q) => left + ((width - left - right) * (q - 10)) / 90;
  const yBytes = (b) => height - bottom - ((height - top - bottom) * b) / maxBytes;
  const ySsim = (s) => height - bottom - ((height - top - bottom) * (s - minSsim)) / (1 - minSsim || 1);
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `bytes and SSIM against quality, ${format}`);
  const add = (name, attributes, text) => {
    const node = document.createElementNS(svgNs, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  add("polyline", { points: points.map((p) => `${x(p.quality)},${yBytes(p.bytes)}`).join(" "),
    fill: "none", stroke: "#2471a3", "stroke-width": 2 });
  add("polyline", { points: points.map((p) => `${x(p.quality)},${ySsim(p.ssim)}`).join(" "),
    fill: "none", stroke: "#c0392b", "stroke-width": 2 });
  for (const p of points) {
    add("text", { x: x(p.quality), y: height - bottom + 14, "text-anchor": "middle", "font-size": 10 },
      String(p.quality));
  }
  add("text", { x: 4, y: 14, fill: "#2471a3", "font-size": 11 }, `bytes (max ${maxBytes.toLocaleString("en")})`);
  add("text", { x: width - 4, y: 14, fill: "#c0392b", "font-size": 11, "text-anchor": "end" },
    `SSIM (${minSsim.toFixed(3)}–1)`);
  add("text", { x: width / 2, y: height - 4, "text-anchor": "middle", "font-size": 11 }, "quality");
  return svg;
}

async function copyUrl() {
  const url = $("url").value;
  try {
    await navigator.clipboard.writeText(url);
  } catch {
    $("url").select();
    document.execCommand("copy");
  }
  setStatus("URL copied");
}

let pending = null;
function schedule() {
  clearTimeout(pending);
  pending = setTimeout(update, 200);
}

async function start() {
  const samples = await (await fetch("/playground/samples")).json();
  for (const sample of samples) {
    const option = document.createElement("option");
    option.value = sample.source;
    option.textContent = `${sample.name} (${Math.round(sample.bytes / 1024)} KB)`;
    $("sample").append(option);
  }
  // The small, smooth photo first: quick to process, and quality shows on it.
  if (samples.some((sample) => sample.name === "kite.jpg")) $("sample").value = "local:///kite.jpg";
  $("quality").addEventListener("input", () => { $("quality-value").value = $("quality").value; });
  $("controls").addEventListener("change", schedule);
  $("controls").addEventListener("submit", (event) => { event.preventDefault(); schedule(); });
  $("copy-url").addEventListener("click", copyUrl);
  $("run-sweep").addEventListener("click", () => sweep().catch((e) => setStatus(e.message, true)));
  await update();
}

start();
