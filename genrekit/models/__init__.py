"""Genre models: scikit-learn classifiers (:mod:`.classical`) and the model bundle (:mod:`.bundle`).

Importing this package does not import scikit-learn or skl2onnx; :func:`load_bundle`
needs only numpy and onnxruntime.
"""

from .bundle import Bundle, BundleError, load_bundle, save_bundle

__all__ = ["Bundle", "BundleError", "load_bundle", "save_bundle"]
