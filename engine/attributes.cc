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
    case Reason::kUnknownRoute: return "UNKNOWN_ROUTE";
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

Status Attributes::Add(std::string_view key, Value value, std::string_view field) {
  const std::string bag(field);
  if (items_.size() >= kMaxAttributes) {
    return InvalidArgumentError(bag + " has more than " + std::to_string(kMaxAttributes) + " attributes", bag);
  }
  if (key.empty() || key.size() > kMaxAttributeKeyBytes) {
    return InvalidArgumentError(bag + ": attribute names must be 1-" + std::to_string(kMaxAttributeKeyBytes) +
                                    " bytes", bag);
  }
  const std::string path = bag + "." + std::string(key);
  const std::string too_long = " longer than " + std::to_string(kMaxAttributeStringBytes) + " bytes";
  if (const auto* s = std::get_if<std::string>(&value); s != nullptr && s->size() > kMaxAttributeStringBytes) {
    return InvalidArgumentError(path + " is" + too_long, path);
  }
  if (const auto* list = std::get_if<std::vector<std::string>>(&value)) {
    if (list->size() > kMaxAttributeListItems) {
      return InvalidArgumentError(path + " has more than " + std::to_string(kMaxAttributeListItems) + " items", path);
    }
    for (const std::string& item : *list) {
      if (item.size() > kMaxAttributeStringBytes) return InvalidArgumentError(path + " has an item" + too_long, path);
    }
  }
  for (const auto& [k, v] : items_) {
    if (k == key) return InvalidArgumentError("duplicate attribute " + path, path);
  }
  items_.emplace_back(std::string(key), std::move(value));
  return Status();
}

StatusOr<Attributes> Attributes::FromJson(const nlohmann::json& object, std::string_view field_prefix) {
  Attributes out;
  if (object.is_null()) return out;
  const std::string prefix(field_prefix);
  if (!object.is_object()) return InvalidArgumentError(prefix + " must be an object", prefix);
  for (const auto& [key, value] : object.items()) {
    std::string field = prefix + "." + key;
    if (value.is_null()) continue;
    if (value.is_boolean()) {
      RETURN_IF_ERROR(out.Add(key, value.get<bool>(), prefix));
    } else if (value.is_number()) {
      double d = value.get<double>();
      if (!std::isfinite(d)) return InvalidArgumentError(field + " must be a finite number", field);
      RETURN_IF_ERROR(out.Add(key, d, prefix));
    } else if (value.is_string()) {
      RETURN_IF_ERROR(out.Add(key, value.get<std::string>(), prefix));
    } else if (value.is_array()) {
      std::vector<std::string> list;
      for (const auto& item : value) {
        if (!item.is_string()) return InvalidArgumentError(field + " must be an array of strings", field);
        list.push_back(item.get<std::string>());
      }
      RETURN_IF_ERROR(out.Add(key, std::move(list), prefix));
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
