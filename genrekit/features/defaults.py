"""The defaults of every spectral analysis in genrekit (librosa's) and of a CNN's spectrogram patches.

Feature sets (:class:`genrekit.features.sets.FeatureSet`), the front end
(:class:`genrekit.features.spectral.SpectralFrontEnd`), the streaming log-mel
(:mod:`genrekit.features.blockwise`), the page's spectrogram, CNN inputs
(:mod:`genrekit.models.cnn_inputs`) and CNN training's options read them here. This module
imports nothing, so that reading a default (the command line's help does) costs no numerical
library.
"""

#: Sample rate audio is analysed at, in Hz.
SAMPLE_RATE = 22050
#: STFT frame length, in samples (Hann window, centred frames).
N_FFT = 2048
#: STFT hop, in samples.
HOP_LENGTH = 512
#: Mel bands (Slaney scale and normalisation).
N_MELS = 128

#: A CNN's input patch and the hop between patches, in seconds.
CNN_WINDOW = 3.0
CNN_HOP = 1.5
