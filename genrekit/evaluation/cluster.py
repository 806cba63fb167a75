"""Unsupervised view of a feature table: k-means clusters against the genres, and a 3-D PCA map.

k-means (Lloyd 1982, k-means++ seeding, Arthur & Vassilvitskii 2007) runs on standardised
features; PCA (3 components) of the same standardised features gives coordinates for a
scatter plot. Agreement with the genres is measured by the adjusted Rand index (Hubert &
Arabie 1985), normalised mutual information (Strehl & Ghosh 2002) and purity (the share
of rows whose cluster's majority genre is their own).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genrekit.errors import ParameterError


@dataclass
class ClusterResult:
    """What :func:`cluster` found; :meth:`to_dict` is the JSON the report draws."""

    k: int
    ari: float
    nmi: float
    purity: float
    genres: list[str]
    counts: np.ndarray                  # (k, n_genres): rows of each cluster per genre
    assignments: np.ndarray             # (n_rows,) cluster of each row
    coordinates: np.ndarray             # (n_rows, 3) PCA coordinates
    explained_variance: np.ndarray      # (3,) variance ratio of each component
    rows: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray
    source: str = ""
    seed: int = 0
    extra: dict = field(default_factory=dict)

    def table_text(self) -> str:
        """The cluster × genre table as aligned text."""
        width = max(6, *(len(g) for g in self.genres))
        lines = ["cluster " + "".join(f"{g:>{width + 1}}" for g in self.genres) + f"{'total':>{width + 1}}"]
        for c, row in enumerate(self.counts):
            lines.append(f"{c:>7} " + "".join(f"{n:>{width + 1}}" for n in row) + f"{row.sum():>{width + 1}}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "method": "k-means (k-means++, 10 inits) on standardised features; PCA to 3 components",
            "seed": self.seed,
            "k": self.k,
            "n_rows": int(len(self.rows)),
            "n_tracks": int(len(np.unique(self.tracks))),
            "ari": self.ari,
            "nmi": self.nmi,
            "purity": self.purity,
            "table": {"clusters": list(range(self.k)), "genres": self.genres, "counts": self.counts.tolist()},
            "pca": {
                "explained_variance_ratio": self.explained_variance.tolist(),
                "points": [
                    {"row": str(r), "track": str(t), "genre": str(g), "cluster": int(c),
                     "x": float(x), "y": float(y), "z": float(z)}
                    for r, t, g, c, (x, y, z) in zip(self.rows, self.tracks, self.labels,
                                                     self.assignments, self.coordinates)
                ],
            },
        }


def purity(labels: np.ndarray, assignments: np.ndarray) -> float:
    """Share of rows whose cluster's most common label is their own label."""
    total = 0
    for c in np.unique(assignments):
        _, counts = np.unique(labels[assignments == c], return_counts=True)
        total += counts.max()
    return total / len(labels)


def cluster(X: np.ndarray, labels: np.ndarray, *, k: int | None = None, seed: int = 0,
            rows: np.ndarray | None = None, tracks: np.ndarray | None = None, source: str = "") -> ClusterResult:
    """Cluster the rows of ``X`` and compare the clusters with ``labels``.

    Parameters
    ----------
    X : np.ndarray, shape (n_rows, n_features)
    labels : np.ndarray, shape (n_rows,)
        Genre of each row.
    k : int or None
        Number of clusters; ``None`` uses the number of distinct genres.
    seed : int
        Random state of k-means.
    """
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=np.float64)
    labels = np.asarray(labels).astype(str)
    if X.ndim != 2 or len(X) != len(labels):
        raise ParameterError(f"X must be (n_rows, n_features) with one label per row; got {X.shape} and {labels.shape}")
    genres = sorted(set(labels))
    k = len(genres) if k is None else int(k)
    if not 2 <= k <= len(X):
        raise ParameterError(f"k must be between 2 and the number of rows ({len(X)}), got {k}")
    Z = StandardScaler().fit_transform(X)
    assignments = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(Z)
    n_components = min(3, Z.shape[1], len(Z))
    pca = PCA(n_components=n_components, random_state=seed).fit(Z)
    coords = np.zeros((len(Z), 3))
    coords[:, :n_components] = pca.transform(Z)
    variance = np.zeros(3)
    variance[:n_components] = pca.explained_variance_ratio_
    counts = np.array([[np.sum((assignments == c) & (labels == g)) for g in genres] for c in range(k)])
    n = len(X)
    return ClusterResult(
        k=k,
        ari=float(adjusted_rand_score(labels, assignments)),
        nmi=float(normalized_mutual_info_score(labels, assignments)),
        purity=float(purity(labels, assignments)),
        genres=genres, counts=counts, assignments=assignments, coordinates=coords,
        explained_variance=variance,
        rows=np.asarray(rows if rows is not None else np.arange(n)).astype(str),
        labels=labels,
        tracks=np.asarray(tracks if tracks is not None else (rows if rows is not None else np.arange(n))).astype(str),
        source=source, seed=seed,
    )
