"""Training models, one contract for every kind (:mod:`.base`): classical models on feature tables
(:mod:`.classical`), a head on the backbone from a library's own genre labels (:mod:`.own_genres`),
and CNNs on spectrograms (:mod:`.cnn`); what a run folder holds is :mod:`.run_folder`'s.
"""
