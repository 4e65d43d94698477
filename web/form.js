// The calculator's settings: fields built from the engine's schema (rules.js), what the form holds
// (read / apply, for links and storage), and what the engine is asked (only settings that apply).
// A control the chosen format does not let the user change is disabled with the reason beside it
// and shows the format's own value; the user's value comes back when another format allows it.
import { $, $$ } from "./store.js";
import {
  FORMATS, SETTINGS, SETTING, applies, fixedValue, formatAllows, formatOf, notApplicableReason,
  shownWhenOff,
} from "./rules.js";
import schema from "./schema.js";

export const form = $("#calculator");
export const SETTING_KEYS = SETTINGS.map((s) => s.key);
// What a fresh form holds: every setting's default, as the form writes it, and no values.
export const DEFAULTS = {
  ...Object.fromEntries(SETTINGS.map((s) => [s.key, s.kind === "flag" ? Boolean(s.default)
    : s.default === null ? "" : String(s.default)])),
  values: "",
};

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function control(setting) {
  const { key, kind } = setting;
  const described = `help-${key}`;
  if (kind === "choice") {
    const select = element("select", { id: key, name: key });
    let group = null;
    for (const choice of setting.choices) {
      if (!choice.group) {
        group = null;
        select.append(new Option(choice.label, choice.value));
        continue;
      }
      if (group?.label !== choice.group) {
        group = element("optgroup", { label: choice.group });
        select.append(group);
      }
      group.append(new Option(choice.label, choice.value));
    }
    select.setAttribute("aria-describedby", described);
    return select;
  }
  if (kind === "flag") {
    return element("input", { id: key, name: key, type: "checkbox" });
  }
  const input = element("input", { id: key, name: key, autocomplete: "off" });
  if (kind === "int") {
    Object.assign(input, { type: "number", step: "1", inputMode: "numeric" });
    if (setting.minimum !== undefined) input.min = String(setting.minimum);
    if (setting.maximum !== undefined) input.max = String(setting.maximum);
  } else {
    Object.assign(input, { type: "text", inputMode: kind === "real" ? "decimal" : "text" });
    if (kind === "text") input.maxLength = schema.name_length;
  }
  input.setAttribute("aria-describedby", described);
  return input;
}

// One .qc-field per setting, in the schema's order, into `container`.
export function buildSettingsFields(container) {
  const fields = SETTINGS.map((setting) => {
    const { key } = setting;
    const input = control(setting);
    const field = element("div", { className: "qc-field" });
    field.dataset.setting = key;
    if (setting.kind === "flag") {
      field.append(element("label", { className: "qc-check", htmlFor: key }, input, ` ${setting.label}`));
    } else {
      field.append(element("label", { htmlFor: key, textContent: setting.label }), input);
    }
    field.append(
      element("p", { className: "qc-help", id: `help-${key}`, textContent: setting.help }),
      element("p", { className: "qc-off", id: `off-${key}`, hidden: true }),
      element("p", { className: "qc-carried", id: `carried-${key}`, hidden: true }),
      element("p", { className: "qc-error", id: `error-${key}`, hidden: true }));
    if (input.getAttribute("aria-describedby")) {
      input.setAttribute("aria-describedby", `help-${key} carried-${key}`);
    }
    return field;
  });
  container.replaceChildren(...fields);
  applyForm(DEFAULTS);
}

// The user's own value of a control (kept aside while the control shows a format's fixed value).
function userValue(input) {
  if ("userValue" in input.dataset) {
    const kept = input.dataset.userValue;
    return input.type === "checkbox" ? kept === "true" : kept;
  }
  return input.type === "checkbox" ? input.checked : input.value;
}

// A select the format turns off shows what the format does instead ("Blocks of 32") in an
// option of its own, not the user's kept choice, which would read as the setting in force. The
// option exists only while the control is off: the list is the engine's choices otherwise.
function showInstead(input, text) {
  let option = input.querySelector("option[data-instead]");
  if (!option) {
    option = document.createElement("option");
    option.value = "";
    option.disabled = true;
    option.dataset.instead = "";
    input.append(option);
  }
  option.textContent = text;
  option.selected = true;
}

