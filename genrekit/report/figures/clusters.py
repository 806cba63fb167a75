"""A clustering's section (``genrekit cluster --out``): scores, the 3-D PCA map and the clusters × genres table.

The map colours each row by genre or by k-means cluster (buttons switch); the table counts
the rows of each cluster by true genre, shaded by count, with the cluster's majority genre.
"""

from __future__ import annotations

from collections.abc import Mapping

from genrekit.report.figures.collector import Figures
from genrekit.report.figures.layout import cycled, plot_layout
from genrekit.report.markup import count_text, esc, facts_list, finite, percent, plotly_text
from genrekit.report.theme import CLUSTER_COLOURS, GENRE_COLOURS, GRID, INK

__all__ = ["cluster_section"]


def cluster_section(item: Mapping, figs: Figures) -> str:
    """The section of one cluster file (:func:`genrekit.report.build.load_cluster`)."""
    def stat(label, value):
        return f'<div class="tile"><div class="v">{value}</div><div class="k">{esc(label)}</div></div>'

    fmt = lambda x: "–" if finite(x) is None else f"{x:.3f}"  # noqa: E731
    tiles = ('<div class="tiles">' + stat("adjusted Rand index", fmt(item.get("ari")))
             + stat("normalised mutual information", fmt(item.get("nmi"))) + stat("purity", fmt(item.get("purity")))
             + stat("clusters (k)", count_text(item.get("k"))) + stat("rows", count_text(item.get("n_rows")))
             + stat("tracks", count_text(item.get("n_tracks"))) + "</div>")
    table = item["table"]
    genres, counts = table["genres"], table["counts"]
    peak = max((v for row in counts for v in row), default=0) or 1
    head = "".join(f"<th>{esc(g)}</th>" for g in genres)
    body = []
    for c, row in zip(table["clusters"], counts):
        cells = "".join(
            f'<td style="background:rgba(33,113,181,{0.06 + 0.74 * v / peak:.3f});'
            f'color:{"#ffffff" if v / peak > 0.55 else INK}">{v}</td>' if v else "<td>·</td>"
            for v in row)
        total = sum(row)
        top = genres[row.index(max(row))] if total else "–"
        body.append(f"<tr><td>cluster {esc(c)}</td>{cells}<td><strong>{total}</strong></td>"
                    f'<td class="text">{esc(top)} ({percent(max(row) / total if total else None, 0)})</td></tr>')
    totals = [sum(row[j] for row in counts) for j in range(len(genres))]
    body.append("<tr><td><strong>total</strong></td>" + "".join(f"<td><strong>{t}</strong></td>" for t in totals)
                + f"<td><strong>{sum(totals)}</strong></td><td></td></tr>")
    table_html = (f'<div class="scroll"><table class="grid clusters"><thead><tr><th>cluster \\ genre</th>{head}'
                  f'<th>total</th><th class="text">majority genre</th></tr></thead><tbody>{"".join(body)}</tbody>'
                  "</table></div>")
    return (f'<section class="card cluster" id="{esc(item["id"])}"><h2>Clusters: {esc(item["name"])}</h2>'
            + facts_list([("Data", esc(item.get("source"))), ("Method", esc(item.get("method"))),
                          ("File", f"<code>{esc(item['path'])}</code>")])
            + tiles + "<h3>PCA map (3-D)</h3>" + _pca_scatter(item, figs)
            + "<h3>Clusters × genres</h3>"
            + '<p class="note">Rows of the table in each k-means cluster, by true genre. ARI and NMI: 0 = chance '
              "agreement with the genres, 1 = the same partition; purity: share of rows in their cluster's "
              "majority genre.</p>" + table_html + "</section>")


def _pca_scatter(item: Mapping, figs: Figures) -> str:
    """The rows on their first three principal components, coloured by genre or by cluster."""
    pts = item["points"]
    n = len(pts["x"])
    if not n:
        return '<p class="note">No PCA points in this file.</p>'
    genres = item["table"]["genres"] or sorted(set(pts["genre"]))
    genres = genres + sorted(set(pts["genre"]) - set(genres))
    clusters = sorted(set(pts["cluster"]))
    hover = [f"{plotly_text(t)}<br>genre {plotly_text(g)} · cluster {c}"
             for t, g, c in zip(pts["track"], pts["genre"], pts["cluster"])]

    def trace(name, members, colour, visible, group):
        return {"type": "scatter3d", "mode": "markers", "name": name, "legendgroup": group, "visible": visible,
                "x": [pts["x"][i] for i in members], "y": [pts["y"][i] for i in members],
                "z": [pts["z"][i] for i in members], "text": [hover[i] for i in members],
                "hovertemplate": "%{text}<extra></extra>",
                "marker": {"size": 2.5, "color": colour, "opacity": 0.85, "line": {"width": 0}},
                "meta": {"colour_by": group}}

    data = []
    for i, g in enumerate(genres):
        members = [j for j in range(n) if pts["genre"][j] == g]
        if members:
            data.append(trace(plotly_text(g), members, cycled(GENRE_COLOURS, i), True, "genre"))
    n_genre = len(data)
    for i, c in enumerate(clusters):
        members = [j for j in range(n) if pts["cluster"][j] == c]
        data.append(trace(f"cluster {c}", members, cycled(CLUSTER_COLOURS, i), False, "cluster"))
    n_cluster = len(data) - n_genre
    var = item.get("explained_variance") or []
    titles = [f"PC{i + 1}" + (f" ({100 * var[i]:.1f}%)" if i < len(var) and var[i] is not None else "")
              for i in range(3)]
    axis = lambda t: {"title": {"text": t}, "backgroundcolor": "#fbfcfd", "gridcolor": GRID,  # noqa: E731
                      "showbackground": True, "zerolinecolor": "#cbd2d9"}
    layout = plot_layout(
        600, margin={"l": 0, "r": 0, "t": 44, "b": 0},
        legend={"title": {"text": "genre"}, "itemsizing": "constant", "x": 1, "xanchor": "right", "y": 0.95},
        scene={"xaxis": axis(titles[0]), "yaxis": axis(titles[1]), "zaxis": axis(titles[2]),
               "aspectmode": "manual", "aspectratio": {"x": 1, "y": 1, "z": 0.7},
               "camera": {"eye": {"x": 1.2, "y": 1.2, "z": 0.62}, "center": {"x": 0, "y": 0, "z": -0.16}}},
        updatemenus=[{
            "type": "buttons", "direction": "right", "x": 0, "xanchor": "left", "y": 1.06, "yanchor": "bottom",
            "showactive": True, "pad": {"r": 4, "t": 0}, "bgcolor": "#f0f3f6", "bordercolor": "#cbd2d9",
            "font": {"size": 12},
            "buttons": [
                {"label": "Colour by genre", "method": "update",
                 "args": [{"visible": [True] * n_genre + [False] * n_cluster}, {"legend.title.text": "genre"}]},
                {"label": "Colour by k-means cluster", "method": "update",
                 "args": [{"visible": [False] * n_genre + [True] * n_cluster},
                          {"legend.title.text": "k-means cluster"}]},
            ],
        }],
    )
    caption = (f"{count_text(n)} rows, first three principal components of the standardised features "
               "(drag to turn, scroll to zoom; the buttons switch the colouring).")
    return figs.add(data, layout, caption=caption, kind="pca")
