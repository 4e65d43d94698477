"""Model scan: every tensor of a checkpoint under every chosen format, read once.

Each tensor becomes one row (tensor_scan.py): read in one piece when it fits the memory budget,
so the row equals what the calculator shows for that tensor, digit for digit, or streamed in
slabs of whole rows when it does not (a 1.8 GB embedding in the page's 512 MB worker;
streamed.py). This module runs the scan over the chosen tensors with progress; the formats a
scan runs are scan_formats.py, a row's keys rows.py, and the document and its totals
document.py.

The names callers use are all importable from here (`from quantcalc.scan import model_scan as
scan`: scan.scan, scan.formats_from_specs, scan.document, scan.RESULT_KEYS, ...).
"""

import time

from quantcalc.scan.document import document, from_plain, rows_from_plain, totals, worst_first
from quantcalc.scan.rows import RESULT_KEYS, STAT_KEYS, describe_entry
from quantcalc.scan.scan_formats import ScanFormat, formats_from_specs
from quantcalc.scan.tensor_scan import ONE_D_VALUES, SLAB_VALUES, WHOLE_VALUES, scan_tensor

__all__ = ["scan", "chosen_tensors", "Progress", "scan_tensor", "describe_entry", "ScanFormat",
           "formats_from_specs", "document", "from_plain", "rows_from_plain",
           "totals", "worst_first", "RESULT_KEYS", "STAT_KEYS", "WHOLE_VALUES", "SLAB_VALUES",
           "ONE_D_VALUES"]


def scan(checkpoint, formats, importance=None, whole_values=WHOLE_VALUES, *,
         slab_values=SLAB_VALUES, on_row=None, on_progress=None, names=None,
         estimate=None) -> dict:
    """Scan every tensor (or those named in `names`) of `checkpoint` in file order.

    on_row(row) hears each tensor's row as it finishes; on_progress(progress dict) hears bytes
    and tensors done, throughput and the time left; `estimate` (an estimated.Target, or None)
    estimates the errors from samples of rows. Returns the scan document (`document`).
    """
    entries, progress = chosen_tensors(checkpoint, names, on_progress)
    rows = []
    for entry in entries:
        row = scan_tensor(entry, formats, importance, whole_values=whole_values,
                          slab_values=slab_values, on_bytes=progress.add_bytes,
                          estimate=estimate)
        rows.append(row)
        progress.tensor_done(entry)
        if on_row:
            on_row(row)
    return document(checkpoint, formats, rows)


def chosen_tensors(checkpoint, names, on_progress):
    """The tensors to scan (those in `names`, or all) in file order, and their Progress."""
    entries = [e for e in checkpoint.tensors if names is None or e.name in names]
    return entries, Progress(sum(e.nbytes for e in entries), len(entries), on_progress)


class Progress:
    """Bytes and tensors done, throughput and time left, told now and then (at most ~10/s)."""

    def __init__(self, total_bytes, total_tensors, tell, clock=time.monotonic):
        self.total_bytes, self.total_tensors, self.tell, self.clock = \
            total_bytes, total_tensors, tell, clock
        self.bytes = self.tensors = 0
        self.started = clock()
        self.told = -1.0
        self.bytes_of_tensor = 0

    def add_bytes(self, n):
        self.bytes += n
        self.bytes_of_tensor += n
        self._maybe_tell()

    def tensor_done(self, entry):
        self.bytes += max(entry.nbytes - self.bytes_of_tensor, 0)  # tensors read nothing
        self.bytes_of_tensor = 0
        self.tensors += 1
        self._maybe_tell(force=True)

    def state(self) -> dict:
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = self.bytes / elapsed
        left = (self.total_bytes - self.bytes) / rate if rate > 0 else None
        return {"bytes": self.bytes, "total_bytes": self.total_bytes, "tensors": self.tensors,
                "total_tensors": self.total_tensors, "bytes_per_second": rate,
                "seconds_left": left, "seconds": elapsed}

    def _maybe_tell(self, force=False):
        if self.tell is None:
            return
        now = self.clock()
        if force or now - self.told >= 0.1:
            self.told = now
            self.tell(self.state())
