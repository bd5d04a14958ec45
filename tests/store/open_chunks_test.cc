// The mover's open chunks (store/open_chunks.h): a principal's rows join its chunk until it is
// full, what each Seal* takes (oldest first), memory accounting, and what queries see.
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "store/open_chunks.h"
#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

using testing::MakeDecision;

DecisionRow RowOf(const std::string& principal, int64_t seq) {
  DecisionRow d = MakeDecision(principal, seq % 2 == 0);
  d.seq = seq;
  d.time = 1'000 + seq;
  return d;
}

std::vector<std::string> SealedPrincipals(const OpenChunks& open) {
  std::vector<std::string> out;
  for (const auto& c : open.sealed()) out.emplace_back(c->principal_id());
  return out;
}

TEST_CASE("OpenChunks: one chunk per principal, sealed when full", "[store][chunk]") {
  OpenChunks open;
  int64_t seq = 1;
  for (size_t i = 0; i < kMaxChunkRows; ++i) {
    open.Add(RowOf("busy", seq++), 0);
    open.Add(RowOf("quiet", seq++), 0);
    if (i % 2 == 0) open.Add(RowOf("busy", seq++), 0);
  }
  CHECK(open.open_count() == 2);
  CHECK(SealedPrincipals(open) == std::vector<std::string>{"busy"});  // 768 rows: one full chunk
  CHECK(open.sealed().front()->builder.rows() == kMaxChunkRows);
  CHECK(open.CountRows(kDefaultTenantId, "busy") == 768);
  CHECK(open.CountRows(kDefaultTenantId, "quiet") == 512);
  CHECK(open.CountRows(kDefaultTenantId, "") == 1280);
  CHECK(open.CountRows("other-tenant", "") == 0);
  CHECK(open.OldestOpenSeq() == 2);  // quiet's chunk; busy's open one starts later
  int seen = 0;
  open.ForEach(kDefaultTenantId, "busy", [&](const OpenChunks::Chunk& c) {
    CHECK(c.principal_id() == "busy");
    CHECK(c.tenant_id() == kDefaultTenantId);
    ++seen;
  });
  CHECK(seen == 2);  // the open one and the sealed one
  open.DropSealed(1);
  CHECK(open.CountRows(kDefaultTenantId, "busy") == 256);
}

TEST_CASE("OpenChunks: Seal* take the oldest chunks first", "[store][chunk]") {
  OpenChunks open;
  open.Add(RowOf("a", 1), 100);
  open.Add(RowOf("b", 2), 200);
  open.Add(RowOf("c", 3), 300);
  open.Add(RowOf("a", 4), 400);  // joins a's chunk, opened at 100

  SECTION("by age") {
    open.SealOpenedBefore(250);
    CHECK(SealedPrincipals(open) == std::vector<std::string>{"a", "b"});
    CHECK(open.OldestOpenSeq() == 3);
  }
  SECTION("by seq") {
    open.SealThrough(2);
    CHECK(SealedPrincipals(open) == std::vector<std::string>{"a", "b"});
  }
  SECTION("by memory: the oldest compacted first, then sealed") {
    const size_t all = open.MemoryBytes();
    CHECK(all > 0);
    open.SealToFit(all - 1);
    CHECK(open.sealed().empty());  // compacting a's chunk was enough
    const size_t compacted = open.MemoryBytes();
    CHECK(compacted < all);
    open.Add(RowOf("a", 5), 500);  // a compact chunk takes rows as before
    CHECK(open.CountRows(kDefaultTenantId, "a") == 3);
    open.SealToFit(1);
    CHECK(SealedPrincipals(open) == std::vector<std::string>{"a", "b", "c"});
    const size_t sealed = open.MemoryBytes();  // sealed chunks are held until written
    open.DropSealed(1);
    CHECK(open.MemoryBytes() < sealed);
  }
  SECTION("all, then a new chunk for the next row") {
    open.SealAll();
    CHECK(open.open_count() == 0);
    CHECK(open.OldestOpenSeq() == INT64_MAX);
    open.Add(RowOf("a", 5), 500);
    CHECK(open.OldestOpenSeq() == 5);
    open.DropSealed(3);
    CHECK(open.CountRows(kDefaultTenantId, "") == 1);
  }
  open.DropSealed(open.sealed().size());
  open.SealAll();
  open.DropSealed(open.sealed().size());
  CHECK(open.MemoryBytes() == 0);
}

// Held for every active principal between passes, a chunk must stay small.
TEST_CASE("OpenChunks: a chunk of a few rows holds about a kilobyte", "[store][chunk]") {
  OpenChunks open;
  for (int p = 0; p < 1000; ++p) open.Add(RowOf("principal-" + std::to_string(p), p + 1), 0);
  INFO("bytes for 1,000 one-row chunks: " << open.MemoryBytes());
  CHECK(open.MemoryBytes() < 1000 * 1024);
}

}  // namespace
}  // namespace warden::store
