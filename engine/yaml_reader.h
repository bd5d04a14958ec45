// Reading policy YAML with positions: loads one file defensively (size and nesting limits,
// yaml-cpp exceptions turned into CompileErrors) and offers checked accessors that report
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
inline constexpr int kMaxYamlDepth = 64;

struct Pos {
  int line = 1;  // 1-based
  int column = 1;
};

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
  bool CheckDepth(const YAML::Node& root);

  std::string file_;
  std::string_view text_;
  std::vector<CompileError>* errors_;
};

const YAML::Node* FindField(const std::vector<YamlFile::Field>& fields, std::string_view key);

}  // namespace warden::engine
