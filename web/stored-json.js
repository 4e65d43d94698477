// What the page keeps in this browser (the form, saved results, the last scan) goes through JSON
// here and nowhere else. Plain JSON would lose two kinds of value the engine sends: a typed
// array (the per-value columns) and a number that is not finite (the SQNR of an exact result is
// Infinity; JSON.stringify writes null). Each goes through JSON as a small tagged object, so it
// comes back as it was, bit for bit: JSON writes each double in its shortest exact form.
//   Float64Array [1.5, 2]  <->  {"typed": "Float64Array", "values": [1.5, 2]}
//   Infinity, -Infinity, NaN  <->  {"non_finite": "Infinity"}, ...
const TYPED = { Float64Array, Float32Array, Int32Array, Uint8Array, Int8Array, Int16Array,
  Uint16Array, Uint32Array };

function encode(_key, value) {
  if (ArrayBuffer.isView(value)) return { typed: value.constructor.name, values: Array.from(value) };
  if (typeof value === "number" && !Number.isFinite(value)) return { non_finite: String(value) };
  return value;
}

function decode(_key, value) {
  if (!value || typeof value !== "object" || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  if (TYPED[value.typed] && keys.length === 2 && Array.isArray(value.values)) {
    return TYPED[value.typed].from(value.values);
  }
  if (keys.length === 1 && ["Infinity", "-Infinity", "NaN"].includes(value.non_finite)) {
    return Number(value.non_finite);
  }
  return value;
}

export const toJson = (value) => JSON.stringify(value, encode);
export const fromJson = (text) => JSON.parse(text, decode);
