"""Five-point alignment: warp a face onto a fixed template so the embedder sees it upright,
centred and at a fixed scale.

Each landmark scheme has its own template in a normalised face frame (0..1 on
both axes, before padding); a NaN row marks a point that alignment leaves out.
``dlib5`` is dlib's own template for its five-point predictor (from
``get_face_chip_details``), so a ``dlib5`` face gives the chip dlib's embedder was
trained on. ``centerface5`` and ``blazeface5`` place the other detectors' points
(eye centres, nose tip, mouth) in the same frame; each was fitted by
``benchmarks/fit_face_template.py`` on LFW View 1 training images, by mapping
each face's points into its dlib chip frame (median of 799 faces;
benchmarks/results/faces_template*.json).
"""

from __future__ import annotations

import numpy as np

from lookalike.errors import ValidationError, expect
from lookalike.faces.detect import Face, _import_cv2

TEMPLATES: dict[str, np.ndarray] = {
    # outer/inner corner of the eye on the image right, then on the image left, nose base
    "dlib5": np.array([[0.8596, 0.2135], [0.6461, 0.2290], [0.1206, 0.2137],
                       [0.3341, 0.2291], [0.4901, 0.6278]], dtype=np.float64),
    # eye centre on the image left, on the image right, nose tip, mouth corners left, right
    "centerface5": np.array([[0.2247, 0.2332], [0.7770, 0.2155], [0.4955, 0.5418],
                             [0.2650, 0.7949], [0.7294, 0.7777]], dtype=np.float64),
    # eye on the image left, on the image right, nose tip, mouth centre; the midpoint of
    # the ear tragions moves with every turn of the head, so the fit leaves it out
    "blazeface5": np.array([[0.2232, 0.2215], [0.7818, 0.2252], [0.4922, 0.5361],
                            [0.4919, 0.8290], [np.nan, np.nan]], dtype=np.float64),
}


def chip_points(scheme: str, size: int, padding: float) -> np.ndarray:
    """Where a scheme's five points go in a ``size`` x ``size`` chip with ``padding``."""
    if scheme not in TEMPLATES:
        raise ValidationError(f"expected a landmark scheme among {sorted(TEMPLATES)}, "
                              f"got '{scheme}'")
    result: np.ndarray = (padding + TEMPLATES[scheme]) / (2 * padding + 1) * size
    return result


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 rotation + uniform scale + translation that best maps ``source`` onto
    ``target`` in the least-squares sense (Umeyama 1991, without reflection)."""
    src, dst = np.asarray(source, np.float64), np.asarray(target, np.float64)
    expect(src.shape == dst.shape and src.ndim == 2 and src.shape[1] == 2 and len(src) >= 2,
           f"expected two equal (n, 2) point sets with n >= 2, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1.0
    rotation = u @ np.diag(sign) @ vt
    variance = float(np.mean(np.sum(src_c**2, axis=1)))
    scale = float(np.sum(singular * sign)) / max(variance, 1e-12)
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def align_face(image: np.ndarray, face: Face, size: int = 150,
               padding: float = 0.25) -> np.ndarray:
    """The ``size`` x ``size`` RGB chip of ``face``, aligned to its scheme's template."""
    cv2 = _import_cv2()
    target = chip_points(face.scheme, size, padding)
    used = np.all(np.isfinite(target), axis=1)  # a NaN row is a point the fit leaves out
    matrix = similarity_transform(face.landmarks[used], target[used])
    chip: np.ndarray = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return chip
