"""Benchmark data sets: which images form the database, which are queries, and the truth.

Modelled on ``faiss.contrib.datasets``: a data set is a database, a list of
queries and their ground truth. Three kinds exist:

* :class:`RetrievalDataset` — search by example (UKBench, Oxford Buildings, ORL
  leave-one-out identification, a user's own folder); scored with
  :mod:`lookalike.eval.metrics` (N-S score, mAP, Recall@K, top-1).
* :class:`VerificationDataset` — pairs of images, same or different identity
  (LFW); scored with :func:`lookalike.eval.metrics.verification_accuracy_kfold`.
* :class:`ClusteringDataset` — images with an identity each, to group without the
  labels (LFW people).
* :class:`ClassesDataset` — images with a class each, every one a query against the
  others (a folder per class): the metric-learning protocol, scored with
  :func:`lookalike.eval.class_metrics.class_retrieval_scores`.

Loaders only list paths and parse ground-truth files; they never decode an image.
Paths are built from the folder the caller passes (relative stays relative).
Every loader raises :class:`DatasetError` (a :class:`~lookalike.errors.LookalikeError`)
that names the missing or malformed file and says what was expected.

Loaders are registered by name in :data:`DATASETS`, each with a :class:`DatasetSpec` of
the inputs it takes; see :func:`available_datasets` and :func:`load_dataset`.

Layout: the data classes in ``_types``, the registry in ``_registry``, shared file checks
in ``_files`` (private, so that the loader modules can import them without importing this
package's ``__init__`` back), and one module per family: ``ukbench``, ``oxford``,
``custom``, ``classes`` and ``faces`` (ORL, LFW pairs, LFW people). Importing this package
imports the families, which registers them.
"""

from __future__ import annotations

from lookalike.eval.datasets._files import IMAGE_EXTENSIONS
from lookalike.eval.datasets._registry import (
    DATASETS,
    INPUTS,
    OPTIONS,
    DatasetSpec,
    available_datasets,
    load_dataset,
    register_dataset,
)
from lookalike.eval.datasets._types import (
    ClassesDataset,
    ClusteringDataset,
    Dataset,
    DatasetError,
    RetrievalDataset,
    RetrievalQuery,
    VerificationDataset,
    VerificationPair,
)
from lookalike.eval.datasets.classes import load_classes
from lookalike.eval.datasets.custom import load_custom
from lookalike.eval.datasets.faces import load_lfw_pairs, load_lfw_people, load_orl
from lookalike.eval.datasets.oxford import load_oxford
from lookalike.eval.datasets.ukbench import load_ukbench

__all__ = [
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "INPUTS",
    "OPTIONS",
    "ClassesDataset",
    "ClusteringDataset",
    "Dataset",
    "DatasetError",
    "DatasetSpec",
    "RetrievalDataset",
    "RetrievalQuery",
    "VerificationDataset",
    "VerificationPair",
    "available_datasets",
    "load_classes",
    "load_custom",
    "load_dataset",
    "load_lfw_pairs",
    "load_lfw_people",
    "load_orl",
    "load_oxford",
    "load_ukbench",
    "register_dataset",
]
