#include "engine/yaml_reader.h"

#include <algorithm>
#include <set>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <utility>

namespace warden::engine {

namespace {

Pos PosOfMark(const YAML::Mark& m) {
  return Pos{m.line >= 0 ? m.line + 1 : 1, m.column >= 0 ? m.column + 1 : 1};
}

// A yaml-cpp exception (positioned) or another library exception as an error.
YamlScanError InvalidYaml(const std::exception& e) {
  if (const auto* yaml = dynamic_cast<const YAML::Exception*>(&e)) {
    return YamlScanError{PosOfMark(yaml->mark), "invalid YAML: " + yaml->msg};
  }
  return YamlScanError{Pos{}, std::string("invalid YAML: ") + e.what()};
}

// Counts events and refuses the first anchor, alias, over-deep collection or node past the
// budget by throwing Refused, which stops YAML::Parser at once (it parses on demand).
class ScanHandler : public YAML::EventHandler {
 public:
  explicit ScanHandler(size_t max_nodes) : max_nodes_(max_nodes) {}
  struct Refused {
    YamlScanError error;
  };

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { Node(mark, anchor); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Refuse(mark, kAnchorMessage); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    Node(mark, anchor);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnMapEnd() override { --depth_; }
  // Called before the anchored node's own event, with the same mark (the '&').
  void OnAnchor(const YAML::Mark& mark, const std::string&) override { Refuse(mark, kAnchorMessage); }

 private:
  static constexpr const char* kAnchorMessage = "anchors and aliases are not allowed";

  [[noreturn]] static void Refuse(const YAML::Mark& mark, std::string message) {
    throw Refused{YamlScanError{PosOfMark(mark), std::move(message)}};
  }
  void Node(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) Refuse(mark, kAnchorMessage);
    if (++nodes_ > max_nodes_) Refuse(mark, "more than " + std::to_string(max_nodes_) + " YAML nodes");
  }
  void Open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    Node(mark, anchor);
    if (++depth_ > kMaxYamlDepth) {
      Refuse(mark, "nesting deeper than " + std::to_string(kMaxYamlDepth) + " levels");
    }
  }

  const size_t max_nodes_;
  size_t nodes_ = 0;
  int depth_ = 0;
};

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

std::optional<YamlScanError> ScanYaml(std::string_view text) {
  std::istringstream in{std::string(text)};
  // Real YAML has at most about a node per byte (a flow "[,,,]" or "? " has one per byte or
  // two); yaml-cpp was seen emitting ~100 events a byte for a 2.7 KB fuzzed document, so the
  // budget follows the input, under the absolute bound.
  ScanHandler handler(std::min(kMaxYamlNodes, 2 * text.size() + 64));
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(handler)) {
    }
  } catch (const ScanHandler::Refused& refused) {
    return refused.error;
  } catch (const std::exception& e) {
    return InvalidYaml(e);
  }
  return std::nullopt;
}

void YamlFile::Error(Pos pos, std::string message) {
  errors_->push_back(CompileError{file_, pos.line, pos.column, std::move(message)});
}

Pos YamlFile::PosOf(const YAML::Node& node) const { return PosOfMark(node.Mark()); }

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
  // Before LoadAll: the scan is what keeps aliases, depth and node count from costing more
  // than the text's length (see ScanYaml). Its syntax errors are the ones LoadAll would throw.
  if (auto refused = ScanYaml(text_)) {
    Error(refused->pos, std::move(refused->message));
    return std::nullopt;
  }
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text_));
  } catch (const std::exception& e) {
    YamlScanError error = InvalidYaml(e);
    Error(error.pos, std::move(error.message));
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
  if (!docs[0].IsMap()) {
    Error(docs[0], "expected a mapping with apiVersion and kind");
    return std::nullopt;
  }
  return docs[0];
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

