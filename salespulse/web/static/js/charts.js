// The page's charts, drawn by Apache ECharts (vendored: static/vendor/echarts). This module only
// turns API answers into ECharts options.

/* global echarts */
import * as fmt from "./format.js";
import { language, t } from "./i18n.js";

export const STATUS_COLORS = {
  achieved: "#2e7d32",
  on_track: "#1565c0",
  at_risk: "#e08a00",
  off_track: "#c62828",
};
const PALETTE = ["#1565c0", "#26a69a", "#f4a300", "#8e5cc2", "#ef5350"];
const STAGES = ["prospecting", "qualified", "proposal", "negotiation"];
const TEXT = "#2b3440";
const MUTED = "#6b7685";
const GRID_LINE = "#e6e9ee";

const instances = new Map();

/** The chart in element id, created on first use (and again when the language changes). */
export function chartFor(id) {
  const element = document.getElementById(id);
  const locale = language() === "zh" ? "ZH" : "EN";
  let entry = instances.get(id);
  if (entry && entry.locale !== locale) {
    entry.chart.dispose();
    entry = null;
  }
  if (!entry) {
    entry = { chart: echarts.init(element, null, { locale, renderer: "canvas" }), locale };
    instances.set(id, entry);
  }
  return entry.chart;
}

export function resizeAll() {
  for (const { chart } of instances.values()) chart.resize();
}

function base() {
  return {
    animation: false,
    color: PALETTE,
    textStyle: { color: TEXT, fontFamily: "inherit" },
    tooltip: { confine: true },
  };
}

function axisLabel(formatter) {
  return { color: MUTED, formatter, hideOverlap: true };
}

function shortAmount(value) {
  const lang = language();
  return new Intl.NumberFormat(lang === "zh" ? "zh-CN" : "en-US", { notation: "compact", maximumFractionDigits: 1 }).format(
    value,
  );
}

/** Revenue per bucket (bars, left axis) and activity (lines, right axis); nothing drawn after the
 * latest day with data, so the rest of a current month does not read as a collapse. */
export function drawTrend(trend, latestDay) {
  const lang = language();
  const chart = chartFor("chart-trend");
  const labels = trend.points.map((point) => (trend.bucket === "day" ? point.start.slice(5) : point.start));
  const future = (point) => latestDay && point.start > latestDay;
  const series = (key, convert = (v) => v) => trend.points.map((p) => (future(p) ? null : convert(p[key])));
  chart.setOption(
    {
      ...base(),
      legend: { top: 0, textStyle: { color: TEXT } },
      grid: { left: 56, right: 44, top: 36, bottom: 28 },
      tooltip: {
        trigger: "axis",
        confine: true,
        valueFormatter: (value) =>
          value === null || value === undefined ? fmt.DASH : Number.isInteger(value) ? fmt.count(lang, value) : fmt.amount(lang, value),
      },
      xAxis: { type: "category", data: labels, axisLabel: axisLabel(), axisTick: { alignWithLabel: true } },
      yAxis: [
        { type: "value", axisLabel: axisLabel(shortAmount), splitLine: { lineStyle: { color: GRID_LINE } } },
        { type: "value", minInterval: 1, axisLabel: axisLabel(), splitLine: { show: false } },
      ],
      series: [
        { id: "won_amount", name: t("series.won_amount"), type: "bar", data: series("won_amount", Number), barMaxWidth: 18 },
        { id: "deals_won", name: t("series.deals_won"), type: "line", yAxisIndex: 1, data: series("deals_won"), symbolSize: 4 },
        { id: "visits", name: t("series.visits"), type: "line", yAxisIndex: 1, data: series("visits"), symbolSize: 4 },
        { id: "calls", name: t("series.calls"), type: "line", yAxisIndex: 1, data: series("calls"), symbolSize: 4 },
      ],
    },
    true,
  );
}

