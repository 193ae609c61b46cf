"""Which annotation a text match quotes, and how its reason reads."""

from __future__ import annotations

from lookalike.collection.text_reasons import explained, explaining, words
from lookalike.results import Hit, TextEvidence

CAPTION = ("caption", "Tom Tower", None, "user")
LABEL = ("label", "buildings", 0.91, "imagenet")
WEAK_CAT = ("object", "cat", 0.46, "detector")
SURE_CAT = ("object", "cat", 0.83, "detector")


def test_a_word_of_the_query_beats_the_closest_meaning() -> None:
    # The sentence encoder matched "buildings"; the caption holds the very word.
    assert explaining([LABEL, CAPTION], words("tower"), "buildings") == CAPTION
    assert explaining([LABEL, CAPTION], words("castle"), "buildings") == LABEL
    assert explaining([LABEL], words("castle"), None) is None


def test_people_s_text_before_a_model_s_and_the_surest_label_first() -> None:
    tag = ("tag", "cat", None, "user")
    assert explaining([SURE_CAT, tag], words("Cat!"), None) == tag
    assert explaining([WEAK_CAT, SURE_CAT], words("cat"), None) == SURE_CAT


def test_an_imagenet_label_shows_its_probability() -> None:
    evidence = TextEvidence(matched="tabby", matched_kind="label", matched_score=0.45)
    assert evidence.reason() == "label: tabby (0.45)"


def test_a_search_by_meaning_alone_quotes_what_the_meaning_matched() -> None:
    hits = [Hit(1, 0.03, TextEvidence(semantic=0.4, matched="buildings"))]
    (found,) = explained(hits, {1: [LABEL, CAPTION]}, frozenset())
    assert found.evidence.reason() == "label: buildings (0.91)"


def test_reasons_quote_people_s_text_and_mark_weak_labels() -> None:
    hits = [Hit(1, 0.03, TextEvidence(bm25=2.0, semantic=0.4, matched="buildings")),
            Hit(2, 0.02, TextEvidence(semantic=0.7, matched="cat")),
            Hit(3, 0.01, TextEvidence(semantic=0.7, matched="cat")),
            Hit(4, 0.01, TextEvidence(semantic=0.5, matched="dog"))]
    found = explained(hits, {1: [LABEL, CAPTION], 2: [WEAK_CAT], 3: [SURE_CAT]},
                      words("tower"))
    assert [hit.evidence.reason() for hit in found] == [
        "caption: 'Tom Tower'", "object: cat (weak)", "object: cat", "text: 'dog'"]
    assert found[1].evidence.as_dict()["matched_score"] == 0.46
    assert "matched_score" not in found[0].evidence.as_dict()  # people's text has none
    assert [hit.score for hit in found] == [hit.score for hit in hits]
