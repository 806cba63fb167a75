"""Similar songs: rank a library's songs by the cosine similarity of their backbone embeddings.

A library run with a backbone model (``genrekit classify --out results.sqlite``, the default
model) stores each song's embedding: the mean over its 3-s patches of MSD-musicnn's 200-d
penultimate layer. :class:`SimilarityIndex` loads those of one model from a results store and
ranks them against a query song's embedding:

>>> index = SimilarityIndex.from_results("results.sqlite")          # doctest: +SKIP
>>> index.query_file("new-song.mp3", top=5)                          # doctest: +SKIP
[{'path': 'jazz/take-five.flac', 'label': 'jazz', 'score': 0.93}, ...]

A song already in the library is found by its identity (:mod:`genrekit.audio.identity`: the hash of
its audio, not its name nor its tags) and is not listed as similar to itself; one that is not is analysed first with the library's model.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genrekit.errors import SimilarityError


@dataclass
class SimilarityIndex:
    """Unit-length embeddings of a library's songs, one model's.

    Attributes
    ----------
    paths : list of str
        Each song's path as it was classified.
    labels : list of str
        Each song's top genre.
    hashes : list of str
        Each song's identity key (:func:`genrekit.audio.files.identity`).
    vectors : ndarray, shape (n_songs, dim)
        L2-normalised embeddings.
    model_key : str
        The model that made them (:func:`genrekit.library.run.model_key`).
    source : str
        The results store.
    warning : str or None
        One line naming the records skipped as not valid results (``None``: none was).
    """

    paths: list[str]
    labels: list[str]
    hashes: list[str]
    vectors: np.ndarray
    model_key: str
    source: str
    warning: str | None = None

    @classmethod
    def from_results(cls, path: str | os.PathLike, model_key: str | None = None) -> "SimilarityIndex":
        """Load the embeddings of ``model_key`` (default: the model most songs have) from a results store."""
        from genrekit.errors import ParameterError, ResultsError
        from genrekit.library.records import skipped_line
        from genrekit.library.results import open_results

        path = Path(path)
        if not os.path.lexists(path):
            raise SimilarityError(f"{path}: no such results file (make one with genrekit classify "
                                  f"FOLDER --out {path.name})")
        try:
            store = open_results(path, mode="r")  # read-only: the library's results are never changed
        except ResultsError as exc:  # names the file and the problem
            raise SimilarityError(str(exc)) from None
        except (OSError, ParameterError) as exc:  # ParameterError: not a results file's suffix
            raise SimilarityError(f"{path}: cannot read the results: {exc}") from None
        try:
            records = [r for r in store.records() if r.get("error") is None and r.get("embedding") is not None]
            skipped = list(store.skipped)
        except ResultsError as exc:
            raise SimilarityError(str(exc)) from None
        finally:
            store.close()
        if not records:
            raise SimilarityError(f"{path}: no song in it has an embedding (classify the library with a "
                                  f"backbone model, such as the default, to store them)")
        keys = Counter(r["model_key"] for r in records)
        key = model_key or keys.most_common(1)[0][0]
        records = [r for r in records if r["model_key"] == key]
        if not records:
            raise SimilarityError(f"{path}: no song classified with model {key} (it holds {', '.join(keys)})")
        # One model's embeddings have one length: a record of another length is damaged or hand-made.
        dim = Counter(len(r["embedding"]) for r in records).most_common(1)[0][0]
        skipped += [(r["path"], f"an embedding of {len(r['embedding'])} values, not {dim}")
                    for r in records if len(r["embedding"]) != dim]
        records = [r for r in records if len(r["embedding"]) == dim]
        # One entry per identity (the audio's hash): the same song under two names, or before and
        # after a tag write, is one song, named by its newest record. And a path holds one song: an
        # older record of a path (its content then, e.g. a store's key from before identities) is left out.
        by_hash, paths = {}, set()
        for r in sorted(records, key=lambda r: str(r.get("time") or ""), reverse=True):
            if r["path"] not in paths:
                paths.add(r["path"])
                by_hash.setdefault(r.get("content_hash") or r["path"], r)
        chosen = sorted(by_hash.values(), key=lambda r: r["path"])
        vectors = _unit(np.asarray([r["embedding"] for r in chosen], dtype=np.float64))
        return cls([r["path"] for r in chosen], [r.get("label") or "" for r in chosen],
                   [r.get("content_hash") or "" for r in chosen], vectors, key, str(path),
                   skipped_line(path, skipped) if skipped else None)

    def __len__(self) -> int:
        return len(self.paths)

    def query(self, embedding, *, top: int = 10, exclude_hash: str | None = None) -> list[dict]:
        """The ``top`` most similar songs: ``[{"path", "label", "score"}, ...]``, best first.

        ``score`` is the cosine similarity in [-1, 1]; ties are broken by path.
        """
        q = _unit(np.asarray(embedding, dtype=np.float64)[None])[0]
        if q.shape[0] != self.vectors.shape[1]:
            raise SimilarityError(f"{self.source}: query embedding has {q.shape[0]} dimensions, "
                                  f"the library's have {self.vectors.shape[1]}")
        scores = self.vectors @ q
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], self.paths[i]))
        out = []
        for i in order:
            if exclude_hash and self.hashes[i] == exclude_hash:
                continue
            out.append({"path": self.paths[i], "label": self.labels[i], "score": float(scores[i])})
            if len(out) == top:
                break
        return out

    def query_file(self, song: str | os.PathLike, *, model=None, top: int = 10) -> list[dict]:
        """Songs similar to a file: its stored embedding if the library has it, else analysed now."""
        from genrekit.audio.files import file_keys

        digest, whole = file_keys(song)
        if whole in self.hashes:  # a library written before identities that was not migrated
            digest = whole
        for h, v in zip(self.hashes, self.vectors):
            if h == digest:
                return self.query(v, top=top, exclude_hash=digest)
        clf = _model_for(self, model)
        prediction = clf.classify_file(song)
        return self.query(prediction.embedding, top=top, exclude_hash=digest)


def _model_for(index: SimilarityIndex, model):
    from genrekit.library.run import model_key
    from genrekit.models.protocol import GenreClassifier
    from genrekit.models.registry import load_model

    clf = model if isinstance(model, GenreClassifier) else load_model(model)
    if not clf.has_backbone:
        raise SimilarityError(f"model {clf.name} has no backbone and gives no embeddings")
    if model_key(clf) != index.model_key:
        raise SimilarityError(f"{index.source}: the library was classified with another model "
                              f"({index.model_key}); give that model with --model")
    return clf


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)
