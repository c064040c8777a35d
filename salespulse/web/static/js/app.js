// The manager page: its state lives in the URL (?period=2026-03 or ?from=…&to=…, &level=…&entity=…,
// &lang=zh|en), it reads the JSON API under api/v1/ and refreshes itself without reloading.

import * as api from "./api.js";
import { drawFunnel, drawPipeline, drawTargets, drawTrend, resizeAll } from "./charts.js";
import * as fmt from "./format.js";
import { applyLabels, language, loadLanguage, pickLanguage, t } from "./i18n.js";
import {
  entityLabel,
  followupsTable,
  renderBreakdown,
  renderCards,
  renderLeaderboard,
  renderPath,
  stalledTable,
} from "./panels.js";

const LEVELS = ["company", "region", "team", "rep"];
const PERIOD_KINDS = ["month", "quarter", "week", "year", "range"];
const $ = (id) => document.getElementById(id);

const state = { period: null, level: "company", entity: "all", lang: "en", langInUrl: false };
let meta = null;
let last = {}; // the latest answers, re-rendered when the language changes
let inFlight = false;
let again = false;
let timer = null;
let refreshes = 0;
let tables = null;

// --- the URL --------------------------------------------------------------------------------

function periodKind(period) {
  if (!period) return "month";
  if (period.kind === "range") return "range";
  const label = period.label;
  if (/^\d{4}-\d{2}$/.test(label)) return "month";
  if (/^\d{4}-Q[1-4]$/.test(label)) return "quarter";
  if (/^\d{4}-W\d{2}$/.test(label)) return "week";
  if (/^\d{4}$/.test(label)) return "year";
  return "month";
}

function readUrl() {
  const params = new URLSearchParams(location.search);
  if (params.has("period")) state.period = { kind: "label", label: params.get("period") };
  else if (params.has("from") || params.has("to"))
    state.period = { kind: "range", from: params.get("from") || "", to: params.get("to") || "" };
  else state.period = null;
  state.level = params.get("level") || "company";
  state.entity = state.level === "company" ? "all" : params.get("entity") || "";
  state.langInUrl = params.has("lang");
  state.lang = pickLanguage(params.get("lang"));
}

function periodParams() {
  if (!state.period) return {};
  if (state.period.kind === "range") return { from: state.period.from, to: state.period.to };
  return { period: state.period.label };
}

function scopeParams() {
  return state.level === "company" ? {} : { level: state.level, entity: state.entity };
}

/** What is shown (period and scope), as a query string: the page marks its body with it once drawn. */
function viewQuery() {
  return new URLSearchParams({ ...periodParams(), ...scopeParams() }).toString();
}

function urlQuery() {
  const params = new URLSearchParams(viewQuery());
  if (state.langInUrl) params.set("lang", state.lang);
  return params.toString();
}

