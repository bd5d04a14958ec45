#include "engine/yaml_json.h"

#include "engine/yaml_reader.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <string>

namespace warden::engine {
namespace {

std::string Where(std::string_view file, const YAML::Mark& mark) {
  return std::string(file) + ":" + std::to_string(mark.line + 1) + ":" +
         std::to_string(mark.column + 1);
}

StatusOr<nlohmann::json> Convert(const YAML::Node& node, std::string_view file, int depth) {
  if (depth > kMaxYamlDepth) {
    return InvalidArgumentError(Where(file, node.Mark()) + ": nesting too deep");
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nlohmann::json(nullptr);
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return nlohmann::json(s);  // quoted
      if (s == "true" || s == "True" || s == "TRUE") return nlohmann::json(true);
      if (s == "false" || s == "False" || s == "FALSE") return nlohmann::json(false);
      if (s == "null" || s == "~" || s.empty()) return nlohmann::json(nullptr);
      char* end = nullptr;
      long long i = std::strtoll(s.c_str(), &end, 10);
      if (end && *end == '\0' && !s.empty()) return nlohmann::json(i);
      double d = std::strtod(s.c_str(), &end);
      if (end && *end == '\0' && !s.empty() && s != "." && s.find_first_of("nNiI") == std::string::npos) {
        return nlohmann::json(d);
      }
      return nlohmann::json(s);
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node) {
        ASSIGN_OR_RETURN(nlohmann::json v, Convert(item, file, depth + 1));
        arr.push_back(std::move(v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return InvalidArgumentError(Where(file, kv.first.Mark()) + ": keys must be scalars");
        }
        const std::string& key = kv.first.Scalar();
        if (obj.contains(key)) {
          return InvalidArgumentError(Where(file, kv.first.Mark()) + ": duplicate key '" + key + "'");
        }
        ASSIGN_OR_RETURN(nlohmann::json v, Convert(kv.second, file, depth + 1));
        obj[key] = std::move(v);
      }
      return obj;
    }
  }
  return nlohmann::json(nullptr);
}

}  // namespace

StatusOr<nlohmann::json> YamlToJson(std::string_view text, std::string_view file) {
  // Convert walks the tree, so an alias would be walked once per reference (see ScanYaml).
  if (auto refused = ScanYaml(text)) {
    return InvalidArgumentError(
        CompileError{std::string(file), refused->pos.line, refused->pos.column, refused->message}.ToString());
  }
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return Convert(root, file, 0);
  } catch (const YAML::Exception& e) {
    return InvalidArgumentError(Where(file, e.mark) + ": " + e.msg);
  }
}

}  // namespace warden::engine
