"""The plotly pieces every chart of the report shares: layout, axes, palettes, buttons, intervals, chance.

Charts are plotly figure dicts (``data`` and ``layout``) drawn in the browser by plotly.js;
these helpers give them one look (:mod:`genrekit.report.theme`).
"""

from __future__ import annotations

from collections.abc import Sequence

from genrekit.report.theme import FONT, GRID, INK, MUTED

__all__ = ["cycled", "plot_layout", "plot_axis", "error_bars", "chance_line", "toggle_buttons"]


def cycled(palette: Sequence[str], i: int) -> str:
    """The ``i``-th colour of ``palette``, starting again past its end."""
    return palette[i % len(palette)]


def plot_layout(height: int, **extra) -> dict:
    """A plotly layout of ``height`` pixels in the report's font and colours, updated with ``extra``."""
    layout = {
        "height": height,
        "font": {"family": FONT, "size": 12, "color": INK},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 64, "r": 24, "t": 30, "b": 56},
        "hoverlabel": {"font": {"family": FONT}},
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
    }
    layout.update(extra)
    return layout


def plot_axis(title: str | None = None, **extra) -> dict:
    """A plotly axis with the report's grid colours and ``title``, updated with ``extra``."""
    axis = {"gridcolor": GRID, "linecolor": "#9aa5b1", "zerolinecolor": GRID, "automargin": True}
    if title:
        axis["title"] = {"text": title}
    axis.update(extra)
    return axis


def error_bars(values: list, cis: list) -> dict:
    """Asymmetric plotly error bars from each value to the ends of its interval ``[low, high]``
    (none where the value or its interval is missing)."""
    plus, minus = [], []
    for v, ci in zip(values, cis):
        if v is None or not (isinstance(ci, list) and len(ci) == 2 and None not in ci):
            plus.append(None)
            minus.append(None)
        else:
            plus.append(max(0.0, ci[1] - v))
            minus.append(max(0.0, v - ci[0]))
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "color": "#3e4c59",
            "thickness": 1.3, "width": 5}


def chance_line(n_labels: int) -> tuple[list, list]:
    """The dotted line at the accuracy of guessing among ``n_labels`` genres, and its label
    (plotly ``shapes`` and ``annotations``; none for fewer than two genres)."""
    if n_labels < 2:
        return [], []
    y = 1.0 / n_labels
    shape = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": y, "y1": y,
             "line": {"color": "#9aa5b1", "width": 1, "dash": "dot"}}
    note = {"xref": "paper", "x": 1, "xanchor": "left", "xshift": 4, "yref": "y", "y": y, "yanchor": "middle",
            "text": f"chance<br>{100 * y:.0f}%", "showarrow": False, "align": "left",
            "font": {"size": 10, "color": MUTED}}
    return [shape], [note]


def toggle_buttons(labels: list[str], n_traces: int, per_button: int, x: float = 1.0, xanchor: str = "right",
                   extra: list[dict] | None = None) -> dict:
    """Buttons showing one group of ``per_button`` consecutive traces at a time."""
    buttons = []
    for i, label in enumerate(labels):
        visible = [i * per_button <= j < (i + 1) * per_button for j in range(n_traces)]
        args = [{"visible": visible}]
        if extra:
            args.append(extra[i])
        buttons.append({"label": label, "method": "update", "args": args})
    return {"type": "buttons", "direction": "right", "x": x, "xanchor": xanchor, "y": 1.0, "yanchor": "bottom",
            "pad": {"b": 6}, "showactive": True, "active": 0, "bgcolor": "#f0f3f6", "bordercolor": "#cbd2d9",
            "font": {"size": 11}, "buttons": buttons}
