"""Which of an image's texts a text match stands on, so its reason can quote it.

BM25 scores an image's texts all together and the sentence encoder finds the closest text,
which may be an automatic label while a caption holds the query's very word ("tower"
matching the caption "Tom Tower" was shown as "text: buildings"). The reason quotes one
annotation: one that holds a word of the query when there is one (people's text before a
model's, then the most words shared, then the model's surest), else the text the meaning
matched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from lookalike.results import Hit, TextEvidence
from lookalike.storage import MODEL_SOURCES

#: One annotation as the text channel reads it: kind, text, score, source (a model's
#: labels carry the model's probability).
Annotation = tuple[str, str, float | None, str]

_WORD = re.compile(r"\w+")


def words(text: str) -> frozenset[str]:
    """The words of a text as the full-text index splits them (letters and digits, any
    case)."""
    return frozenset(_WORD.findall(text.casefold()))


def explaining(annotations: Sequence[Annotation], query_words: frozenset[str],
               matched: str | None) -> Annotation | None:
    """The annotation that best explains the match (see the module's docstring)."""
    sharing = [row for row in annotations if words(row[1]) & query_words]
    if sharing:
        return max(sharing, key=lambda row: (not automatic(row),
                                             len(words(row[1]) & query_words),
                                             row[2] or 0.0, row[1]))
    same = [row for row in annotations if matched is not None and row[1] == matched]
    return max(same, key=lambda row: (not automatic(row), row[2] or 0.0)) if same else None


def automatic(row: Annotation) -> bool:
    """Whether a model wrote this annotation (an ImageNet label, a detected object)."""
    return row[3] in MODEL_SOURCES


def explained(hits: Sequence[Hit], annotations: Mapping[int, Sequence[Annotation]],
              query_words: frozenset[str]) -> list[Hit]:
    """The hits with the quoted annotation's text, kind and model score in their evidence."""
    found = []
    for hit in hits:
        evidence = hit.evidence
        if isinstance(evidence, TextEvidence):
            row = explaining(annotations.get(hit.image_id, ()), query_words, evidence.matched)
            if row is not None:
                evidence = replace(evidence, matched=row[1], matched_kind=row[0],
                                   matched_score=round(float(row[2]), 4)
                                   if automatic(row) and row[2] is not None else None)
        found.append(Hit(hit.image_id, hit.score, evidence))
    return found
