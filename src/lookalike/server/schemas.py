"""The typed shapes of the HTTP API (pydantic), published in its OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from lookalike.collection import MAX_ID

# An id: beyond SQLite's 64-bit integers it could name nothing, so it is refused up front.
IdValue = Annotated[int, Field(ge=1, le=MAX_ID)]
# Python's whitespace (what str.split and str.strip take away), as a regular expression
# class that JSON Schema (ECMA 262), pydantic and Python read alike.
SPACE = (r"\t\n\u000b\u000c\r \u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
         r"\u202f\u205f\u3000")
# A text with a word in it; BLANK: one without.
NOT_SPACE = f"[^{SPACE}]"
BLANK = f"^[{SPACE}]*$"
# What the library keeps of a person's text is its words, NUL taken for a space: such a
# text must have a character besides those. Documented here; the library refuses a blank
# text itself, with its own reason.
NOT_BLANK = f"[^\\u0000{SPACE}]"
# The kinds of text a user adds (the library's, documented here; it refuses the others).
USER_KINDS = ("caption", "tag", "category", "keyword", "description")
MAX_TEXT = 10_000
UserText = Annotated[str, Field(max_length=MAX_TEXT, json_schema_extra={"pattern": NOT_BLANK})]


class Health(BaseModel):
    status: str
    images: int
    channels: list[str]


class QueryOut(BaseModel):
    image_id: int | None
    width: int
    height: int
    box: list[float] | None


class ResultOut(BaseModel):
    rank: int
    image_id: int
    path: str
    name: str
    score: float | None = Field(
        description="the confidence that the image is a true match: 0-1, calibrated on "
                    "public judgements, on one scale for every channel; null when no channel "
                    "that found it is calibrated")
    fused_score: float | None = Field(
        default=None, description="what the ranking ordered by (a fusion's score, or the "
                                  "channel's own); the order weighs every clue, the "
                                  "confidence reads the surest one")
    width: int | None
    height: int | None
    thumbnail: str
    reason: str = Field(default="", description="why the image matched, in one line")
    evidence: dict[str, Any] = Field(
        default_factory=dict,
        description="nested by channel: 'channel_scores' (each channel's own score) and, "
                    "under each channel's name, that channel's evidence (local: inliers, "
                    "matches, transform; faces: face_box, similarity, same_person, person; "
                    "regions: region, region_box, label; text: bm25, semantic, matched; "
                    "global: similarity)")


class SearchResponse(BaseModel):
    channel: str
    k: int
    offset: int
    took_ms: float
    query: QueryOut | None
    text: str | None = None
    fusion: str = "auto"
    filters: dict[str, Any] = Field(default_factory=dict)
    query_id: str | None = Field(default=None,
                                 description="with log=true: send it back with POST /clicks "
                                             "when a result is opened")
    results: list[ResultOut]
    partial: bool = Field(default=False, description="a split collection's shards did not "
                                                     "all answer: results are missing")
    missing_shards: dict[str, str] = Field(default_factory=dict,
                                           description="each shard that did not answer, "
                                                       "and why")


class ObjectOut(BaseModel):
    label: str = Field(description="the detector's name for it (COCO-80)")
    score: float
    box: list[float] = Field(description="x0, y0, x1, y1 in the image's pixels: send it as "
                                         "POST /search's box to search by the object")


class ObjectsResponse(BaseModel):
    width: int
    height: int
    objects: list[ObjectOut] = Field(description="surest first; empty without a regions "
                                                 "channel")


class ImageOut(BaseModel):
    id: int
    path: str
    name: str
    width: int | None
    height: int | None
    thumbnail: str


class ImageList(BaseModel):
    total: int
    images: list[ImageOut]


class FaceOut(BaseModel):
    face_id: int
    box: list[float]
    score: float
    person: dict[str, Any] | None


class AnnotationOut(BaseModel):
    id: int
    kind: str
    text: str
    score: float | None
    source: str


class ImageInfo(ImageOut):
    faces: list[FaceOut]
    annotations: list[AnnotationOut] = Field(default_factory=list)


class AnnotationsIn(BaseModel):
    """Replaces the user's texts of each kind given; a kind left out is kept."""

    # A misspelled kind ("tag") would otherwise change nothing and answer 200.
    model_config = ConfigDict(extra="forbid")

    captions: list[UserText] | None = Field(default=None, max_length=100)
    tags: list[UserText] | None = Field(default=None, max_length=1000)
    categories: list[UserText] | None = Field(default=None, max_length=100)


class AnnotationIn(BaseModel):
    kind: str = Field(max_length=20, json_schema_extra={"enum": list(USER_KINDS)})
    text: UserText


class ClickIn(BaseModel):
    query_id: str = Field(min_length=1, max_length=64)
    image_id: IdValue


class Category(BaseModel):
    name: str
    images: int


class Added(BaseModel):
    image_id: int
    path: str
    report: dict[str, Any]


class FaceRefOut(BaseModel):
    face_id: int
    image_id: int
    path: str
    box: list[float]
    confirmed: bool


class PersonOut(BaseModel):
    id: int
    name: str | None
    faces: int
    cover: FaceRefOut | None


class PeopleList(BaseModel):
    people: list[PersonOut]
    unassigned_faces: int


class PersonFaces(BaseModel):
    person: PersonOut
    faces: list[FaceRefOut]


class NameIn(BaseModel):
    """The name to give (null clears it): required, so that a misspelled field does not
    clear a name."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(max_length=200)


class MergeIn(BaseModel):
    people: list[IdValue] = Field(min_length=2, max_length=1000,
                                  description="at least two different people; the first "
                                              "keeps the faces of the others")


class FacesIn(BaseModel):
    faces: list[IdValue] = Field(min_length=1, max_length=10_000)


class UpdateIn(BaseModel):
    reset: StrictBool = False  # {"reset": 0} is refused, not taken as false
