// PolicyRevision: the git commit of the policy folder, or a content hash of its files.
#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/crypto.h"
#include "engine/engine.h"

namespace warden::engine {

namespace {

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''"; else out += c;
  }
  return out + "'";
}

// Runs `command`, returns its stdout, or nullopt when it exits non-zero.
std::optional<std::string> Run(const std::string& command) {
  FILE* pipe = popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) return std::nullopt;
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int rc = pclose(pipe);
  if (rc != 0) return std::nullopt;
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string ContentHash(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, std::string>> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    files.emplace_back(fs::relative(it->path(), dir, ec).generic_string(), ss.str());
  }
  std::sort(files.begin(), files.end());
  std::string data;
  for (const auto& [path, content] : files) {
    data += path;
    data += '\0';
    data += std::to_string(content.size());
    data += '\0';
    data += content;
  }
  return "sha256:" + Sha256Hex(data);
}

}  // namespace

std::string PolicyRevision(const std::string& dir) {
  std::string git = "git -C " + ShellQuote(dir);
  auto inside = Run(git + " rev-parse --is-inside-work-tree");
  if (inside && Trim(*inside) == "true") {
    auto head = Run(git + " rev-parse HEAD");
    if (head && !Trim(*head).empty()) {
      auto status = Run(git + " status --porcelain -- .");
      std::string rev = Trim(*head);
      if (!status || !Trim(*status).empty()) rev += "-dirty";
      return rev;
    }
  }
  return ContentHash(dir);
}

}  // namespace warden::engine
