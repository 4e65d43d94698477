// The form's state outside the form: readable link parameters (?bits=4&mode=asymmetric&values=…)
// and a copy in localStorage so a reload or a crash never loses what was typed.

const STORAGE_KEY = "quantcalc.form.v1";
const MAX_LINK_VALUES = 2000;       // characters of sample values a link carries
const MAX_STORED_VALUES = 2_000_000;
export const DEFAULTS = {
  name: "tensor", format: "int", block_size: "64", bits: "8", mode: "symmetric", narrow_range: false, rounding: "half-even",
  seed: "0", calibration: "minmax", percentile: "99.99", range_min: "-1.5", range_max: "1.5",
  granularity: "tensor", axis: "0", group_size: "32", values: "",
};
const CHOICES = {
  format: ["int", "fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4_e2m1", "nf4", "mxfp8_e4m3",
    "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4", "mxint8", "nvfp4", "q8_0", "q4_0"],
  mode: ["symmetric", "asymmetric"],
  rounding: ["half-even", "half-away", "floor", "ceil", "toward-zero", "stochastic"],
  calibration: ["minmax", "percentile", "mse", "entropy", "custom"],
  granularity: ["tensor", "channel", "group"],
};
const WHOLE = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const IGNORED = new Set(["embed", "boot_timeout"]); // page options, not settings

// Each parameter's check: returns the form value, or throws the reason it is ignored.
const CHECKS = {
  name: (v) => v.slice(0, 200),
  bits: (v) => {
    if (!WHOLE.test(v) || +v < 2 || +v > 16) throw new Error("a whole number from 2 to 16");
    return String(+v);
  },
  narrow_range: (v) => {
    if (!["1", "0", "true", "false", "yes", "no"].includes(v.toLowerCase())) {
      throw new Error("true or false");
    }
    return ["1", "true", "yes"].includes(v.toLowerCase());
  },
  seed: (v) => whole(v),
  axis: (v) => whole(v),
  group_size: (v) => atLeastOne(v),
  block_size: (v) => atLeastOne(v),
  percentile: (v) => {
    if (!NUMBER.test(v) || +v <= 0 || +v > 100) throw new Error("a number in (0, 100]");
    return v;
  },
  range_min: (v) => number(v),
  range_max: (v) => number(v),
  values: (v) => v,
};
for (const [key, options] of Object.entries(CHOICES)) {
  CHECKS[key] = (v) => {
    if (!options.includes(v)) throw new Error(`one of ${options.join(", ")}`);
    return v;
  };
}

function atLeastOne(v) {
  if (!WHOLE.test(v) || +v < 1) throw new Error("a whole number of at least 1");
  return v;
}

function whole(v) {
  if (!WHOLE.test(v)) throw new Error("a whole number");
  return v;
}

function number(v) {
  if (!NUMBER.test(v)) throw new Error("a number");
  return v;
}

// Settings from a query string. Bad or unknown parameters are reported and skipped.
export function fromQuery(search) {
  const params = new URLSearchParams(search);
  const fields = {};
  const problems = [];
  for (const [key, raw] of params) {
    if (IGNORED.has(key)) continue;
    const check = CHECKS[key];
    if (!check) {
      problems.push(`Unknown link parameter “${key}” was ignored.`);
      continue;
    }
    try {
      fields[key] = check(raw.trim());
    } catch (error) {
      problems.push(`Link parameter ${key}=“${raw.slice(0, 40)}” was ignored: it must be ` +
        `${error.message}.`);
    }
  }
  // A range in the link means "use this range" unless the link names another source.
  if ((fields.range_min || fields.range_max) && !fields.calibration) fields.calibration = "custom";
  return { fields, problems, hasSettings: Object.keys(fields).length > 0 };
}

// A readable link: only what differs from the defaults, the values if they are short.
export function toQuery(state, { embed = false } = {}) {
  const params = new URLSearchParams();
  if (embed) params.set("embed", "1");
  for (const [key, value] of Object.entries(state)) {
    if (key === "values") continue;
    if ((key === "range_min" || key === "range_max") && state.calibration !== "custom") continue;
    if (key === "percentile" && state.calibration !== "percentile") continue;
    if (key === "seed" && state.rounding !== "stochastic") continue;
    if (key === "axis" && state.granularity !== "channel") continue;
    if (key === "group_size" && state.granularity !== "group") continue;
    if (key === "block_size" && state.format !== "nf4") continue;
    if (key === "bits" && state.format !== "int") continue;
    if (String(value) !== String(DEFAULTS[key])) params.set(key, value === true ? "1" : String(value));
  }
  const values = (state.values || "").trim();
  const fits = values.length <= MAX_LINK_VALUES;
  if (values && fits) params.set("values", values);
  return { query: params.toString(), valuesIncluded: !values || fits };
}

export function save(state) {
  try {
    const copy = { ...state };
    if ((copy.values || "").length > MAX_STORED_VALUES) delete copy.values;
    localStorage.setItem(STORAGE_KEY, JSON.stringify(copy));
  } catch {
    // storage full or blocked (private mode, third-party iframe): keep working without it
  }
}

export function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
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