/** Stage conversion as a funnel: how many deals reached each stage and how many went further. */
export function drawFunnel(stages) {
  const lang = language();
  const chart = chartFor("chart-funnel");
  const data = stages.map((stage) => ({
    name: t(`stage.${stage.stage}`),
    value: stage.entered,
    stage: stage.stage,
    advanced: stage.advanced,
    conversion: stage.conversion,
  }));
  chart.setOption(
    {
      ...base(),
      tooltip: {
        confine: true,
        formatter: (item) =>
          `${echarts.format.encodeHTML(item.name)}<br>${t("funnel.entered")}: ${fmt.count(lang, item.data.value)}` +
          `<br>${t("funnel.advanced")}: ${fmt.count(lang, item.data.advanced)} (${fmt.percent(lang, item.data.conversion)})`,
      },
      series: [
        {
          id: "funnel",
          type: "funnel",
          sort: "none",
          left: "4%",
          right: "30%",
          top: 8,
          bottom: 8,
          minSize: "18%",
          gap: 3,
          data,
          label: {
            show: true,
            position: "inside",
            color: "#fff",
            formatter: (item) => `${item.name}  ${fmt.count(lang, item.data.value)}`,
          },
          labelLine: { show: false },
          itemStyle: { borderWidth: 0 },
        },
        {
          // The conversion of each stage, written beside the funnel, where it leaks.
          id: "conversion",
          type: "funnel",
          sort: "none",
          left: "70%",
          right: "2%",
          top: 8,
          bottom: 8,
          gap: 3,
          silent: true,
          itemStyle: { color: "transparent", borderWidth: 0 },
          label: {
            show: true,
            position: "inside",
            color: TEXT,
            formatter: (item) => `→ ${fmt.percent(lang, item.data.conversion)}`,
          },
          data: data.map((item) => ({ ...item, value: 1 })),
        },
      ],
    },
    true,
  );
}

/** Open and weighted pipeline per stage (bars), with the number of open deals in the tooltip. */
export function drawPipeline(stages) {
  const lang = language();
  const chart = chartFor("chart-pipeline");
  const byStage = Object.fromEntries(stages.map((stage) => [stage.stage, stage]));
  const ordered = STAGES.map((stage) => byStage[stage]);
  chart.setOption(
    {
      ...base(),
      legend: { top: 0, textStyle: { color: TEXT } },
      grid: { left: 56, right: 16, top: 36, bottom: 28 },
      tooltip: {
        trigger: "axis",
        confine: true,
        formatter: (items) => {
          const stage = ordered[items[0].dataIndex];
          return (
            `${echarts.format.encodeHTML(items[0].name)}<br>${t("pipeline.open_deals")}: ${fmt.count(lang, stage.open_deals)}` +
            `<br>${t("pipeline.open_amount")}: ${fmt.amount(lang, stage.open_amount)}` +
            `<br>${t("pipeline.weighted_amount")}: ${fmt.amount(lang, stage.weighted_amount)}`
          );
        },
      },
      xAxis: { type: "category", data: STAGES.map((stage) => t(`stage.${stage}`)), axisLabel: axisLabel() },
      yAxis: { type: "value", axisLabel: axisLabel(shortAmount), splitLine: { lineStyle: { color: GRID_LINE } } },
      series: [
        {
          id: "open_amount",
          name: t("pipeline.open_amount"),
          type: "bar",
          data: ordered.map((stage) => Number(stage.open_amount)),
          barMaxWidth: 34,
          label: { show: true, position: "top", color: MUTED, formatter: (item) => fmt.count(lang, ordered[item.dataIndex].open_deals) },
        },
        {
          id: "weighted_amount",
          name: t("pipeline.weighted_amount"),
          type: "bar",
          data: ordered.map((stage) => Number(stage.weighted_amount)),
          barMaxWidth: 34,
        },
      ],
    },
    true,
  );
}

function targetLabel(target) {
  const start = target.period_start;
  const when = target.period === "month" ? start.slice(0, 7) : `${start.slice(0, 4)}-Q${(Number(start.slice(5, 7)) + 2) / 3}`;
  return `${when} · ${t(`metric.${target.metric}`)}`;
}

