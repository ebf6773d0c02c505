// The vljepa page: play a video, caption it live (Server-Sent Events), ask about it, search the library.
"use strict";

const $ = (selector) => document.querySelector(selector);
const player = $("#player");
const state = { source: null, duration: 0, segments: [], events: null };
const HUES = [222, 160, 280, 30, 190, 330, 95, 250];

function showError(message) {
  const toast = $("#toast");
  toast.textContent = message;
  toast.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { toast.hidden = true; }, 6000);
}

function askForToken() {
  return new Promise((resolve) => {
    const dialog = $("#token-dialog");
    $("#token-form").onsubmit = () => {
      document.cookie = `vljepa_token=${encodeURIComponent($("#token").value)}; path=/; SameSite=Strict`;
      resolve();
    };
    dialog.showModal();
  });
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  if (response.status === 401) {
    await askForToken();
    return api(path, options);
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function seconds(value) {
  return `${value.toFixed(1)} s`;
}

// --- model info -------------------------------------------------------------------------------

async function loadInfo() {
  const info = await api("/info");
  const name = info.model ? info.model.split("/").filter(Boolean).slice(-2).join("/") : "model";
  const chips = [name, info.precision, info.parts.y_decoder ? "decoder" : "no decoder"];
  if (info.index_size !== null) chips.push(`${info.index_size} windows indexed`);
  $("#model-info").replaceChildren(...chips.map((text) => {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.textContent = text;
    return chip;
  }));
  $("#search-hint").textContent = info.index_size === null ? "No index loaded: start the server with --index." : "";
}

// --- the player and its timeline ---------------------------------------------------------------

function resetTimeline(duration) {
  state.duration = duration;
  state.segments = [];
  $("#segments").replaceChildren();
  $("#track").replaceChildren($("#playhead"));
  $("#axis-end").textContent = seconds(duration);
  $("#timeline").hidden = false;
  $("#answer").hidden = true;
}

function play(url, name, source, startAt = 0, onReady = () => {}) {
  if (state.events) state.events.close();
  state.source = source;
  player.hidden = false;
  $("#drop").hidden = true;
  $("#now-playing").hidden = false;
  $("#video-name").textContent = name;
  $("#ask-button").disabled = false;
  player.src = url;
  player.addEventListener("loadedmetadata", () => {
    onReady();
    player.currentTime = startAt;
    player.play().catch(() => {});
  }, { once: true });
}

function addSegment(segment) {
  const index = state.segments.length;
  state.segments.push(segment);
  const hue = HUES[index % HUES.length];
  const span = Math.max(state.duration, segment.end);
  const block = document.createElement("div");
  block.className = "block";
  block.style.left = `${(100 * segment.start) / span}%`;
  block.style.width = `${(100 * (segment.end - segment.start)) / span}%`;
  block.style.background = `hsl(${hue} 70% 58%)`;
  block.title = segment.text;
  block.onclick = () => { player.currentTime = segment.start; };
  $("#track").insertBefore(block, $("#playhead"));
  const row = document.createElement("li");
  row.style.borderLeftColor = `hsl(${hue} 70% 58%)`;
  const time = document.createElement("time");
  time.textContent = `${segment.start.toFixed(1)}–${segment.end.toFixed(1)} s`;
  const text = document.createElement("span");
  text.textContent = segment.text || "…";
  row.append(time, text);
  row.onclick = () => { player.currentTime = segment.start; player.play().catch(() => {}); };
  $("#segments").append(row);
  segment.block = block;
  segment.row = row;
  highlight();
}

function setStatus(text, working) {
  $("#status").textContent = text;
  $("#status").classList.toggle("working", working);
}

function follow(job) {
  setStatus("Reading the video…", true);
  const events = new EventSource(job.events_url);
  state.events = events;
  events.addEventListener("segment", (event) => {
    addSegment(JSON.parse(event.data));
    const count = state.segments.length;
    setStatus(`Captioning… ${count} segment${count === 1 ? "" : "s"} so far`, true);
  });
  events.addEventListener("done", (event) => {
    events.close();
    const timeline = JSON.parse(event.data);
    setStatus(`${timeline.segments.length} segments, one caption each (selective decoding)`, false);
  });
  events.addEventListener("failed", (event) => {
    events.close();
    setStatus("", false);
    showError(JSON.parse(event.data).error);
  });
}

async function openFile(file) {
  if (!file) return;
  play(URL.createObjectURL(file), file.name, null);
  resetTimeline(0);
  setStatus("Uploading…", true);
  const form = new FormData();
  form.append("video", file);
  try {
    const job = await api("/streams", { method: "POST", body: form });
    state.source = { video_id: job.video_id };
    resetTimeline(job.duration);
    follow(job);
  } catch (error) {
    setStatus("", false);
    showError(error.message);
  }
}

function highlight() {
  const now = player.currentTime || 0;
  const span = Math.max(state.duration, 1e-6);
  $("#playhead").style.left = `${Math.min(100, (100 * now) / span)}%`;
  for (const segment of state.segments) {
    const active = segment.start <= now && now < segment.end;
    segment.block.classList.toggle("active", active);
    segment.row.classList.toggle("active", active);
  }
}

player.addEventListener("timeupdate", highlight);
player.addEventListener("seeked", highlight);

const drop = $("#drop");
$("#file").addEventListener("change", (event) => openFile(event.target.files[0]));
for (const target of [drop, $("#stage")]) {
  target.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  target.addEventListener("dragleave", () => drop.classList.remove("over"));
  target.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    openFile(event.dataTransfer.files[0]);
  });
}
$("#change").addEventListener("click", () => $("#file").click());

