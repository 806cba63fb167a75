"""The defaults of every spectral analysis in genrekit, librosa's: one home, imported by all.

Feature sets (:class:`genrekit.features.sets.FeatureSet`), the front end
(:class:`genrekit.features.spectral.SpectralFrontEnd`), the streaming log-mel
(:mod:`genrekit.features.blockwise`) and the page's spectrogram read them here. This module
imports nothing, so that reading a default costs no numerical library.
"""

#: Sample rate audio is analysed at, in Hz.
SAMPLE_RATE = 22050
#: STFT frame length, in samples (Hann window, centred frames).
N_FFT = 2048
#: STFT hop, in samples.
HOP_LENGTH = 512
#: Mel bands (Slaney scale and normalisation).
N_MELS = 128