function ratio(value, target) {
  const goal = Number(target);
  return goal > 0 && value !== null && value !== undefined ? Number(value) / goal : null;
}

/** Pacing bars: attainment per target coloured by status, with markers for expected and projected;
 * attainment and status are written in a column on the right, clear of the markers. */
export function drawTargets(targets) {
  const lang = language();
  const chart = chartFor("chart-targets");
  const rows = [...targets].reverse(); // ECharts draws the first category at the bottom
  const attainment = rows.map((target) => ({
    value: target.attainment === null ? 0 : target.attainment,
    itemStyle: { color: STATUS_COLORS[target.status] },
  }));
  const expected = rows.map((target) => ratio(target.expected_by_now, target.target));
  const projected = rows.map((target) => ratio(target.projected, target.target));
  const largest = Math.max(1, ...attainment.map((item) => item.value), ...projected.filter((value) => value !== null));
  const rich = Object.fromEntries(
    Object.entries(STATUS_COLORS).map(([status, color]) => [status, { color, fontWeight: 600 }]),
  );
  rich.value = { color: TEXT };
  const summary = rows.map((target) => `${target.status}|${fmt.percent(lang, target.attainment)}`);
  chart.setOption(
    {
      ...base(),
      legend: {
        top: 0,
        data: [t("targets.expected"), t("targets.projected")],
        textStyle: { color: TEXT },
      },
      grid: { left: 8, right: 8, top: 30, bottom: 24, containLabel: true },
      tooltip: {
        trigger: "axis",
        axisPointer: { type: "shadow" },
        confine: true,
        formatter: (items) => {
          const target = rows[items[0].dataIndex];
          const money = target.metric === "won_amount";
          const value = (v) => (money ? fmt.amount(lang, v) : fmt.oneDecimal(lang, v));
          return (
            `${echarts.format.encodeHTML(targetLabel(target))} · ${t(`target_status.${target.status}`)}` +
            `<br>${t("targets.actual")}: ${value(target.actual)} / ${t("targets.target")}: ${value(target.target)}` +
            `<br>${t("targets.attainment")}: ${fmt.percent(lang, target.attainment)}` +
            `<br>${t("targets.expected")}: ${value(target.expected_by_now)}` +
            `<br>${t("targets.projected")}: ${value(target.projected)}`
          );
        },
      },
      xAxis: {
        type: "value",
        min: 0,
        max: Math.ceil(largest * 10) / 10 + 0.1,
        axisLabel: axisLabel((value) => fmt.percent(lang, value).replace(/\.0(?=\s*%)/, "")),
        splitLine: { lineStyle: { color: GRID_LINE } },
      },
      yAxis: [
        { type: "category", data: rows.map(targetLabel), axisLabel: { color: TEXT }, axisTick: { show: false } },
        {
          type: "category",
          position: "right",
          data: summary,
          axisLine: { show: false },
          axisTick: { show: false },
          axisLabel: {
            rich,
            formatter: (value) => {
              const [status, share] = value.split("|");
              return `{value|${share}}  {${status}|${t(`target_status.${status}`)}}`;
            },
          },
        },
      ],
      series: [
        { id: "attainment", name: t("targets.attainment"), type: "bar", data: attainment, barMaxWidth: 16 },
        {
          id: "expected",
          name: t("targets.expected"),
          type: "scatter",
          symbol: "rect",
          symbolSize: [3, 20],
          itemStyle: { color: "#37474f" },
          data: expected,
          z: 5,
        },
        {
          id: "projected",
          name: t("targets.projected"),
          type: "scatter",
          symbol: "circle",
          symbolSize: 9,
          itemStyle: { color: "#fff", borderColor: "#37474f", borderWidth: 2 },
          data: projected,
          z: 6,
        },
      ],
    },
    true,
  );
}
