"""The ``index.html`` of ``genrekit explain filters``: every filter's excerpts, to look at and listen to.

One static page with relative links only (the folder can be moved or zipped); every text
from a file name is HTML-escaped.
"""

from __future__ import annotations

import html

from genrekit.explain.filters.probe import LayerProbe
from genrekit.explain.filters.sources import FilterSource

__all__ = ["index_html"]


def index_html(source: FilterSource, probe: LayerProbe, rows) -> str:
    """The page of a probed layer's excerpts.

    Parameters
    ----------
    source : FilterSource
        What was probed (titles and notes of the page).
    probe : LayerProbe
        The layer probed.
    rows : list of list of dict
        Each filter's excerpts as written to ``filters.json`` (file, times, image, audio).
    """
    esc = html.escape
    layer = probe.layer
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Filters of conv layer {layer.number}: {esc(source.title)}</title>",
        "<style>body{font:14px system-ui,sans-serif;margin:1.5em;background:#fafafa;color:#222}"
        "section{margin-bottom:2em}.row{display:flex;flex-wrap:wrap;gap:12px}"
        "figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px;width:262px}"
        "img{width:260px;height:256px;image-rendering:pixelated;display:block}"
        "audio{width:260px}figcaption{font-size:12px;word-break:break-all}</style></head><body>",
        f"<h1>What the filters of conv layer {layer.number} of {len(probe.layers)} respond to</h1>",
        f"<p>Model <code>{esc(source.model)}</code>{esc(source.network_note)}, tensor <code>{esc(layer.output)}</code>"
        f"{' (after ReLU)' if layer.activation else ''}. For each filter: the dataset windows with the "
        "highest activation (maximum of the feature map over frequency and time), strongest first. "
        f"Images: {esc(source.picture_note)}; the cyan ticks mark when "
        "the filter peaked. Audio: a short excerpt around the peak.</p>",
    ]
    for f, chosen in enumerate(rows):
        parts.append(f"<section id='filter-{f}'><h2>Filter {f}</h2><div class='row'>")
        if not chosen:
            parts.append("<p>No excerpt: its activation is the same in every window of these songs "
                         "(a filter that does not respond to them).</p>")
        for e in chosen:
            parts.append(
                f"<figure><img src='{esc(e['image'])}' alt='log-mel of {esc(e['file'])} at {e['start']:.2f} s'>"
                f"<audio controls preload='none' src='{esc(e['audio'])}'></audio>"
                f"<figcaption>#{e['rank']} {esc(e['file'])}<br>window at {e['start']:.2f} s, "
                f"peak {e['peak']:.2f} s, activation {e['activation']:.3g}</figcaption></figure>"
            )
        parts.append("</div></section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
