// The decision journal (store/decision_journal.h): its record format, what Open() keeps of a
// file a crash or a corruption left behind, Reset() and its generations; and how SqliteStore
// moves journaled rows into decision_chunk: reads see rows still held in open chunks, with
// stable cursors; a segment goes once its rows are stored; a reopen or a replay after a crash
// keeps every row once (per-principal watermarks); over the backlog bound an append is
// refused; a bulk appender's rows all arrive.
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "store/decision_chunk.h"
#include "store/decision_journal.h"
#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

using testing::CheckSameRow;
using testing::kStringFields;
using testing::MakeDecision;
using testing::OddRow;
using testing::StringField;
using testing::QueryAll;
using testing::TempDir;

constexpr int64_t kHeader = DecisionJournal::kHeaderBytes;

// A small row told apart by `request_id`.
DecisionRow SmallRow(int64_t seq, const std::string& request_id) {
  DecisionRow r = MakeDecision("sa-" + std::to_string(seq % 3), seq % 2 == 0);
  r.seq = seq;
  r.id = "01HJOURNAL" + std::to_string(seq);
  r.time = 1'700'000'000'000 + seq;
  r.request_id = request_id;
  return r;
}

// Bytes of a record holding `rows`, per the layout in decision_journal.h: length, CRC, row
// count; each row is 3 int64, the allowed byte and 17 length-prefixed strings.
int64_t RecordBytes(const std::vector<DecisionRow>& rows) {
  int64_t n = 8 + 4;
  for (const DecisionRow& r : rows) {
    n += 3 * 8 + 1;
    for (const StringField& f : kStringFields) n += 4 + static_cast<int64_t>((r.*f.member).size());
  }
  return n;
}

void CheckSameRows(const std::vector<DecisionRow>& got, const std::vector<DecisionRow>& want) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CheckSameRow(got[i], want[i]);
}