function writeUrl(push) {
  const url = `${location.pathname}?${urlQuery()}`;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

/** Change what is shown (period and/or scope): a new history entry, then fresh data. */
function navigate(change) {
  Object.assign(state, change);
  if (state.level === "company") state.entity = "all";
  writeUrl(true);
  showControls();
  refresh();
}

function drill(level, entity) {
  navigate({ level, entity });
}

// --- controls ---------------------------------------------------------------------------------

function option(value, text) {
  return new Option(text, value);
}

function yearsAvailable() {
  const now = new Date().getFullYear();
  const first = meta && meta.first_day ? Number(meta.first_day.slice(0, 4)) : now;
  const latest = meta && meta.latest_day ? Number(meta.latest_day.slice(0, 4)) : now;
  const years = [];
  for (let year = Math.max(latest, now); year >= Math.min(first, now) - 1; year -= 1) years.push(year);
  return years;
}

const DAY = {
  test(value) {
    const day = new Date(`${value}T00:00:00Z`);
    return /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(day.getTime()) && day.toISOString().startsWith(value);
  },
};

/** Put a value from the URL into a date-like input only if the input can hold it: the browser
 * warns about anything else, and the API's message (in the banner) says what is wrong. */
function setInput(id, value, pattern) {
  const input = $(id);
  input.value = value && pattern.test(value) ? value : "";
  if (value && input.value !== value) input.value = "";
}

function showControls() {
  const kind = periodKind(state.period);
  const kindSelect = $("period-kind");
  kindSelect.replaceChildren(...PERIOD_KINDS.map((k) => option(k, t(`period.${k}`))));
  kindSelect.value = kind;
  for (const k of PERIOD_KINDS) $(`period-${k}`).hidden = k !== kind;
  const label = state.period && state.period.kind !== "range" ? state.period.label : "";
  setInput("period-month-input", kind === "month" ? label : "", /^\d{4}-(0[1-9]|1[0-2])$/);
  setInput("period-week-input", kind === "week" ? label : "", /^\d{4}-W(0[1-9]|[1-4]\d|5[0-3])$/);
  const quarters = [];
  const years = yearsAvailable();
  for (const year of years) for (let q = 4; q >= 1; q -= 1) quarters.push(`${year}-Q${q}`);
  if (kind === "quarter" && label && !quarters.includes(label)) quarters.unshift(label);
  $("period-quarter-input").replaceChildren(...quarters.map((value) => option(value, value)));
  $("period-quarter-input").value = kind === "quarter" ? label : "";
  const yearLabels = years.map(String);
  if (kind === "year" && label && !yearLabels.includes(label)) yearLabels.unshift(label);
  $("period-year-input").replaceChildren(...yearLabels.map((value) => option(value, value)));
  $("period-year-input").value = kind === "year" ? label : "";
  if (state.period && state.period.kind === "range") {
    setInput("range-from", state.period.from, DAY);
    setInput("range-to", state.period.to, DAY);
  }

  $("scope-level").replaceChildren(...LEVELS.map((level) => option(level, t(`level.${level}`))));
  $("scope-level").value = state.level;
  fillEntities(state.level);

  $("lang-toggle").textContent = t("lang.other");
  $("lang-toggle").title = t("lang.other_title");
}

async function fillEntities(level) {
  const select = $("scope-entity");
  select.hidden = level === "company";
  if (level === "company") return;
  let names = [];
  try {
    names = (await api.get("entities", { level })).entities;
  } catch (error) {
    names = [];
  }
  const chosen = level === state.level ? state.entity : "";
  const options = [option("", t("scope.pick")), ...names.map((name) => option(name, name))];
  if (chosen && !names.includes(chosen)) options.push(option(chosen, chosen));
  select.replaceChildren(...options);
  select.value = chosen;
}

/** The ISO week (2026-W10) of a day (2026-03-05). */
function isoWeek(day) {
  const thursday = new Date(`${day}T00:00:00Z`);
  thursday.setUTCDate(thursday.getUTCDate() - ((thursday.getUTCDay() + 6) % 7) + 3);
  const year = thursday.getUTCFullYear();
  const january4 = new Date(Date.UTC(year, 0, 4));
  const week = 1 + Math.round(((thursday - january4) / 86400000 - 3 + ((january4.getUTCDay() + 6) % 7)) / 7);
  return `${year}-W${String(week).padStart(2, "0")}`;
}

/** The default period of a kind, around the latest day with data. */
function defaultFor(kind) {
  const latest = meta && meta.latest_day ? meta.latest_day : new Date().toISOString().slice(0, 10);
  const [year, month] = [Number(latest.slice(0, 4)), Number(latest.slice(5, 7))];
  if (kind === "month") return { kind: "label", label: latest.slice(0, 7) };
  if (kind === "quarter") return { kind: "label", label: `${year}-Q${Math.floor((month - 1) / 3) + 1}` };
  if (kind === "year") return { kind: "label", label: String(year) };
  if (kind === "week") return { kind: "label", label: isoWeek(latest) };
  return { kind: "range", from: `${latest.slice(0, 8)}01`, to: latest };
}

function wireControls() {
  $("period-kind").addEventListener("change", (event) => navigate({ period: defaultFor(event.target.value) }));
  $("period-month-input").addEventListener("change", (event) => {
    if (event.target.value) navigate({ period: { kind: "label", label: event.target.value } });
  });
  $("period-week-input").addEventListener("change", (event) => {
    if (event.target.value) navigate({ period: { kind: "label", label: event.target.value } });
  });
  $("period-quarter-input").addEventListener("change", (event) => navigate({ period: { kind: "label", label: event.target.value } }));
  $("period-year-input").addEventListener("change", (event) => navigate({ period: { kind: "label", label: event.target.value } }));
  $("period-range").addEventListener("submit", (event) => {
    event.preventDefault();
    navigate({ period: { kind: "range", from: $("range-from").value, to: $("range-to").value } });
  });
  $("scope-level").addEventListener("change", (event) => {
    const level = event.target.value;
    if (level === "company") navigate({ level, entity: "all" });
    else fillEntities(level);
  });
  $("scope-entity").addEventListener("change", (event) => {
    if (event.target.value) navigate({ level: $("scope-level").value, entity: event.target.value });
  });
  $("leaderboard-metric").addEventListener("change", () => refresh());
  $("lang-toggle").addEventListener("click", async () => {
    state.lang = language() === "zh" ? "en" : "zh";
    state.langInUrl = true;
    await loadLanguage(state.lang);
    relabel();
    writeUrl(false); // once the page speaks it: the URL never promises what is not shown
  });
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    api.saveToken($("login-token").value.trim());
    $("login-dialog").close();
    refresh();
  });
  window.addEventListener("popstate", () => {
    readUrl();
    showControls();
    refresh();
  });
  window.addEventListener("resize", () => resizeAll());
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
}

