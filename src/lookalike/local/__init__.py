"""Local features for exact-object search: SIFT/RootSIFT keypoints, a vocabulary tree
(Nistér & Stewénius, CVPR 2006), inverted files and spatial verification (RANSAC)."""

from lookalike.local.features import FEATURE_KINDS, LocalFeatures, SiftExtractor
from lookalike.local.training import train_vocabulary
from lookalike.local.tree import VocabularyTree
from lookalike.local.vocabularies import generic_info

__all__ = ["FEATURE_KINDS", "LocalFeatures", "SiftExtractor", "VocabularyTree",
           "generic_info", "train_vocabulary"]
