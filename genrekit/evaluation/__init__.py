"""Honest evaluation: metrics at window and track level with bootstrap intervals (:mod:`.metrics`),
clusters against genres (:mod:`.cluster`), learning curves (:mod:`.learning_curve`) and how well
the unknown decision finds genres never trained on (:mod:`.open_set`).
"""
