// The decision-log chunk format (store/decision_chunk.h): every field of every row comes back,
// the builder's limits, and a blob that does not check out is an error, never a crash.
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "store/decision_chunk.h"
#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

using testing::CheckSameRow;
using testing::OddRow;

DecisionRow Row(int64_t seq, int64_t time, int variant) {
  DecisionRow d;
  d.seq = seq;
  d.id = "01JDECISION" + std::to_string(seq);
  d.time = time;
  d.tenant_id = "default";
  d.principal_type = variant % 5 == 4 ? "tenant" : "service_account";
  d.principal_id = "sa-1";
  d.principal_name = "crm-sync";
  d.token_id = "tok-" + std::to_string(variant % 2);
  d.model = variant % 3 == 0 ? "company" : "invoice";
  d.action = variant % 2 == 0 ? "view" : "update";
  d.resource_id = "r" + std::to_string(variant);
  d.allowed = variant % 2 == 0;
  d.reason = d.allowed ? "ALLOW_RULE" : "NO_MATCHING_RULE";
  d.rule = d.allowed ? "roles/admin.yaml#0" : "";
  d.eval_error = variant % 7 == 6 ? "attribute 'x' is missing" : "";
  d.policy_revision = "rev-" + std::to_string(variant / 100);
  d.client_addr = "10.0.0." + std::to_string(variant % 4);
  d.method = "GET";
  d.path = "/companies/" + std::to_string(variant) + "?q=\xe2\x82\xac&x=\"y\"";
  d.request_id = "req-" + std::to_string(variant / 2);
  d.latency_us = variant * 37;
  return d;
}

std::string Encode(const std::vector<DecisionRow>& rows) {
  ChunkBuilder b;
  for (const DecisionRow& r : rows) REQUIRE(b.Add(r));
  std::string blob;
  b.Finish(&blob);
  return blob;
}

TEST_CASE("A chunk round-trips every field of every row", "[store][chunk]") {
  std::vector<DecisionRow> rows;
  // Seqs with gaps (other principals' rows in between), times that go back as well as on,
  // a huge seq and time, empty and non-ASCII strings.
  int64_t seq = GENERATE(int64_t{1}, int64_t{1} << 40);
  int64_t time = 1'700'000'000'000;
  for (int i = 0; i < 300; ++i) {
    rows.push_back(Row(seq, time, i));
    seq += 1 + (i % 11 == 0 ? 1000 : 0);
    time += (i % 13 == 0) ? -5 : 3;
  }
  rows[17].id = "";
  rows[18].path = std::string(5000, 'p');
  rows[19].latency_us = 0;

  ChunkBuilder b;
  for (const DecisionRow& r : rows) REQUIRE(b.Add(r));
  CHECK(b.rows() == rows.size());
  CHECK(b.first_seq() == rows.front().seq);
  CHECK(b.last_seq() == rows.back().seq);
  int64_t min_time = rows[0].time, max_time = rows[0].time;
  for (const DecisionRow& r : rows) {
    min_time = std::min(min_time, r.time);
    max_time = std::max(max_time, r.time);
  }
  CHECK(b.min_time() == min_time);
  CHECK(b.max_time() == max_time);
  std::string blob;
  b.Finish(&blob);
  CHECK(b.empty());

  std::vector<DecisionRow> out(1, Row(1, 1, 1));  // decoding appends
  REQUIRE(DecodeChunk(blob, &out).ok());
  REQUIRE(out.size() == rows.size() + 1);
  for (size_t i = 0; i < rows.size(); ++i) CheckSameRow(out[i + 1], rows[i]);

  // Repeated values are stored once: 200 rows that differ only in seq, id and time take
  // their ids plus a few bytes each.
  std::vector<DecisionRow> same;
  for (int i = 0; i < 200; ++i) {
    same.push_back(Row(1000 + i, 5000 + i, 0));
    same.back().id = "01JDECISION" + std::to_string(100000 + i);  // 17 bytes
  }
  const std::string compact = Encode(same);
  CHECK(compact.size() < 200 * (17 + 24) + 300);
  out.clear();
  REQUIRE(DecodeChunk(compact, &out).ok());
  REQUIRE(out.size() == same.size());
  for (size_t i = 0; i < same.size(); ++i) CheckSameRow(out[i], same[i]);

  // The emptied builder starts the next chunk afresh.
  std::vector<DecisionRow> next = {Row(seq + 5, 42, 3), Row(seq + 6, 41, 4)};
  const std::string blob2 = Encode(next);
  out.clear();
  REQUIRE(DecodeChunk(blob2, &out).ok());
  REQUIRE(out.size() == 2);
  CheckSameRow(out[0], next[0]);
  CheckSameRow(out[1], next[1]);
}

