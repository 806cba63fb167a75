"""Feature extraction: one STFT front end feeding log-mel, MFCC and the GTZAN 57-feature table."""
