// The page's non-chart blocks: KPI cards, the scope's path, the drill-down table, the leaderboards
// and the two tables of deals and customers to act on. Everything from the API is written with
// textContent, never as HTML: ids come from CRMs.

import * as fmt from "./format.js";
import { language, t } from "./i18n.js";
import { DataTable } from "./tables.js";

// Each card: where its value is in the kpis answer, how it is written, and whether up is good.
export const CARDS = [
  { key: "won_amount", from: "sums", kind: "amount", up: true },
  { key: "deals_won", from: "sums", kind: "count", up: true },
  { key: "deals_lost", from: "sums", kind: "count", up: false },
  { key: "win_rate", from: "derived", kind: "percent", up: true },
  { key: "avg_deal_size", from: "derived", kind: "amount", up: true },
  { key: "avg_cycle_days", from: "derived", kind: "days", up: false },
  { key: "new_customers", from: "sums", kind: "count", up: true },
  { key: "visits", from: "sums", kind: "count", up: true },
  { key: "calls", from: "sums", kind: "count", up: true },
  { key: "connect_rate", from: "derived", kind: "percent", up: true },
  { key: "csat", from: "derived", kind: "percent", up: true },
  { key: "nps", from: "derived", kind: "score", up: true },
];

export function formatKind(kind, value) {
  const lang = language();
  switch (kind) {
    case "amount":
      return fmt.amount(lang, value);
    case "count":
      return fmt.count(lang, value);
    case "percent":
      return fmt.percent(lang, value);
    case "days":
      return value === null || value === undefined ? fmt.DASH : t("unit.days", { value: fmt.oneDecimal(lang, value) });
    default:
      return fmt.oneDecimal(lang, value);
  }
}

function el(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  return element;
}

/** The change from the previous period: relative for amounts and counts, in points for ratios. */
function change(card, current, previous) {
  if (current === null || previous === null || current === undefined || previous === undefined) return null;
  const now = Number(current);
  const before = Number(previous);
  const lang = language();
  if (card.kind === "percent") {
    const points = (now - before) * 100;
    return { direction: Math.sign(points), text: t("unit.pp", { value: fmt.signedOneDecimal(lang, points) }) };
  }
  if (card.kind === "score" || card.kind === "days") {
    return { direction: Math.sign(now - before), text: fmt.signedOneDecimal(lang, now - before) };
  }
  if (before === 0) return null;
  return { direction: Math.sign(now - before), text: fmt.signedPercent(lang, (now - before) / before) };
}

export function renderCards(container, answer) {
  const cards = CARDS.map((card) => {
    const current = answer.current[card.from][card.key];
    const previous = answer.previous[card.from][card.key];
    const box = el("article", "kpi");
    box.dataset.kpi = card.key;
    box.append(el("h3", "label", t(`kpi.${card.key}`)));
    const value = el("p", "value", formatKind(card.kind, current));
    value.dataset.value = current === null ? "" : String(current);
    box.append(value);
    const line = el("p", "previous");
    line.append(el("span", "previous-label", `${t("kpi.previous")} `));
    const previousValue = el("span", "previous-value", formatKind(card.kind, previous));
    previousValue.dataset.value = previous === null ? "" : String(previous);
    line.append(previousValue);
    const delta = change(card, current, previous);
    if (delta && delta.direction !== 0) {
      const good = (delta.direction > 0) === card.up;
      const badge = el("span", `delta ${good ? "good" : "bad"}`, `${delta.direction > 0 ? "▲" : "▼"} ${delta.text}`);
      line.append(badge);
    }
    box.append(line);
    return box;
  });
  container.replaceChildren(...cards);
}

export function entityLabel(level, entity) {
  return level === "company" ? t("level.company") : entity;
}

/** Company › region › team › rep, each a link to its own view. */
export function renderPath(container, path, navigate) {
  const items = [];
  path.forEach((step, index) => {
    if (index) items.push(el("span", "sep", "›"));
    const last = index === path.length - 1;
    const item = el(last ? "span" : "a", last ? "current" : "", entityLabel(step.level, step.entity));
    item.title = t(`level.${step.level}`);
    item.dataset.level = step.level;
    item.dataset.entity = step.entity;
    if (!last) {
      item.href = "#";
      item.addEventListener("click", (event) => {
        event.preventDefault();
        navigate(step.level, step.entity);
      });
    }
    items.push(item);
  });
  container.replaceChildren(...items);
}

const BREAKDOWN_COLUMNS = [
  ["won_amount", "sums", "amount"],
  ["deals_won", "sums", "count"],
  ["win_rate", "derived", "percent"],
  ["visits", "sums", "count"],
  ["calls", "sums", "count"],
  ["new_customers", "sums", "count"],
];

/** The scope's members for the period; choosing a row opens that member's view. */
export function renderBreakdown(section, answer, navigate) {
  const title = section.querySelector("h2");
  const note = section.querySelector(".note");
  const table = section.querySelector("table");
  const level = answer.child_level;
  title.textContent = t(level ? `breakdown.title.${level}` : "breakdown.title.none");
  note.textContent = t(level ? "breakdown.hint" : "breakdown.none");
  // A rep has no lower level: the panel gives its room to the leaderboards.
  section.hidden = !level;
  section.parentElement.classList.toggle("without-breakdown", !level);
  if (!level) {
    table.replaceChildren();
    return;
  }
  const head = el("tr");
  head.append(el("th", "", t(`level.${level}`)));
  for (const [key] of BREAKDOWN_COLUMNS) head.append(el("th", "num", t(`kpi.${key}`)));
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  for (const row of answer.rows) {
    const tr = el("tr", "drill");
    tr.dataset.level = level;
    tr.dataset.entity = row.entity;
    tr.tabIndex = 0;
    tr.append(el("td", "name", row.entity));
    for (const [key, from, kind] of BREAKDOWN_COLUMNS) {
      const td = el("td", "num", formatKind(kind, row[from][key]));
      td.dataset.key = key;
      tr.append(td);
    }
    const open = () => navigate(level, row.entity);
    tr.addEventListener("click", open);
    tr.addEventListener("keydown", (event) => {
      if (event.key === "Enter") open();
    });
    tbody.append(tr);
  }
  table.replaceChildren(thead, tbody);
}

