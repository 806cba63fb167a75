"""Model kind: a CNN on spectrogram patches (trained from scratch or fine-tuned).

The bundle's network reads ``(windows, 1, bands, frames)`` patches of one of the CNN
inputs (:data:`genrekit.models.cnn_inputs.CNN_INPUTS`: a dB log-mel, its MFCCs, or
MSD-musicnn's own front end), cut from the whole song's spectrogram
(:func:`genrekit.models.cnn_inputs.spectrogram_inputs`). Streamed, the spectrogram is
built block by block and the audio is not kept (1.3 MB per minute at the defaults); the
patches are cut once it is complete, since the dB floor depends on the song's peak.

"None of these": a CNN bundle's stored decision measures the network's output, the mean over a
song's windows of the log of its probabilities, against the genres' means on the validation
tracks (:func:`genrekit.training.cnn.export.fit_unknown_decision`).
"""

from __future__ import annotations

import numpy as np

from genrekit.models.protocol import GenreClassifier, WindowScores, table_scores


class SpectrogramCNNModel(GenreClassifier):
    """A CNN bundle (``kind == "cnn"``)."""

    @classmethod
    def accepts(cls, bundle) -> bool:
        return getattr(bundle, "kind", "classical") == "cnn"

    def inputs(self, y: np.ndarray, bounds) -> np.ndarray:
        """The network input for windows ``bounds`` (samples) of ``y`` (at :attr:`sample_rate`)."""
        from genrekit.models.cnn_inputs import bundle_inputs

        return bundle_inputs(self.bundle, y, bounds)

    def signal_scores(self, y: np.ndarray, timeline: bool = False) -> WindowScores:
        bounds = self.window_bounds(len(y))
        return self._scores(len(y), bounds, self.inputs(y, bounds), timeline)

    def _scores(self, n_samples: int, bounds, inputs: np.ndarray, timeline: bool) -> WindowScores:
        """The windows' probabilities and, for the bundle's "none of these" decision, their logs:
        a CNN's decision measures its output (``unknown.rows == "log_probabilities"``)."""
        from genrekit.models.unknown import log_rows

        proba = self.bundle.predict_proba(inputs)
        rows = log_rows(self.bundle.predict_proba(inputs, calibrated=False)) if self.bundle.calibration else log_rows(proba)
        return table_scores(n_samples, bounds, proba, timeline, rows=rows)

    def stream(self, expected_samples: int | None = None, timeline: bool = False):
        from genrekit.models.cnn_inputs import spectrogram_stream

        return spectrogram_stream(self.bundle.feature_set)

    def scores(self, spec: np.ndarray, n_samples: int, timeline: bool = False) -> WindowScores:
        from genrekit.models.cnn_inputs import spectrogram_inputs

        bounds = self.window_bounds(n_samples)
        return self._scores(n_samples, bounds, spectrogram_inputs(self.bundle, spec, bounds), timeline)
