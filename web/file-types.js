// The input file types, from the engine's one table (py/quantcalc/schema/file_types.py, copied
// into schema.js by build.py, which also fills the file inputs' accept= attributes and the lists
// of types in the page's text): which tool takes a file, whether Python reads it by offset, and
// whether it holds several tensors. No suffix is written in the page's code.
import schema from "./schema.js";

const { types: TYPES, tools: TOOLS } = schema.file_types;

// The type of a file by its name (the longest suffix that matches), or null:
// {suffix, label, reader, tools, by_offset, several, refused}.
export function fileType(name) {
  const lower = name.toLowerCase();
  let found = null;
  for (const type of TYPES) {
    if (lower.endsWith(type.suffix) && type.suffix.length > (found?.suffix.length ?? 0)) {
      found = type;
    }
  }
  return found;
}

// Whether `tool` ("calculator", "scan" or "imatrix") takes the file: to read it, or (a type it
// refuses) to have the engine say why not.
export const takes = (tool, name) => fileType(name)?.tools.includes(tool) ?? false;

// The types `tool` reads, as a sentence lists them (the table writes it).
export const listed = (tool) => TOOLS[tool].listed;