std::vector<DecisionRow> Concat(std::initializer_list<std::vector<DecisionRow>> parts) {
  std::vector<DecisionRow> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::unique_ptr<DecisionJournal> OpenJournal(const std::string& path) {
  auto j = DecisionJournal::Open(path);
  INFO(j.status().message());
  REQUIRE(j.ok());
  return std::move(j).value();
}

// Every row from the first record on, read as the mover does: call after call, each one
// going forward, until end().
std::vector<DecisionRow> ReadAll(const DecisionJournal& j) {
  std::vector<DecisionRow> out, part;
  int64_t offset = kHeader;
  while (offset < j.end()) {
    auto next = j.Read(offset, std::numeric_limits<size_t>::max(), &part);
    INFO(next.status().message());
    REQUIRE(next.ok());
    REQUIRE(*next > offset);
    REQUIRE(*next <= j.end());
    offset = *next;
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

// Appends one record and returns the new end().
int64_t AppendRecord(DecisionJournal& j, const std::vector<DecisionRow>& rows) {
  Status st = j.Append(rows);
  INFO(st.message());
  REQUIRE(st.ok());
  return j.end();
}

std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

void FlipByte(const std::string& path, int64_t offset) {
  std::string bytes = FileBytes(path);
  REQUIRE(offset < static_cast<int64_t>(bytes.size()));
  bytes[offset] = static_cast<char>(bytes[offset] ^ 0x5a);
  WriteFile(path, bytes);
}

// ---------------------------------------------------------------- SqliteStore helpers

std::unique_ptr<SqliteStore> OpenStore(const std::string& path, const Clock& clock,
                                       SqliteStore::Options options = SqliteStore::Options()) {
  auto store = SqliteStore::Open(path, clock, options);
  INFO(store.status().message());
  REQUIRE(store.ok());
  return std::move(store).value();
}

// A single integer from SQL run on the file outside the store.
int64_t RawInt(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  const int64_t v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

// Every decision row stored in the file, read outside the store (ascending seq). Each chunk's
// row_count must be the number of rows its blob holds.
std::vector<DecisionRow> StoredRows(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT row_count, rows FROM decision_chunk", -1, &st, nullptr) ==
          SQLITE_OK);
  std::vector<DecisionRow> rows;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const size_t before = rows.size();
    std::string_view blob(static_cast<const char*>(sqlite3_column_blob(st, 1)),
                          static_cast<size_t>(sqlite3_column_bytes(st, 1)));
    CHECK(DecodeChunk(blob, &rows).ok());
    CHECK(static_cast<int64_t>(rows.size() - before) == sqlite3_column_int64(st, 0));
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::sort(rows.begin(), rows.end(), [](const DecisionRow& a, const DecisionRow& b) { return a.seq < b.seq; });
  return rows;
}

int64_t StoredCount(const std::string& path) { return static_cast<int64_t>(StoredRows(path).size()); }

int64_t StoredRequestIds(const std::string& path, const std::string& prefix = "") {
  std::set<std::string> ids;
  for (const DecisionRow& d : StoredRows(path)) {
    if (d.request_id.rfind(prefix, 0) == 0) ids.insert(d.request_id);
  }
  return static_cast<int64_t>(ids.size());
}

int64_t Count(SqliteStore& store) {
  auto n = store.CountDecisions(kDefaultTenantId, "");
  INFO(n.status().message());
  REQUIRE(n.ok());
  return *n;
}

// Appends `n` rows, row i of principal_of(i), told apart by request_id "<prefix><i>", and
// returns them with seq filled.
std::vector<DecisionRow> AppendEach(SqliteStore& store, const std::string& prefix, int n,
                                    const std::function<std::string(int)>& principal_of) {
  std::vector<DecisionRow> rows;
  for (int i = 0; i < n; ++i) {
    DecisionRow d = MakeDecision(principal_of(i), i % 2 == 0);
    d.request_id = prefix + std::to_string(i);
    rows.push_back(d);
  }
  Status st = store.AppendDecisions(&rows);
  INFO(st.message());
  REQUIRE(st.ok());
  return rows;
}

// AppendEach over the principals sa-0, sa-1, sa-2 in turn.
std::vector<DecisionRow> AppendRows(SqliteStore& store, const std::string& prefix, int n) {
  return AppendEach(store, prefix, n, [](int i) { return "sa-" + std::to_string(i % 3); });
}

std::vector<int64_t> SeqRange(int64_t first, int64_t last) {
  std::vector<int64_t> out;
  for (int64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

std::vector<int64_t> Seqs(const std::vector<DecisionRow>& rows) {
  std::vector<int64_t> out;
  for (const DecisionRow& r : rows) out.push_back(r.seq);
  return out;
}

// ---------------------------------------------------------------- DecisionJournal

TEST_CASE("DecisionJournal round-trips every field of every row", "[store][journal]") {
  std::set<std::string> distinct;
  for (const StringField& f : kStringFields) distinct.insert(OddRow(1).*f.member);
  REQUIRE(distinct.size() == std::size(kStringFields));  // the fixture can catch a swap

  TempDir dir;
  auto j = OpenJournal(dir.File("j"));
  CHECK(j->generation() == 1);
  CHECK(j->end() == kHeader);
  CHECK(std::filesystem::file_size(dir.File("j")) == static_cast<uintmax_t>(kHeader));

  const std::vector<DecisionRow> rec1 = {OddRow(1), OddRow(2)};
  const std::vector<DecisionRow> rec2 = {DecisionRow()};  // all zero, every string empty
  const std::vector<DecisionRow> rec3 = {OddRow(3), OddRow(4), OddRow(5)};
  const int64_t e1 = AppendRecord(*j, rec1);
  CHECK(e1 == kHeader + RecordBytes(rec1));
  const int64_t e2 = AppendRecord(*j, rec2);
  CHECK(e2 == e1 + RecordBytes(rec2));
  const int64_t e3 = AppendRecord(*j, rec3);
  CHECK(e3 == e2 + RecordBytes(rec3));
  CHECK(std::filesystem::file_size(dir.File("j")) == static_cast<uintmax_t>(e3));

  CheckSameRows(ReadAll(*j), Concat({rec1, rec2, rec3}));

  // max_rows counts whole records: a read stops after the record that reaches it.
  struct Case {
    int64_t from;
    size_t max_rows;
    int64_t want_next;
    std::vector<DecisionRow> want_rows;
  };
  const std::vector<Case> cases = {
      {kHeader, 1, e1, rec1},  // a record is never split
      {kHeader, 2, e1, rec1},
      {kHeader, 3, e2, Concat({rec1, rec2})},
      {e1, 1, e2, rec2},
      {e2, 1, e3, rec3},
      {e1, 100, e3, Concat({rec2, rec3})},
      {e3, 100, e3, {}},  // at the end: nothing, same offset
  };
  for (const Case& c : cases) {
    INFO("from " << c.from << " max_rows " << c.max_rows);
    std::vector<DecisionRow> out;
    auto next = j->Read(c.from, c.max_rows, &out);
    REQUIRE(next.ok());
    CHECK(*next == c.want_next);
    CheckSameRows(out, c.want_rows);
  }
}

TEST_CASE("DecisionJournal::Read replaces the rows of its output", "[store][journal]") {
  TempDir dir;
  auto j = OpenJournal(dir.File("j"));
  const std::vector<DecisionRow> rec1 = {SmallRow(1, "a")};
  const std::vector<DecisionRow> rec2 = {SmallRow(2, "b"), SmallRow(3, "c"), SmallRow(4, "d")};
  const int64_t e1 = AppendRecord(*j, rec1);
  const int64_t e2 = AppendRecord(*j, rec2);
  // More leftover rows than a record holds, with other (mostly longer) strings: none may
  // survive, whole or in part.
  std::vector<DecisionRow> out = {OddRow(10), OddRow(11), OddRow(12), OddRow(13), OddRow(14)};
  auto next = j->Read(kHeader, 1, &out);
  REQUIRE(next.ok());
  CHECK(*next == e1);
  CheckSameRows(out, rec1);
  out.push_back(OddRow(15));
  next = j->Read(e1, 10, &out);  // fewer leftovers than rows
  REQUIRE(next.ok());
  CHECK(*next == e2);
  CheckSameRows(out, rec2);
  next = j->Read(e2, 10, &out);
  REQUIRE(next.ok());
  CHECK(*next == e2);
  CHECK(out.empty());
}

TEST_CASE("A reopened DecisionJournal has every record and its generation", "[store][journal]") {
  TempDir dir;
  const std::string path = dir.File("j");
  const std::vector<DecisionRow> rec1 = {OddRow(1)};
  const std::vector<DecisionRow> rec2 = {SmallRow(2, "b"), SmallRow(3, "c")};
  const std::vector<DecisionRow> rec3 = {OddRow(4), SmallRow(5, "e")};
  int64_t end = 0;
  {
    auto j = OpenJournal(path);
    REQUIRE(j->Reset().ok());  // generation 2
    AppendRecord(*j, rec1);
    AppendRecord(*j, rec2);
    end = AppendRecord(*j, rec3);
  }
  {
    auto j = OpenJournal(path);
    CHECK(j->generation() == 2);
    CHECK(j->end() == end);
    CheckSameRows(ReadAll(*j), Concat({rec1, rec2, rec3}));
    end = AppendRecord(*j, {SmallRow(6, "f")});  // goes after the records found
  }
  auto j = OpenJournal(path);
  CHECK(j->generation() == 2);
  CHECK(j->end() == end);
  CheckSameRows(ReadAll(*j), Concat({rec1, rec2, rec3, {SmallRow(6, "f")}}));
}

TEST_CASE("DecisionJournal drops a torn last record at Open and overwrites it",
          "[store][journal]") {
  TempDir dir;
  const std::string path = dir.File("j");
  const std::vector<DecisionRow> rec1 = {SmallRow(1, "a1"), SmallRow(2, "a2")};
  const std::vector<DecisionRow> rec2 = {SmallRow(3, "b1")};
  const std::vector<DecisionRow> rec3 = {SmallRow(4, "torn1"), SmallRow(5, "torn2"),
                                         SmallRow(6, "torn3")};
  int64_t e2 = 0, e3 = 0;
  {
    auto j = OpenJournal(path);
    AppendRecord(*j, rec1);
    e2 = AppendRecord(*j, rec2);
    e3 = AppendRecord(*j, rec3);
  }
  // Where the write of record 3 stopped.
  const auto [where, cut] = GENERATE(table<std::string, int64_t>({
      {"inside the length", 1},
      {"inside the CRC", 6},
      {"after the record header", 8},
      {"inside the row count", 10},
      {"in the middle of the rows", -2},
      {"one byte short", -1},
  }));
  const int64_t size = cut == -2 ? e2 + (e3 - e2) / 2 : cut == -1 ? e3 - 1 : e2 + cut;
  INFO("torn " << where << ": file cut at " << size << " of " << e3);
  std::filesystem::resize_file(path, static_cast<uintmax_t>(size));

  const std::vector<DecisionRow> rec4 = {SmallRow(4, "new1")};  // smaller than record 3
  int64_t e4 = 0;
  {
    auto j = OpenJournal(path);
    CHECK(j->generation() == 1);
    CHECK(j->end() == e2);
    CheckSameRows(ReadAll(*j), Concat({rec1, rec2}));
    e4 = AppendRecord(*j, rec4);
    CHECK(e4 == e2 + RecordBytes(rec4));
    CheckSameRows(ReadAll(*j), Concat({rec1, rec2, rec4}));
  }
  auto j = OpenJournal(path);
  CHECK(j->end() == e4);
  CheckSameRows(ReadAll(*j), Concat({rec1, rec2, rec4}));
}

TEST_CASE("A corrupt record ends the DecisionJournal at Open", "[store][journal]") {
  TempDir dir;
  const std::string path = dir.File("j");
  const std::vector<DecisionRow> rec1 = {SmallRow(1, "a1"), SmallRow(2, "a2")};
  const std::vector<DecisionRow> rec2 = {SmallRow(3, "b1"), OddRow(4)};
  const std::vector<DecisionRow> rec3 = {SmallRow(5, "c1")};
  int64_t e1 = 0, e2 = 0, e3 = 0;
  {
    auto j = OpenJournal(path);
    e1 = AppendRecord(*j, rec1);
    e2 = AppendRecord(*j, rec2);
    e3 = AppendRecord(*j, rec3);
  }
  const auto [where, at] = GENERATE(table<std::string, int64_t>({
      {"length", 0},
      {"CRC", 5},
      {"row count", 8},
      {"first row's seq", 12},
      {"middle of the payload", -2},
      {"last payload byte", -1},
  }));
  const int64_t offset = at == -2 ? e1 + (e2 - e1) / 2 : at == -1 ? e2 - 1 : e1 + at;
  INFO("byte flipped in record 2's " << where << " at " << offset);
  FlipByte(path, offset);
  CHECK(std::filesystem::file_size(path) == static_cast<uintmax_t>(e3));

  const std::vector<DecisionRow> rec4 = {SmallRow(3, "new1")};
  auto j = OpenJournal(path);
  CHECK(j->end() == e1);
  CheckSameRows(ReadAll(*j), rec1);
  AppendRecord(*j, rec4);
  CheckSameRows(ReadAll(*j), Concat({rec1, rec4}));
}

TEST_CASE("DecisionJournal::Reset starts a new generation that ignores the old records",
          "[store][journal]") {
  TempDir dir;
  const std::string path = dir.File("j");
  DecisionRow big = OddRow(1);
  big.request_id = "old-A";
  const std::vector<DecisionRow> old1 = {big};
  const std::vector<DecisionRow> old2 = {SmallRow(2, "old-B"), SmallRow(3, "old-C")};
  auto j = OpenJournal(path);
  const int64_t e1 = AppendRecord(*j, old1);
  const int64_t old_end = AppendRecord(*j, old2);

  REQUIRE(j->Reset().ok());
  CHECK(j->generation() == 2);
  CHECK(j->end() == kHeader);
  CHECK(ReadAll(*j).empty());
  const std::string header = FileBytes(path).substr(0, kHeader);
  CHECK(header == std::string("WDJ1\x02\x00\x00\x00", 8));
  // The file keeps its size: the old generation's bytes are still there.
  CHECK(std::filesystem::file_size(path) == static_cast<uintmax_t>(old_end));

  // The new record either ends inside the old first one, or exactly where the old second one
  // begins (whose header is then intact: only the generation in its CRC rejects it).
  const bool same_size = GENERATE(false, true);
  DecisionRow fresh = same_size ? big : SmallRow(7, "new-A");
  if (same_size) {
    fresh.request_id = "new-A";
    fresh.seq = 7;
    fresh.resource_id = std::string(fresh.resource_id.size(), 'n');
  }
  const std::vector<DecisionRow> rec = {fresh};
  const int64_t new_end = AppendRecord(*j, rec);
  INFO("new record same size as the old first one: " << same_size);
  if (same_size) {
    REQUIRE(new_end == e1);
  } else {
    REQUIRE(new_end < e1);
  }
  CheckSameRows(ReadAll(*j), rec);
  j.reset();

  auto reopened = OpenJournal(path);
  CHECK(reopened->generation() == 2);
  CHECK(reopened->end() == new_end);
  CheckSameRows(ReadAll(*reopened), rec);

  // A second Reset, after a reopen, goes on counting generations.
  REQUIRE(reopened->Reset().ok());
  CHECK(reopened->generation() == 3);
  reopened.reset();
  auto again = OpenJournal(path);
  CHECK(again->generation() == 3);
  CHECK(again->end() == kHeader);
  CHECK(ReadAll(*again).empty());
}

TEST_CASE("DecisionJournal::Open refuses a file that is not a journal and leaves it alone",
          "[store][journal]") {
  TempDir dir;
  const std::string path = dir.File("j");
  const std::string bytes = GENERATE(
      std::string("garbage!"), std::string(4096, 'x'), std::string("WDJ2\x01\x00\x00\x00", 8),
      std::string("wdj1\x01\x00\x00\x00rest", 12), std::string(8, '\0'));
  WriteFile(path, bytes);
  auto j = DecisionJournal::Open(path);
  REQUIRE_FALSE(j.ok());
  CHECK(j.status().code() == StatusCode::kFailedPrecondition);
  CHECK(FileBytes(path) == bytes);
}

TEST_CASE("DecisionJournal::Open writes a header into an empty or torn-header file",
          "[store][journal]") {
  TempDir dir;
  const std::string path = dir.File("j");
  const std::string bytes = GENERATE(std::string(), std::string("WDJ"),
                                     std::string("WDJ1\x05\x00", 6), std::string("xyz"));
  WriteFile(path, bytes);
  {
    auto j = OpenJournal(path);
    CHECK(j->generation() == 1);
    CHECK(j->end() == kHeader);
    CHECK(FileBytes(path) == std::string("WDJ1\x01\x00\x00\x00", 8));
    AppendRecord(*j, {SmallRow(1, "a")});
  }
  auto j = OpenJournal(path);
  CHECK(j->generation() == 1);
  CheckSameRows(ReadAll(*j), {SmallRow(1, "a")});
}

TEST_CASE("DecisionJournal::Open reports Unavailable when the file cannot be created",
          "[store][journal]") {
  auto j = DecisionJournal::Open("/nonexistent-dir-warden/x/w.db-decisions");
  REQUIRE_FALSE(j.ok());
  CHECK(j.status().code() == StatusCode::kUnavailable);
}

// ---------------------------------------------------------------- SqliteStore and the journal

// The journal's segment files beside the database (`<db>-decisions.<n>`), oldest first.
std::vector<std::string> SegmentFiles(const std::string& path) {
  std::vector<std::string> out;
  const std::string prefix = std::filesystem::path(path).filename().string() + "-decisions.";
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path())) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string NewestSegment(const std::string& path) {
  auto files = SegmentFiles(path);
  REQUIRE(!files.empty());
  return files.back();
}

// What a kill -9 of the process leaves, taken while `store` is open and idle: the database,
// its WAL and the journal's segments, copied into `to` (as `w.db`).
std::string CrashCopy(const std::string& path, const TempDir& to) {
  const std::string copy = to.File("w.db");
  for (const char* suffix : {"", "-wal"}) {
    if (std::filesystem::exists(path + suffix)) std::filesystem::copy_file(path + suffix, copy + suffix);
  }
  for (const std::string& seg : SegmentFiles(path)) {
    std::filesystem::copy_file(seg, to.File(std::filesystem::path(seg).filename().string()));
  }
  return copy;
}

// AppendEach with every row of `principal`.
std::vector<DecisionRow> AppendFor(SqliteStore& store, const std::string& principal, const std::string& prefix,
                                   int n) {
  return AppendEach(store, prefix, n, [&](int) { return principal; });
}

// Every row of the default tenant, newest first, paged `limit` at a time.
std::vector<DecisionRow> QueryPaged(SqliteStore& store, int limit, const std::string& principal = "") {
  std::vector<DecisionRow> out;
  DecisionQuery q;
  q.tenant_id = kDefaultTenantId;
  q.principal_id = principal;
  q.limit = limit;
  for (;;) {
    auto page = store.Query(q);
    INFO(page.status().message());
    REQUIRE(page.ok());
    out.insert(out.end(), page->items.begin(), page->items.end());
    if (page->next_cursor.empty()) return out;
    q.cursor = page->next_cursor;
  }
}

SqliteStore::Options NoMover() {
  SqliteStore::Options options;
  options.decision_mover = false;
  return options;
}

TEST_CASE("SqliteStore reads see journaled rows at once and a reopen keeps each row once",
          "[store][journal]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  std::vector<DecisionRow> appended;
  {
    auto store = OpenStore(path, clock);
    for (int n : {10, 1, 25}) {
      auto rows = AppendRows(*store, "s1-" + std::to_string(appended.size()) + "-", n);
      appended.insert(appended.end(), rows.begin(), rows.end());
    }
    CHECK(Seqs(appended) == SeqRange(1, 36));  // in append order, no gaps
    CHECK(Count(*store) == 36);
    auto all = QueryAll(*store);  // newest first
    REQUIRE(all.size() == appended.size());
    for (size_t i = 0; i < all.size(); ++i) CheckSameRow(all[i], appended[appended.size() - 1 - i]);
    CHECK(SegmentFiles(path).size() == 1);
  }
  // Closed: every row is in the table once, and the watermark is the newest seq.
  CHECK(StoredCount(path) == 36);
  CHECK(StoredRequestIds(path) == 36);
  CHECK(RawInt(path, "SELECT last_seq FROM decision_journal") == 36);
  {
    auto store = OpenStore(path, clock);
    CHECK(Count(*store) == 36);
    auto more = AppendRows(*store, "s2-", 5);
    CHECK(Seqs(more) == SeqRange(37, 41));  // seq goes on after the reopen
    appended.insert(appended.end(), more.begin(), more.end());
  }
  auto store = OpenStore(path, clock);
  CHECK(Count(*store) == 41);
  auto all = QueryAll(*store);
  REQUIRE(all.size() == appended.size());
  for (size_t i = 0; i < all.size(); ++i) CheckSameRow(all[i], appended[appended.size() - 1 - i]);
  CHECK(StoredRequestIds(path) == 41);
}

TEST_CASE("Rows held in open chunks are read in order, with cursors that stay put", "[store][journal]") {
  TempDir dir;
  FakeClock clock;  // never advances here: no chunk gets old enough to be written
  const std::string path = dir.File("w.db");
  auto store = OpenStore(path, clock, NoMover());
  std::vector<DecisionRow> appended;
  for (int round = 0; round < 5; ++round) {
    for (int p = 0; p < 7; ++p) {
      auto rows = AppendFor(*store, "sa-" + std::to_string(p), "r" + std::to_string(round) + "-", 3);
      appended.insert(appended.end(), rows.begin(), rows.end());
    }
  }
  REQUIRE(store->MoveDecisions().ok());
  CHECK(StoredCount(path) == 0);  // all of them in memory (and in the journal)
  CHECK(Count(*store) == 105);
  CHECK(store->CountDecisions(kDefaultTenantId, "sa-3").value() == 15);
  CHECK(store->DecisionBacklogBytes() > 0);

  // Tenant-wide and per principal, newest first, every row once.
  auto all = QueryPaged(*store, 10);
  REQUIRE(all.size() == appended.size());
  for (size_t i = 0; i < all.size(); ++i) CheckSameRow(all[i], appended[appended.size() - 1 - i]);
  auto one = QueryPaged(*store, 4, "sa-3");
  REQUIRE(one.size() == 15);
  for (size_t i = 1; i < one.size(); ++i) CHECK(one[i].seq < one[i - 1].seq);

  // A cursor taken while the rows were held pages on the same way once some are written and
  // new rows come in: no row twice, none skipped.
  DecisionQuery q;
  q.tenant_id = kDefaultTenantId;
  q.limit = 20;
  auto first = store->Query(q);
  REQUIRE(first.ok());
  AppendFor(*store, "sa-0", "late-", 600);
  REQUIRE(store->MoveDecisions().ok());  // fills and writes a chunk of sa-0
  CHECK(StoredCount(path) == 512);
  clock.Advance(60'000);
  REQUIRE(store->MoveDecisions().ok());  // every chunk is old now: all written
  CHECK(StoredCount(path) == 705);
  CHECK(store->DecisionBacklogBytes() == 0);
  std::vector<DecisionRow> paged = first->items;
  q.cursor = first->next_cursor;
  for (; !q.cursor.empty();) {
    auto page = store->Query(q);
    REQUIRE(page.ok());
    paged.insert(paged.end(), page->items.begin(), page->items.end());
    q.cursor = page->next_cursor;
  }
  REQUIRE(paged.size() == appended.size());
  for (size_t i = 0; i < paged.size(); ++i) CheckSameRow(paged[i], appended[appended.size() - 1 - i]);
}

TEST_CASE("A journal segment is deleted once every row in it is stored", "[store][journal]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  SqliteStore::Options options = NoMover();
  options.decision_segment_bytes = 4096;  // ~10 rows a segment
  options.decision_open_age_ms = 5000;
  auto store = OpenStore(path, clock, options);
  AppendFor(*store, "slow", "s-", 1);  // its chunk stays open: it holds back every segment
  for (int i = 0; i < 20; ++i) AppendFor(*store, "busy", "b" + std::to_string(i) + "-", 30);
  REQUIRE(store->MoveDecisions().ok());
  REQUIRE(store->MoveDecisions().ok());
  const size_t held = SegmentFiles(path).size();
  CHECK(held > 10);
  CHECK(StoredCount(path) == 512);  // busy's first full chunk; slow's row is held
  CHECK(RawInt(path, "SELECT last_seq FROM decision_journal") == 0);  // slow's row is seq 1

  clock.Advance(6'000);  // past decision_open_age_ms: every open chunk is written
  REQUIRE(store->MoveDecisions().ok());
  CHECK(StoredCount(path) == 601);
  CHECK(RawInt(path, "SELECT last_seq FROM decision_journal") == 601);
  CHECK(SegmentFiles(path).size() == 1);  // the one appends go to
  CHECK(Count(*store) == 601);
  CHECK(store->DecisionBacklogBytes() == 0);
}

TEST_CASE("A replay after a crash stores each row once, skipping each principal's stored rows",
          "[store][journal]") {
  TempDir dir, crash;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  auto store = OpenStore(path, clock, NoMover());
  // Interleaved: "hot" fills chunks that are written; the others' chunks stay open, so the
  // watermark stays behind rows that are stored.
  std::vector<DecisionRow> appended;
  for (int round = 0; round < 8; ++round) {
    for (const std::string p : {"hot", "a", "b", "c"}) {
      auto rows = AppendFor(*store, p, p + std::to_string(round) + "-", p == "hot" ? 100 : 2);
      appended.insert(appended.end(), rows.begin(), rows.end());
    }
  }
  REQUIRE(store->MoveDecisions().ok());
  REQUIRE(StoredCount(path) == 512);
  REQUIRE(RawInt(path, "SELECT last_seq FROM decision_journal") == 100);  // a's first row is 101

  // kill -9 now; and, as a harder case, the watermark lost too (every row replayed from seq 1).
  const bool lose_watermark = GENERATE(false, true);
  INFO("watermark set back: " << lose_watermark);
  const std::string copy = CrashCopy(path, crash);
  if (lose_watermark) RawExec(copy, "UPDATE decision_journal SET last_seq = 0");
  {
    auto recovered = OpenStore(copy, clock, NoMover());
    CHECK(Count(*recovered) == static_cast<int64_t>(appended.size()));
    auto all = QueryPaged(*recovered, 50);
    REQUIRE(all.size() == appended.size());
    for (size_t i = 0; i < all.size(); ++i) CheckSameRow(all[i], appended[appended.size() - 1 - i]);
    CHECK(SegmentFiles(copy).size() == 1);  // the replayed segments are gone, a new one started
    const auto next = static_cast<int64_t>(appended.size()) + 1;
    CHECK(Seqs(AppendRows(*recovered, "after-", 1)) == SeqRange(next, next));
  }
  const auto stored = StoredRows(copy);
  CHECK(stored.size() == appended.size() + 1);
  std::set<int64_t> seqs;
  for (const DecisionRow& d : stored) seqs.insert(d.seq);
  CHECK(seqs.size() == stored.size());
}

TEST_CASE("Over the backlog bound an append is refused and stores nothing", "[store][journal]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  SqliteStore::Options options = NoMover();
  options.decision_max_backlog_bytes = 1;  // any unread row
  auto store = OpenStore(path, clock, options);
  AppendRows(*store, "first-", 2);
  std::vector<DecisionRow> rows = {MakeDecision("sa-1", true)};
  Status st = store->AppendDecisions(&rows);
  CHECK(st.code() == StatusCode::kResourceExhausted);
  CHECK(rows[0].seq == 0);
  // A read moves what is journaled; appends are taken again.
  CHECK(Count(*store) == 2);
  CHECK(Seqs(AppendRows(*store, "again-", 1)) == SeqRange(3, 3));
}

TEST_CASE("SqliteStore::Open stores the rows a crash left in the journal", "[store][journal]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  {
    auto store = OpenStore(path, clock);
    CHECK(Seqs(AppendRows(*store, "before-", 5)) == SeqRange(1, 5));
  }
  REQUIRE(StoredCount(path) == 5);

  // What a killed process leaves: rows journaled (seq, id and time already given) and not yet
  // stored, in the segment appends went to, in a newer segment, or in the single journal file
  // of a warden before segments (`<db>-decisions`).
  const int where = GENERATE(0, 1, 2);
  INFO("rows left in " << (where == 0 ? "the last segment" : where == 1 ? "a new segment" : "the old journal"));
  std::vector<DecisionRow> crashed;
  for (int64_t seq = 6; seq <= 12; ++seq) {
    crashed.push_back(SmallRow(seq, "crash-" + std::to_string(seq)));
  }
  {
    const std::string file = where == 0 ? NewestSegment(path)
                             : where == 1 ? path + "-decisions.0000000099"
                                          : path + "-decisions";
    auto j = OpenJournal(file);
    AppendRecord(*j, std::vector<DecisionRow>(crashed.begin(), crashed.begin() + 4));
    AppendRecord(*j, std::vector<DecisionRow>(crashed.begin() + 4, crashed.end()));
  }
  REQUIRE(StoredCount(path) == 5);

  {
    auto store = OpenStore(path, clock);
    // Stored during Open, before any read.
    CHECK(StoredCount(path) == 12);
    CHECK(Count(*store) == 12);
    auto all = QueryAll(*store);
    REQUIRE(all.size() == 12);
    for (size_t i = 0; i < crashed.size(); ++i) {
      CheckSameRow(all[i], crashed[crashed.size() - 1 - i]);
    }
    CHECK(Seqs(AppendRows(*store, "after-", 2)) == SeqRange(13, 14));
    CHECK_FALSE(std::filesystem::exists(path + "-decisions"));
  }
  for (int reopen = 0; reopen < 2; ++reopen) {
    auto store = OpenStore(path, clock);
    CHECK(Count(*store) == 14);
    CHECK(StoredRequestIds(path) == 14);
    CHECK(StoredRows(path).back().seq == 14);
  }
}

TEST_CASE("SqliteStore drops a torn journal tail and gives its seqs out again",
          "[store][journal]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  {
    auto store = OpenStore(path, clock);
    AppendRows(*store, "before-", 5);
  }
  std::vector<DecisionRow> kept = {SmallRow(6, "kept-6"), SmallRow(7, "kept-7"),
                                   SmallRow(8, "kept-8")};
  std::vector<DecisionRow> torn = {SmallRow(9, "torn-9"), SmallRow(10, "torn-10")};
  {
    const std::string file = NewestSegment(path);
    auto j = OpenJournal(file);
    AppendRecord(*j, kept);
    const int64_t end = AppendRecord(*j, torn);
    j.reset();
    std::filesystem::resize_file(file, static_cast<uintmax_t>(end - RecordBytes(torn) / 2));
  }
  {
    auto store = OpenStore(path, clock);
    CHECK(Count(*store) == 8);
    CHECK(Seqs(AppendRows(*store, "after-", 2)) == SeqRange(9, 10));
  }
  auto store = OpenStore(path, clock);
  CHECK(Count(*store) == 10);
  CHECK(StoredRequestIds(path, "torn-") == 0);
  CHECK(StoredRequestIds(path, "after-") == 2);
}

TEST_CASE("Concurrent appenders get gapless seqs and every row reaches decision_chunk",
          "[store][journal]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  auto store = OpenStore(path, clock);
  constexpr int kThreads = 4, kBatches = 50, kRows = 20;
  std::vector<std::vector<int64_t>> seqs(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatches; ++b) {
        std::vector<DecisionRow> rows(kRows, MakeDecision("sa-" + std::to_string(t), true));
        if (!store->AppendDecisions(&rows).ok()) return;
        for (const DecisionRow& r : rows) seqs[t].push_back(r.seq);
      }
    });
  }
  // Reads move rows concurrently with the appenders and the background mover.
  int64_t last_count = 0;
  for (int i = 0; i < 20; ++i) {
    const int64_t n = Count(*store);
    CHECK(n >= last_count);
    last_count = n;
  }
  for (auto& th : threads) th.join();
  std::vector<int64_t> all;
  for (int t = 0; t < kThreads; ++t) {
    REQUIRE(seqs[t].size() == static_cast<size_t>(kBatches * kRows));
    for (size_t i = 1; i < seqs[t].size(); ++i) CHECK(seqs[t][i] > seqs[t][i - 1]);
    all.insert(all.end(), seqs[t].begin(), seqs[t].end());
  }
  std::sort(all.begin(), all.end());
  CHECK(all == SeqRange(1, kThreads * kBatches * kRows));
  CHECK(Count(*store) == kThreads * kBatches * kRows);
  CHECK(Seqs(QueryAll(*store)).front() == kThreads * kBatches * kRows);
  REQUIRE(store->FlushDecisions().ok());
  CHECK(StoredCount(path) == kThreads * kBatches * kRows);
}

// Appends 200 batches of 500 ~650-byte rows (~65 MB of journal records) as fast as the log
// takes them (a refused batch, the mover behind, is tried again), checkpointing now and then
// so the WAL stays small; returns the largest the journal's segments reached together.
constexpr int kBulkRows = 200 * 500;

uintmax_t BulkAppend(SqliteStore& store, const std::string& path) {
  DecisionRow row = MakeDecision("sa-1", true);
  row.path = "/" + std::string(400, 'p');
  REQUIRE(RecordBytes(std::vector<DecisionRow>(500, row)) * 200 > (50ll << 20));
  uintmax_t largest = 0;
  for (int b = 0; b < 200; ++b) {
    std::vector<DecisionRow> rows(500, row);
    Status st = store.AppendDecisions(&rows);
    while (st.code() == StatusCode::kResourceExhausted) {
      std::this_thread::yield();
      st = store.AppendDecisions(&rows);
    }
    INFO(st.message());
    REQUIRE(st.ok());
    uintmax_t total = 0;
    for (const std::string& seg : SegmentFiles(path)) {
      std::error_code ec;  // the mover may delete it meanwhile
      const uintmax_t n = std::filesystem::file_size(seg, ec);
      if (!ec) total += n;
    }
    largest = std::max(largest, total);
    if (b % 20 == 19) REQUIRE(store.Checkpoint().ok());
  }
  return largest;
}

SqliteStore::Options SmallWal() {
  SqliteStore::Options options;
  options.wal_truncate_bytes = 16 << 20;
  return options;
}

TEST_CASE("A bulk appender's rows are all stored, across segments", "[store][journal]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  auto store = OpenStore(path, clock, SmallWal());
  const uintmax_t largest = BulkAppend(*store, path);
  INFO("largest journal: " << largest << " bytes");
  CHECK(Count(*store) == kBulkRows);
  store.reset();
  CHECK(SegmentFiles(path).size() == 1);  // the others were deleted on the way or at close
  CHECK(RawInt(path, "SELECT last_seq FROM decision_journal") == kBulkRows);
  store = OpenStore(path, clock);
  CHECK(Count(*store) == kBulkRows);
  CHECK(Seqs(AppendRows(*store, "after-", 1)) == SeqRange(kBulkRows + 1, kBulkRows + 1));
}

// The journal stays near its soft bound (64 MiB) and never past its hard one (256 MiB) however
// fast the appender: segments go once their rows are stored.
TEST_CASE("A bulk appender keeps the journal under its bound", "[store][journal]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  auto store = OpenStore(path, clock, SmallWal());
  const uintmax_t largest = BulkAppend(*store, path);
  CHECK(largest < (80ull << 20));
  CHECK(Count(*store) == kBulkRows);
}

TEST_CASE("seq never goes back, even when every row was pruned before a reopen",
          "[store][journal]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("w.db");
  {
    auto store = OpenStore(path, clock);
    AppendRows(*store, "old-", 10);
    REQUIRE(store->FlushDecisions().ok());  // Prune only sees stored rows
    clock.Advance(60'000);
    auto pruned = store->Prune({.max_age_ms = 1'000}, 100);
    REQUIRE(pruned.ok());
    CHECK(*pruned == 10);
    CHECK(Count(*store) == 0);
  }
  // The journal still holds the pruned rows: they must not be stored again.
  auto store = OpenStore(path, clock);
  CHECK(Count(*store) == 0);
  CHECK(Seqs(AppendRows(*store, "new-", 2)) == SeqRange(11, 12));
}

}  // namespace
}  // namespace warden::store
