// Chinese and English labels: the strings live in ../i18n/{en,zh}.json, one key per label.

const loaded = {};
let current = "en";
let strings = {};

/** zh or en: the URL's lang= wins, else the browser's preferred languages decide. */
export function pickLanguage(fromUrl) {
  if (fromUrl === "zh" || fromUrl === "en") return fromUrl;
  const preferred = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  for (const tag of preferred) {
    const primary = String(tag || "").toLowerCase().split("-")[0];
    if (primary === "zh") return "zh";
    if (primary === "en") return "en";
  }
  return "en";
}

export async function loadLanguage(lang) {
  if (!loaded[lang]) {
    const response = await fetch(`static/i18n/${lang}.json`, { cache: "no-cache" });
    if (!response.ok) throw new Error(`cannot load the ${lang} labels (HTTP ${response.status})`);
    loaded[lang] = await response.json();
  }
  current = lang;
  strings = loaded[lang];
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
}

export function language() {
  return current;
}

/** The label for key, with {name} placeholders filled in; the key itself if it is missing. */
export function t(key, values = {}) {
  const text = Object.prototype.hasOwnProperty.call(strings, key) ? strings[key] : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** Fill every element carrying data-i18n (text), data-i18n-placeholder or data-i18n-title. */
export function applyLabels(root = document) {
  for (const element of root.querySelectorAll("[data-i18n]")) element.textContent = t(element.dataset.i18n);
  for (const element of root.querySelectorAll("[data-i18n-placeholder]"))
    element.placeholder = t(element.dataset.i18nPlaceholder);
  for (const element of root.querySelectorAll("[data-i18n-title]")) element.title = t(element.dataset.i18nTitle);
}
