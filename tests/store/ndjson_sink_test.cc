// The NDJSON decision export: one JSON line per row with every field, rotation by size with a
// bounded number of kept files, owner-only files.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "store/ndjson_sink.h"
#include "tests/store/store_test_util.h"

namespace warden::store {
namespace {

using testing::MakeDecision;
using testing::TempDir;

std::vector<nlohmann::json> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

TEST_CASE("NdjsonSink writes one JSON line per decision, every field, escaped", "[store][export]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("decisions.ndjson");
  auto sink = NdjsonSink::Open({.path = path}, clock);
  REQUIRE(sink.ok());
  DecisionRow r = MakeDecision("sa-1", true, "company", "view");
  r.id = "01JZZZZZZZZZZZZZZZZZZZZZZZ";
  r.seq = 42;
  r.time = 1'700'000'000'123;
  r.path = "/a\"b\\c\nd\x01";
  r.eval_error = "cannot evaluate a condition";
  r.latency_us = 17;
  DecisionRow anonymous = MakeDecision("", false);
  anonymous.principal_name.clear();
  anonymous.token_id.clear();
  REQUIRE((*sink)->Write({r, anonymous}).ok());
  REQUIRE((*sink)->Sync().ok());
  const auto lines = Lines(path);
  REQUIRE(lines.size() == 2);
  const nlohmann::json& j = lines[0];
  CHECK(j["decision_id"] == r.id);
  CHECK(j["seq"] == 42);
  CHECK(j["time"] == "2023-11-14T22:13:20.123Z");
  CHECK(j["tenant_id"] == "default");
  CHECK(j["principal"] == nlohmann::json{{"type", "service_account"}, {"id", "sa-1"}, {"name", "name-sa-1"}, {"token_id", "tok0000001"}});
  CHECK(j["model"] == "company");
  CHECK(j["action"] == "view");
  CHECK(j["allowed"] == true);
  CHECK(j["eval_error"] == true);
  CHECK(j["context"]["path"] == r.path);
  CHECK(j["latency_us"] == 17);
  CHECK(lines[1]["principal"]["id"].is_null());
  CHECK(lines[1]["principal"]["token_id"].is_null());
  struct stat st{};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  // Reopening appends.
  sink = NdjsonSink::Open({.path = path}, clock);
  REQUIRE(sink.ok());
  REQUIRE((*sink)->Write({r}).ok());
  CHECK(Lines(path).size() == 3);
}

TEST_CASE("NdjsonSink rotates by size and keeps a bounded number of files", "[store][export]") {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.File("decisions.ndjson");
  auto sink = NdjsonSink::Open({.path = path, .max_bytes = 4096, .keep_files = 3}, clock);
  REQUIRE(sink.ok());
  const std::vector<DecisionRow> batch(10, MakeDecision("sa-1", true));  // ~4 KiB of lines
  int written = 0;
  for (int i = 0; i < 20; ++i) {
    clock.Advance(1000);
    REQUIRE((*sink)->Write(batch).ok());
    written += 10;
  }
  int files = 0;
  size_t lines = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    ++files;
    lines += Lines(e.path().string()).size();
    CHECK(std::filesystem::file_size(e.path()) < 4096 + 10 * 1024);
  }
  CHECK(files == 4);  // the current file and three rotated ones
  CHECK(lines < static_cast<size_t>(written));  // the oldest went
  CHECK(lines >= 30);
  CHECK(NdjsonSink::Open({.path = path, .max_bytes = 100}, clock).status().code() == StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace warden::store
