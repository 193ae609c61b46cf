"""Fitting an embedding head on the frozen network's features (FaceNet's idea, on a CPU).

The head maps the network's L2-normalised features to a smaller L2-normalised embedding:
one linear layer, trained with a loss from pytorch-metric-learning:

- ``triplet``: a triplet margin loss on the triplets that online semi-hard mining picks in
  each P x K batch (FaceNet, Schroff et al., CVPR 2015);
- ``normsoftmax``: a normalised softmax over class proxies (Zhai & Wu, BMVC 2019);
- ``arcface``: the additive angular margin of ArcFace (Deng et al., CVPR 2019).

A share of the classes is held out: Recall@1 on them, every epoch, picks the epoch kept
(early stopping), so the figure measures classes the head never saw. With too few classes
for that, a share of each class's images is held out instead (the figure then measures new
images of the trained classes). Seeded: the same
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
    kept; ``classes_per_batch`` x ``per_class`` images make a batch (P x K);
    ``tune_blocks`` of the base network's last blocks train with the head (0: the head
    alone, over frozen features)."""

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
    tune_blocks: int = 0  # the base network's last blocks trained with the head


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
        expect(isinstance(self.tune_blocks, int) and self.tune_blocks >= 0,
               f"expected a number of blocks to fine-tune >= 0, got {self.tune_blocks!r}")

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
    held_out: str = "none"  # what the validation holds out: classes, images or none


def fit_head(vectors: np.ndarray, labels: tuple[str, ...], config: TrainConfig,
             on_epoch: EpochReport | None = None, *, trunk: Any = None,
             inputs: np.ndarray | None = None) -> FitResult:
    """Train the head on ``vectors`` (the base features) labelled ``labels``; with a
    ``trunk`` (a torch module from ``inputs`` to features like ``vectors``), train the
    trunk and the head together on ``inputs``, the trunk at a tenth of the rate."""
    expect(config.dim <= vectors.shape[1],
           f"expected an embedding of at most the base network's {vectors.shape[1]} "
           f"dimensions, got dim={config.dim}")
    torch, losses, miners = _libraries()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train, held_out, held_how = _split(labels, config.validation, rng)
    names = sorted({labels[i] for i in train})
    codes = np.array([names.index(labels[i]) for i in train])
    head = _head(torch, _principal_directions(vectors[train], config.dim))
    loss = _loss(losses, config.loss, len(names), config.dim)
    miner = (miners.TripletMarginMiner(margin=0.1, type_of_triplets="semihard")
             if config.loss == "triplet" else None)
    head, optimiser = _with_optimiser(torch, head, loss, trunk, config.lr)
    features = torch.from_numpy(np.ascontiguousarray(
        vectors if inputs is None else inputs, dtype=np.float32))
    measured, asking = _measured(held_out, held_how, len(labels))
    held = [labels[i] for i in measured]
    result = FitResult(head=head, held_out=held_how, validation_classes=sorted(
        {labels[i] for i in held_out}))
    if len(held_out):
        result.base_validation = class_retrieval_scores(vectors[measured], held,
                                                        queries=asking)
    best: tuple[float, float] = (-1.0, -1.0)
    best_state = _snapshot(head)
    if len(held_out):  # epoch 0, the projection it starts from, competes too
        result.validation = _scores(torch, head, features[measured], held, asking)
        best = (result.validation["recall_at_1"], result.validation["map_at_r"])
    stale = 0
    for epoch in range(1, config.epochs + 1):
        row: dict[str, Any] = {"epoch": epoch, "loss": _epoch(
            torch, head, (loss, miner, optimiser), features[train], codes, config, rng)}
        if len(held_out):
            scores = _scores(torch, head, features[measured], held, asking)
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


def _with_optimiser(torch: Any, head: Any, loss: Any, trunk: Any, lr: float
                    ) -> tuple[Any, Any]:
    """The model to train (the trunk, if any, then the head) and its optimiser: the trunk's
    pretrained weights move at a tenth of the head's rate."""
    groups = [{"params": [*head.parameters(), *loss.parameters()], "lr": lr}]
    if trunk is None:
        return head, torch.optim.Adam(groups)
    groups.append({"params": [p for p in trunk.parameters() if p.requires_grad], "lr": lr / 10})
    return torch.nn.Sequential(trunk, head), torch.optim.Adam(groups)


def _epoch(torch: Any, head: Any, training: tuple[Any, Any, Any], features: Any,
           codes: np.ndarray, config: TrainConfig, rng: np.random.Generator) -> float:
    """One epoch of P x K batches; the mean loss."""
    loss, miner, optimiser = training
    head.train()
    seen = []
    for batch in _batches(codes, config, rng):
        embedded = head(features[batch])
        targets = torch.from_numpy(codes[batch])
        value = (loss(embedded, targets, miner(embedded, targets)) if miner is not None
                 else loss(embedded, targets))
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        seen.append(float(value.detach()))
    return float(np.mean(seen)) if seen else 0.0


def _measured(held_out: np.ndarray, how: str, rows: int
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows validation embeds, and those of them that query (None: all): held-out
    classes query each other; held-out images query every image."""
    if how == "classes":
        return held_out, None
    everything = np.arange(rows)
    return everything, np.searchsorted(everything, held_out)


def _snapshot(head: Any) -> dict[str, Any]:
    return {name: value.clone() for name, value in head.state_dict().items()}


def _scores(torch: Any, head: Any, features: Any, labels: list[str],
            asking: np.ndarray | None) -> dict[str, float]:
    """Recall@K and MAP@R of the head's embedding of held-out images."""
    with torch.no_grad():
        head.eval()
        return class_retrieval_scores(head(features).numpy(), labels, queries=asking)


def _split(labels: tuple[str, ...], share: float, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray, str]:
    """Rows to train on, rows held out, and how: whole classes at a time ("classes", so
    that the figure is of classes the head never saw); with too few classes for that,
    ``share`` of the images of each class of three or more ("images"); "none" when even
    that leaves nothing to measure."""
    counts = Counter(labels)
    eligible = sorted(label for label, count in counts.items() if count > 1)
    held_count = round(share * len(eligible))
    rows = np.arange(len(labels))
    if share == 0:
        return rows, np.empty(0, dtype=np.int64), "none"
    if held_count >= 2 and len(eligible) - held_count >= 2:
        held = set(rng.choice(np.array(eligible, dtype=object), size=held_count,
                              replace=False))
        mask = np.array([label in held for label in labels])
        return rows[~mask], rows[mask], "classes"
    mask = np.zeros(len(labels), dtype=bool)
    for label, count in counts.items():
        if count >= 3:  # keeps two to train on and one to query another by
            mine = np.flatnonzero(np.array(labels) == label)
            mask[rng.choice(mine, size=max(1, round(share * count)), replace=False)] = True
    if sum(counts[label] >= 3 for label in counts) < 2:
        return rows, np.empty(0, dtype=np.int64), "none"
    return rows[~mask], rows[mask], "images"


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
