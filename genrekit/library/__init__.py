"""A music library: classify many files resumably (:mod:`.run`), keep each result in a results
store (:mod:`.results`), and make playlists (:mod:`.playlists`) and similar-song lists
(:mod:`.similar`) from it.
"""
