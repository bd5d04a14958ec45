#include "engine/yaml_reader.h"

#include <set>
#include <utility>

namespace warden::engine {

namespace {

// Flow collections nest without indentation; reject absurd nesting before yaml-cpp recurses.
// Quotes and comments are skipped roughly (a false positive only needs 64 brackets in a row).
std::optional<size_t> FlowDepthExceeded(std::string_view text) {
  int depth = 0;
  char quote = 0;
  bool comment = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (comment) {
      if (c == '\n') comment = false;
      continue;
    }
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    switch (c) {
      case '#': comment = i == 0 || text[i - 1] == ' ' || text[i - 1] == '\n' || text[i - 1] == '\t'; break;
      case '"': case '\'':
        if (i == 0 || text[i - 1] == ' ' || text[i - 1] == '[' || text[i - 1] == '{' ||
            text[i - 1] == ',' || text[i - 1] == ':' || text[i - 1] == '\n') {
          quote = c;
        }
        break;
      case '[': case '{':
        if (++depth > kMaxYamlDepth) return i;
        break;
      case ']': case '}':
        if (depth > 0) --depth;
        break;
      case '\n':
        break;
      default: break;
    }
  }
  return std::nullopt;
}

Pos PosFromOffset(std::string_view text, size_t offset) {
  Pos p;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++p.line;
      p.column = 1;
    } else {
      ++p.column;
    }
  }
  return p;
}

}  // namespace

void YamlFile::Error(Pos pos, std::string message) {
  errors_->push_back(CompileError{file_, pos.line, pos.column, std::move(message)});
}

Pos YamlFile::PosOf(const YAML::Node& node) const {
  YAML::Mark m = node.Mark();
  Pos p;
  p.line = m.line >= 0 ? m.line + 1 : 1;
  p.column = m.column >= 0 ? m.column + 1 : 1;
  return p;
}

Pos YamlFile::PosIn(const ScalarRef& ref, int offset) const {
  if (ref.inline_shift < 0) return ref.pos;
  return Pos{ref.pos.line, ref.pos.column + ref.inline_shift + offset};
}

std::optional<YAML::Node> YamlFile::Load() {
  if (text_.size() > kMaxPolicyFileBytes) {
    Error(Pos{}, "file larger than " + std::to_string(kMaxPolicyFileBytes) + " bytes");
    return std::nullopt;
  }
  if (text_.find('\0') != std::string_view::npos) {
    Error(PosFromOffset(text_, text_.find('\0')), "file contains a NUL byte (not YAML text)");
    return std::nullopt;
  }
  if (auto at = FlowDepthExceeded(text_)) {
    Error(PosFromOffset(text_, *at), "nesting deeper than " + std::to_string(kMaxYamlDepth) + " levels");
    return std::nullopt;
  }
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text_));
  } catch (const YAML::Exception& e) {
    Pos p;
    if (e.mark.line >= 0) p = Pos{e.mark.line + 1, e.mark.column + 1};
    Error(p, "invalid YAML: " + e.msg);
    return std::nullopt;
  } catch (const std::exception& e) {
    Error(Pos{}, std::string("invalid YAML: ") + e.what());
    return std::nullopt;
  }
  if (docs.empty() || docs[0].IsNull()) {
    Error(Pos{}, "empty file (expected a mapping with apiVersion and kind)");
    return std::nullopt;
  }
  if (docs.size() > 1) {
    Error(PosOf(docs[1]), "more than one YAML document in a file");
    return std::nullopt;
  }
  if (!CheckDepth(docs[0])) return std::nullopt;
  if (!docs[0].IsMap()) {
    Error(docs[0], "expected a mapping with apiVersion and kind");
    return std::nullopt;
  }
  return docs[0];
}

bool YamlFile::CheckDepth(const YAML::Node& root) {
  // Iterative walk: block nesting is bounded only by yaml-cpp's own guard (2000 levels).
  std::vector<std::pair<YAML::Node, int>> stack;
  stack.emplace_back(root, 1);
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    if (depth > kMaxYamlDepth) {
      Error(node, "nesting deeper than " + std::to_string(kMaxYamlDepth) + " levels");
      return false;
    }
    if (node.IsSequence()) {
      for (const auto& child : node) stack.emplace_back(child, depth + 1);
    } else if (node.IsMap()) {
      for (const auto& kv : node) {
        stack.emplace_back(kv.first, depth + 1);
        stack.emplace_back(kv.second, depth + 1);
      }
    }
  }
  return true;
}

std::optional<std::vector<YamlFile::Field>> YamlFile::Entries(const YAML::Node& node,
                                                               std::string_view what) {
  if (!node.IsMap()) {
    Error(node, std::string(what) + " must be a mapping");
    return std::nullopt;
  }
  std::vector<Field> out;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      Error(kv.first, "keys of " + std::string(what) + " must be strings");
      continue;
    }
    std::string key = kv.first.Scalar();
    if (!seen.insert(key).second) {
      Error(kv.first, "duplicate key '" + key + "' in " + std::string(what));
      continue;
    }
    out.push_back(Field{key, kv.first, kv.second});
  }
  return out;
}

std::optional<std::vector<YamlFile::Field>> YamlFile::Fields(
    const YAML::Node& node, std::string_view what, std::initializer_list<std::string_view> allowed) {
  auto entries = Entries(node, what);
  if (!entries) return std::nullopt;
  std::vector<Field> out;
  for (Field& f : *entries) {
    bool known = false;
    for (std::string_view a : allowed) known = known || a == f.key;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed) {
        if (!list.empty()) list += ", ";
        list += a;
      }
      Error(f.key_node, "unknown key '" + f.key + "' in " + std::string(what) + " (expected one of: " + list + ")");
      continue;
    }
    out.push_back(std::move(f));
  }
  return out;
}

std::optional<ScalarRef> YamlFile::Scalar(const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar()) {
    Error(node, std::string(what) + " must be a string");
    return std::nullopt;
  }
  ScalarRef ref;
  ref.value = node.Scalar();
  ref.pos = PosOf(node);
  YAML::Mark m = node.Mark();
  if (m.pos >= 0 && static_cast<size_t>(m.pos) < text_.size()) {
    std::string_view at = text_.substr(static_cast<size_t>(m.pos));
    if (at.substr(0, ref.value.size()) == ref.value && ref.value.find('\n') == std::string::npos) {
      ref.inline_shift = 0;
    } else if (!at.empty() && (at[0] == '"' || at[0] == '\'') &&
               at.substr(1, ref.value.size()) == ref.value &&
               ref.value.find('\n') == std::string::npos) {
      ref.inline_shift = 1;
    }
  }
  return ref;
}

std::optional<std::vector<ScalarRef>> YamlFile::ScalarList(const YAML::Node& node,
                                                            std::string_view what, bool allow_empty) {
  if (!node.IsSequence()) {
    Error(node, std::string(what) + " must be a list");
    return std::nullopt;
  }
  std::vector<ScalarRef> out;
  bool ok = true;
  for (const auto& item : node) {
    auto s = Scalar(item, std::string("an entry of ") + std::string(what));
    if (!s) {
      ok = false;
      continue;
    }
    out.push_back(std::move(*s));
  }
  if (!ok) return std::nullopt;
  if (out.empty() && !allow_empty) {
    Error(node, std::string(what) + " must not be empty");
    return std::nullopt;
  }
  return out;
}

const YAML::Node* FindField(const std::vector<YamlFile::Field>& fields, std::string_view key) {
  for (const auto& f : fields) {
    if (f.key == key) return &f.value;
  }
  return nullptr;
}

}  // namespace warden::engine

