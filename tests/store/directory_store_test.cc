// The directory (store.h DirectoryStore): put/replace, get, keyset listing, delete, bounds.
#include <catch2/catch.hpp>

#include "store/store.h"
#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

using testing::StoreFixture;

DirectoryEntry Subject(std::string id, std::vector<std::string> roles, nlohmann::json properties) {
  DirectoryEntry e;
  e.tenant_id = kDefaultTenantId;
  e.kind = DirectoryKind::kSubject;
  e.type = "user";
  e.id = std::move(id);
  e.roles = std::move(roles);
  e.properties = std::move(properties);
  return e;
}

DirectoryEntry Resource(std::string type, std::string id, nlohmann::json properties) {
  DirectoryEntry e;
  e.tenant_id = kDefaultTenantId;
  e.kind = DirectoryKind::kResource;
  e.type = std::move(type);
  e.id = std::move(id);
  e.properties = std::move(properties);
  return e;
}

std::vector<std::string> Ids(const std::vector<DirectoryEntry>& entries) {
  std::vector<std::string> ids;
  for (const auto& e : entries) ids.push_back(e.id);
  return ids;
}

TEST_CASE("directory entries are put, replaced, read and deleted", "[store][conformance][directory]") {
  StoreFixture f;
  f.clock.Set(1000);
  REQUIRE(f.store
              ->PutDirectoryEntries({Subject("alice", {"manager"}, {{"department", "Sales"}}),
                                     Resource("record", "101", {{"owner", "alice"}})})
              .ok());
  auto alice = f.store->GetDirectoryEntry(kDefaultTenantId, DirectoryKind::kSubject, "user", "alice");
  REQUIRE(alice.ok());
  CHECK(alice->roles == std::vector<std::string>{"manager"});
  CHECK(alice->properties == nlohmann::json{{"department", "Sales"}});
  CHECK(alice->updated_at == 1000);
  // The same id of the other kind, or of another type, is another entry.
  CHECK(f.store->GetDirectoryEntry(kDefaultTenantId, DirectoryKind::kResource, "user", "alice").status().code() ==
        StatusCode::kNotFound);
  CHECK(f.store->GetDirectoryEntry(kDefaultTenantId, DirectoryKind::kSubject, "admin", "alice").status().code() ==
        StatusCode::kNotFound);

  f.clock.Set(2000);
  store::AuditEntry audit;
  audit.actor_type = kActorUser;
  audit.actor_id = "u1";
  audit.action = "directory.changed";
  audit.target_type = "directory";
  REQUIRE(f.store->PutDirectoryEntries({Subject("alice", {}, {{"department", "Legal"}})}, &audit).ok());
  alice = f.store->GetDirectoryEntry(kDefaultTenantId, DirectoryKind::kSubject, "user", "alice");
  REQUIRE(alice.ok());
  CHECK(alice->roles.empty());
  CHECK(alice->properties == nlohmann::json{{"department", "Legal"}});
  CHECK(alice->updated_at == 2000);
  auto audits = f.store->List(testing::AuditFor("user/alice"));
  REQUIRE(audits.ok());
  CHECK(audits->items.size() == 1);

  REQUIRE(f.store->DeleteDirectoryEntry(kDefaultTenantId, DirectoryKind::kSubject, "user", "alice").ok());
  CHECK(f.store->DeleteDirectoryEntry(kDefaultTenantId, DirectoryKind::kSubject, "user", "alice").code() ==
        StatusCode::kNotFound);
  CHECK(f.store->GetDirectoryEntry(kDefaultTenantId, DirectoryKind::kResource, "record", "101").ok());
}

TEST_CASE("directory listings page by id within one kind and type", "[store][conformance][directory]") {
  StoreFixture f;
  std::vector<DirectoryEntry> entries;
  for (std::string id : {"b", "a", "d", "c", "e"}) entries.push_back(Resource("record", id, nlohmann::json::object()));
  entries.push_back(Resource("other", "a0", nlohmann::json::object()));
  entries.push_back(Subject("a1", {}, nlohmann::json::object()));
  REQUIRE(f.store->PutDirectoryEntries(entries).ok());
  DirectoryQuery q;
  q.tenant_id = kDefaultTenantId;
  q.kind = DirectoryKind::kResource;
  q.type = "record";
  q.limit = 2;
  std::vector<std::string> seen;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = f.store->ListDirectoryEntries(q);
    REQUIRE(page.ok());
    if (page->empty()) break;
    for (const auto& id : Ids(*page)) seen.push_back(id);
    q.after_id = page->back().id;
  }
  CHECK(seen == std::vector<std::string>{"a", "b", "c", "d", "e"});
  q.after_id.clear();
  q.type = "nothing";
  auto none = f.store->ListDirectoryEntries(q);
  REQUIRE(none.ok());
  CHECK(none->empty());
}

TEST_CASE("directory entries out of bounds are refused and nothing is stored", "[store][conformance][directory]") {
  StoreFixture f;
  struct Case {
    const char* what;
    DirectoryEntry entry;
    const char* field;
  };
  DirectoryEntry with_roles = Resource("record", "1", nlohmann::json::object());
  with_roles.roles = {"x"};
  const std::vector<Case> cases = {
      {"empty id", Resource("record", "", nlohmann::json::object()), "entries[1].id"},
      {"empty type", Resource("", "1", nlohmann::json::object()), "entries[1].type"},
      {"long id", Resource("record", std::string(kMaxDirectoryNameBytes + 1, 'x'), nlohmann::json::object()),
       "entries[1].id"},
      {"properties not an object", Resource("record", "1", nlohmann::json::array()), "entries[1].properties"},
      {"roles on a resource", with_roles, "entries[1].roles"},
      {"empty role", Subject("s", {""}, nlohmann::json::object()), "entries[1].roles"},
      {"huge properties", Resource("record", "1", {{"x", std::string(kMaxDirectoryPropertyBytes, 'x')}}),
       "entries[1].properties"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    Status put = f.store->PutDirectoryEntries({Subject("ok", {}, nlohmann::json::object()), c.entry});
    CHECK(put.code() == StatusCode::kInvalidArgument);
    CHECK(put.field() == c.field);
    CHECK(f.store->GetDirectoryEntry(kDefaultTenantId, DirectoryKind::kSubject, "user", "ok").status().code() ==
          StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace warden::store
