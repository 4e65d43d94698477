"""A scan's tensors as tasks: in worker processes (--jobs) or on a Dask cluster (--dask), each
task one tensor's row from plain picklable arguments; and the importance matrix each process
reads once for them."""

from functools import lru_cache

from quantcalc.engine import malloc as heap
from quantcalc.errors import QuantcalcError
from quantcalc.scan.document import document
from quantcalc.scan.model_scan import chosen_tensors
from quantcalc.scan.scan_formats import formats_from_specs
from quantcalc.scan.tensor_scan import SLAB_VALUES, WHOLE_VALUES, failed_row, scan_tensor


def importance_lookup(matrix):
    """entry -> (weights or None, note or None) from an ImportanceMatrix, for scan_tensor."""
    def lookup(entry):
        columns = int(entry.shape[-1]) if entry.shape else 1
        try:
            return matrix.for_tensor(entry.name, columns), None
        except QuantcalcError as exc:
            return None, f"not weighted by the importance matrix: {exc.message}"
    return lookup


_matrices = {}


def importance_from_path(path):
    """The lookup of the imatrix file at `path`, read once per process (worker processes and
    Dask workers each read it once, not once per tensor)."""
    if path is None:
        return None
    if path not in _matrices:
        from quantcalc.readers import imatrix
        _matrices[path] = importance_lookup(imatrix.read_path(path))
    return _matrices[path]


@lru_cache(maxsize=8)
def _parsed(specs: tuple) -> list:
    """The scan's formats, parsed once per process rather than once per tensor (a task gets
    the specs as text: plain picklable arguments)."""
    return formats_from_specs(list(specs))


def scan_task(entry, specs, imatrix_path=None, whole_values=WHOLE_VALUES,
              slab_values=SLAB_VALUES, estimate=None) -> dict:
    """One tensor's row, from plain picklable arguments: what a worker process or a Dask worker
    runs (it reads the tensor from the same path, so the files must be on shared storage)."""
    heap.keep_freed_memory()  # a spawned worker or a Dask worker is a process of its own
    return scan_tensor(entry, _parsed(tuple(specs)), importance_from_path(imatrix_path),
                       whole_values=whole_values, slab_values=slab_values, estimate=estimate)


def scan_parallel(checkpoint, specs, submit, completed, imatrix_path=None, *,
                  whole_values=WHOLE_VALUES, slab_values=SLAB_VALUES, on_row=None,
                  on_progress=None, names=None, estimate=None) -> dict:
    """scan() with one task per tensor on an executor: `submit(fn, *args)` returns a future and
    `completed(futures)` yields them as they finish (concurrent.futures' ProcessPoolExecutor and
    as_completed, or a dask.distributed Client's submit and as_completed). Rows come back in
    file order, equal to a local scan's. A task that fails as a whole (it raised, its worker
    died) gives its tensor a row that says so; the other tasks go on."""
    formats = formats_from_specs(specs)
    entries, progress = chosen_tensors(checkpoint, names, on_progress)
    futures = {submit(scan_task, entry, list(specs), imatrix_path, whole_values, slab_values,
                      estimate): i for i, entry in enumerate(entries)}
    rows = [None] * len(entries)
    try:
        for future in completed(list(futures)):
            index = futures[future]
            try:
                rows[index] = future.result()
            except Exception as exc:  # noqa: BLE001 - the task's exception, handed back
                rows[index] = failed_row(entries[index], exc)
            progress.tensor_done(entries[index])
            if on_row:
                on_row(rows[index])
    finally:
        for future in futures:
            future.cancel()
    return document(checkpoint, formats, [r for r in rows if r is not None])
