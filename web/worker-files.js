// The user's files, as Python sees them in the worker: mounted, not copied. Pyodide's WORKERFS
// reads a File's bytes when Python reads them, so the worker's memory holds what Python reads
// (a slab of a tensor), not the file.
import { fileType } from "./file-types.js";

// Pyodide's CPython cannot seek past 2 GiB (a 32-bit file offset), so a file larger than PART
// is mounted as slices NAME.qcpart-000, -001, ... (Blob.slice reads nothing) that Python's
// readers/file_parts.py reads as one file.
const PART = 2 ** 30;
const partName = (name, k) => `${name}.qcpart-${String(k).padStart(3, "0")}`;
const partsOf = (file) => Array.from({ length: Math.ceil(file.size / PART) }, (_, k) => ({
  name: partName(file.name, k), data: file.slice(k * PART, (k + 1) * PART) }));
const MOUNTED_FILES = 2; // the calculator's last few files stay mounted

export function fileMounts(pyodide) {
  const { FS } = pyodide;
  const mounts = new Map(); // file id -> {dir, path}
  let mountCount = 0;
  const checkpointMounts = new Map(); // slot ("scan", "original", "quantized") -> {id, dir}

  // A file the page names with an id, mounted once; the path Python opens. A large file of a
  // type Python reads by offset is mounted in slices, as the scan's files are.
  function file(id, chosen) {
    if (!mounts.has(id)) {
      const dir = `/input/${++mountCount}`;
      FS.mkdirTree(dir);
      const sliced = chosen.size > PART && fileType(chosen.name)?.by_offset;
      FS.mount(FS.filesystems.WORKERFS, sliced ? { blobs: partsOf(chosen) } : { files: [chosen] },
        dir);
      mounts.set(id, { dir, path: `${dir}/${chosen.name}` });
      while (mounts.size > MOUNTED_FILES) {
        const [oldest, { dir: old }] = mounts.entries().next().value;
        FS.unmount(old);
        mounts.delete(oldest);
      }
    }
    return mounts.get(id).path;
  }

  // A scanned checkpoint's files ({id, files}) are mounted together in one folder (an index
  // file finds its shards beside it) and stay mounted while the scan is shown, so a row can be
  // opened in the calculator without choosing the files again. A new scan's files replace them.
  // Python is given the folder, not the files: it takes the index if there is one, the data
  // files otherwise, and refuses what it never opens with the reason. Each `slot` keeps its own
  // folder: an audit mounts its original and its quantized model side by side.
  function checkpoint({ id, files }, slot = "scan") {
    const mounted = checkpointMounts.get(slot);
    if (mounted?.id !== id) {
      if (mounted) FS.unmount(mounted.dir);
      const dir = `/${slot}/${++mountCount}`;
      FS.mkdirTree(dir);
      const whole = files.filter((f) => f.size <= PART);
      const blobs = files.filter((f) => f.size > PART).flatMap(partsOf);
      FS.mount(FS.filesystems.WORKERFS, { files: whole, blobs }, dir);
      checkpointMounts.set(slot, { id, dir });
    }
    return [checkpointMounts.get(slot).dir];
  }

  // A source from the page ({file_id, file: File, tensor, imatrix?}, {checkpoint_files,
  // tensor} or {text, imatrix?}) as readers/sources.py takes it: each File becomes the path it
  // is mounted at. Anything else is returned as it is.
  function source(value) {
    if (!value || typeof value !== "object" || Array.isArray(value)) return value;
    let out = value;
    if (value.file instanceof File) {
      const { file: chosen, file_id: id, ...rest } = value;
      out = { ...rest, file_name: chosen.name, file_path: file(id, chosen) };
    }
    if (value.imatrix) out = { ...out, imatrix: source(value.imatrix) };
    if (value.checkpoint_files) {
      const { checkpoint_files: files, ...rest } = out;
      out = { ...rest, checkpoint: checkpoint(files) };
    }
    return out;
  }

  return { file, checkpoint, source };
}
