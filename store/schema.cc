#include "store/schema.h"

namespace warden::store {

namespace {

// Version 1. Every row carries tenant_id. Listings page by an AUTOINCREMENT seq assigned at
// insert (commit order), never by ULID. Log tables have no foreign keys: their rows outlive
// the accounts they name.
constexpr char kV1[] = R"sql(
CREATE TABLE tenants (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  tenant_token TEXT NOT NULL UNIQUE,
  created_at   INTEGER NOT NULL
);

CREATE TABLE users (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  id            TEXT NOT NULL UNIQUE,
  tenant_id     TEXT NOT NULL REFERENCES tenants (id),
  email         TEXT NOT NULL,
  name          TEXT NOT NULL,
  roles         TEXT NOT NULL,
  attributes    TEXT NOT NULL,
  enabled       INTEGER NOT NULL,
  password_hash TEXT NOT NULL,
  created_at    INTEGER NOT NULL,
  updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, email COLLATE NOCASE);
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE sessions (
  id         TEXT PRIMARY KEY,
  tenant_id  TEXT NOT NULL,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,
  csrf_token TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE service_accounts (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT NOT NULL UNIQUE,
  tenant_id       TEXT NOT NULL REFERENCES tenants (id),
  name            TEXT NOT NULL,
  description     TEXT NOT NULL,
  enabled         INTEGER NOT NULL,
  policy_yaml     TEXT NOT NULL,
  policy_version  INTEGER NOT NULL,
  attributes      TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  created_by_type TEXT NOT NULL,
  created_by_id   TEXT NOT NULL,
  updated_at      INTEGER NOT NULL,
  deleted_at      INTEGER NOT NULL DEFAULT 0
);
-- Names are unique among live accounts only: soft delete frees the name.
CREATE UNIQUE INDEX service_accounts_live_name
  ON service_accounts (tenant_id, name COLLATE NOCASE) WHERE deleted_at = 0;
CREATE INDEX service_accounts_tenant ON service_accounts (tenant_id, deleted_at);

CREATE TABLE service_account_policy_versions (
  tenant_id   TEXT NOT NULL,
  account_id  TEXT NOT NULL REFERENCES service_accounts (id),
  version     INTEGER NOT NULL,
  policy_yaml TEXT NOT NULL,
  created_at  INTEGER NOT NULL,
  actor_type  TEXT NOT NULL,
  actor_id    TEXT NOT NULL,
  PRIMARY KEY (account_id, version)
);

CREATE TABLE api_tokens (
  id              TEXT PRIMARY KEY,
  tenant_id       TEXT NOT NULL,
  account_id      TEXT NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
  name            TEXT NOT NULL,
  secret_hash     BLOB NOT NULL,
  display_prefix  TEXT NOT NULL,
  created_at      INTEGER NOT NULL,
  created_by_type TEXT NOT NULL,
  created_by_id   TEXT NOT NULL,
  last_used_at    INTEGER NOT NULL DEFAULT 0,
  expires_at      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE audit_log (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  id          TEXT NOT NULL,
  tenant_id   TEXT NOT NULL,
  time        INTEGER NOT NULL,
  actor_type  TEXT NOT NULL,
  actor_id    TEXT NOT NULL,
  action      TEXT NOT NULL,
  target_type TEXT NOT NULL,
  target_id   TEXT NOT NULL,
  target_name TEXT NOT NULL,
  details     TEXT NOT NULL
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, seq);
CREATE INDEX audit_log_target ON audit_log (tenant_id, target_id, seq);

CREATE TABLE decision_log (
  seq             INTEGER PRIMARY KEY AUTOINCREMENT,
  id              TEXT NOT NULL,
  time            INTEGER NOT NULL,
  tenant_id       TEXT NOT NULL,
  principal_type  TEXT NOT NULL,
  principal_id    TEXT NOT NULL,
  principal_name  TEXT NOT NULL,
  token_id        TEXT NOT NULL,
  model           TEXT NOT NULL,
  action          TEXT NOT NULL,
  resource_id     TEXT NOT NULL,
  allowed         INTEGER NOT NULL,
  reason          TEXT NOT NULL,
  rule            TEXT NOT NULL,
  eval_error      TEXT NOT NULL,
  policy_revision TEXT NOT NULL,
  client_addr     TEXT NOT NULL,
  method          TEXT NOT NULL,
  path            TEXT NOT NULL,
  request_id      TEXT NOT NULL,
  latency_us      INTEGER NOT NULL
);
CREATE INDEX decision_log_principal ON decision_log (tenant_id, principal_id, seq);
CREATE INDEX decision_log_tenant ON decision_log (tenant_id, seq);
CREATE INDEX decision_log_time ON decision_log (time);

-- One row written by Ping() to prove the database is writable.
CREATE TABLE health (
  id        INTEGER PRIMARY KEY,
  pinged_at INTEGER NOT NULL
);
)sql";

// Version 2. Every decision-log commit writes one page per index into the WAL, and the check
// path commits for almost every request: the tenant-wide listing is served by the rowid
// (seq) itself (filtering tenant_id while walking it newest first), and age pruning walks the
// oldest rows by seq, so these two indexes only cost write volume.
constexpr char kV2[] = R"sql(
DROP INDEX decision_log_tenant;
DROP INDEX decision_log_time;
)sql";

// Version 3. Decision rows are appended to a journal file first and moved into decision_log
// in large transactions (store/decision_journal.h); this row says how far the journal of
// which generation has been moved, updated in the same transaction as the rows.
constexpr char kV3[] = R"sql(
CREATE TABLE decision_journal (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  generation INTEGER NOT NULL,
  offset     INTEGER NOT NULL
);
INSERT INTO decision_journal (id, generation, offset) VALUES (1, 0, 0);
)sql";

// Version 4. Decisions are stored in chunks, one row per principal per move of up to 512
// decisions, its rows encoded in one blob (store/decision_chunk.h): about 18k instructions
// and 330 bytes of database per decision became about 2k and 50. first_seq is a chunk's
// oldest row; a chunk's rows lie less than kMaxChunkSpan seqs apart. The rows of
// decision_log are converted into chunks at the next Open (SqliteStore, in batches), which
// then drops the table. decision_journal.last_seq is the newest seq ever moved, so seqs
// never go back once pruning has emptied the table.
constexpr char kV4[] = R"sql(
CREATE TABLE decision_chunk (
  first_seq    INTEGER PRIMARY KEY,
  last_seq     INTEGER NOT NULL,
  tenant_id    TEXT NOT NULL,
  principal_id TEXT NOT NULL,
  min_time     INTEGER NOT NULL,
  max_time     INTEGER NOT NULL,
  row_count    INTEGER NOT NULL,
  rows         BLOB NOT NULL
);
CREATE INDEX decision_chunk_principal ON decision_chunk (tenant_id, principal_id, last_seq);
CREATE INDEX decision_chunk_tenant ON decision_chunk (tenant_id, last_seq);
ALTER TABLE decision_journal ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
UPDATE decision_journal SET last_seq = MAX(
  COALESCE((SELECT MAX(seq) FROM decision_log), 0),
  COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'decision_log'), 0));
)sql";

