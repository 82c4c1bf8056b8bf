// The phr SMART Health Link viewer. Reads #shlink:/..., resolves the manifest
// (or, with flag U, fetches the file directly), decrypts every JWE file with
// WebCrypto (alg dir, enc A256GCM) and renders a summary. No framework, no build
// step, no third-party code; everything from the record is put in the page as
// text, never as HTML.
"use strict";

const STRINGS = {
  en: {
    title: "Shared health record", loading: "Loading…", recipient: "Your name (shown to the patient)",
    passcode: "Passcode (ask the patient)", open: "Open", opening: "Opening…",
    footer: "Decrypted in this browser. The key never leaves this device.",
    noLink: "This page opens a SMART Health Link; none was found in its address.",
    badLink: "This link cannot be read.", expired: "This link has expired.",
    notFound: "This link is no longer available (expired, revoked or disabled).",
    wrongPasscode: "Wrong passcode. Attempts remaining: {n}", disabled: "Wrong passcode. The link is now disabled.",
    needName: "Please enter your name.", failed: "The shared record could not be opened.",
    throttled: "Too many attempts; please wait and try again.",
    label: "Shared: {label}", expires: "Available until {date}",
    patient: "Patient", born: "born", problems: "Problems", medications: "Medications",
    allergies: "Allergies and intolerances", immunizations: "Immunizations", results: "Results",
    imaging: "Imaging studies", documents: "Documents", other: "Other records",
    test: "Test", date: "Date", value: "Value", range: "Reference range", outOfRange: "out of range",
    dosage: "Dosage", status: "Status", reaction: "Reaction", openPdf: "Open document",
    card: "SMART Health Card (verifiable credential)", none: "Nothing shared in this section.",
    modality: "Modality", series: "series", instances: "images",
    preview: "Series preview", openImages: "Open the images in the viewer",
  },
  zh: {
    title: "共享的健康档案", loading: "正在加载…", recipient: "您的姓名（将告知患者）",
    passcode: "访问密码（请向患者索取）", open: "打开", opening: "正在打开…",
    footer: "在本浏览器中解密，密钥不会离开本设备。",
    noLink: "此页面用于打开 SMART 健康链接，但地址中没有链接。",
    badLink: "无法读取此链接。", expired: "此链接已过期。",
    notFound: "此链接已不可用（已过期、已撤销或已停用）。",
    wrongPasscode: "密码错误。剩余尝试次数：{n}", disabled: "密码错误。此链接已停用。",
    needName: "请输入您的姓名。", failed: "无法打开共享的档案。",
    throttled: "尝试次数过多，请稍后再试。",
    label: "共享内容：{label}", expires: "有效期至 {date}",
    patient: "患者", born: "出生于", problems: "疾病与问题", medications: "用药",
    allergies: "过敏与不耐受", immunizations: "疫苗接种", results: "检验结果",
    imaging: "影像检查", documents: "文档", other: "其他记录",
    test: "项目", date: "日期", value: "结果", range: "参考范围", outOfRange: "超出范围",
    dosage: "用法用量", status: "状态", reaction: "反应", openPdf: "打开文档",
    card: "SMART 健康卡（可验证凭证）", none: "此部分没有共享内容。",
    modality: "检查类型", series: "序列", instances: "图像",
    preview: "序列预览", openImages: "在查看器中打开影像",
  },
};

const LANG = (navigator.languages || [navigator.language || "en"]).some((l) => /^zh/i.test(l)) ? "zh" : "en";
document.documentElement.lang = LANG === "zh" ? "zh-CN" : "en";

function t(key, values) {
  let text = STRINGS[LANG][key] || STRINGS.en[key] || key;
  for (const [name, value] of Object.entries(values || {})) text = text.replace("{" + name + "}", value);
  return text;
}

const $ = (id) => document.getElementById(id);
// The name the doctor gave, passed on to the imaging viewer a share links to.
let RECIPIENT = "";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function b64urlBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
  const raw = atob(b64);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function b64Bytes(text) {
  return b64urlBytes(text.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""));
}

