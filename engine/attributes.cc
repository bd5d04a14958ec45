// Small value types of engine.h: names, attribute bags, compile errors.
#include <cmath>

#include "engine/engine.h"

namespace warden::engine {

std::string_view PrincipalTypeName(PrincipalType type) {
  switch (type) {
    case PrincipalType::kUser: return "user";
    case PrincipalType::kServiceAccount: return "service_account";
    case PrincipalType::kTenant: return "tenant";
  }
  return "user";
}

std::string_view ReasonName(Reason reason) {
  switch (reason) {
    case Reason::kAllowRule: return "ALLOW_RULE";
    case Reason::kNoMatchingAllow: return "NO_MATCHING_ALLOW";
    case Reason::kDenyRule: return "DENY_RULE";
    case Reason::kGuardrailDeny: return "GUARDRAIL_DENY";
    case Reason::kUnknownModel: return "UNKNOWN_MODEL";
    case Reason::kUnknownAction: return "UNKNOWN_ACTION";
    case Reason::kAccountDisabled: return "ACCOUNT_DISABLED";
    case Reason::kTokenInvalid: return "TOKEN_INVALID";
  }
  return "NO_MATCHING_ALLOW";
}

void Attributes::Set(std::string key, Value value) {
  for (auto& [k, v] : items_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(std::move(key), std::move(value));
}

const Value* Attributes::Find(std::string_view key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return std::holds_alternative<std::monostate>(v) ? nullptr : &v;
  }
  return nullptr;
}

StatusOr<Attributes> Attributes::FromJson(const nlohmann::json& object, std::string_view field_prefix) {
  Attributes out;
  if (object.is_null()) return out;
  if (!object.is_object()) {
    return InvalidArgumentError(std::string(field_prefix) + " must be an object", std::string(field_prefix));
  }
  for (const auto& [key, value] : object.items()) {
    std::string field = std::string(field_prefix) + "." + key;
    if (value.is_null()) continue;
    if (value.is_boolean()) {
      out.Set(key, value.get<bool>());
    } else if (value.is_number()) {
      double d = value.get<double>();
      if (!std::isfinite(d)) return InvalidArgumentError(field + " must be a finite number", field);
      out.Set(key, d);
    } else if (value.is_string()) {
      out.Set(key, value.get<std::string>());
    } else if (value.is_array()) {
      std::vector<std::string> list;
      for (const auto& item : value) {
        if (!item.is_string()) return InvalidArgumentError(field + " must be an array of strings", field);
        list.push_back(item.get<std::string>());
      }
      out.Set(key, std::move(list));
    } else {
      return InvalidArgumentError(field + " must be a string, number, boolean or array of strings", field);
    }
  }
  return out;
}

std::string CompileError::ToString() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

nlohmann::json CompileError::ToJson() const {
  return nlohmann::json{{"file", file}, {"line", line}, {"column", column}, {"message", message}};
}

}  // namespace warden::engine
