// The local console: polls the stack once a second and redraws what changed.
// Every value from the stack goes into the page as text (textContent), never as markup; the
// state machine picture is the server's own SVG, drawn from the ASL with its names escaped.
"use strict";

const POLL_MS = 1000;
const view = { secret: null, execution: null, follow: false, shownStatus: null, svg: null, overview: null, generation: 0 };
let ticking = false;
let again = false;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function statusBadge(status) {
  return el("span", { class: "status " + status }, status);
}

function shortTime(iso) {
  return iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace(/\+00:00$/, " UTC") : "";
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function select(secretArn, executionArn, follow) {
  view.secret = secretArn;
  view.execution = executionArn;
  view.follow = follow;
  view.shownStatus = null;
  view.generation += 1; // answers to requests made before this choice are dropped
  if (view.overview) renderOverview(view.overview);
  tick();
}

function rotationsOf(secretArn) {
  const secret = (view.overview?.secrets || []).find((s) => s.arn === secretArn);
  return secret ? secret.rotations : [];
}

function renderOverview(data) {
  const list = document.getElementById("secret-list");
  document.getElementById("no-secrets").hidden = data.secrets.length > 0;
  list.replaceChildren(
    ...data.secrets.map((secret) => {
      const rotations = secret.rotations.map((rotation) =>
        el("li", { class: "rotation" },
          el("span", {}, "rotation ", el("code", {}, rotation.token.slice(0, 8)), " ", statusBadge(rotation.status)),
          el("ul", {}, ...rotation.executions.map((execution) =>
            el("li", {},
              el("button", {
                class: "link execution" + (execution.arn === view.execution ? " selected" : ""),
                "data-execution": execution.arn,
                onclick: () => select(secret.arn, execution.arn, false),
              }, execution.step),
              " ", statusBadge(execution.status))))));
      return el("li", { class: "secret", "data-secret": secret.name },
        el("button", {
          class: "link" + (secret.arn === view.secret ? " selected" : ""),
          onclick: () => select(secret.arn, null, true),
          title: "follow this secret's newest rotation",
        }, secret.name),
        el("div", { class: "meta" },
          secret.rotation_enabled ? "rotation on" : "rotation off",
          secret.last_rotated ? " \u00b7 last rotated " + shortTime(secret.last_rotated) : ""),
        el("ul", {}, ...rotations));
    }));
  const others = document.getElementById("other-list");
  document.getElementById("other-title").hidden = data.other_executions.length === 0;
  others.replaceChildren(...data.other_executions.map((execution) =>
    el("li", {}, el("button", {
      class: "link execution", "data-execution": execution.arn,
      onclick: () => select(null, execution.arn, false),
    }, execution.name), " ", statusBadge(execution.status))));
}

// The steps of the shown execution's rotation, from the newest overview: redrawn on every poll,
// since a step's status there can change after the shown execution itself has ended.
function renderSteps() {
  const steps = document.getElementById("rotation-steps");
  const rotation = view.execution
    ? rotationsOf(view.secret).find((r) => r.executions.some((e) => e.arn === view.execution))
    : null;
  steps.replaceChildren(...(rotation ? rotation.executions : []).map((execution) =>
    el("li", { class: execution.status + (execution.arn === view.execution ? " shown" : ""), "data-step": execution.step },
      execution.step + " ", statusBadge(execution.status))));
}

function renderExecution(data) {
  document.getElementById("pick").hidden = true;
  document.getElementById("execution").hidden = false;
  document.getElementById("exec-step").textContent = data.name.split("-")[0];
  const status = document.getElementById("exec-status");
  status.textContent = data.status;
  status.className = "status " + data.status;
  document.getElementById("exec-name").textContent = data.name;
  document.getElementById("exec-machine").textContent = data.machine;
  document.getElementById("exec-started").textContent = shortTime(data.started);
  document.getElementById("exec-stopped").textContent = data.stopped ? "\u00b7 stopped " + shortTime(data.stopped) : "";
  const error = document.getElementById("exec-error");
  error.hidden = !data.error;
  error.textContent = data.error
    ? data.error + (data.failed_states.length ? " in " + data.failed_states.join(", ") : "")
    : "";
  document.getElementById("exec-input").textContent = data.input;
  document.getElementById("exec-output").textContent = data.output || data.cause;

  renderSteps();

  if (data.svg !== view.svg) {
    const graph = document.getElementById("graph");
    const first = view.svg === null;
    graph.innerHTML = data.svg; // the server's drawing of the ASL: no value from a secret
    view.svg = data.svg;
    const focus = graph.querySelector("g.state.current, g.state.failed");
    if (focus && (first || data.status === "RUNNING" || data.failed_states.length)) {
      // scroll the picture, not the page, to the state that matters
      const box = focus.getBoundingClientRect();
      const frame = graph.getBoundingClientRect();
      graph.scrollTop += box.top - frame.top - graph.clientHeight / 2 + box.height / 2;
      graph.scrollLeft += box.left - frame.left - graph.clientWidth / 2 + box.width / 2;
    }
  }
  document.getElementById("event-count").textContent = String(data.events.length);
  const body = document.querySelector("#events tbody");
  body.replaceChildren(...data.events.map((event) => {
    const details = Object.entries(event.details).map(([key, value]) =>
      el("details", {}, el("summary", {}, key), el("pre", {}, value)));
    return el("tr", { class: /Failed|TimedOut/.test(event.type) ? "failure" : "" },
      el("td", {}, String(event.id)), el("td", {}, event.type), el("td", {}, event.state),
      el("td", {}, shortTime(event.time)), el("td", {}, ...details));
  }));
}

async function tick() {
  if (ticking) { again = true; return; }
  ticking = true;
  try {
    do {
      again = false;
      await refresh();
    } while (again);
  } finally {
    ticking = false;
  }
}

async function refresh() {
  const live = document.getElementById("live");
  const problem = document.getElementById("problem");
  const generation = view.generation;
  try {
    const overview = await getJson("api/overview");
    if (generation !== view.generation) return;
    view.overview = overview;
    if (view.follow && view.secret) {
      const newest = rotationsOf(view.secret)[0];
      const latest = newest ? newest.executions[newest.executions.length - 1] : null;
      if (latest && latest.arn !== view.execution) {
        view.execution = latest.arn;
        view.shownStatus = null;
      }
    }
    renderOverview(view.overview);
    renderSteps();
    if (view.execution && view.shownStatus !== "ENDED") {
      const data = await getJson("api/execution?arn=" + encodeURIComponent(view.execution));
      if (generation !== view.generation || data.arn !== view.execution) return;
      renderExecution(data);
      if (!["RUNNING"].includes(data.status)) view.shownStatus = "ENDED";
    }
    live.classList.remove("stale");
    live.textContent = "live";
    problem.textContent = "";
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (error) {
    live.classList.add("stale");
    live.textContent = "not updating";
    problem.textContent = String(error.message || error);
  }
}

let timer = null;
document.addEventListener("DOMContentLoaded", () => {
  tick();
  timer = setInterval(tick, POLL_MS);
});
