"""Annotations: text that describes an image (captions, keywords, categories), read from the
image file itself or from a sidecar file. Groundwork for the text channel (issue 6)."""

from lookalike.annotations.embedded import EmbeddedText, read_embedded_text
from lookalike.annotations.sidecar import Annotation, load_sidecar

__all__ = ["Annotation", "EmbeddedText", "load_sidecar", "read_embedded_text"]
