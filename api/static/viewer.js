// The built-in viewer: a study's series with their previews, then the frames of
// one series, scrolled by slider, wheel, arrow keys or a vertical swipe. The
// study and its short-lived token come in the URL fragment (never sent to a
// server); every image is fetched through DICOMweb with that token.
"use strict";

(function () {
  const params = new URLSearchParams(location.hash.slice(1));
  const study = params.get("study") || "";
  // A share's link (share=…) opens a session for the doctor who names themselves
  // (the share viewer passes the name it was given as recipient=…).
  const shareLink = params.get("share") || "";
  let token = params.get("token") || "";
  let base = "";
  const setBase = () => { base = "/v1/dicomweb/t/" + encodeURIComponent(token) + "/studies/" + encodeURIComponent(study); };
  setBase();
  const $ = (id) => document.getElementById(id);
  const status = (text) => { $("status").textContent = text; };
  const first = (item, tag) => { const v = (item[tag] || {}).Value; return v && v.length ? v[0] : undefined; };

  async function json(url) {
    const response = await fetch(url, { headers: { Accept: "application/dicom+json" } });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  async function showSeries() {
    const list = await json(base + "/series");
    const holder = $("series");
    holder.replaceChildren();
    list.sort((a, b) => (first(a, "00200011") || 0) - (first(b, "00200011") || 0));
    for (const series of list) {
      const uid = first(series, "0020000E");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "series";
      const img = document.createElement("img");
      img.alt = "Preview of series " + (first(series, "00200011") || "");
      img.src = base + "/series/" + encodeURIComponent(uid) + "/thumbnail";
      img.addEventListener("error", () => {
        const none = document.createElement("div");
        none.className = "none";
        none.textContent = "No preview";
        img.replaceWith(none);
      });
      const label = document.createElement("span");
      label.textContent = [first(series, "00080060"), first(series, "0008103E"),
        ((n) => n + (n === 1 ? " image" : " images"))(first(series, "00201209") || 0)].filter(Boolean).join(" · ");
      button.append(img, label);
      button.addEventListener("click", () => openSeries(uid));
      holder.append(button);
    }
    status(list.length + " series");
  }

  let frames = [];
  let index = 0;

  function show(i) {
    if (!frames.length) return;
    index = Math.max(0, Math.min(frames.length - 1, i));
    const [instance, frame] = frames[index];
    $("frame").src = base + "/series/" + encodeURIComponent(instance.series) + "/instances/" +
      encodeURIComponent(instance.uid) + "/frames/" + frame + "/rendered";
    $("slider").value = String(index);
    $("position").textContent = (index + 1) + " / " + frames.length;
  }

  async function openSeries(uid) {
    status("Loading series…");
    const list = await json(base + "/series/" + encodeURIComponent(uid) + "/instances?includefield=00280008");
    list.sort((a, b) => (first(a, "00200013") || 0) - (first(b, "00200013") || 0));
    frames = [];
    for (const item of list) {
      const count = Number(first(item, "00280008") || 1);
      for (let f = 1; f <= count; f++) frames.push([{ series: uid, uid: first(item, "00080018") }, f]);
    }
    $("slider").max = String(Math.max(0, frames.length - 1));
    $("series").hidden = true;
    $("stack").hidden = false;
    status("");
    show(Math.floor(frames.length / 2));
  }

  $("back").addEventListener("click", () => { $("stack").hidden = true; $("series").hidden = false; });
  $("slider").addEventListener("input", (e) => show(Number(e.target.value)));
  $("frame").addEventListener("wheel", (e) => { e.preventDefault(); show(index + Math.sign(e.deltaY)); }, { passive: false });
  document.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowRight") show(index + 1);
    if (e.key === "ArrowUp" || e.key === "ArrowLeft") show(index - 1);
  });
  let touchY = null;
  $("frame").addEventListener("touchstart", (e) => { touchY = e.touches[0].clientY; }, { passive: true });
  $("frame").addEventListener("touchmove", (e) => {
    if (touchY === null) return;
    const step = Math.trunc((e.touches[0].clientY - touchY) / 12);
    if (step) { show(index + step); touchY = e.touches[0].clientY; }
  }, { passive: true });

  async function openShare(recipient) {
    const response = await fetch("/v1/dicomweb/share-sessions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ link: shareLink, recipient }),
    });
    if (response.status === 404 || response.status === 401) throw new Error("the share has ended");
    if (!response.ok) throw new Error("HTTP " + response.status);
    token = (await response.json()).token;
    setBase();
  }

  const load = () => showSeries().catch((err) => status("Could not load the study (" + err.message + ")."));
  if (!study || !(token || shareLink)) { status("This link has no study."); return; }
  if (token) { load(); return; }
  const start = (recipient) => openShare(recipient).then(load,
    (err) => status("This shared study cannot be opened (" + err.message + ")."));
  const named = (params.get("recipient") || "").trim();
  if (named) { start(named); return; }
  status("");
  $("who").hidden = false;
  $("who").addEventListener("submit", (e) => {
    e.preventDefault();
    const recipient = $("recipient").value.trim();
    if (!recipient) return;
    $("who").hidden = true;
    status("Loading…");
    start(recipient);
  });
})();