function readPayload() {
  const hash = decodeURIComponent(location.hash || "");
  const at = hash.indexOf("shlink:/");
  if (at < 0) return null;
  const payload = JSON.parse(new TextDecoder().decode(b64urlBytes(hash.slice(at + "shlink:/".length))));
  if (typeof payload.url !== "string" || typeof payload.key !== "string") throw new Error("payload");
  // Some issuers give exp as a string of milliseconds; the spec says seconds.
  if (typeof payload.exp === "string" && /^\d+$/.test(payload.exp)) {
    payload.exp = payload.exp.length > 11 ? Number(payload.exp) / 1000 : Number(payload.exp);
  }
  return payload;
}

async function decryptJwe(compact, keyBytes) {
  const parts = compact.trim().split(".");
  if (parts.length !== 5) throw new Error("not a JWE compact serialization");
  const header = JSON.parse(new TextDecoder().decode(b64urlBytes(parts[0])));
  if (header.alg !== "dir" || header.enc !== "A256GCM") throw new Error("unsupported JWE");
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "AES-GCM" }, false, ["decrypt"]);
  const ciphertext = b64urlBytes(parts[3]);
  const tag = b64urlBytes(parts[4]);
  const sealed = new Uint8Array(ciphertext.length + tag.length);
  sealed.set(ciphertext);
  sealed.set(tag, ciphertext.length);
  let plain = new Uint8Array(await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: b64urlBytes(parts[2]), additionalData: new TextEncoder().encode(parts[0]), tagLength: 128 },
    key, sealed));
  if (header.zip === "DEF") {
    const stream = new Blob([plain]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
    plain = new Uint8Array(await new Response(stream).arrayBuffer());
  }
  return { header, text: new TextDecoder().decode(plain) };
}

async function fetchFiles(payload, recipient, passcode) {
  const flag = payload.flag || "";
  if (flag.includes("U")) {
    const url = payload.url + (payload.url.includes("?") ? "&" : "?") + "recipient=" + encodeURIComponent(recipient);
    const response = await fetch(url, { referrerPolicy: "no-referrer", credentials: "omit" });
    if (!response.ok) throw Object.assign(new Error("http"), { status: response.status });
    return [{ contentType: "application/fhir+json", jwe: await response.text() }];
  }
  const body = { recipient };
  if (flag.includes("P")) body.passcode = passcode;
  const response = await fetch(payload.url, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    referrerPolicy: "no-referrer", credentials: "omit",
  });
  if (!response.ok) {
    let detail = {};
    try { detail = await response.json(); } catch (e) { /* not JSON */ }
    throw Object.assign(new Error("http"), { status: response.status, remaining: detail.remainingAttempts });
  }
  const manifest = await response.json();
  const files = [];
  for (const file of manifest.files || []) {
    if (typeof file.embedded === "string") {
      files.push({ contentType: file.contentType, jwe: file.embedded });
    } else if (typeof file.location === "string") {
      const got = await fetch(file.location, { referrerPolicy: "no-referrer", credentials: "omit" });
      if (!got.ok) throw Object.assign(new Error("http"), { status: got.status });
      files.push({ contentType: file.contentType, jwe: await got.text() });
    }
  }
  return files;
}

// --- FHIR rendering ---------------------------------------------------------

function codeText(concept) {
  if (!concept) return "";
  if (concept.text) return concept.text;
  const coding = (concept.coding || []).find((c) => c.display) || (concept.coding || [])[0];
  return coding ? (coding.display || coding.code || "") : "";
}

function when(value) {
  if (!value) return "";
  return String(value).replace("T", " ").replace(/:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?$/, "");
}

function quantity(q) {
  if (!q || q.value === undefined) return "";
  return q.value + (q.unit || q.code ? " " + (q.unit || q.code) : "");
}