function leaderboardValue(metric, value) {
  if (metric === "won_amount") return formatKind("amount", value);
  if (metric === "win_rate" || metric === "csat") return formatKind("percent", value);
  return formatKind("count", value);
}

/** One ranking (best reps or best teams); a row opens that rep's or team's view. */
export function renderLeaderboard(box, answer, period, navigate, scope) {
  const kind = answer.level === "rep" ? "reps" : "teams";
  const titled = period.kind === "month" || period.kind === "quarter" ? `leaderboard.${kind}.${period.kind}` : `leaderboard.${kind}`;
  box.querySelector("h3").textContent = t(titled);
  const list = box.querySelector("ol");
  const items = answer.rows.map((row) => {
    const item = el("li", "drill");
    item.dataset.entity = row.entity_id;
    item.dataset.rank = row.rank;
    if (scope && scope.level === answer.level && scope.entity === row.entity_id) item.classList.add("current");
    item.tabIndex = 0;
    item.append(el("span", `rank rank-${Math.min(row.rank, 4)}`, String(row.rank)));
    item.append(el("span", "name", row.entity_id));
    item.append(el("span", "value", leaderboardValue(answer.metric, row.value)));
    const open = () => navigate(answer.level, row.entity_id);
    item.addEventListener("click", open);
    item.addEventListener("keydown", (event) => {
      if (event.key === "Enter") open();
    });
    return item;
  });
  if (!items.length) items.push(el("li", "empty", t("leaderboard.empty")));
  list.replaceChildren(...items);
}

function badge(className, text) {
  const span = el("span", `badge ${className}`, text);
  return span;
}

export function stalledTable(root, timeZone) {
  const lang = () => language();
  const reasons = (row) => row.reasons.map((reason) => t(`reason.${reason}`)).join(t("list.separator"));
  return new DataTable(root, {
    rowKey: (row) => row.deal_id,
    choice: { key: (row) => row.severity, options: [["critical", "severity.critical"], ["warning", "severity.warning"]] },
    columns: [
      { key: "deal_id", label: "col.deal", text: (row) => row.deal_id, sort: (row) => row.deal_id },
      {
        key: "severity",
        label: "col.severity",
        text: (row) => t(`severity.${row.severity}`),
        sort: (row) => (row.severity === "critical" ? 0 : 1),
        cell: (td, row) => td.append(badge(`severity-${row.severity}`, t(`severity.${row.severity}`))),
      },
      { key: "reasons", label: "col.reasons", text: reasons, sort: reasons },
      { key: "stage", label: "col.stage", text: (row) => t(`stage.${row.stage}`), sort: (row) => row.stage },
      { key: "idle_days", label: "col.idle_days", numeric: true, text: (row) => fmt.count(lang(), row.idle_days), sort: (row) => row.idle_days },
      { key: "rep_id", label: "col.owner", text: (row) => row.rep_id, sort: (row) => row.rep_id },
      { key: "team_id", label: "col.team", text: (row) => row.team_id, sort: (row) => row.team_id },
      { key: "amount", label: "col.amount", numeric: true, text: (row) => fmt.amount(lang(), row.amount), sort: (row) => Number(row.amount) },
      {
        key: "stalled_since",
        label: "col.stalled_since",
        text: (row) => fmt.dateTime(row.stalled_since, timeZone()),
        sort: (row) => row.stalled_since,
      },
    ],
  });
}

export function followupsTable(root, timeZone) {
  const lang = () => language();
  return new DataTable(root, {
    rowKey: (row) => row.customer_id,
    choice: { key: (row) => row.status, options: [["overdue", "followup.overdue"], ["due", "followup.due"]] },
    columns: [
      { key: "customer_id", label: "col.customer", text: (row) => row.customer_id, sort: (row) => row.customer_id },
      { key: "tier", label: "col.tier", text: (row) => row.tier, sort: (row) => row.tier },
      {
        key: "status",
        label: "col.status",
        text: (row) => t(`followup.${row.status}`),
        sort: (row) => (row.status === "overdue" ? 0 : 1),
        cell: (td, row) => td.append(badge(`followup-${row.status}`, t(`followup.${row.status}`))),
      },
      { key: "overdue_days", label: "col.overdue_days", numeric: true, text: (row) => fmt.count(lang(), row.overdue_days), sort: (row) => row.overdue_days },
      { key: "rep_id", label: "col.rep", text: (row) => row.rep_id, sort: (row) => row.rep_id },
      { key: "team_id", label: "col.team", text: (row) => row.team_id, sort: (row) => row.team_id },
      {
        key: "last_contact_at",
        label: "col.last_contact",
        text: (row) => (row.last_contact_at ? fmt.dateTime(row.last_contact_at, timeZone()) : t("followup.never")),
        sort: (row) => row.last_contact_at || "",
      },
      { key: "due_at", label: "col.due_at", text: (row) => fmt.dateTime(row.due_at, timeZone()), sort: (row) => row.due_at },
    ],
  });
}
