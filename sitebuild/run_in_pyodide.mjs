// Node: start Pyodide from the core files in argv[2], mount the work folder argv[3] at /work and
// run /work/compile.py there (sitebuild/bytecode.py copies compile_in_pyodide.py to it).
import { pathToFileURL } from "node:url";

const [core, work] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(`${core}/pyodide.mjs`).href);
const pyodide = await loadPyodide({ indexURL: `${core}/`, stdout: () => {} });
pyodide.FS.mkdirTree("/work");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: work }, "/work");
pyodide.runPython(pyodide.FS.readFile("/work/compile.py", { encoding: "utf8" }));
