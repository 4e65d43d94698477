"""An audit's pairs measured here, in worker processes (--jobs) or on a Dask cluster (--dask),
each pair one task from picklable arguments (its entries locate the bytes in the files, which
every worker reads from the same paths), with the scan's progress: bytes and tensors done,
throughput, time left."""

from quantcalc.audit import measure
from quantcalc.engine import malloc as heap
from quantcalc.errors import QuantcalcError
from quantcalc.scan.model_scan import Progress
from quantcalc.scan.rows import failure

_matrices = {}


def importance_from_path(path):
    """lookup(gguf name, columns, expert) -> (weights or None, note or None) of the imatrix at
    `path`, read once per process; None without one."""
    if not path:
        return None
    if path not in _matrices:
        from quantcalc.readers import imatrix
        matrix = imatrix.read_path(path)

        def lookup(name, columns, expert=None):
            try:
                return matrix.for_tensor(name, columns, expert), None
            except QuantcalcError as exc:
                return None, f"not weighted by the importance matrix: {exc.message}"
        _matrices[path] = lookup
    return _matrices[path]


class _Sized:
    def __init__(self, nbytes):
        self.nbytes = nbytes


def _size(pair) -> int:
    return sum(getattr(h, "nbytes", 0) or 0 for h in (pair.original, pair.quantized)
               if h is not None and not pair.reason)


def measure_all(pairs, imatrix_path=None, slab_values=measure.SLAB_VALUES, *, on_row=None,
                on_progress=None) -> list:
    """Every pair's row, in order, here."""
    importance = importance_from_path(imatrix_path)
    progress = Progress(sum(_size(p) for p in pairs), len(pairs), on_progress)
    rows = []
    for pair in pairs:
        row = measure.measure(pair, importance, slab_values, on_bytes=progress.add_bytes)
        rows.append(row)
        progress.tensor_done(_Sized(_size(pair)))
        if on_row:
            on_row(row)
    return rows


def audit_task(pair, imatrix_path=None, slab_values=measure.SLAB_VALUES) -> dict:
    """One pair's row from picklable arguments: what a worker process or a Dask worker runs."""
    heap.keep_freed_memory()
    return measure.measure(pair, importance_from_path(imatrix_path), slab_values)


def measure_parallel(pairs, submit, completed, imatrix_path=None,
                     slab_values=measure.SLAB_VALUES, *, on_row=None, on_progress=None) -> list:
    """measure_all with one task per measurable pair on an executor (`submit(fn, *args)` ->
    future, `completed(futures)` yields them as they finish: concurrent.futures or a
    dask.distributed Client); rows in order, equal to those made here. A task that fails as a
    whole gives its pair a row that says so."""
    progress = Progress(sum(_size(p) for p in pairs), len(pairs), on_progress)
    rows = [None] * len(pairs)
    futures = {}
    for index, pair in enumerate(pairs):
        if pair.reason:  # nothing to read: its row is made here
            rows[index] = measure.measure(pair)
            progress.tensor_done(_Sized(0))
            if on_row:
                on_row(rows[index])
        else:
            futures[submit(audit_task, pair, imatrix_path, slab_values)] = index
    try:
        for future in completed(list(futures)):
            index = futures[future]
            try:
                rows[index] = future.result()
            except Exception as exc:  # noqa: BLE001 - the task's exception, handed back
                rows[index] = measure.describe(pairs[index])
                rows[index]["reason"] = failure(exc)
            progress.tensor_done(_Sized(_size(pairs[index])))
            if on_row:
                on_row(rows[index])
    finally:
        for future in futures:
            future.cancel()
    return [r for r in rows if r is not None]