// --- ask ---------------------------------------------------------------------------------------

$("#ask-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!state.source) return;
  const form = new FormData();
  for (const [key, value] of Object.entries(state.source)) form.append(key, value);
  form.append("question", $("#question").value);
  for (const option of $("#options").value.split(",").map((o) => o.trim()).filter(Boolean)) form.append("options", option);
  $("#ask-button").disabled = true;
  try {
    const result = await api("/ask", { method: "POST", body: form });
    const answer = $("#answer");
    const main = document.createElement("div");
    main.className = "main";
    main.textContent = result.answer;
    const how = document.createElement("div");
    how.className = "how";
    how.textContent = result.decoded ? "written by the decoder" : "nearest option to the predicted answer";
    answer.replaceChildren(main, how);
    for (const option of result.options || []) {
      const bar = document.createElement("div");
      bar.className = "bar";
      const label = document.createElement("div");
      label.textContent = option.text;
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = `${Math.max(4, 50 + 50 * option.score)}%`;
      label.append(fill);
      const score = document.createElement("span");
      score.textContent = option.score.toFixed(3);
      bar.append(label, score);
      answer.append(bar);
    }
    answer.hidden = false;
  } catch (error) {
    showError(error.message);
  } finally {
    $("#ask-button").disabled = false;
  }
});

// --- search ------------------------------------------------------------------------------------

$("#search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const query = $("#query").value.trim();
  if (!query) return;
  try {
    const found = await api(`/search?q=${encodeURIComponent(query)}&k=8`);
    $("#search-hint").textContent = found.results.length ? "" : "Nothing found.";
    $("#results").replaceChildren(...found.results.map((hit) => {
      const item = document.createElement("li");
      const image = document.createElement("img");
      image.src = hit.thumbnail_url;
      image.alt = `${hit.path} at ${seconds(hit.start)}`;
      image.loading = "lazy";
      const meta = document.createElement("div");
      meta.className = "meta";
      const name = document.createElement("b");
      name.textContent = hit.path.split("/").pop();
      const when = document.createElement("span");
      when.textContent = hit.end === null ? "whole video" : `${hit.start.toFixed(1)}–${hit.end.toFixed(1)} s`;
      meta.append(name, when);
      item.append(image, meta);
      item.title = `${hit.path} (score ${hit.score.toFixed(3)})`;
      item.onclick = () => {
        if (state.events) state.events.close();
        play(hit.video_url, hit.path.split("/").pop(), { path: hit.path }, hit.start, () => {
          resetTimeline(player.duration);
          addSegment({ start: hit.start, end: hit.end ?? player.duration, text: `“${query}” (score ${hit.score.toFixed(3)})` });
          setStatus("The window the search found", false);
        });
      };
      return item;
    }));
  } catch (error) {
    showError(error.message);
  }
});

loadInfo().catch((error) => showError(error.message));
