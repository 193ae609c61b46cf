"""Exceptions raised by Lookalike.

Every error that reaches a user says what was expected and what was found, and
names the file it is about when there is one.
"""

from __future__ import annotations


class LookalikeError(Exception):
    """Base class of every error Lookalike raises on purpose."""


class ImageError(LookalikeError):
    """An image could not be read: missing, unreadable, corrupt, truncated or too large."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple[type[ImageError], tuple[str, str]]:
        # Pickled as its two parts, so that it crosses processes (a Ray shard's answer).
        return type(self), (self.source, self.reason)


class ManifestMismatchError(LookalikeError):
    """A collection, index or model file was built with other settings than the ones asked for."""


class CollectionError(LookalikeError):
    """A collection directory is missing, damaged or used the wrong way."""


class ShardsUnavailableError(CollectionError):
    """Shards of a split collection did not answer what needs every one of them."""


class MissingDependencyError(LookalikeError):
    """An optional dependency needed by the requested feature is not installed."""

    def __init__(
        self, package: str, feature: str, extra: str, *, command: str | None = None
    ) -> None:
        install = command or f"pip install 'lookalike[{extra}]'"
        super().__init__(
            f"{feature} needs the package '{package}', which is not installed; "
            f"install it with: {install}"
        )
        self.package = package
        self._parts = (package, feature, extra, command)

    def __reduce__(self) -> tuple[object, ...]:
        package, feature, extra, command = self._parts
        return _missing_dependency, (package, feature, extra, command)


def _missing_dependency(package: str, feature: str, extra: str,
                        command: str | None) -> MissingDependencyError:
    return MissingDependencyError(package, feature, extra, command=command)


class ValidationError(LookalikeError, ValueError):
    """An argument had the wrong type, shape or value."""


class NotFoundError(ValidationError):
    """An id (of a person, a face, an image) that does not exist."""


class CollectionBusyError(CollectionError):
    """Another process is writing to the collection (indexing, editing) and holds its lock."""


class NothingToSearchError(LookalikeError):
    """A query has nothing a channel searches by (no face for the faces channel); a fused
    search goes on with the other channels."""


def expect(condition: bool, message: str) -> None:
    """Raise :class:`ValidationError` with ``message`` unless ``condition`` holds.

    Used at API boundaries instead of ``assert``, which vanishes under ``python -O``
    and gives no message.
    """
    if not condition:
        raise ValidationError(message)
