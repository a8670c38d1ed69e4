-- Upload sessions (POST /api/uploads, src/sessions.js): an image sent in parts, each file an R2
-- multipart upload. The R2 binding cannot list the parts of a multipart upload, so the parts
-- stored so far (with the ETags R2 needs to complete it) are kept here. The index tables of
-- 0001 are written only when the core accepts the assembled image.

CREATE TABLE upload_sessions (
  id             TEXT PRIMARY KEY,          -- a UUID; R2 keys are uploads/<id>/<role>
  status         TEXT NOT NULL CHECK (status IN ('open', 'validating', 'complete', 'rejected', 'aborted')),
  fingerprint    TEXT,                      -- the client's claim (64 lowercase hex), checked at completion
  part_bytes     INTEGER NOT NULL,          -- the part size of this session (PART_BYTES when created)
  aliases        TEXT NOT NULL DEFAULT '[]',-- JSON array
  created_at     INTEGER NOT NULL,          -- Unix seconds
  expires_at     INTEGER NOT NULL,          -- open: aborted by the sweep after this; finished: row deleted
  heartbeat_at   INTEGER,                   -- validating: last sign of life of the validation (Unix ms)
  runner         TEXT,                      -- validating: which invocation validates
  result_status  INTEGER,                   -- complete / rejected: the HTTP status of the answer
  result         TEXT                       -- complete / rejected: the answer's JSON body
);
CREATE INDEX upload_sessions_fingerprint ON upload_sessions (fingerprint, status);
CREATE INDEX upload_sessions_expires ON upload_sessions (expires_at);

CREATE TABLE upload_files (
  session_id   TEXT NOT NULL REFERENCES upload_sessions (id) ON DELETE CASCADE,
  role         TEXT NOT NULL CHECK (role IN ('unified', 'metadata', 'rootfs', 'rootfs.img')),
  name         TEXT,
  size         INTEGER NOT NULL,
  r2_key       TEXT NOT NULL UNIQUE,
  r2_upload_id TEXT NOT NULL,               -- the R2 multipart upload
  PRIMARY KEY (session_id, role)
);

CREATE TABLE upload_parts (
  session_id TEXT NOT NULL,
  role       TEXT NOT NULL,
  part       INTEGER NOT NULL,                -- from 1
  size       INTEGER NOT NULL,
  etag       TEXT NOT NULL,
  PRIMARY KEY (session_id, role, part),
  FOREIGN KEY (session_id, role) REFERENCES upload_files (session_id, role) ON DELETE CASCADE
);
