"""Pretrained networks served by onnxruntime: front end, ONNX graph, tags and embeddings.

``musicnn``: MSD-musicnn (Pons & Serra 2019), 50 Last.fm tags and a 200-d embedding per 3-s
patch. Its PyTorch definition, for fine-tuning and export, is :mod:`genrekit.models.musicnn_architecture`.
"""
