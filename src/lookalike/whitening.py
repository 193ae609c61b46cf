"""PCA-whitening learned on a collection's own embeddings.

The standard post-processing of global CNN descriptors in retrieval papers
(Jégou & Chum, ECCV 2012, "Negative evidences and co-occurrences in image
retrieval: the benefit of PCA and whitening"; used by Babenko & Lempitsky 2015
and Radenović et al. 2018): centre, project on the top principal components,
divide each by the square root of its variance, then L2-normalise again. It
down-weights the directions that all images share and can shrink the vectors.

With ``whiten=False`` it is a plain PCA projection (centre, project, L2-normalise): the
regions channel stores its vectors so, in fewer dimensions, without reweighting them.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np

from lookalike.errors import ValidationError, expect
from lookalike.extractors.base import l2_normalise
from lookalike.paths import atomic_write_bytes


class PCAWhitening:
    """Learn with :meth:`fit`, apply with :meth:`transform`. Learned state ends in ``_``.
    ``whiten=False`` keeps each component's variance (a plain PCA projection)."""

    def __init__(self, dim: int, *, eps: float = 1e-6, whiten: bool = True) -> None:
        self.dim = dim
        self.eps = eps
        self.whiten = whiten

    def fit(self, vectors: np.ndarray) -> PCAWhitening:
        vectors = np.asarray(vectors, dtype=np.float64)
        expect(vectors.ndim == 2, f"expected an (n, d) matrix, got shape {vectors.shape}")
        n, d = vectors.shape
        expect(
            0 < self.dim <= d and n > self.dim,
            f"expected more vectors than the target dimension {self.dim} (and dim <= {d}), "
            f"got {n} vectors; learn the whitening on a larger collection",
        )
        self.mean_ = vectors.mean(axis=0)
        covariance = np.cov(vectors - self.mean_, rowvar=False)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        top = np.argsort(eigenvalues)[::-1][: self.dim]
        scale = (1.0 / np.sqrt(np.maximum(eigenvalues[top], 0.0) + self.eps) if self.whiten
                 else np.ones(len(top)))
        self.projection_ = (eigenvectors[:, top] * scale).astype(np.float32)
        self.mean_ = self.mean_.astype(np.float32)
        return self

    @property
    def input_dim(self) -> int:
        return int(self.projection_.shape[0])

    @property
    def id(self) -> str:
        """A content id of the learned state (the file's bytes are not stable: zip times)."""
        digest = hashlib.sha256(self.mean_.tobytes() + self.projection_.tobytes())
        return digest.hexdigest()[:16]

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        if not hasattr(self, "projection_"):
            raise ValidationError("expected a fitted whitening, got an unfitted one; call fit()")
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        expect(
            vectors.shape[1] == self.input_dim,
            f"expected vectors of dimension {self.input_dim}, got {vectors.shape[1]}",
        )
        return l2_normalise((vectors - self.mean_) @ self.projection_)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, mean=self.mean_, projection=self.projection_, eps=self.eps,
                 whiten=self.whiten)
        return buffer.getvalue()

    def save(self, path: Path) -> None:
        atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> PCAWhitening:
        try:
            with np.load(path) as data:
                whiten = bool(data["whiten"]) if "whiten" in data.files else True
                whitening = cls(int(data["projection"].shape[1]), eps=float(data["eps"]),
                                whiten=whiten)
                whitening.mean_ = data["mean"].astype(np.float32)
                whitening.projection_ = data["projection"].astype(np.float32)
        except (OSError, KeyError, ValueError) as error:
            raise ValidationError(f"{path}: not a whitening file ({error})") from error
        return whitening