TEST_CASE("A chunk keeps odd strings and extreme values as they were", "[store][chunk]") {
  // NULs, quotes, invalid UTF-8, a 70 kB string, times from INT64_MIN to now and back,
  // latencies near INT64_MAX.
  std::vector<DecisionRow> rows;
  for (int n = 0; n < 6; ++n) rows.push_back(OddRow(n));
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunk(Encode(rows), &out).ok());
  REQUIRE(out.size() == rows.size());
  for (size_t i = 0; i < rows.size(); ++i) CheckSameRow(out[i], rows[i]);
}

TEST_CASE("ChunkBuilder refuses a row past its row or seq-span limit", "[store][chunk]") {
  ChunkBuilder b;
  for (size_t i = 0; i < kMaxChunkRows; ++i) REQUIRE(b.Add(Row(100 + static_cast<int64_t>(i), 5, 0)));
  CHECK_FALSE(b.Add(Row(100 + static_cast<int64_t>(kMaxChunkRows), 5, 0)));
  CHECK(b.rows() == kMaxChunkRows);
  std::string blob;
  b.Finish(&blob);

  REQUIRE(b.Add(Row(10, 5, 0)));  // empty again: any row
  CHECK(b.Add(Row(10 + kMaxChunkSpan - 1, 5, 0)));
  CHECK_FALSE(b.Add(Row(10 + kMaxChunkSpan, 5, 0)));
  CHECK_FALSE(b.Add(Row(10 + kMaxChunkSpan - 1, 5, 0)));  // not after the last row
  CHECK(b.rows() == 2);
}

TEST_CASE("A chunk that does not check out is an error and decodes nothing", "[store][chunk]") {
  std::vector<DecisionRow> rows;
  for (int i = 0; i < 20; ++i) rows.push_back(Row(50 + i, 1000 + i, i));
  const std::string blob = Encode(rows);
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunk(blob, &out).ok());

  SECTION("every truncation") {
    for (size_t n = 0; n < blob.size(); ++n) {
      INFO("first " << n << " bytes");
      out.clear();
      CHECK_FALSE(DecodeChunk(std::string_view(blob).substr(0, n), &out).ok());
      CHECK(out.empty());
    }
  }
  SECTION("trailing bytes") {
    out.clear();
    CHECK_FALSE(DecodeChunk(blob + '\0', &out).ok());
    CHECK(out.empty());
  }
  SECTION("an unknown version") {
    std::string bad = blob;
    bad[0] = 2;
    out.clear();
    CHECK(DecodeChunk(bad, &out).code() == StatusCode::kInternal);
  }
  SECTION("a string index out of range, an over-long varint, garbage") {
    // One row, empty dictionary, whose first field index is 0.
    const std::string one_row_no_strings = std::string("\x01\x05\x00\x01\x00\x00\x00\x00\x00\x00", 10);
    const std::string overlong = std::string("\x01", 1) + std::string(11, '\xff');
    std::string garbage(blob.size(), '\0');
    for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<char>(i * 131 + 7);
    for (const std::string& bad : {one_row_no_strings, overlong, garbage}) {
      out.assign(3, DecisionRow{});
      CHECK_FALSE(DecodeChunk(bad, &out).ok());
      CHECK(out.size() == 3);
    }
  }
}

}  // namespace
}  // namespace warden::store
