"""Audio in: decoding any container to float32 mono blocks (:mod:`.decode`), decoding only the
regions an analysis needs (:mod:`.regions`), finding audio files and naming them by content
(:mod:`.files`), and the synthesised demo song (:mod:`.demo`).
"""
