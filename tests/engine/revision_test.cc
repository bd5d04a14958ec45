// PolicyRevision: git commit (+ "-dirty") inside a work tree, content hash outside one.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "engine/engine.h"

namespace warden::engine {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "warden-rev-XXXXXX").string();
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path); }
  void Write(const std::string& rel, const std::string& content) const {
    fs::create_directories((path / rel).parent_path());
    std::ofstream(path / rel) << content;
  }
  int Run(const std::string& cmd) const {
    return std::system(("cd '" + path.string() + "' && " + cmd + " >/dev/null 2>&1").c_str());
  }
};

std::string Capture(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p)) out += buf;
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

TEST_CASE("Outside git the revision is a content hash of names and contents", "[revision]") {
  TempDir dir;
  REQUIRE(dir.Run("git rev-parse --is-inside-work-tree") != 0);  // the temp dir is not in a repo
  dir.Write("catalog.yaml", "a");
  dir.Write("roles/x.yaml", "b");
  std::string r1 = PolicyRevision(dir.path.string());
  CHECK(r1.rfind("sha256:", 0) == 0);
  CHECK(r1.size() == 7 + 64);
  CHECK(PolicyRevision(dir.path.string()) == r1);  // stable
  dir.Write("roles/x.yaml", "c");
  std::string r2 = PolicyRevision(dir.path.string());
  CHECK(r2 != r1);
  // Same contents under another name is another tree.
  fs::rename(dir.path / "roles/x.yaml", dir.path / "roles/y.yaml");
  CHECK(PolicyRevision(dir.path.string()) != r2);
}

TEST_CASE("Inside git the revision is the commit, with -dirty for local changes", "[revision]") {
  TempDir dir;
  dir.Write("policies/catalog.yaml", "a");
  dir.Write("other/readme", "x");
  REQUIRE(dir.Run("git init -q . && git -c user.email=t@t -c user.name=t add . && "
                  "git -c user.email=t@t -c user.name=t commit -qm init") == 0);
  std::string head = Capture("git -C '" + dir.path.string() + "' rev-parse HEAD");
  REQUIRE(head.size() == 40);
  std::string policies = (dir.path / "policies").string();
  CHECK(PolicyRevision(policies) == head);
  // A change outside the policy folder does not make it dirty.
  dir.Write("other/readme", "y");
  CHECK(PolicyRevision(policies) == head);
  dir.Write("policies/catalog.yaml", "b");
  CHECK(PolicyRevision(policies) == head + "-dirty");
  // Untracked files count as changes too.
  dir.Run("git checkout -q -- policies");
  CHECK(PolicyRevision(policies) == head);
  dir.Write("policies/roles/new.yaml", "n");
  CHECK(PolicyRevision(policies) == head + "-dirty");
}

}  // namespace
}  // namespace warden::engine
