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

An embedder declares where it wants those points with a :class:`ChipFrame`: either
dlib's way (the normalised templates scaled into a padded chip), or, for models
trained on another alignment, their own reference points for one scheme (ArcFace's
five points, Deng et al. 2019, in ``centerface5``'s order). The other schemes reach such
a frame through the similarity transform that takes the reference scheme's template onto
the reference points, so every detector's faces align into the frame the model knows.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    """Where a scheme's five points go in a ``size`` x ``size`` chip with ``padding``
    (dlib's chip frame)."""
    result: np.ndarray = (padding + _template(scheme)) / (2 * padding + 1) * size
    return result


def _template(scheme: str) -> np.ndarray:
    if scheme not in TEMPLATES:
        raise ValidationError(f"expected a landmark scheme among {sorted(TEMPLATES)}, "
                              f"got '{scheme}'")
    return TEMPLATES[scheme]


@dataclass(frozen=True)
class ChipFrame:
    """The chip an embedder was trained on: ``size`` pixels square, and where a face's
    points go in it. Without ``reference``, dlib's frame: the scheme's template with
    ``padding`` around it. With ``reference`` (five pixel points in the order of
    ``reference_scheme``), the model's own template: faces of that scheme are fitted to it
    directly, those of other schemes to their template mapped into this frame."""

    size: int
    padding: float = 0.0
    reference: tuple[tuple[float, float], ...] | None = None
    reference_scheme: str = "centerface5"

    def __post_init__(self) -> None:
        expect(isinstance(self.size, int) and self.size >= 8,
               f"expected a chip side of at least 8 pixels, got {self.size!r}")
        expect(self.padding >= 0, f"expected a padding >= 0, got {self.padding!r}")
        if self.reference is not None:
            shape = np.shape(self.reference)
            expect(shape == (5, 2), f"expected five (x, y) reference points, got shape {shape}")
            expect(bool(np.all(np.isfinite(_template(self.reference_scheme)))),
                   f"expected a reference scheme with five fitted points, got "
                   f"'{self.reference_scheme}'")

    def points(self, scheme: str) -> np.ndarray:
        """(5, 2) chip pixels for a ``scheme`` face's points; NaN rows are left out."""
        if self.reference is None:
            return chip_points(scheme, self.size, self.padding)
        reference = np.asarray(self.reference, dtype=np.float64)
        if scheme == self.reference_scheme:
            return reference
        # The templates share one normalised frame, so the map that best places the
        # reference scheme's template on the model's points places every scheme's.
        matrix = similarity_transform(_template(self.reference_scheme), reference)
        mapped: np.ndarray = _template(scheme) @ matrix[:, :2].T + matrix[:, 2]
        return mapped


DLIB_CHIP = ChipFrame(size=150, padding=0.25)


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


def align_face(image: np.ndarray, face: Face, frame: ChipFrame = DLIB_CHIP) -> np.ndarray:
    """The ``frame.size`` square RGB chip of ``face``, its points fitted to ``frame``'s."""
    cv2 = _import_cv2()
    target = frame.points(face.scheme)
    used = np.all(np.isfinite(target), axis=1)  # a NaN row is a point the fit leaves out
    matrix = similarity_transform(face.landmarks[used], target[used])
    size = (frame.size, frame.size)
    chip: np.ndarray = cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return chip