// Version 5. The directory (DESIGN.md 6.1): AuthZEN subjects and resources of the protected
// application. roles and properties are JSON (an array of strings, an object). Keyed for the
// two reads it serves: one entry by (kind, type, id), and a type's entries in id order.
constexpr char kV5[] = R"sql(
CREATE TABLE directory_entries (
  tenant_id  TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('subject', 'resource')),
  type       TEXT NOT NULL,
  id         TEXT NOT NULL,
  roles      TEXT NOT NULL,
  properties TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, kind, type, id)
) WITHOUT ROWID;
)sql";

// Version 6. decision_chunk is keyed by insertion order (id) instead of first_seq. The mover
// writes a chunk when it is full, old, or over the memory bound, so chunks arrive out of
// first_seq order (a busy principal fills its chunk in a second; a quiet one's is written
// 30 s after it opened): keyed by first_seq, most inserts split a leaf in the middle of the
// table, and under a Zipf mix over 10,000 accounts 28% of its leaf pages' bytes were unused
// (21 of 94 MB; docs/benchmarks.md, "Traffic shapes, session 12"). Keyed by id every insert
// appends. first_seq keeps a unique index for prune (oldest first) and delete.
constexpr char kV6[] = R"sql(
CREATE TABLE decision_chunk_v6 (
  id           INTEGER PRIMARY KEY,
  first_seq    INTEGER NOT NULL,
  last_seq     INTEGER NOT NULL,
  tenant_id    TEXT NOT NULL,
  principal_id TEXT NOT NULL,
  min_time     INTEGER NOT NULL,
  max_time     INTEGER NOT NULL,
  row_count    INTEGER NOT NULL,
  rows         BLOB NOT NULL
);
INSERT INTO decision_chunk_v6 (first_seq, last_seq, tenant_id, principal_id, min_time, max_time, row_count, rows)
  SELECT first_seq, last_seq, tenant_id, principal_id, min_time, max_time, row_count, rows
  FROM decision_chunk ORDER BY first_seq;
DROP TABLE decision_chunk;
ALTER TABLE decision_chunk_v6 RENAME TO decision_chunk;
CREATE UNIQUE INDEX decision_chunk_first ON decision_chunk (first_seq);
CREATE INDEX decision_chunk_principal ON decision_chunk (tenant_id, principal_id, last_seq);
CREATE INDEX decision_chunk_tenant ON decision_chunk (tenant_id, last_seq);
)sql";

}  // namespace

const std::vector<const char*>& Migrations() {
  static const std::vector<const char*> kMigrations = {kV1, kV2, kV3, kV4, kV5, kV6};
  return kMigrations;
}

}  // namespace warden::store
