"""What an audio file holds, read from its header without decoding: :func:`info`."""

from __future__ import annotations

import os
from dataclasses import dataclass

import soundfile as sf

from genrekit.audio.containers import Chatter, av_seconds, check_file, import_av, open_av, sf_reason


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header.

    Attributes
    ----------
    path : str
    samplerate : int
        Native sample rate in Hz.
    channels : int
    frames : int
        Samples per channel (estimated from the duration for PyAV files).
    duration : float
        Length in seconds.
    format : str
        Container and encoding, e.g. ``"WAV PCM_16"`` or ``"mov,mp4,m4a,3gp,3g2,mj2 aac"``.
    """

    path: str
    samplerate: int
    channels: int
    frames: int
    duration: float
    format: str


def info(path) -> AudioInfo:
    """Describe an audio file from its header, without decoding it.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    AudioInfo

    Raises
    ------
    AudioError
        Same checks as `load` that need no decoding.
    """
    path = check_file(path)
    try:
        with Chatter() as chatter:  # libmpg123's header warnings are not for the terminal
            i = sf.info(os.fsencode(path))
        chatter.close()
    except sf.LibsndfileError as err:
        reason = sf_reason(err)
    else:
        return AudioInfo(path, i.samplerate, i.channels, i.frames, i.duration, f"{i.format} {i.subtype}")

    av = import_av(path, reason)
    with open_av(av, path, reason) as container:
        stream = container.streams.audio[0]
        seconds = av_seconds(av, container, stream)
        return AudioInfo(
            path,
            stream.rate,
            stream.channels,
            round(seconds * stream.rate),
            seconds,
            f"{container.format.name} {stream.codec_context.name}",
        )
