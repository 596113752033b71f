// The inspector page: live snapshots over SSE, the message flow drawn as SVG.
// Everything from the server is inserted with textContent, never as HTML.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = {
  "http.request": "#4a78d0", "http.disconnect": "#c0392b",
  "http.response.start": "#2e8b57", "http.response.body": "#e08a1e",
};
let selected = null;
let timelineTimer = null;

function cell(row, text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  row.appendChild(td);
  return td;
}

function seconds(value) {
  if (value === null || value === undefined) return "-";
  return value < 1 ? (value * 1000).toFixed(1) + " ms" : value.toFixed(2) + " s";
}

function fillOpen(streams) {
  const body = document.querySelector("#open tbody");
  body.replaceChildren();
  for (const s of streams) {
    const row = document.createElement("tr");
    row.dataset.id = s.id;
    if (s.id === selected) row.className = "selected";
    cell(row, s.id, true);
    cell(row, s.method + " " + s.route);
    cell(row, s.client || "-");
    cell(row, seconds(s.age), true);
    cell(row, s.bytes, true).className = "num bytes";
    cell(row, s.chunks, true).className = "num chunks";
    cell(row, s.rate.toFixed(1), true);
    const state = document.createElement("span");
    state.className = "state " + s.state;
    state.textContent = s.state;
    cell(row, "").appendChild(state);
    row.addEventListener("click", () => select(s.id));
    body.appendChild(row);
  }
  document.getElementById("open-count").textContent = streams.length;
}

function fillOutcomes(outcomes) {
  const list = document.getElementById("outcomes");
  list.replaceChildren();
  for (const [reason, count] of Object.entries(outcomes)) {
    const item = document.createElement("li");
    item.dataset.reason = reason;
    const name = document.createElement("span");
    name.textContent = reason;
    const value = document.createElement("b");
    value.textContent = count;
    item.append(name, value);
    list.appendChild(item);
  }
}

function fillTtfb(ttfb) {
  const box = document.getElementById("ttfb");
  box.replaceChildren();
  const most = Math.max(1, ...ttfb.counts);
  ttfb.counts.forEach((count, i) => {
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.title = count + " streams";
    const value = document.createElement("span");
    value.textContent = count;
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.height = (80 * count / most) + "%";
    const label = document.createElement("span");
    label.textContent = i < ttfb.bounds.length ? "<" + seconds(ttfb.bounds[i])
                                                 : ">=" + seconds(ttfb.bounds.at(-1));
    bar.append(value, fill, label);
    box.appendChild(bar);
  });
}

function fillRecent(recent) {
  const body = document.querySelector("#recent tbody");
  body.replaceChildren();
  for (const s of recent) {
    const row = document.createElement("tr");
    row.dataset.id = s.id;
    if (s.id === selected) row.className = "selected";
    cell(row, s.id, true);
    cell(row, s.method + " " + s.route);
    cell(row, s.reason);
    cell(row, s.status, true);
    cell(row, seconds(s.duration), true);
    cell(row, s.bytes, true);
    cell(row, s.chunks, true);
    cell(row, seconds(s.ttfb), true);
    row.addEventListener("click", () => select(s.id));
    body.appendChild(row);
  }
}

function svg(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  parent.appendChild(node);
  return node;
}

function drawTimeline(flow) {
  const box = document.getElementById("timeline");
  box.replaceChildren();
  const width = box.clientWidth || 800, left = 110, right = 20;
  const lanes = { receive: 45, send: 105 };
  const end = Math.max(0.001, ...flow.messages.map((m) => m[0]));
  const x = (t) => left + (width - left - right) * t / end;
  for (const [direction, y] of Object.entries(lanes)) {
    svg("line", { x1: left, x2: width - right, y1: y, y2: y, stroke: "#ccd" }, box);
    svg("text", { x: 6, y: y + 4 }, box).textContent =
      direction === "receive" ? "server \u2192 app" : "app \u2192 server";
  }
  svg("text", { x: width - right - 60, y: 140 }, box).textContent = seconds(end);
  for (const [time, direction, type, size, more, status, preview] of flow.messages) {
    const last = type === "http.response.body" && !more;
    const dot = svg("circle", {
      cx: x(time), cy: lanes[direction], r: type === "http.response.body" ? 4 : 6,
      fill: last ? "#1d2330" : (COLOURS[type] || "#999"), class: "message",
      "data-type": type,
    }, box);
    const label = [seconds(time), type, status ? "status " + status : "", size + " B",
                   more ? "more_body" : "", preview ? JSON.stringify(preview) : ""];
    svg("title", {}, dot).textContent = label.filter(Boolean).join("  ");
  }
  const note = document.getElementById("timeline-note");
  note.textContent = flow.messages.length + " messages" +
    (flow.dropped ? " (" + flow.dropped + " in the middle not kept)" : "") +
    (flow.outcome ? "; ended: " + flow.outcome : "; open");
}

async function loadTimeline() {
  if (selected === null) return;
  const response = await fetch("streams/" + selected);
  if (!response.ok) return;
  const flow = await response.json();
  document.getElementById("timeline-title").textContent =
    "#" + flow.id + " " + flow.method + " " + flow.path;
  drawTimeline(flow);
}

function select(id) {
  selected = id;
  for (const row of document.querySelectorAll("tbody tr")) {
    row.classList.toggle("selected", Number(row.dataset.id) === id);
  }
  loadTimeline();
  clearInterval(timelineTimer);
  timelineTimer = setInterval(loadTimeline, 1000);
}

function connect() {
  const source = new EventSource("events");
  const badge = document.getElementById("connection");
  source.addEventListener("open", () => { badge.textContent = "live"; badge.className = "badge live"; });
  source.addEventListener("error", () => { badge.textContent = "reconnecting"; badge.className = "badge"; });
  source.addEventListener("snapshot", (event) => {
    const snapshot = JSON.parse(event.data);
    fillOpen(snapshot.open);
    fillOutcomes(snapshot.outcomes);
    fillTtfb(snapshot.ttfb);
    fillRecent(snapshot.recent);
    document.getElementById("summary").textContent =
      snapshot.open.length + " open, " + snapshot.ended + " ended since start";
  });
}

connect();
