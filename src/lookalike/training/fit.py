"""Fitting an embedding head on the frozen network's features (FaceNet's idea, on a CPU).

The head maps the network's L2-normalised features to a smaller L2-normalised embedding:
one linear layer, trained with a loss from pytorch-metric-learning:

- ``triplet``: a triplet margin loss on the triplets that online semi-hard mining picks in
  each P x K batch (FaceNet, Schroff et al., CVPR 2015);
- ``normsoftmax``: a normalised softmax over class proxies (Zhai & Wu, BMVC 2019);
- ``arcface``: the additive angular margin of ArcFace (Deng et al., CVPR 2019).

A share of the classes is held out: Recall@1 on them, every epoch, picks the epoch kept
(early stopping), so the figure measures classes the head never saw. Seeded: the same
data, settings and seed give the same head.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lookalike.errors import MissingDependencyError, expect
from lookalike.eval.class_metrics import class_retrieval_scores

LOSSES = ("triplet", "normsoftmax", "arcface")
EpochReport = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``validation`` is the share of the classes held out to pick the epoch
    kept; ``classes_per_batch`` x ``per_class`` images make a batch (P x K)."""

    base: str = "efficientnet-lite0"
    loss: str = "triplet"
    dim: int = 128
    epochs: int = 40
    patience: int = 8
    classes_per_batch: int = 8
    per_class: int = 4
    lr: float = 1e-3
    validation: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        expect(self.loss in LOSSES, f"expected a loss among {list(LOSSES)}, got {self.loss!r}")
        for name in ("dim", "epochs", "patience", "classes_per_batch", "per_class"):
            value = getattr(self, name)
            expect(isinstance(value, int) and not isinstance(value, bool) and value >= 1,
                   f"expected {name} to be a whole number >= 1, got {value!r}")
        expect(self.per_class >= 2, f"expected per_class >= 2, got {self.per_class}")
        expect(isinstance(self.lr, float | int) and self.lr > 0,
               f"expected a positive learning rate, got {self.lr!r}")
        expect(isinstance(self.validation, float | int) and 0 <= self.validation < 1,
               f"expected a validation share in [0, 1), got {self.validation!r}")
        expect(isinstance(self.seed, int) and self.seed >= 0, f"expected a seed >= 0, got "
                                                              f"{self.seed!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitResult:
    """The head (a torch module), its epochs, and the held-out figures of the epoch kept
    and of the base network's own features."""

    head: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    validation: dict[str, float] = field(default_factory=dict)
    base_validation: dict[str, float] = field(default_factory=dict)
    validation_classes: list[str] = field(default_factory=list)


def fit_head(vectors: np.ndarray, labels: tuple[str, ...], config: TrainConfig,
             on_epoch: EpochReport | None = None) -> FitResult:
    """Train the head on ``vectors`` (the base features) labelled ``labels``."""
    expect(config.dim <= vectors.shape[1],
           f"expected an embedding of at most the base network's {vectors.shape[1]} "
           f"dimensions, got dim={config.dim}")
    torch, losses, miners = _libraries()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train, held_out = _split(labels, config.validation, rng)
    names = sorted({labels[i] for i in train})
    codes = np.array([names.index(labels[i]) for i in train])
    head = _head(torch, _principal_directions(vectors[train], config.dim))
    loss = _loss(losses, config.loss, len(names), config.dim)
    miner = (miners.TripletMarginMiner(margin=0.1, type_of_triplets="semihard")
             if config.loss == "triplet" else None)
    optimiser = torch.optim.Adam([*head.parameters(), *loss.parameters()], lr=config.lr)
    features = torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32))
    held = [labels[i] for i in held_out]
    result = FitResult(head=head, validation_classes=sorted(set(held)))
    if len(held_out):
        result.base_validation = class_retrieval_scores(vectors[held_out], held)
    best: tuple[float, float] = (-1.0, -1.0)
    best_state = _snapshot(head)
    if len(held_out):  # epoch 0, the projection it starts from, competes too
        result.validation = _scores(torch, head, features[held_out], held)
        best = (result.validation["recall_at_1"], result.validation["map_at_r"])
    stale = 0
    for epoch in range(1, config.epochs + 1):
        head.train()
        seen = []
        for batch in _batches(codes, config, rng):
            embedded = head(features[train[batch]])
            targets = torch.from_numpy(codes[batch])
            value = (loss(embedded, targets, miner(embedded, targets)) if miner is not None
                     else loss(embedded, targets))
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
            seen.append(float(value.detach()))
        row: dict[str, Any] = {"epoch": epoch, "loss": float(np.mean(seen)) if seen else 0.0}
        if len(held_out):
            scores = _scores(torch, head, features[held_out], held)
            row.update(recall_at_1=scores["recall_at_1"], map_at_r=scores["map_at_r"])
            score = (scores["recall_at_1"], scores["map_at_r"])
            stale = 0 if score > best else stale + 1
            if score > best:
                best, result.validation, result.best_epoch = score, scores, epoch
                best_state = _snapshot(head)
        else:
            result.best_epoch, best_state = epoch, _snapshot(head)
        result.history.append(row)
        if on_epoch is not None:
            on_epoch(row)
        if stale >= config.patience:
            break
    head.load_state_dict(best_state)
    head.eval()
    return result


