"""Near-duplicate pairs in blocks, checked against every pair computed at once."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.collection.duplicates import perceptual_hash, similar_pairs


def test_blocked_pairs_match_the_full_similarity_matrix() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(9000, 8)).astype(np.float32)
    vectors[8500:] = vectors[:500] + rng.normal(scale=0.005, size=(500, 8))  # planted copies
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected_rows, expected_cols = np.nonzero(np.triu(unit[:3000] @ unit.T >= 0.995, k=1))
    found = similar_pairs(vectors, 0.995)
    mine = {(a, b) for a, b, _ in found if a < 3000}
    assert mine == set(zip(expected_rows.tolist(), expected_cols.tolist(), strict=True))
    assert {(a, a + 8500) for a in range(500)} <= {(a, b) for a, b, _ in found}
    assert all(a < b and s >= 0.995 for a, b, s in found)


def test_the_perceptual_hash_is_imagehash_s_phash() -> None:
    imagehash = pytest.importorskip("imagehash")
    skimage_data = pytest.importorskip("skimage.data")
    for image in (skimage_data.astronaut(), skimage_data.coffee(), skimage_data.camera()):
        ours = perceptual_hash(np.asarray(image))
        reference = imagehash.phash(Image.fromarray(np.asarray(image))).hash.reshape(-1)
        assert np.count_nonzero(ours != reference) <= 1  # float ties at the median aside
