// The numbered schema migrations of the PostgreSQL store. Migration i (0-based) takes the
// schema from version i to version i+1; PgStore::Open applies the missing ones in order, each
// in its own transaction, holding an advisory lock so that replicas starting together migrate
// once. Append new migrations; never edit a released one.
#pragma once

#include <vector>

namespace warden::store {

// Constant SQL texts, one per schema version.
const std::vector<const char*>& PgMigrations();

}  // namespace warden::store
