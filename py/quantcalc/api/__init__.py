"""The facade: the only functions the page's worker and the command line call.

Each call takes plain data (a configuration dict, a source dict as `readers.sources` describes,
lists of format specs) and returns plain data (numbers, strings, lists, bytes, numpy arrays), so
the same call gives the same answer from CPython and from Pyodide. Errors are returned, not
raised, as {"error": {"kind", "message", "field"}}. The worker calls these by keyword.

    calculator   one tensor: analyze, figures_svg, readout, export, describe_file, ...
    comparing    several configurations on one tensor
    scanning     every tensor of a checkpoint (here, in worker processes or on Dask)
    planning     the bit-budget plan over a scan
    auditing     a quantized checkpoint against its original

Every report is one record of reports/exports.py: export, compare_export, scan_export,
plan_export and audit_export make any kind of their feature's table as {"bytes", "mime"}.

A submodule is imported when one of its names is first asked for (PEP 562), so the page's
start-up and `quantcalc analyze` load only the calculator.
"""

import importlib

_HOME = {
    "calculator": ("run", "load", "analyze", "figures_svg", "readout", "prepare_figures",
                   "set_figure_theme", "export", "describe_file", "describe_imatrix",
                   "conventions"),
    "comparing": ("compare_presets", "compare", "compare_figures", "compare_export"),
    "scanning": ("scan_list", "scan_inputs", "scan_model", "scan_document", "read_scan",
                 "scan_figures", "scan_export", "workers", "WHOLE_VALUES"),
    "planning": ("plan", "plan_figure", "plan_export"),
    "auditing": ("audit_list", "audit_inputs", "audit_model", "audit_document", "read_audit",
                 "audit_figures", "audit_export"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'quantcalc.api' has no attribute {name!r}")
    return getattr(importlib.import_module(f"quantcalc.api.{module}"), name)


def __dir__():
    return __all__