function dropInstead(input) {
  input.querySelector?.("option[data-instead]")?.remove();
}

function show(input, value) {
  if (input.type === "checkbox") input.checked = value === true;
  else input.value = String(value);
}

// Everything the user set, as strings (and booleans): what links and storage keep.
export function readForm() {
  const fields = {};
  for (const key of SETTING_KEYS) fields[key] = userValue(form.elements[key]);
  fields.values = form.elements.values.value;
  return fields;
}

export function applyForm(fields) {
  for (const [key, value] of Object.entries(fields)) {
    const input = form.elements[key];
    if (!input || !(key in DEFAULTS)) continue;
    delete input.dataset.userValue;
    show(input, key === "values" || typeof value === "boolean" ? value : String(value ?? ""));
  }
  // set as a whole (a link, the saved form, an offer taken): nothing was carried over
  shownForm = null;
  carried.clear();
  updateStates();
}

// Settings a format change carried over: the user's value, kept where the new format takes it
// (INT4's "per group of 128" under FP8), is said beside it, with the default it differs from,
// until the user changes that setting or the format again.
let shownForm = null; // the form as updateStates last showed it
const carried = new Map(); // key -> what is said beside it

function choiceLabel(setting, value) {
  if (setting.kind === "flag") return value === true || value === "true" ? "on" : "off";
  const choice = setting.choices?.find((c) => c.value === String(value));
  return choice ? choice.label : String(value);
}

function noteCarried(before, after) {
  carried.clear();
  const fmt = formatOf(before);
  const from = fmt.name === "int" ? `INT${before.bits}` : fmt.label;
  for (const setting of SETTINGS) {
    const { key } = setting;
    if (key === "name" || key === "format" || !applies(key, before) || !applies(key, after)) continue;
    if (String(after[key]) === String(DEFAULTS[key])) continue;
    carried.set(key, `Kept from ${from}: ${choiceLabel(setting, after[key])} (the default is ` +
      `${choiceLabel(setting, DEFAULTS[key])}).`);
  }
}

// A format's refusal (and its offer) no longer applies once the user picks another format.
function dropFormatError() {
  const message = $("#error-format");
  message.hidden = true;
  message.textContent = "";
  const input = form.elements.format;
  input.removeAttribute("aria-invalid");
  const described = (input.getAttribute("aria-describedby") ?? "").split(" ")
    .filter((id) => id && id !== "error-format");
  input.setAttribute("aria-describedby", described.join(" "));
}

function followCarried(values) {
  if (shownForm && values.format !== shownForm.format) {
    noteCarried(shownForm, values);
    dropFormatError();
  } else if (shownForm) {
    for (const key of [...carried.keys()]) {
      if (String(values[key]) !== String(shownForm[key])) carried.delete(key);
    }
  }
  shownForm = values;
  for (const setting of SETTINGS) {
    const note = $(`#carried-${setting.key}`);
    const text = applies(setting.key, values) ? carried.get(setting.key) ?? "" : "";
    note.textContent = text;
    note.hidden = !text;
  }
}

