// Number and time formatting, one rule per kind of value (documented in docs/web-api.md).
//
// The API sends exact decimals as strings; Intl.NumberFormat formats a string as the exact
// decimal it spells (no float rounding on the way), rounding half away from zero.

const LOCALES = { en: "en-US", zh: "zh-CN" };
const cache = new Map();

function numberFormat(lang, options) {
  const key = lang + JSON.stringify(options);
  if (!cache.has(key)) cache.set(key, new Intl.NumberFormat(LOCALES[lang] || "en-US", options));
  return cache.get(key);
}

export const DASH = "—";

function missing(value) {
  return value === null || value === undefined;
}

/** Money: two decimals, grouped. */
export function amount(lang, value) {
  if (missing(value)) return DASH;
  return numberFormat(lang, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(value);
}

/** A count: a whole number, grouped. */
export function count(lang, value) {
  if (missing(value)) return DASH;
  return numberFormat(lang, { maximumFractionDigits: 0 }).format(value);
}

/** A ratio (0.153) as a percentage with one decimal (15.3%). */
export function percent(lang, value) {
  if (missing(value)) return DASH;
  return numberFormat(lang, { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(value);
}

/** One decimal (average cycle in days, NPS). */
export function oneDecimal(lang, value) {
  if (missing(value)) return DASH;
  return numberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(value);
}

/** A change in percentage points, signed, one decimal. */
export function signedOneDecimal(lang, value) {
  return numberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: "exceptZero" }).format(value);
}

/** A relative change, signed percentage with one decimal. */
export function signedPercent(lang, value) {
  return numberFormat(lang, {
    style: "percent",
    minimumFractionDigits: 1,
    maximumFractionDigits: 1,
    signDisplay: "exceptZero",
  }).format(value);
}

const timeFormats = new Map();

/** An instant (ISO 8601 with Z) as "YYYY-MM-DD HH:mm" in the reporting time zone. */
export function dateTime(value, timeZone) {
  if (missing(value)) return DASH;
  if (!timeFormats.has(timeZone)) {
    timeFormats.set(
      timeZone,
      new Intl.DateTimeFormat("en-CA", {
        timeZone,
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      }),
    );
  }
  const parts = Object.fromEntries(
    timeFormats.get(timeZone).formatToParts(new Date(value)).map((part) => [part.type, part.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

/** The browser's clock as HH:mm:ss, for "last updated". */
export function clockTime(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
