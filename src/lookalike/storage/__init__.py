"""Storage: the catalog's schema and its repositories, the only place with SQL."""

from lookalike.storage.annotations import AnnotationRecord, AnnotationRepository
from lookalike.storage.catalog import Catalog
from lookalike.storage.database import Database, Transaction
from lookalike.storage.feedback import FeedbackRepository
from lookalike.storage.images import ImageConditions, ImageRecord, ImageRepository, folder_range
from lookalike.storage.lock import DEFAULT_WAIT, WriteLock
from lookalike.storage.people import PeopleRepository
from lookalike.storage.schema import FILE_SOURCES, MARKS_PENDING, MODEL_SOURCES, SCHEMA_VERSION
from lookalike.storage.vectors import VectorRepository

__all__ = [
    "DEFAULT_WAIT",
    "FILE_SOURCES",
    "MARKS_PENDING",
    "MODEL_SOURCES",
    "SCHEMA_VERSION",
    "AnnotationRecord",
    "AnnotationRepository",
    "Catalog",
    "Database",
    "FeedbackRepository",
    "ImageConditions",
    "ImageRecord",
    "ImageRepository",
    "PeopleRepository",
    "Transaction",
    "VectorRepository",
    "WriteLock",
    "folder_range",
]
