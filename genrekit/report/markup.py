"""Text for the report page: HTML escaping, numbers as text, and the small HTML pieces every section uses.

Every text that comes from a file goes through :func:`esc` (HTML) or :func:`plotly_text`
(plotly labels, which read a little HTML); JSON inside ``<script>`` goes through
:func:`script_json`, so no ``</script>`` can end it early. Missing or non-finite numbers
read as an en dash.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["esc", "plotly_text", "script_json", "finite", "percent", "ci_text", "count_text", "leaky_badge",
           "facts_list"]


def esc(value: Any) -> str:
    """HTML-escaped text (``None`` → an en dash)."""
    return "–" if value is None else html.escape(str(value), quote=True)


def plotly_text(value: Any) -> str:
    """Text for plotly labels (plotly reads a few HTML tags and entities in them): escaped."""
    return html.escape(str(value), quote=False)


def script_json(obj: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``<``, ``>``, ``&`` or line separators as such."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def finite(x: Any) -> float | None:
    """``x`` as a float when it is a finite number (not a bool), else None."""
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def percent(x: Any, digits: int = 1) -> str:
    """A share as a percentage with ``digits`` decimals (``0.5`` → ``50.0%``), or an en dash."""
    x = finite(x)
    return "–" if x is None else f"{100 * x:.{digits}f}%"


def ci_text(ci: Any) -> str:
    """A 95% interval ``[low, high]`` of shares as `` [40.1–52.3]`` (percent), or nothing."""
    if not (isinstance(ci, list) and len(ci) == 2 and all(finite(v) is not None for v in ci)):
        return ""
    return f" [{100 * ci[0]:.1f}–{100 * ci[1]:.1f}]"


def count_text(x: Any) -> str:
    """An integer with thousands separators (``1,000``), or an en dash."""
    return f"{x:,}" if isinstance(x, int) and not isinstance(x, bool) else "–"


def leaky_badge(run: Mapping) -> str:
    """The red "leaky protocol" badge of a run (``id`` and ``warning`` keys), its warning as a tooltip."""
    return (f'<span class="badge badge-leaky" data-run="{esc(run["id"])}" title="{esc(run["warning"])}">'
            "leaky protocol</span>")


def facts_list(pairs: Iterable[tuple[str, str]]) -> str:
    """A ``<dl>`` of (label, HTML) pairs; pairs with an empty value are left out."""
    return '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs if v) + "</dl>"