def _snapshot(head: Any) -> dict[str, Any]:
    return {name: value.clone() for name, value in head.state_dict().items()}


def _scores(torch: Any, head: Any, features: Any, labels: list[str]) -> dict[str, float]:
    """Recall@K and MAP@R of the head's embedding of held-out images."""
    with torch.no_grad():
        head.eval()
        return class_retrieval_scores(head(features).numpy(), labels)


def _split(labels: tuple[str, ...], share: float, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
    """Rows to train on and rows held out, whole classes at a time (classes of one image
    train only); none held out when too few classes would be left either side."""
    counts = Counter(labels)
    eligible = sorted(label for label, count in counts.items() if count > 1)
    held_count = round(share * len(eligible))
    rows = np.arange(len(labels))
    if share == 0 or held_count < 2 or len(eligible) - held_count < 2:
        return rows, np.empty(0, dtype=np.int64)
    held = set(rng.choice(np.array(eligible, dtype=object), size=held_count, replace=False))
    mask = np.array([label in held for label in labels])
    return rows[~mask], rows[mask]


def _batches(codes: np.ndarray, config: TrainConfig, rng: np.random.Generator
             ) -> list[np.ndarray]:
    """One epoch of P x K batches (positions into ``codes``): P classes, K images of each
    (drawn again when a class has fewer), about as many images as there are."""
    by_class = [np.flatnonzero(codes == c) for c in range(int(codes.max()) + 1)]
    usable = [c for c, rows in enumerate(by_class) if len(rows) > 0]
    per_batch = min(config.classes_per_batch, len(usable))
    batches = []
    for _ in range(max(1, len(codes) // (per_batch * config.per_class))):
        chosen = rng.choice(usable, size=per_batch, replace=False)
        batches.append(np.concatenate([
            rng.choice(by_class[c], size=config.per_class,
                       replace=len(by_class[c]) < config.per_class) for c in chosen]))
    return batches


def _principal_directions(vectors: np.ndarray, dim: int) -> np.ndarray:
    """The ``dim`` directions that keep most of the features (uncentred, so that at the full
    dimension they are a rotation, which keeps every cosine): where the head starts."""
    normed = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    _, _, directions = np.linalg.svd(normed, full_matrices=True)
    return np.asarray(directions[:dim], dtype=np.float32)


def _head(torch: Any, start: np.ndarray) -> Any:
    dim, dim_in = start.shape

    class Head(torch.nn.Module):  # type: ignore[misc]
        """normalise(W normalise(x) + b): the embedding is compared by cosine. W starts as
        the features' principal directions, so training starts from the base network's
        own geometry rather than from noise."""

        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(dim_in, dim)
            with torch.no_grad():
                self.linear.weight.copy_(torch.from_numpy(start))
                self.linear.bias.zero_()

        def forward(self, x: Any) -> Any:
            x = torch.nn.functional.normalize(x, dim=1)
            return torch.nn.functional.normalize(self.linear(x), dim=1)

    return Head()


def _loss(losses: Any, name: str, classes: int, dim: int) -> Any:
    if name == "triplet":
        return losses.TripletMarginLoss(margin=0.1)
    if name == "normsoftmax":
        return losses.NormalizedSoftmaxLoss(num_classes=classes, embedding_size=dim,
                                            temperature=0.05)
    return losses.ArcFaceLoss(num_classes=classes, embedding_size=dim, margin=28.6, scale=64)


def _libraries() -> tuple[Any, Any, Any]:
    try:
        import torch
        from pytorch_metric_learning import losses, miners
    except ImportError as error:
        raise MissingDependencyError(error.name or "torch", "lookalike train", "train") \
            from error
    return torch, losses, miners
