"""The catalog's tables, in one place.

Images, their vectors (or a channel's packed records) and their annotations; which
channels each image has been through (``image_channels``: a channel may store no rows for
an image, a photo without faces, yet be done with it); people
(faces grouped by the user and by clustering) in ``people``, ``face_people`` and
``face_rejections``, and the detections the user marked "not a face" in ``face_hidden``
(a table older catalogs gain when opened: older versions simply ignore it), where a face
is a vector id, so removing or re-embedding an image drops its faces' assignments with it
(ON DELETE CASCADE); the search and click log.
Triggers log every change to an image's text in ``annotation_log``, in the same
transaction, so the full-text index (a derived cache) catches up from its last revision.
A vector's id is never reused (AUTOINCREMENT), so derived indexes follow the catalog by
comparing id sets.
"""

#: 3: the tables are those of 2, but the regions channel may store its rows projected in fewer
#: dimensions (collection/regions_projection.py); a Lookalike that does not know that would
#: add whole rows beside them, so it must refuse the catalog, which a newer version makes it do.
SCHEMA_VERSION = 3
#: A catalog of schema 1 has no channel marks yet: its collection fills them on open (every
#: indexed image then went through every channel of the manifest).
MARKS_PENDING = "channel_marks_pending"

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT,
    size INTEGER,
    mtime_ns INTEGER,
    width INTEGER,
    height INTEGER,
    status TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
    error TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS vectors_by_image ON vectors(image_id);
CREATE TABLE IF NOT EXISTS image_channels (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    PRIMARY KEY (image_id, channel)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_by_channel ON vectors(channel, id);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('catalog_id', lower(hex(randomblob(16))));
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS face_people (
    face_id INTEGER PRIMARY KEY REFERENCES vectors(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    confirmed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS face_people_by_person ON face_people(person_id);
CREATE TABLE IF NOT EXISTS face_rejections (
    face_id INTEGER NOT NULL REFERENCES vectors(id) ON DELETE CASCADE,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    PRIMARY KEY (face_id, person_id)
);
CREATE TABLE IF NOT EXISTS face_hidden (
    face_id INTEGER PRIMARY KEY REFERENCES vectors(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    score REAL,
    source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_by_image ON annotations(image_id, source);
CREATE INDEX IF NOT EXISTS annotations_by_text ON annotations(text);
CREATE TABLE IF NOT EXISTS annotation_log (
    revision INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS annotation_added AFTER INSERT ON annotations
    BEGIN INSERT INTO annotation_log (image_id) VALUES (NEW.image_id); END;
CREATE TRIGGER IF NOT EXISTS annotation_removed AFTER DELETE ON annotations
    BEGIN INSERT INTO annotation_log (image_id) VALUES (OLD.image_id); END;
CREATE TRIGGER IF NOT EXISTS annotation_changed AFTER UPDATE ON annotations
    BEGIN INSERT INTO annotation_log (image_id) VALUES (NEW.image_id); END;
CREATE TRIGGER IF NOT EXISTS image_removed AFTER DELETE ON images
    BEGIN INSERT INTO annotation_log (image_id) VALUES (OLD.id); END;
CREATE TABLE IF NOT EXISTS search_log (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    rankings TEXT NOT NULL,
    shown TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS clicks (
    query_id TEXT NOT NULL REFERENCES search_log(id) ON DELETE CASCADE,
    image_id INTEGER NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (query_id, image_id)
);
"""


# Where annotations come from: people ("user", "sidecar"), the file itself ("embedded"), or
# a model that looked at the pixels. The last two are redone whenever the file changes.
MODEL_SOURCES = ("imagenet", "detector")
FILE_SOURCES = ("embedded", *MODEL_SOURCES)
