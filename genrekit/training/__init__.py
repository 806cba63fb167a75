"""Training models: classical models on feature tables (:mod:`.classical`), a head on the backbone
from a library's own genre tags (:mod:`.own_genres`), and CNNs on spectrograms (:mod:`.cnn`).
"""
