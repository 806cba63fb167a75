"""Genre models: scikit-learn classifiers (:mod:`.classical`) and the model bundle (:mod:`.bundle`).

Importing this package does not import scikit-learn or skl2onnx; :func:`genrekit.models.bundle.load_bundle`
needs only numpy and onnxruntime.
"""
