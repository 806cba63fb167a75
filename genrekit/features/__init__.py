"""Feature extraction: one STFT front end feeding log-mel, MFCC and the GTZAN 57-feature table."""

from .sets import FeatureSet, feature_set

__all__ = ["FeatureSet", "feature_set"]