function fillMetricChoice() {
  const select = $("leaderboard-metric");
  const chosen = select.value || "won_amount";
  const metrics = meta ? meta.leaderboard_metrics : ["won_amount"];
  select.replaceChildren(...metrics.map((metric) => option(metric, t(`metric.${metric}`))));
  select.value = chosen;
}

// --- rendering ----------------------------------------------------------------------------------

function timeZone() {
  return meta ? meta.timezone : "UTC";
}

function render(answers) {
  if (answers.kpis) {
    renderCards($("kpis"), answers.kpis);
    const previous = answers.kpis.previous_period;
    $("previous-note").textContent = t("previous.label", { period: previous.label.replace("..", " – ") });
    $("kpis-currency").textContent = meta ? meta.currency : "";
  }
  if (answers.scope) renderPath($("crumbs"), answers.scope.path, drill);
  if (answers.trend) {
    drawTrend(answers.trend, meta ? meta.latest_day : null);
    $("trend-bucket").textContent = t(`trend.bucket.${answers.trend.bucket}`);
  }
  if (answers.funnel) {
    $("funnel-empty").hidden = answers.funnel.stages.length > 0;
    drawFunnel(answers.funnel.stages);
  }
  if (answers.pipeline) drawPipeline(answers.pipeline.stages);
  if (answers.targets) {
    const none = answers.targets.targets.length === 0;
    $("targets-empty").hidden = !none;
    $("chart-targets").classList.toggle("collapsed", none);
    $("chart-targets").style.height = `${Math.max(120, 48 + 34 * answers.targets.targets.length)}px`;
    drawTargets(answers.targets.targets);
    resizeAll();
  }
  if (answers.breakdown) renderBreakdown($("breakdown"), answers.breakdown, drill);
  if (answers.reps) renderLeaderboard($("board-reps"), answers.reps, answers.reps.period, drill, state);
  if (answers.teams) renderLeaderboard($("board-teams"), answers.teams, answers.teams.period, drill, state);
  if (answers.stalled) tables.stalled.setRows(answers.stalled.rows, answers.stalled.total, answers.stalled.limit);
  if (answers.followups) tables.followups.setRows(answers.followups.rows, answers.followups.total, answers.followups.limit);
  document.title = `${t("title")} · ${entityLabel(state.level, state.entity)} · ${answers.kpis ? answers.kpis.period.label : ""}`;
}

function relabel() {
  applyLabels();
  showControls();
  fillMetricChoice();
  render(last);
  showStatus();
}

let lastSuccess = null;
let problem = null;