// Hide settings whose conditions do not hold (a percentile for min-max), disable the ones the
// format fixes (with its reason and its value), and mark range sources it does not offer.
export function updateStates() {
  const values = readForm();
  const fmt = formatOf(values);
  for (const setting of SETTINGS) {
    const { key } = setting;
    const input = form.elements[key];
    const field = input.closest(".qc-field");
    const allowed = formatAllows(key, fmt);
    const fixed = fixedValue(key, fmt);
    const off = $(`#off-${key}`);
    if (allowed) {
      dropInstead(input);
      if ("userValue" in input.dataset) show(input, userValue(input));
      delete input.dataset.userValue;
      input.disabled = false;
      off.hidden = true;
      $(`#help-${key}`).hidden = false;
      field.hidden = !applies(key, values);
    } else {
      if (!("userValue" in input.dataset)) input.dataset.userValue = String(userValue(input));
      const instead = shownWhenOff(key, fmt);
      if (instead === null) dropInstead(input); // left by the format before
      if (instead !== null) showInstead(input, instead);
      else if (fixed !== null && fixed !== undefined) show(input, setting.kind === "flag" ? fixed : String(fixed));
      input.disabled = true;
      off.textContent = notApplicableReason(key, fmt);
      off.hidden = false;
      $(`#help-${key}`).hidden = true; // the reason says what matters now
      field.hidden = schema.hidden_when_off.includes(key) || !requirementsHold(key, values);
    }
  }
  for (const option of form.elements.calibration.options) {
    option.disabled = !fmt.calibrations.includes(option.value);
  }
  followCarried(values);
  const block = form.elements.block_size;
  block.placeholder = fmt.block_size ? String(fmt.block_size) : "";
  $("#imatrix-choice").hidden = !fmt.uses_importance; // only llama.cpp's searches use one
}

// A disabled control is still shown only where its own conditions hold.
function requirementsHold(key, values) {
  return Object.keys(SETTING[key].requires).every((other) => applies(other, values));
}

// What the engine is asked: the settings that apply, trimmed; an empty block size means the
// format's own.
export function readConfig() {
  const values = readForm();
  const config = {};
  for (const key of SETTING_KEYS) {
    if (key !== "name" && key !== "format" && !applies(key, values)) continue;
    const value = values[key];
    config[key] = typeof value === "string" ? value.trim() : value;
  }
  if (config.block_size === "") delete config.block_size;
  config.name = config.name || "tensor";
  return config;
}

export function clearErrors() {
  for (const message of $$(".qc-error")) {
    message.hidden = true;
    message.textContent = "";
  }
  for (const input of $$("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    const described = (input.getAttribute("aria-describedby") ?? "").split(" ")
      .filter((id) => id && !id.startsWith("error-"));
    if (described.length) input.setAttribute("aria-describedby", described.join(" "));
    else input.removeAttribute("aria-describedby");
  }
}

// Settings as a button names them: "Q5_0", "Granularity channel".
function describeSettings(settings) {
  return Object.entries(settings).map(([key, value]) => (key === "format"
    ? (FORMATS[value]?.label ?? String(value)).replace(/^GGUF /, "")
    : `${SETTING[key]?.label ?? key} ${value}`)).join(", ");
}

// Show an engine error next to the field it concerns; the user's input is left as it was. An
// error that names what to take instead (error.try: a llama.cpp type's fallback for these rows)
// offers it as one click, which `onTry(settings)` applies.
export function showError(error, { fileLoaded = false, onTry = null } = {}) {
  let field = error.field || "values";
  if (field === "values" && fileLoaded) field = "file";
  let message = $(`#error-${field}`);
  if (!message) {
    field = fileLoaded ? "file" : "values";
    message = $(`#error-${field}`);
  }
  message.textContent = error.message;
  if (error.try && onTry) {
    const button = element("button", { type: "button", className: "qc-secondary qc-try",
      textContent: `Try ${describeSettings(error.try)}` });
    button.dataset.try = JSON.stringify(error.try);
    button.addEventListener("click", () => onTry(error.try));
    message.append(button);
  }
  message.hidden = false;
  const input = form.elements[field];
  if (input && input.setAttribute) {
    // the message is read with the field (aria-describedby: what screen readers announce;
    // aria-errormessage is not yet announced by most of them)
    input.setAttribute("aria-invalid", "true");
    const described = (input.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean);
    if (!described.includes(message.id)) described.unshift(message.id);
    input.setAttribute("aria-describedby", described.join(" "));
    if (input.closest("[hidden]") === null) input.focus({ preventScroll: false });
  }
  if (error.trace) console.warn(error.trace);
}
