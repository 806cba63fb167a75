"""Training curves of a CNN run: loss and accuracy per epoch on the training and validation data."""

from __future__ import annotations

from collections.abc import Mapping

from genrekit.report.figures.collector import Figures
from genrekit.report.figures.layout import plot_axis, plot_layout
from genrekit.report.markup import finite
from genrekit.report.theme import CURVE_COLOURS

__all__ = ["training_curves"]


def training_curves(model: Mapping, run: Mapping, figs: Figures) -> str:
    """Loss and accuracy per epoch (``history.csv``), the best epoch dotted; nothing without a history."""
    history = model.get("history")
    if not history or not history.get("epoch"):
        return ""
    epochs = history["epoch"]
    data = []
    for key, axis in (("loss", ("x", "y")), ("acc", ("x2", "y2"))):
        for side in ("train", "valid"):
            column = f"{side}_{key}"
            if column not in history:
                continue
            data.append({
                "type": "scatter", "mode": "lines+markers", "name": f"{side} {'loss' if key == 'loss' else 'accuracy'}",
                "x": epochs, "y": history[column], "xaxis": axis[0], "yaxis": axis[1],
                "line": {"color": CURVE_COLOURS[side], "width": 2, "dash": "solid" if key == "loss" else "dash"},
                "marker": {"size": 5, "color": CURVE_COLOURS[side]},
                "hovertemplate": f"epoch %{{x}}<br>{side} {key} %{{y:.4f}}<extra></extra>",
            })
    best = finite(model.get("params", {}).get("best_epoch"))
    shapes = []
    if best is not None:
        for xref in ("x", "x2"):
            shapes.append({"type": "line", "xref": xref, "x0": best, "x1": best, "yref": "paper", "y0": 0, "y1": 1,
                           "line": {"color": "#9aa5b1", "width": 1, "dash": "dot"}})
    layout = plot_layout(
        320, shapes=shapes, margin={"l": 64, "r": 24, "t": 40, "b": 50},
        xaxis=plot_axis("epoch", domain=[0, 0.46], dtick=max(1, len(epochs) // 10)),
        yaxis=plot_axis("cross-entropy loss"),
        xaxis2=plot_axis("epoch", domain=[0.56, 1], dtick=max(1, len(epochs) // 10)),
        yaxis2=plot_axis("accuracy", anchor="x2", range=[0, 1.02], tickformat=".0%"),
    )
    caption = ("Training: augmented crops; validation: loss of the validation windows, accuracy per track."
               + (f" Dotted line: best epoch ({int(best)}), whose weights were kept." if best is not None else ""))
    return figs.add(data, layout, caption=caption, run=run, kind="curves")
