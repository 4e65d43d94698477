"""A whole checkpoint, tensor by tensor under every chosen format: the scan itself
(model_scan), tensors as tasks for worker processes or Dask (jobs), statistics that explain
sensitivity (tensor_stats), a tensor's layer and role from its name (roles), and the scan's
figures and reports.

May import every layer below it; never plan, the facade or the command line.
"""
