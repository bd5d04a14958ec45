// The decision-log chunk format (store/decision_chunk.h): every field of every row comes back,
// the builder's limits, and a blob that does not check out is an error, never a crash.
#include <cstdint>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "common/ids.h"
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
  if (variant % 3 == 1) {  // an AuthZEN decision: a PEP's account asked
    d.caller_id = "sa-pep";
    d.caller_name = "gateway";
  }
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

TEST_CASE("Row ids: ULIDs stored in 10 bytes and a time delta, anything else as text", "[store][chunk]") {
  std::vector<DecisionRow> rows;
  const FakeClock clock(1'764'600'000'123);
  for (int i = 0; i < 6; ++i) rows.push_back(Row(10 + i, clock.NowMillis() + (i == 3 ? 7 : 0), i));
  for (auto& r : rows) r.id = NewUlid(clock);  // the ULID's time is the row's, but for row 3
  rows[4].id = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ";       // the largest ULID
  rows[5].id = "01jcq2zb4t4v0h6n5a5c4w7q1r";       // lower case: not canonical, kept as text
  DecisionRow odd = Row(20, 5, 0);
  for (const char* id : {"8ZZZZZZZZZZZZZZZZZZZZZZZZZ", "01JCQ2ZB4T4V0H6N5A5C4W7Q1", "01JCQ2ZB4T4V0H6N5A5C4W7QIR", ""}) {
    odd.seq++;
    odd.id = id;
    rows.push_back(odd);
  }
  const std::string blob = Encode(rows);
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunk(blob, &out).ok());
  REQUIRE(out.size() == rows.size());
  for (size_t i = 0; i < rows.size(); ++i) CHECK(out[i].id == rows[i].id);
  // Smaller than text ids: 16 bytes less for each of the five compact ones, at least.
  std::vector<DecisionRow> texts = rows;
  for (auto& r : texts) r.id = "x" + r.id;  // never a canonical ULID
  CHECK(Encode(texts).size() >= blob.size() + 5 * 16);
}

TEST_CASE("Chunks of version 1 (text ids) are still read", "[store][chunk]") {
  // version 1, first_seq 5, one string "x", one row: seq +0, time zigzag(10), latency 0,
  // allowed 1, id "abc", sixteen field indexes 0.
  const std::string v1 = std::string("\x01\x05\x01\x01x\x01\x00\x14\x00\x01\x03" "abc", 14) + std::string(16, '\0');
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunk(v1, &out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].seq == 5);
  CHECK(out[0].time == 10);
  CHECK(out[0].allowed);
  CHECK(out[0].id == "abc");
  CHECK(out[0].principal_id == "x");
  CHECK(out[0].request_id == "x");
}

TEST_CASE("Chunks of version 2 (no caller fields) are still read", "[store][chunk]") {
  // version 2, first_seq 5, one string "x", one row: seq +0, time zigzag(10), latency 0,
  // flags 1 (allowed, id as bytes), id "abc", sixteen field indexes 0.
  const std::string v2 = std::string("\x02\x05\x01\x01x\x01\x00\x14\x00\x01\x03" "abc", 14) + std::string(16, '\0');
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunk(v2, &out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].id == "abc");
  CHECK(out[0].request_id == "x");
  CHECK(out[0].caller_id.empty());
  CHECK(out[0].caller_name.empty());
}

TEST_CASE("Chunks of version 3 (every field index in every row) are still read", "[store][chunk]") {
  // version 3, first_seq 5, one string "x", one row: seq +0, time zigzag(10), latency 0,
  // flags 1 (allowed, id as bytes), id "abc", eighteen field indexes 0.
  const std::string v3 = std::string("\x03\x05\x01\x01x\x01\x00\x14\x00\x01\x03" "abc", 14) + std::string(18, '\0');
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunk(v3, &out).ok());
  REQUIRE(out.size() == 1);
  CHECK(out[0].id == "abc");
  CHECK(out[0].caller_name == "x");
}

