"""A folder per class (``DIR/<class>/<image>``): the metric-learning protocol's data set.

This is how CUB-200-2011, Cars196 and Stanford Online Products are laid out once their
images are sorted by class, and how a shop or a museum keeps labelled photos. Training on
some classes and evaluating on a folder of other classes is the zero-shot protocol of
those benchmarks.
"""

from __future__ import annotations

from pathlib import Path

from lookalike.eval.datasets._files import list_images, require_dir
from lookalike.eval.datasets._registry import register_dataset
from lookalike.eval.datasets._types import ClassesDataset, DatasetError, PathLike


@register_dataset("classes", inputs=("data",))
def load_classes(data_dir: PathLike) -> ClassesDataset:
    """Every image under each sub-folder of ``data_dir``, labelled with the folder's name
    (images in nested folders belong to the top one). Hidden folders are skipped."""
    root = Path(data_dir)
    require_dir(root, "a folder with one sub-folder of images per class")
    images: list[Path] = []
    labels: list[str] = []
    for folder in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        found = list_images(folder)
        images.extend(found)
        labels.extend([folder.name] * len(found))
    counts = {label: labels.count(label) for label in set(labels)}
    if len(counts) < 2 or not any(count > 1 for count in counts.values()):
        # One class alone would score a perfect 1.0 whatever the model: refused.
        raise DatasetError(f"{root}: expected sub-folders of images, one per class, at least "
                           f"two classes and one with two images or more; found "
                           f"{len(images)} images in {len(counts)} classes "
                           f"({', '.join(sorted(counts)[:3]) or 'none'})")
    return ClassesDataset(name="classes", images=tuple(images), labels=tuple(labels))
