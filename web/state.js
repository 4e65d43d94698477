// The form's state outside the form: readable link parameters (?bits=4&mode=asymmetric&values=…)
// and a copy in localStorage so a reload or a crash never loses what was typed. Which parameters
// exist and what they accept come from the engine's schema (rules.js), as the form's fields do.
import { SETTING, applies, checkValue } from "./rules.js";
import { DEFAULTS } from "./form.js";
import { fromJson, toJson } from "./stored-json.js";

const STORAGE_KEY = "quantcalc.form.v2";
const MAX_LINK_VALUES = 2000;       // characters of sample values a link carries
const MAX_STORED_VALUES = 2_000_000;
const PAGE_OPTIONS = new Set(["embed"]); // page options, not settings

// Settings from a query string. Bad or unknown parameters are reported and skipped.
export function fromQuery(search) {
  const params = new URLSearchParams(search);
  const fields = {};
  const problems = [];
  for (const [key, raw] of params) {
    if (PAGE_OPTIONS.has(key)) continue;
    if (key === "values") {
      fields.values = raw;
      continue;
    }
    if (!SETTING[key]) {
      problems.push(`Unknown link parameter “${key}” was ignored.`);
      continue;
    }
    try {
      fields[key] = checkValue(key, raw);
    } catch (error) {
      problems.push(`Link parameter ${key}=“${raw.slice(0, 40)}” was ignored: it must be ` +
        `${error.message}.`);
    }
  }
  // A range in the link means "use this range" unless the link names another source.
  if ((fields.range_min || fields.range_max) && !fields.calibration) fields.calibration = "custom";
  return { fields, problems, hasSettings: Object.keys(fields).length > 0 };
}

// A readable link: only the settings that apply and differ from the defaults, the values if short.
export function toQuery(state, { embed = false } = {}) {
  const params = new URLSearchParams();
  if (embed) params.set("embed", "1");
  for (const [key, value] of Object.entries(state)) {
    if (key === "values" || !SETTING[key] || !applies(key, state)) continue;
    if (String(value) !== String(DEFAULTS[key])) params.set(key, value === true ? "1" : value === false ? "0" : String(value));
  }
  const values = (state.values || "").trim();
  const fits = values.length <= MAX_LINK_VALUES;
  if (values && fits) params.set("values", values);
  return { query: params.toString(), valuesIncluded: !values || fits };
}

// Keep the form; returns whether the values could be kept too (storage has a quota).
export function save(state) {
  const copy = { ...state };
  let valuesKept = true;
  if ((copy.values || "").length > MAX_STORED_VALUES) {
    delete copy.values;
    valuesKept = false;
  }
  for (;;) {
    try {
      localStorage.setItem(STORAGE_KEY, toJson(copy));
      return { stored: true, valuesKept };
    } catch {
      if (!("values" in copy)) return { stored: false, valuesKept: false }; // blocked storage
      delete copy.values; // over the quota: keep the settings at least
      valuesKept = false;
    }
  }
}

export function load() {
  try {
    const saved = fromJson(localStorage.getItem(STORAGE_KEY) || "null");
    if (!saved || typeof saved !== "object") return {};
    const fields = {};
    for (const key of Object.keys(DEFAULTS)) {
      if (key in saved) fields[key] = saved[key];
    }
    return fields;
  } catch {
    return {};
  }
}