TEST_CASE("Peek writes the rows so far and leaves the builder as it was", "[store][chunk]") {
  std::vector<DecisionRow> rows;
  for (int i = 0; i < 40; ++i) rows.push_back(Row(100 + i, 5'000 + i, i));
  ChunkBuilder b;
  for (int i = 0; i < 25; ++i) REQUIRE(b.Add(rows[i]));
  std::string peeked;
  b.Peek(&peeked);
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunk(peeked, &out).ok());
  REQUIRE(out.size() == 25);
  for (size_t i = 0; i < out.size(); ++i) CheckSameRow(out[i], rows[i]);
  for (int i = 25; i < 40; ++i) REQUIRE(b.Add(rows[i]));  // goes on where it was
  std::string blob;
  b.Finish(&blob);
  CHECK(b.empty());
  out.clear();
  REQUIRE(DecodeChunk(blob, &out).ok());
  REQUIRE(out.size() == rows.size());
  for (size_t i = 0; i < out.size(); ++i) CheckSameRow(out[i], rows[i]);
}

TEST_CASE("Compact frees what only Add needs; the rows and the next Add come out the same", "[store][chunk]") {
  std::vector<DecisionRow> rows;
  for (int i = 0; i < 60; ++i) rows.push_back(Row(100 + i, 5'000 + i, i));
  ChunkBuilder plain, compacted;
  // Compacted after 3 rows (a scan finds its strings) and after 30 (an index does), and twice.
  for (int i = 0; i < 60; ++i) {
    REQUIRE(plain.Add(rows[i]));
    REQUIRE(compacted.Add(rows[i]));
    if (i == 2 || i == 29 || i == 30) {
      const size_t before = compacted.MemoryBytes();
      compacted.Compact();
      CHECK(compacted.compact());
      CHECK(compacted.MemoryBytes() < before);
      compacted.Compact();  // a second time changes nothing
      std::string peeked, plain_peeked;
      compacted.Peek(&peeked);  // queries read a compact chunk as it is
      plain.Peek(&plain_peeked);
      CHECK(peeked == plain_peeked);
    }
  }
  CHECK(!compacted.compact());
  // A refused row leaves a compact chunk compact.
  compacted.Compact();
  DecisionRow stale = rows[0];
  CHECK(!compacted.Add(stale));
  CHECK(compacted.compact());
  std::string a, b;
  plain.Finish(&a);
  compacted.Finish(&b);
  CHECK(a == b);  // the same strings interned to the same indices: the same bytes
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunk(b, &out).ok());
  REQUIRE(out.size() == rows.size());
  for (size_t i = 0; i < out.size(); ++i) CheckSameRow(out[i], rows[i]);
  CHECK(!compacted.compact());  // Finish clears it
}

TEST_CASE("A row that repeats the strings of the rows before it takes about 22 bytes", "[store][chunk]") {
  // The benchmark's shape: requests of two checks (view allowed, update denied) of one token.
  std::vector<DecisionRow> rows;
  const FakeClock clock(1'764'600'000'000);
  for (int i = 0; i < 512; ++i) {
    DecisionRow d = Row(1 + i, clock.NowMillis() + i / 20, 0);
    d.id = NewUlid(clock);
    d.resource_id = "c1";
    d.request_id = "bench-1";
    d.action = i % 2 == 0 ? "view" : "update";
    d.allowed = i % 2 == 0;
    d.reason = d.allowed ? "ALLOW_RULE" : "NO_MATCHING_ALLOW";
    d.rule = d.allowed ? "sa:crm#perm:company" : "";
    rows.push_back(d);
  }
  const std::string blob = Encode(rows);
  INFO("blob " << blob.size() << " bytes for " << rows.size() << " rows");
  CHECK(blob.size() < rows.size() * 23);  // 34 before the mask (version 3)
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunk(blob, &out).ok());
  REQUIRE(out.size() == rows.size());
  for (size_t i = 0; i < out.size(); ++i) CheckSameRow(out[i], rows[i]);
}

TEST_CASE("DecodeChunkIf builds only the rows its filter keeps, as DecodeChunk builds them", "[store][chunk]") {
  std::vector<DecisionRow> rows;
  for (int i = 0; i < 40; ++i) rows.push_back(Row(10 + 3 * i, 5000 + i, i));
  const std::string blob = Encode(rows);
  std::vector<int64_t> heads;
  std::vector<DecisionRow> out;
  REQUIRE(DecodeChunkIf(blob, [&](const DecisionRowHead& h) {
    heads.push_back(h.seq);
    const DecisionRow& want = rows[heads.size() - 1];
    CHECK(h.time == want.time);
    CHECK(h.allowed == want.allowed);
    CHECK(h.model == want.model);
    CHECK(h.action == want.action);
    return h.model == "company" && !h.allowed;
  }, SIZE_MAX, &out).ok());
  CHECK(heads.size() == rows.size());  // every row is seen, in order
  std::vector<DecisionRow> expected;
  for (const DecisionRow& r : rows) {
    if (r.model == "company" && !r.allowed) expected.push_back(r);
  }
  REQUIRE(out.size() == expected.size());
  REQUIRE_FALSE(out.empty());
  for (size_t i = 0; i < out.size(); ++i) CheckSameRow(out[i], expected[i]);
  // A corrupt blob is still an error when the filter keeps nothing.
  out.clear();
  CHECK_FALSE(DecodeChunkIf(blob.substr(0, blob.size() - 1), [](const DecisionRowHead&) { return false; }, 3, &out).ok());
  CHECK(out.empty());
  // At most the last max_rows of those kept: the newest.
  REQUIRE(DecodeChunkIf(blob, [](const DecisionRowHead& h) { return h.allowed; }, 3, &out).ok());
  std::vector<DecisionRow> allowed;
  for (const DecisionRow& r : rows) {
    if (r.allowed) allowed.push_back(r);
  }
  REQUIRE(out.size() == 3);
  for (size_t i = 0; i < 3; ++i) CheckSameRow(out[i], allowed[allowed.size() - 3 + i]);
  out.clear();
  REQUIRE(DecodeChunkIf(blob, nullptr, 0, &out).ok());
  CHECK(out.empty());
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
    bad[0] = 5;
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
