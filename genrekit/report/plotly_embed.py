"""plotly.js in the report page: its text from the installed ``plotly`` package, and the script that draws the charts.

:func:`genrekit.report.page.render_html` embeds :func:`plotly_js` in the page (which then
opens without a network); the server (:mod:`genrekit.web.reports`) serves it once under
:func:`plotly_js_name`, a name that changes with its content, and allows only
:data:`BOOT_SCRIPT` inline, by its hash (:func:`boot_script_hash`).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from importlib import resources

from genrekit.errors import ReportError

__all__ = ["BOOT_SCRIPT", "plotly_js", "plotly_js_name", "boot_script_hash"]


#: Starts every plot; the only inline script of the page (its hash goes in the server's CSP).
BOOT_SCRIPT = """(function () {
  "use strict";
  var figures = JSON.parse(document.getElementById("genrekit-figures").textContent);
  var status = document.getElementById("plot-status");
  if (typeof Plotly === "undefined") {
    status.textContent = "The charts could not be drawn: plotly.js did not load.";
    status.hidden = false;
    return;
  }
  var config = {displaylogo: false, responsive: true,
                modeBarButtonsToRemove: ["sendDataToCloud", "select2d", "lasso2d"]};
  Promise.all(figures.map(function (f) {
    return Plotly.newPlot(document.getElementById(f.id), f.data, f.layout, config);
  })).then(function () {
    document.body.setAttribute("data-plots", String(figures.length));
  }, function (err) {
    status.textContent = "A chart could not be drawn: " + err;
    status.hidden = false;
    document.body.setAttribute("data-plots", "error");
  });
})();"""


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """The text of ``plotly.min.js`` from the installed ``plotly`` package (made safe for inline use)."""
    try:
        path = resources.files("plotly") / "package_data" / "plotly.min.js"
        text = path.read_text(encoding="utf-8")
    except ModuleNotFoundError:
        raise ReportError("the report needs plotly.js from the plotly package: "
                          "pip install 'genrekit[report]'") from None
    except (FileNotFoundError, OSError) as exc:
        raise ReportError(f"plotly.min.js not found in the installed plotly package ({exc})") from None
    # Inside <script>, only "</script" could end the element early; "<\/" means the same in JS.
    return text.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")


def plotly_js_name() -> str:
    """A versioned file name for serving :func:`plotly_js` with long caching."""
    digest = hashlib.sha256(plotly_js().encode("utf-8")).hexdigest()[:16]
    return f"plotly-{digest}.min.js"


def boot_script_hash() -> str:
    """CSP source (``'sha256-...'``) allowing :data:`BOOT_SCRIPT` and nothing else inline."""
    digest = hashlib.sha256(BOOT_SCRIPT.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"