function observationValue(o) {
  if (o.valueQuantity) return quantity(o.valueQuantity);
  if (o.valueCodeableConcept) return codeText(o.valueCodeableConcept);
  if (o.valueString !== undefined) return o.valueString;
  if (o.valueBoolean !== undefined) return String(o.valueBoolean);
  if (o.valueInteger !== undefined) return String(o.valueInteger);
  if (o.component) return o.component.map((c) => codeText(c.code) + ": " + observationValue(c)).join("; ");
  return "";
}

function rangeText(o) {
  const range = (o.referenceRange || [])[0];
  if (!range) return "";
  if (range.text) return range.text;
  const low = range.low ? quantity(range.low) : "";
  const high = range.high ? quantity(range.high) : "";
  return low && high ? low + " – " + high : low ? "≥ " + low : high ? "≤ " + high : "";
}

function outOfRange(o) {
  const codes = (o.interpretation || []).flatMap((i) => (i.coding || []).map((c) => c.code));
  if (codes.some((c) => ["H", "HH", "L", "LL", "A", "AA", "HU", "LU"].includes(c))) return true;
  const range = (o.referenceRange || [])[0];
  const v = o.valueQuantity && typeof o.valueQuantity.value === "number" ? o.valueQuantity.value : null;
  if (!range || v === null) return false;
  return (range.low && typeof range.low.value === "number" && v < range.low.value) ||
    (range.high && typeof range.high.value === "number" && v > range.high.value);
}

function dosageText(resource) {
  const dosages = resource.dosage || resource.dosageInstruction || [];
  return dosages.map((d) => {
    if (d.text) return d.text;
    const dose = (d.doseAndRate || []).map((r) => quantity(r.doseQuantity)).filter(Boolean).join(", ");
    const timing = d.timing && d.timing.code ? codeText(d.timing.code) : "";
    const repeat = d.timing && d.timing.repeat;
    const freq = repeat && repeat.frequency ? repeat.frequency + "×/" + (repeat.period || 1) + (repeat.periodUnit || "") : "";
    return [dose, timing, freq, d.route ? codeText(d.route) : ""].filter(Boolean).join(" ");
  }).filter(Boolean).join("; ");
}

function section(key, headers, rows) {
  const box = el("section", { id: "section-" + key, "data-section": key }, el("h2", null, t(key)));
  if (!rows.length) { box.append(el("p", { class: "muted" }, t("none"))); return box; }
  const table = el("table", null, el("thead", null, el("tr", null, ...headers.map((h) => el("th", null, t(h))))));
  const body = el("tbody");
  for (const row of rows) body.append(row);
  table.append(body);
  box.append(table);
  return box;
}

function row(resource, cells, extraClass) {
  const tr = el("tr", { class: "record" + (extraClass ? " " + extraClass : ""), "data-type": resource.resourceType, "data-id": resource.id || "" });
  for (const cell of cells) tr.append(cell instanceof Node ? cell : el("td", null, cell));
  return tr;
}

