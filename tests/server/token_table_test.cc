// TokenTable (server/check/token_table.h) against std::unordered_map as the model: random
// inserts, finds and erases (by id and by predicate) of 3,000 ids in a table kept up to 3/4
// full, so probe runs, the backward-shift deletion and the wrap-around at the table's end all
// occur.
#include "server/check/token_table.h"

#include <random>
#include <string>
#include <unordered_map>

#include <catch2/catch.hpp>

namespace warden::server {
namespace {

std::string IdOf(int n) {  // "t000000042"
  const std::string digits = std::to_string(n);
  return "t" + std::string(kTokenIdLen - 1 - digits.size(), '0') + digits;
}

// Every id of the model is found with its value, and the sizes agree.
void CheckAgrees(const TokenTable& table, const std::unordered_map<std::string, int64_t>& model, int max_id) {
  REQUIRE(table.size() == model.size());
  for (int n = 0; n < max_id; ++n) {
    const std::string id = IdOf(n);
    const TokenTable::Entry* e = table.Find(id);
    auto it = model.find(id);
    if (it == model.end()) {
      REQUIRE(e == nullptr);
    } else {
      REQUIRE(e != nullptr);
      CHECK(std::string(e->id.data(), e->id.size()) == id);
      CHECK(e->expires_at == it->second);
    }
  }
}

TEST_CASE("TokenTable agrees with a map under random inserts and erases", "[token_table]") {
  std::mt19937 rng(7);
  TokenTable table;
  std::unordered_map<std::string, int64_t> model;
  constexpr int kIds = 3000;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 2000; ++i) {
      const int n = static_cast<int>(rng() % kIds);
      const std::string id = IdOf(n);
      if (rng() % 3 != 0) {
        auto [e, inserted] = table.Insert(id);
        REQUIRE(e != nullptr);
        REQUIRE(inserted == (model.count(id) == 0));
        if (inserted) {
          e->expires_at = n * 10 + round;
          model[id] = e->expires_at;
        }
      } else {
        REQUIRE(table.Erase(id) == (model.erase(id) == 1));
      }
    }
    CheckAgrees(table, model, kIds);
    if (round % 5 == 4) {  // erase by predicate: every id whose number is a multiple of 3
      table.EraseIf([](const TokenTable::Entry& e) { return e.expires_at / 10 % 3 == 0; });
      std::erase_if(model, [](const auto& kv) { return kv.second / 10 % 3 == 0; });
      CheckAgrees(table, model, kIds);
    }
  }
}

TEST_CASE("TokenTable holds 100,000 ids and refuses ids of the wrong length", "[token_table]") {
  TokenTable table;
  for (int n = 0; n < 100000; ++n) {
    auto [e, inserted] = table.Insert(IdOf(n));
    REQUIRE(inserted);
    e->expires_at = n;
  }
  CHECK(table.size() == 100000);
  for (int n = 0; n < 100000; n += 997) {
    const TokenTable::Entry* e = table.Find(IdOf(n));
    REQUIRE(e != nullptr);
    CHECK(e->expires_at == n);
  }
  // ~80 bytes a token: blocks of entries and a slot array at most 3/4 full.
  CHECK(table.MemoryBytes() < 100000 * 96);
  CHECK(table.Find("short") == nullptr);
  CHECK(table.Find(IdOf(1) + "x") == nullptr);
  CHECK(table.Insert("short").first == nullptr);
  CHECK_FALSE(table.Erase("short"));
  CHECK(table.Find(IdOf(100000)) == nullptr);
  table.Clear();
  CHECK(table.size() == 0);
  CHECK(table.Find(IdOf(5)) == nullptr);
  CHECK(table.Insert(IdOf(5)).second);
}

}  // namespace
}  // namespace warden::server
