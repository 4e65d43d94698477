"""The steps of build.py: fetch and verify Pyodide (pyodide_dist), compile bytecode with
Pyodide's own CPython (bytecode), assemble dist/ (site), and serve it (server).

Standard library only: the build runs on a fresh machine before any virtual environment exists.
"""