function showStatus() {
  const status = $("last-updated");
  const parts = [];
  if (lastSuccess) parts.push(t("status.updated", { time: fmt.clockTime(lastSuccess) }));
  if (meta) parts.push(meta.latest_day ? t("status.data_through", { day: meta.latest_day }) : t("status.no_data"));
  status.textContent = parts.join(" · ");
  if (lastSuccess) status.dataset.at = lastSuccess.toISOString();
  const offline = problem && (problem.status === 0 || problem.status >= 500);
  $("live").classList.toggle("offline", Boolean(offline));
  $("live-text").textContent = offline ? t("status.offline") : t("status.live");
  const banner = $("banner");
  if (problem && problem.status === 400) {
    banner.hidden = false;
    $("banner-title").textContent = t("error.title");
    $("banner-message").textContent = problem.message;
  } else if (offline) {
    banner.hidden = false;
    $("banner-title").textContent = t("error.store");
    $("banner-message").textContent = problem.message;
  } else banner.hidden = true;
}

// --- refreshing ---------------------------------------------------------------------------------

async function refresh() {
  if (inFlight) {
    again = true;
    return;
  }
  inFlight = true;
  const view = viewQuery();
  try {
    const P = periodParams();
    const S = scopeParams();
    const metric = $("leaderboard-metric").value || "won_amount";
    const requests = {
      meta: api.get("meta"),
      kpis: api.get("kpis", { ...P, ...S }),
      trend: api.get("trend", { ...P, ...S }),
      breakdown: api.get("breakdown", { ...P, ...S }),
      scope: api.get("scope", S),
      funnel: api.get("funnel", S),
      pipeline: api.get("pipeline", S),
      targets: api.get("targets", { ...P, ...S }),
      reps: api.get("leaderboard", { ...P, level: "rep", metric, top: 10 }),
      teams: api.get("leaderboard", { ...P, level: "team", metric, top: 10 }),
      stalled: api.get("stalled", S),
      followups: api.get("followups", S),
    };
    const names = Object.keys(requests);
    const settled = await Promise.allSettled(Object.values(requests));
    if (view !== viewQuery()) return; // the view changed meanwhile; its own refresh follows
    const answers = {};
    const failures = [];
    settled.forEach((result, index) => {
      if (result.status === "fulfilled") answers[names[index]] = result.value;
      else failures.push(result.reason);
    });
    if (answers.meta) {
      const first = !meta;
      meta = answers.meta;
      if (first) fillMetricChoice();
    }
    if (failures.some((error) => error.status === 401)) {
      api.saveToken(null);
      $("login-error").hidden = !$("login-token").value;
      if (!$("login-dialog").open) $("login-dialog").showModal();
      problem = null;
      return;
    }
    problem = failures.find((error) => error.status === 400) || failures[0] || null;
    if (problem && problem.status === 400) {
      // The view itself is wrong (a bad period or an unknown entity): show why, not stale numbers.
      showStatus();
      document.body.dataset.view = "";
      return;
    }
    last = { ...last, ...answers };
    render(answers);
    if (!failures.length) {
      lastSuccess = new Date();
      refreshes += 1;
      document.body.dataset.view = view;
      document.body.dataset.refreshes = String(refreshes);
    }
    showStatus();
  } finally {
    inFlight = false;
    if (again) {
      again = false;
      refresh();
    }
  }
}

function schedule() {
  clearInterval(timer);
  const seconds = meta ? meta.refresh_seconds : 5;
  timer = setInterval(() => {
    if (!document.hidden) refresh();
  }, seconds * 1000);
}

async function start() {
  readUrl();
  await loadLanguage(state.lang);
  applyLabels();
  tables = { stalled: stalledTable($("stalled"), timeZone), followups: followupsTable($("followups"), timeZone) };
  wireControls();
  try {
    meta = await api.get("meta");
  } catch (error) {
    meta = null;
    if (error.status === 401) {
      $("login-dialog").showModal();
    }
  }
  if (!state.period) {
    state.period = defaultFor("month");
    writeUrl(false);
  }
  fillMetricChoice();
  showControls();
  await refresh();
  schedule();
}

start();
