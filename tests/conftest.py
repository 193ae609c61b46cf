"""Shared fixtures: small synthetic images made on the fly, and a cheap extractor."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from lookalike.collection import GlobalChannelConfig

# Tests never write model exports or eval collections into the user's cache.
os.environ.setdefault("LOOKALIKE_CACHE",
                      str(Path(__file__).parents[1] / ".pytest_cache" / "lookalike"))

THUMBNAIL = GlobalChannelConfig(extractor="thumbnail")


def pattern(seed: int, size: tuple[int, int] = (96, 72)) -> np.ndarray:
    """A smooth random colour image: distinct per seed, stable under small changes."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC))


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB or grey array as PNG file bytes, as an upload carries them."""
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG")
    return out.getvalue()


def write_images(folder: Path, seeds: range | list[int], fmt: str = "png") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        path = folder / f"img{seed:03d}.{fmt}"
        Image.fromarray(pattern(seed)).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    write_images(folder, range(12))
    return folder


DATA = Path(os.environ.get("LOOKALIKE_DATA",
                          Path(__file__).resolve().parents[2] / "shared" / "data"))


@contextmanager
def serving(app: Any, **options: Any) -> Iterator[int]:
    """``app`` served as `lookalike serve` serves it (``server_config`` with ``options``),
    in a thread on a free loopback port; yields the port, and stops the server after."""
    import threading
    import time

    import uvicorn

    from lookalike.server import server_config

    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=0, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "the server did not start within 20 s"
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut photo (one face), RGB."""
    return np.asarray(pytest.importorskip("skimage.data").astronaut())


@pytest.fixture(scope="module")
def cameraman() -> np.ndarray:
    """scikit-image's cameraman (one face), grey made RGB."""
    return np.stack([pytest.importorskip("skimage.data").camera()] * 3, axis=-1)