function renderBundle(resources, container) {
  const byRef = new Map();
  for (const { fullUrl, resource } of resources) {
    if (fullUrl) byRef.set(fullUrl, resource);
    if (resource.id) byRef.set(resource.resourceType + "/" + resource.id, resource);
  }
  const of = (...types) => resources.map((e) => e.resource).filter((r) => types.includes(r.resourceType));
  const medicationName = (r) => {
    if (r.medicationCodeableConcept) return codeText(r.medicationCodeableConcept);
    const ref = r.medicationReference && byRef.get(r.medicationReference.reference);
    return ref ? codeText(ref.code) : (r.medicationReference && r.medicationReference.display) || "";
  };
  for (const patient of of("Patient")) {
    const name = (patient.name || []).map((n) => n.text || [...(n.given || []), n.family].filter(Boolean).join(" ")).find(Boolean) || "—";
    container.append(el("section", { id: "section-patient", "data-section": "patient" }, el("h2", null, t("patient")),
      el("p", { class: "patient record", "data-type": "Patient" }, name,
        patient.birthDate ? " · " + t("born") + " " + patient.birthDate : "", patient.gender ? " · " + patient.gender : "")));
  }
  container.append(section("problems", ["problems", "status", "date"], of("Condition").map((r) =>
    row(r, [codeText(r.code), codeText(r.clinicalStatus), when(r.onsetDateTime || r.recordedDate)]))));
  container.append(section("medications", ["medications", "dosage", "status"], of("MedicationStatement", "MedicationRequest").map((r) =>
    row(r, [medicationName(r), dosageText(r), r.status || ""]))));
  container.append(section("allergies", ["allergies", "reaction", "status"], of("AllergyIntolerance").map((r) =>
    row(r, [codeText(r.code) + (r.criticality ? " (" + r.criticality + ")" : ""),
      (r.reaction || []).flatMap((x) => (x.manifestation || []).map(codeText)).join(", "), codeText(r.clinicalStatus)]))));
  container.append(section("immunizations", ["immunizations", "date", "status"], of("Immunization").map((r) =>
    row(r, [codeText(r.vaccineCode), when(r.occurrenceDateTime || r.occurrenceString), r.status || ""]))));
  container.append(section("results", ["test", "date", "value", "range"], of("Observation", "DiagnosticReport").map((r) => {
    const bad = r.resourceType === "Observation" && outOfRange(r);
    const value = el("td", { class: "value" }, r.resourceType === "Observation" ? observationValue(r) : (r.conclusion || ""));
    if (bad) value.append(el("span", { class: "flag", title: t("outOfRange") }, "▲ " + t("outOfRange")));
    return row(r, [codeText(r.code), when(r.effectiveDateTime || (r.effectivePeriod && r.effectivePeriod.start) || r.issued), value, rangeText(r)], bad ? "out-of-range" : "");
  })));
  // Previews travel in the bundle as Media (partOf the study); the study's
  // viewer is an Endpoint (ihe-iid) it references.
  const previews = new Map();
  for (const { fullUrl, resource } of resources) {
    if (resource.resourceType !== "Media") continue;
    for (const ref of resource.partOf || []) {
      if (!previews.has(ref.reference)) previews.set(ref.reference, []);
      previews.get(ref.reference).push(resource);
    }
  }
  const studyRefs = new Map(resources.filter((e) => e.resource.resourceType === "ImagingStudy")
    .map((e) => [e.resource, [e.fullUrl, "ImagingStudy/" + e.resource.id]]));
  container.append(section("imaging", ["imaging", "date", "modality"], of("ImagingStudy").map((r) => {
    const tr = row(r, [r.description || codeText((r.procedureCode || [])[0]) || "ImagingStudy", when(r.started),
      (r.modality || []).map((m) => m.code).join(", ") + (r.numberOfSeries ? " · " + r.numberOfSeries + " " + t("series") : "") +
      (r.numberOfInstances ? " · " + r.numberOfInstances + " " + t("instances") : "")]);
    const media = (studyRefs.get(r) || []).flatMap((ref) => previews.get(ref) || []);
    const viewers = (r.endpoint || []).map((e) => byRef.get(e.reference)).filter((e) => e &&
      e.resourceType === "Endpoint" && (e.connectionType || {}).code === "ihe-iid" && /^https?:\/\//i.test(e.address || ""));
    if (!media.length && !viewers.length) return tr;
    const cell = el("td", { colspan: "3", class: "imaging-extras" });
    for (const m of media) {
      const content = m.content || {};
      if (!content.data || !/^image\/(png|jpeg)$/.test(content.contentType || "")) continue;
      const img = el("img", { class: "preview", alt: content.title || t("preview"), title: content.title || "" });
      img.src = "data:" + content.contentType + ";base64," + content.data;
      cell.append(img);
    }
    for (const e of viewers) {
      // The viewer asks the doctor's name for the patient's access history: the
      // one given here travels along, in the fragment (never sent to a server).
      // Only to phr's own viewer (this origin): another issuer's page is not told the name.
      const own = e.address.startsWith(location.origin + "/") && e.address.includes("#");
      const href = e.address + (own && RECIPIENT ? "&recipient=" + encodeURIComponent(RECIPIENT) : "");
      cell.append(el("p", null, el("a", { class: "viewer-link", href, target: "_blank", rel: "noopener noreferrer" }, t("openImages"))));
    }
    return [tr, el("tr", { class: "imaging-extras" }, cell)];
  }).flat()));
  container.append(section("documents", ["documents", "date", "openPdf"], of("DocumentReference").map((r) => {
    const attachment = ((r.content || [])[0] || {}).attachment || {};
    const cell = el("td");
    if (attachment.data) {
      const blob = new Blob([b64Bytes(attachment.data)], { type: attachment.contentType || "application/octet-stream" });
      const link = el("a", { class: "pdf", href: URL.createObjectURL(blob), target: "_blank", rel: "noopener noreferrer",
        download: attachment.title || "document" }, t("openPdf"));
      cell.append(link);
    } else {
      cell.append(attachment.contentType || "");
    }
    return row(r, [r.description || attachment.title || codeText(r.type), when(r.date), cell]);
  })));
}

function render(files, container) {
  for (const file of files) {
    if (file.contentType === "application/smart-health-card") {
      container.append(el("section", { "data-section": "card" }, el("h2", null, t("card"))));
      continue;
    }
    const data = JSON.parse(file.text);
    if (data.resourceType === "Bundle") {
      renderBundle((data.entry || []).filter((e) => e.resource).map((e) => ({ fullUrl: e.fullUrl, resource: e.resource })), container);
    } else if (data.resourceType) {
      renderBundle([{ fullUrl: null, resource: data }], container);
    }
  }
}

// --- the page ---------------------------------------------------------------

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = false;
}

