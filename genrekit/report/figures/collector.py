"""The page's list of figures: each chart's data goes into one JSON list, its place in the page is a ``<div>``.

plotly.js draws every figure of the list when the page loads
(:data:`genrekit.report.plotly_embed.BOOT_SCRIPT`); ids are numbered in the order the
page asks for them, so the same report gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping

from genrekit.report.markup import esc, leaky_badge
from genrekit.report.theme import LEAKY_COLOUR

__all__ = ["Figures"]


class Figures:
    """Collects the page's figures; :meth:`add` returns the HTML of the figure's container."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def add(self, data: list, layout: dict, *, caption: str = "", run: Mapping | None = None,
            kind: str = "") -> str:
        """Add a figure (plotly ``data`` and ``layout``); return the HTML of its container and caption.

        A figure of a leaky ``run`` carries the "leaky protocol" mark in its title and caption.
        """
        fid = f"fig-{len(self.items) + 1}"
        if run and run.get("leaky"):
            # The mark travels with the chart (also in a PNG saved from its toolbar).
            layout = dict(layout, margin=dict(layout.get("margin", {}), t=layout.get("margin", {}).get("t", 30) + 26),
                          title={"text": "<b>LEAKY PROTOCOL</b>: optimistic figures", "x": 1, "xanchor": "right",
                                 "xref": "paper", "y": 1, "yanchor": "top", "yref": "container", "pad": {"t": 6},
                                 "font": {"size": 12, "color": LEAKY_COLOUR}})
            layout["height"] = layout["height"] + 26
        self.items.append({"id": fid, "kind": kind, "run": run["id"] if run else None, "data": data,
                           "layout": layout})
        leaky = bool(run and run.get("leaky"))
        cap = f"<span>{caption}</span>" if caption else ""
        if leaky:
            cap += f'<span class="leaky-note">{leaky_badge(run)} {esc(run["warning"])}</span>'
        klass = ' class="leaky"' if leaky else ""
        return (f"<figure{klass}>"
                f'<div class="plot" id="{fid}" data-kind="{esc(kind)}" style="height:{int(layout["height"])}px"></div>'
                + (f"<figcaption>{cap}</figcaption>" if cap else "") + "</figure>")
