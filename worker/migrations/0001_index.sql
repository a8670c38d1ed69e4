-- The image index. R2 holds the bytes; these rows say what they are. A row exists only for an
-- image the core accepted (lxd-5.0 verdict); the upload writes all of them in one batch.

-- LXD's architecture table (shared/osarch): the numeric IDs pre-4.3 clients send, and names.
CREATE TABLE architectures (
  id   INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE
);
INSERT INTO architectures (id, name) VALUES
  (1, 'i686'), (2, 'x86_64'), (3, 'armv7l'), (4, 'aarch64'), (5, 'ppc'), (6, 'ppc64'),
  (7, 'ppc64le'), (8, 's390x'), (9, 'mips'), (10, 'mips64'), (11, 'riscv32'), (12, 'riscv64'),
  (13, 'armv6l'), (14, 'armv8l'), (15, 'loongarch64');

CREATE TABLE images (
  fingerprint   TEXT PRIMARY KEY,           -- 64 lowercase hex, from the core
  upload_id     TEXT NOT NULL,              -- the upload that won (R2 keys are uploads/<id>/...)
  format        TEXT NOT NULL CHECK (format IN ('unified', 'split')),
  type          TEXT NOT NULL CHECK (type IN ('container', 'virtual-machine')),
  architecture  TEXT NOT NULL REFERENCES architectures (name),
  size          INTEGER NOT NULL,           -- all files together
  creation_date INTEGER NOT NULL,           -- metadata.yaml, Unix seconds
  expiry_date   INTEGER NOT NULL DEFAULT 0,
  properties    TEXT NOT NULL DEFAULT '{}', -- JSON object, metadata.yaml properties
  templates     TEXT NOT NULL DEFAULT '[]', -- JSON array, the report's templates
  uploaded_at   INTEGER NOT NULL            -- Unix seconds
);
CREATE INDEX images_architecture ON images (architecture);

CREATE TABLE files (
  fingerprint TEXT NOT NULL REFERENCES images (fingerprint) ON DELETE CASCADE,
  role        TEXT NOT NULL CHECK (role IN ('unified', 'metadata', 'rootfs')),
  name        TEXT,
  size        INTEGER NOT NULL,
  sha256      TEXT NOT NULL,
  compression TEXT NOT NULL,
  r2_key      TEXT NOT NULL UNIQUE,
  PRIMARY KEY (fingerprint, role)
);

-- One image per alias and architecture: URL import picks among them by the client's architectures.
CREATE TABLE aliases (
  name         TEXT NOT NULL,
  architecture TEXT NOT NULL REFERENCES architectures (name),
  fingerprint  TEXT NOT NULL REFERENCES images (fingerprint) ON DELETE CASCADE,
  PRIMARY KEY (name, architecture)
);
CREATE INDEX aliases_fingerprint ON aliases (fingerprint);