function start() {
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.title = t("title");
  let payload;
  try {
    payload = readPayload();
  } catch (e) {
    $("status").textContent = t("badLink");
    return;
  }
  if (!payload) { $("status").textContent = t("noLink"); return; }
  if (payload.label) $("share-label").textContent = t("label", { label: payload.label });
  if (payload.exp) {
    $("share-expiry").textContent = t("expires", { date: new Date(payload.exp * 1000).toLocaleString(LANG === "zh" ? "zh-CN" : "en") });
    if (payload.exp * 1000 < Date.now()) { $("status").textContent = t("expired"); return; }
  }
  const key = b64urlBytes(payload.key);
  const flag = payload.flag || "";
  $("status").textContent = "";
  $("status").hidden = true;
  $("passcode-field").hidden = !flag.includes("P");
  $("passcode").required = flag.includes("P");
  $("access").hidden = false;
  $("access").addEventListener("submit", async (event) => {
    event.preventDefault();
    const recipient = $("recipient").value.trim();
    if (!recipient) { showError(t("needName")); return; }
    $("error").hidden = true;
    $("open").disabled = true;
    $("open").textContent = t("opening");
    try {
      const files = await fetchFiles(payload, recipient, $("passcode").value);
      RECIPIENT = recipient;
      const decrypted = [];
      for (const file of files) {
        const { header, text } = await decryptJwe(file.jwe, key);
        decrypted.push({ contentType: header.cty || file.contentType, text });
      }
      const container = $("summary");
      container.replaceChildren();
      render(decrypted, container);
      container.hidden = false;
      $("access").hidden = true;
    } catch (e) {
      if (e.status === 401) {
        showError(e.remaining ? t("wrongPasscode", { n: e.remaining }) : t("disabled"));
        $("passcode").value = "";
      } else if (e.status === 404) {
        showError(t("notFound"));
      } else if (e.status === 429) {
        showError(t("throttled"));
      } else {
        showError(t("failed"));
      }
    } finally {
      $("open").disabled = false;
      $("open").textContent = t("open");
    }
  });
}

document.addEventListener("DOMContentLoaded", start);
