// Reading policy YAML with positions: loads one file defensively (size, nesting and node-count
// limits, no anchors or aliases, yaml-cpp exceptions turned into CompileErrors; see ScanYaml)
// and offers checked accessors that report
// `file:line:col: message` errors for wrong shapes, unknown keys and duplicate keys.
// yaml-cpp 0.7 accepts duplicate map keys silently, so Fields() detects them itself.
//
// Thread-compatible: one YamlFile per file being read.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "engine/engine.h"

namespace warden::engine {

inline constexpr size_t kMaxPolicyFileBytes = 1 << 20;
inline constexpr int kMaxYamlDepth = 64;        // collections open at once
inline constexpr size_t kMaxYamlNodes = 1 << 18;  // scalars, collections and nulls of a file

struct Pos {
  int line = 1;  // 1-based
  int column = 1;
};

// What ScanYaml refused, at the event (or parse error) that made it refuse.
struct YamlScanError {
  Pos pos;
  std::string message;  // "anchors and aliases are not allowed", "invalid YAML: ...", ...
};

// Reads the event stream of every document of `text` with YAML::Parser, before anything builds
// a node tree, and stops at the first anchor or alias, at a collection nested deeper than
// kMaxYamlDepth, after kMaxYamlNodes nodes, or at a syntax error. Linear in `text`.
// Why before YAML::Load: yaml-cpp shares an aliased node, so the tree is small, but any walk
// of it (a depth check, a conversion) visits the expansion; 668 bytes of nested aliases
// (9 levels of 9) expand to 9^9 nodes and cost a minute of CPU. Policy files have no use for
// aliases, so they are refused rather than bounded.
std::optional<YamlScanError> ScanYaml(std::string_view text);

// A scalar with the position of its first character, and where its text can be found
// verbatim in the file (for positions of tokens inside it, e.g. in `when:`).
struct ScalarRef {
  std::string value;
  Pos pos;
  int inline_shift = -1;  // >= 0: value[i] is at column pos.column + inline_shift + i
};

class YamlFile {
 public:
  YamlFile(std::string file, std::string_view text, std::vector<CompileError>* errors)
      : file_(std::move(file)), text_(text), errors_(errors) {}

  // The single document of the file; nullopt (with an error) when the file is too large,
  // too deeply nested, not valid YAML, empty, holds several documents or is not a mapping.
  std::optional<YAML::Node> Load();

  const std::string& file() const { return file_; }
  void Error(Pos pos, std::string message);
  void Error(const YAML::Node& node, std::string message) { Error(PosOf(node), std::move(message)); }
  Pos PosOf(const YAML::Node& node) const;
  // Position of byte `offset` inside scalar `ref` (its start when it is not inline).
  Pos PosIn(const ScalarRef& ref, int offset) const;

  struct Field {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };
  // `node` must be a mapping (called `what` in errors); keys must be unique strings among
  // `allowed`. Returns the known fields; nullopt when `node` is not a mapping.
  std::optional<std::vector<Field>> Fields(const YAML::Node& node, std::string_view what,
                                           std::initializer_list<std::string_view> allowed);
  // Every key of a mapping (for maps with free-form keys: models, permissions, principals),
  // duplicates reported.
  std::optional<std::vector<Field>> Entries(const YAML::Node& node, std::string_view what);

  std::optional<ScalarRef> Scalar(const YAML::Node& node, std::string_view what);
  // A sequence of scalars; `allow_empty` false reports an empty list.
  std::optional<std::vector<ScalarRef>> ScalarList(const YAML::Node& node, std::string_view what,
                                                    bool allow_empty);

 private:
  std::string file_;
  std::string_view text_;
  std::vector<CompileError>* errors_;
};

const YAML::Node* FindField(const std::vector<YamlFile::Field>& fields, std::string_view key);

}  // namespace warden::engine
