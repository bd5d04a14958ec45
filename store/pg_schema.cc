#include "store/pg_schema.h"

namespace warden::store {

namespace {

// Version 1: the tables of the SQLite schema (store/schema.cc), in PostgreSQL's types, plus
// what several replicas need:
//   - decision_log is partitioned by day of `time` (retention drops whole partitions;
//     PgStore creates them as rows arrive); rows outside 2000-2200 go to the default one.
//     decision_seq hands out seqs in commit order (its row is locked by each append until
//     it commits), decision_counts keeps rows per (tenant, principal) exact for retention.
//   - changes: one row per change that affects decisions, so a replica that missed a
//     notification (its listening connection was down) finds it by polling.
// Case-insensitive uniqueness is an index on lower(); listings page by seq.
constexpr char kV1[] = R"sql(
CREATE TABLE tenants (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  tenant_token TEXT NOT NULL UNIQUE,
  created_at   BIGINT NOT NULL
);

CREATE TABLE users (
  seq           BIGSERIAL PRIMARY KEY,
  id            TEXT NOT NULL UNIQUE,
  tenant_id     TEXT NOT NULL REFERENCES tenants (id),
  email         TEXT NOT NULL,
  name          TEXT NOT NULL,
  roles         TEXT NOT NULL,
  attributes    TEXT NOT NULL,
  enabled       BOOLEAN NOT NULL,
  password_hash TEXT NOT NULL,
  created_at    BIGINT NOT NULL,
  updated_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (tenant_id, lower(email));
CREATE INDEX users_tenant ON users (tenant_id, seq);

CREATE TABLE sessions (
  id         TEXT PRIMARY KEY,
  tenant_id  TEXT NOT NULL,
  user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash TEXT NOT NULL UNIQUE,
  csrf_token TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (tenant_id, user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE service_accounts (
  seq             BIGSERIAL PRIMARY KEY,
  id              TEXT NOT NULL UNIQUE,
  tenant_id       TEXT NOT NULL REFERENCES tenants (id),
  name            TEXT NOT NULL,
  description     TEXT NOT NULL,
  enabled         BOOLEAN NOT NULL,
  policy_yaml     TEXT NOT NULL,
  policy_version  BIGINT NOT NULL,
  attributes      TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  created_by_type TEXT NOT NULL,
  created_by_id   TEXT NOT NULL,
  updated_at      BIGINT NOT NULL,
  deleted_at      BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX service_accounts_live_name
  ON service_accounts (tenant_id, lower(name)) WHERE deleted_at = 0;
CREATE INDEX service_accounts_tenant ON service_accounts (tenant_id, deleted_at, seq);

CREATE TABLE service_account_policy_versions (
  tenant_id   TEXT NOT NULL,
  account_id  TEXT NOT NULL REFERENCES service_accounts (id),
  version     BIGINT NOT NULL,
  policy_yaml TEXT NOT NULL,
  created_at  BIGINT NOT NULL,
  actor_type  TEXT NOT NULL,
  actor_id    TEXT NOT NULL,
  PRIMARY KEY (account_id, version)
);

CREATE TABLE api_tokens (
  seq             BIGSERIAL NOT NULL,
  id              TEXT PRIMARY KEY,
  tenant_id       TEXT NOT NULL,
  account_id      TEXT NOT NULL REFERENCES service_accounts (id) ON DELETE CASCADE,
  name            TEXT NOT NULL,
  secret_hash     BYTEA NOT NULL,
  display_prefix  TEXT NOT NULL,
  created_at      BIGINT NOT NULL,
  created_by_type TEXT NOT NULL,
  created_by_id   TEXT NOT NULL,
  last_used_at    BIGINT NOT NULL DEFAULT 0,
  expires_at      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE audit_log (
  seq         BIGSERIAL PRIMARY KEY,
  id          TEXT NOT NULL,
  tenant_id   TEXT NOT NULL,
  time        BIGINT NOT NULL,
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

CREATE TABLE decision_seq (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  last BIGINT NOT NULL
);
INSERT INTO decision_seq (id, last) VALUES (1, 0);

CREATE TABLE decision_log (
  seq             BIGINT NOT NULL,
  id              TEXT NOT NULL,
  time            BIGINT NOT NULL,
  tenant_id       TEXT NOT NULL,
  principal_type  TEXT NOT NULL,
  principal_id    TEXT NOT NULL,
  principal_name  TEXT NOT NULL,
  token_id        TEXT NOT NULL,
  model           TEXT NOT NULL,
  action          TEXT NOT NULL,
  resource_id     TEXT NOT NULL,
  allowed         BOOLEAN NOT NULL,
  reason          TEXT NOT NULL,
  rule            TEXT NOT NULL,
  eval_error      TEXT NOT NULL,
  policy_revision TEXT NOT NULL,
  client_addr     TEXT NOT NULL,
  method          TEXT NOT NULL,
  path            TEXT NOT NULL,
  request_id      TEXT NOT NULL,
  latency_us      BIGINT NOT NULL
) PARTITION BY RANGE (time);
CREATE TABLE decision_log_default PARTITION OF decision_log DEFAULT;
-- One account's history (the LOGS page) and the tenant's, newest first; time for age pruning
-- of the partition that straddles the cutoff.
CREATE INDEX decision_log_principal ON decision_log (tenant_id, principal_id, seq);
CREATE INDEX decision_log_tenant ON decision_log (tenant_id, seq);
CREATE INDEX decision_log_time ON decision_log (time);

CREATE TABLE decision_counts (
  tenant_id    TEXT NOT NULL,
  principal_id TEXT NOT NULL,
  row_count    BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, principal_id)
);

CREATE TABLE changes (
  seq       BIGSERIAL PRIMARY KEY,
  time      BIGINT NOT NULL,
  kind      TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  target_id TEXT NOT NULL
);

CREATE TABLE health (
  id        INTEGER PRIMARY KEY,
  pinged_at BIGINT NOT NULL
);
)sql";

// Version 2, SQLite's version 5 and the caller columns of its chunk version 3: the directory
// (DESIGN.md 6.1), the caller of a decision (an AuthZEN evaluation's principal is its subject,
// its caller the PEP's service account), and decision rows unique by
// (time, id). "C" collation: ids list in byte order, as on SQLite.
constexpr char kV2[] = R"sql(
CREATE TABLE directory_entries (
  tenant_id  TEXT NOT NULL,
  kind       TEXT NOT NULL CHECK (kind IN ('subject', 'resource')),
  type       TEXT COLLATE "C" NOT NULL,
  id         TEXT COLLATE "C" NOT NULL,
  roles      TEXT NOT NULL,
  properties TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (tenant_id, kind, type, id)
);
ALTER TABLE decision_log ADD COLUMN caller_id TEXT NOT NULL DEFAULT '';
ALTER TABLE decision_log ADD COLUMN caller_name TEXT NOT NULL DEFAULT '';
-- A row stored twice is one row: a batch whose COMMIT happened but whose answer was lost is
-- spilled and inserted again with the same ids and times (ON CONFLICT DO NOTHING). It replaces
-- the time index (age pruning reads its leading column); a unique index of a partitioned table
-- must hold the partition key.
DROP INDEX decision_log_time;
CREATE UNIQUE INDEX decision_log_time_id ON decision_log (time, id);
)sql";

}  // namespace

const std::vector<const char*>& PgMigrations() {
  static const std::vector<const char*> kMigrations = {kV1, kV2};
  return kMigrations;
}

}  // namespace warden::store
