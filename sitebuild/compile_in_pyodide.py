"""Runs inside Pyodide's CPython 3.12 under Node (bytecode.py starts it): compile every .py of
each job's zip into an "unchecked hash" pyc.

/work/jobs.json lists [input zip, output zip, layout, where the files will be installed]; the last
gives each code object its real file name, so tracebacks in the page name real paths. Layouts:
  stdlib   x.py replaced by x.pyc in place (zipimport looks for it there)
  package  the sources kept, __pycache__/x.cpython-312.pyc added beside them
  overlay  only the __pycache__ entries (unpacked over an installed wheel)
"""

import importlib.util
import json
import zipfile
from importlib._bootstrap_external import _code_to_hash_pyc


def pyc(source, filename):
    code = compile(source, filename, "exec", dont_inherit=True, optimize=0)
    return _code_to_hash_pyc(code, importlib.util.source_hash(source), checked=False)


def compile_archive(source_zip, target_zip, layout, where):
    with zipfile.ZipFile(source_zip) as src, \
            zipfile.ZipFile(target_zip, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            try:
                compiled = pyc(data, where + info.filename) \
                    if info.filename.endswith(".py") else None
            except SyntaxError:  # a file no import can load (some test data): ship it as it is
                compiled = None
            if compiled is None:
                if layout != "overlay":
                    out.writestr(info, data)
            elif layout == "stdlib":
                info.filename += "c"
                out.writestr(info, compiled)
            else:
                if layout == "package":
                    out.writestr(info, data)
                entry = zipfile.ZipInfo(importlib.util.cache_from_source(info.filename),
                                        (1980, 1, 1, 0, 0, 0))
                entry.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(entry, compiled)


with open("/work/jobs.json") as jobs:
    for job in json.load(jobs):
        compile_archive(*job)
