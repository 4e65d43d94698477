"""Figures of a model scan: where each format hurts (SQNR by layer and role), how the tensors'
SQNR spreads, what the model weighs at each format, and which roles carry the error."""

import math

import numpy as np

from quantcalc.reports.figures import ink, matplotlib, render_each, themed
from matplotlib.figure import Figure  # noqa: E402  (figures set the backend)

TITLES = {
    "heatmap": "SQNR by layer and role",
    "spread": "SQNR across tensors",
    "size": "Model size at each format",
    "share": "Share of total error by role",
}
ROLE_ORDER = ("embed", "attn_q", "attn_k", "attn_v", "attn_qkv", "attn_o", "ffn_gate", "ffn_up",
              "ffn_down", "norm", "output", "other")


def _sqnr(row, index):
    results = row["results"]
    if index >= len(results) or results[index]["sqnr_db"] is None:
        return None
    value = results[index]["sqnr_db"]
    return value if math.isfinite(value) else None


def heatmap_figure(doc, index=0):
    """Layers down, roles across, the colour the SQNR of format `index` (lighter is better)."""
    # 1-D tensors (norms, biases) stay in high precision in practice and would set the colour
    # scale; they are in the table
    rows = [r for r in doc["tensors"] if r["layer"] is not None and not r["high_precision"]]
    roles = [role for role in ROLE_ORDER if any(r["role"] == role for r in rows)]
    layers = sorted({r["layer"] for r in rows})
    grid = np.full((len(layers), len(roles)), np.nan)
    for r in rows:
        value = _sqnr(r, index)
        if value is not None and r["role"] in roles:
            grid[layers.index(r["layer"]), roles.index(r["role"])] = value
    label = doc["formats"][index]["label"] if doc["formats"] else ""
    height = min(2.2 + 0.22 * len(layers), 11)
    fig = Figure(figsize=(6.4, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(f"{TITLES['heatmap']}: {label}", parse_math=False)
    if layers and roles:
        image = ax.imshow(grid, aspect="auto", cmap="viridis", interpolation="nearest")
        fig.colorbar(image, ax=ax, label="SQNR (dB)")
        ax.set_xticks(range(len(roles)), roles, rotation=45, ha="right")
        step = max(1, len(layers) // 24)
        ax.set_yticks(range(0, len(layers), step), [str(n) for n in layers[::step]])
        ax.set_ylabel("layer")
        ax.grid(False)
    else:
        ax.text(0.5, 0.5, "no tensor names with a layer number", ha="center",
                transform=ax.transAxes)
        ax.axis("off")
    return fig


def _per_format(title, labels, height=3.4):
    """A figure with one horizontal row per format, the first at the top."""
    fig = Figure(figsize=(6.4, max(height, 1.2 + 0.3 * len(labels))), dpi=100,
                 layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    return fig, ax


def spread_figure(doc):
    """Each format's SQNR over the tensors it measured: a box and every tensor as a dot."""
    labels = [f["label"] for f in doc["formats"]]
    fig, ax = _per_format(TITLES["spread"], labels)
    for i in range(len(labels)):
        values = [v for v in (_sqnr(r, i) for r in doc["tensors"]) if v is not None]
        if values:
            ax.boxplot([values], positions=[i], vert=False, widths=0.6, showfliers=False,
                       manage_ticks=False)  # the format names stay on the axis
            jitter = (np.arange(len(values)) % 7 - 3) * 0.05
            ax.plot(values, i + jitter, ".", ms=3, color=ink("original"), alpha=0.5)
    ax.set_xlabel("SQNR (dB), one dot per tensor")
    return fig


def size_figure(doc):
    """Size of the measured tensors at each format, labelled with the average bits per value."""
    totals = doc["totals"]
    fig, ax = _per_format(TITLES["size"], [t["format"] for t in totals])
    sizes = [t["bytes"] / 1e6 for t in totals]
    ax.barh(range(len(totals)), sizes, color=ink("original"))
    for i, t in enumerate(totals):
        if t["bits_per_value"]:
            ax.text(sizes[i], i, f" {t['bits_per_value']:.3g} bits/value", va="center",
                    fontsize=8)
    ax.set_xlabel("MB (tensors measured, scales included)")
    ax.set_xlim(0, max(sizes, default=1) * 1.35 or 1)
    return fig


def share_figure(doc):
    """For each format, each role's share of the total error (sum of MSE x parameters)."""
    totals = doc["totals"]
    fig, ax = _per_format(TITLES["share"], [t["format"] for t in totals])
    roles = [role for role in ROLE_ORDER
             if any(role in t["error_share_by_role"] for t in totals)]
    left = np.zeros(len(totals))
    colours = matplotlib.colormaps["tab20"]
    for k, role in enumerate(roles):
        part = np.array([t["error_share_by_role"].get(role, 0.0) * 100 for t in totals])
        ax.barh(range(len(totals)), part, left=left, color=colours(k), label=role)
        left += part
    ax.set_xlabel("% of the format's total error")
    ax.set_xlim(0, 100)
    if roles:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=4, fontsize=8)
    return fig


def makers(doc, heatmap_index=0):
    return {"heatmap": lambda: heatmap_figure(doc, heatmap_index),
            "spread": lambda: spread_figure(doc), "size": lambda: size_figure(doc),
            "share": lambda: share_figure(doc)}


def render(doc, fmt="svg", heatmap_index=0, on_figure=None) -> dict:
    with themed():
        return render_each(makers(doc, heatmap_index), fmt, on_figure)
