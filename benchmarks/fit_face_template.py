"""Fit a detector's alignment template (lookalike.faces.align.TEMPLATES).

dlib's embedder was trained on chips aligned by its own five-point predictor.
CenterFace's and BlazeFace's five points are other points (eye centres, nose
tip, mouth), so they need their own template in the same normalised face frame.
For each LFW View 1 *training* image where both the detector and dlib's find the
central face, this maps the detector's points into the dlib chip frame (the
similarity that takes the dlib points onto dlib's template) and takes the
per-coordinate median.

    python benchmarks/fit_face_template.py [--detector centerface|blazeface]
                                           [--data ../shared/data] [--images 800]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import DEFAULT_DATA, save

from lookalike.eval.datasets import load_lfw_pairs
from lookalike.faces import TEMPLATES, DetectorConfig, central_face, make_detector
from lookalike.faces.align import similarity_transform
from lookalike.images import load_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=800)
    parser.add_argument("--detector", choices=["centerface", "blazeface"], default="centerface")
    args = parser.parse_args()
    lfw = args.data / "lfw"
    images = load_lfw_pairs(lfw, "pairsDevTrain.txt").images[: args.images]
    loose = DetectorConfig(min_score=0.3)
    detector, hog = make_detector(args.detector, loose), make_detector("dlib-hog", loose)
    mapped = []
    for path in images:
        image = load_image(path)
        height, width = image.shape[:2]
        found_cf, found_hog = detector.detect(image), hog.detect(image)
        if not found_cf or not found_hog:
            continue
        cf = found_cf[central_face(found_cf, width, height)]
        dl = found_hog[central_face(found_hog, width, height)]
        to_frame = similarity_transform(dl.landmarks, TEMPLATES["dlib5"])
        mapped.append(cf.landmarks @ to_frame[:, :2].T + to_frame[:, 2])
    points = np.array(mapped)
    template = np.median(points, axis=0)
    spread = np.std(points, axis=0)
    print(f"{len(points)} of {len(images)} images had both detections")
    print(f"{detector.scheme} template:", np.round(template, 4).tolist())
    print("per-coordinate std:", np.round(spread, 4).tolist())
    save(f"faces_template_{args.detector}", {"images": len(images), "min_score": 0.3},
         [{"used": len(points), "template": np.round(template, 4).tolist(),
           "std": np.round(spread, 4).tolist()}])


if __name__ == "__main__":
    main()
