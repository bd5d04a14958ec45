// OpenID AuthZEN 1.0 over the check service (authzen_api.h). Not the hot path: bodies are read
// with nlohmann::json, and the directory is read from the store on the worker thread.
#include "server/check/authzen_api.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>

#include "server/http/json_io.h"

namespace warden::server {

namespace {

using nlohmann::json;

constexpr char kServiceAccountType[] = "service_account";
constexpr int kMaxFlattenDepth = 4;      // nested property objects become dotted attribute names
constexpr int kCandidateBatch = 200;     // directory entries read per store call of a search

// An AuthZEN subject or resource as sent: type, id, properties (an object, {} when absent).
struct Entity {
  std::optional<std::string> type, id;
  json properties = json::object();
};
// An action as sent.
struct Action {
  std::optional<std::string> name;
  json properties = json::object();
};
// One evaluation once defaults are merged in (every field present).
struct Evaluation {
  Entity subject, resource;
  Action action;
  json context = json::object();
};

Status Bad(const std::string& message, const std::string& field) { return InvalidArgumentError(message, field); }

// A string member: absent (or null) is nullopt; present, it must be a non-empty string.
StatusOr<std::optional<std::string>> StringMember(const json& obj, const char* key, const std::string& field) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return Bad(std::string(key) + " must be a string", field + "." + key);
  std::string value = it->get<std::string>();
  if (value.empty()) return Bad(std::string(key) + " must not be empty", field + "." + key);
  if (value.size() > store::kMaxDirectoryNameBytes) return Bad(std::string(key) + " is too long", field + "." + key);
  return std::optional<std::string>(std::move(value));
}

StatusOr<json> PropertiesMember(const json& obj, const std::string& field) {
  auto it = obj.find("properties");
  if (it == obj.end() || it->is_null()) return json::object();
  if (!it->is_object()) return Bad("properties must be an object", field + ".properties");
  return *it;
}

// Unknown members are ignored (AuthZEN 1.0); known ones must have their types.
StatusOr<Entity> ParseEntity(const json& v, const std::string& field) {
  if (!v.is_object()) return Bad(field + " must be an object", field);
  Entity e;
  ASSIGN_OR_RETURN(e.type, StringMember(v, "type", field));
  ASSIGN_OR_RETURN(e.id, StringMember(v, "id", field));
  ASSIGN_OR_RETURN(e.properties, PropertiesMember(v, field));
  return e;
}

StatusOr<Action> ParseAction(const json& v, const std::string& field) {
  if (!v.is_object()) return Bad(field + " must be an object", field);
  Action a;
  ASSIGN_OR_RETURN(a.name, StringMember(v, "name", field));
  ASSIGN_OR_RETURN(a.properties, PropertiesMember(v, field));
  return a;
}

StatusOr<json> ParseContext(const json& body, const std::string& field) {
  auto it = body.find("context");
  if (it == body.end() || it->is_null()) return json::object();
  if (!it->is_object()) return Bad("context must be an object", field);
  return *it;
}

Status RequireEntity(const Entity& e, const std::string& field, bool need_id) {
  if (!e.type) return Bad(field + ".type is required", field + ".type");
  if (need_id && !e.id) return Bad(field + ".id is required", field + ".id");
  return Status::Ok();
}

// `over`'s members replace `base`'s, one level deep (the cert suite's "field by field").
json MergeObjects(json base, const json& over) {
  for (auto it = over.begin(); it != over.end(); ++it) base[it.key()] = it.value();
  return base;
}

// JSON values as engine attributes: strings, numbers, booleans and arrays of strings as they
// are; nested objects as dotted names (`context.time.hour`) up to kMaxFlattenDepth; anything
// else (null, mixed arrays) is not an attribute. A name already present keeps its first value.
Status AddJson(engine::Attributes* out, const std::string& name, const json& v, int depth, const std::string& field) {
  if (v.is_object()) {
    if (depth >= kMaxFlattenDepth) return Status::Ok();
    for (auto it = v.begin(); it != v.end(); ++it) {
      RETURN_IF_ERROR(AddJson(out, name.empty() ? it.key() : name + "." + it.key(), it.value(), depth + 1, field));
    }
    return Status::Ok();
  }
  if (name.empty() || out->Find(name) != nullptr) return Status::Ok();
  engine::Value value;
  if (v.is_string()) {
    value = v.get<std::string>();
  } else if (v.is_boolean()) {
    value = v.get<bool>();
  } else if (v.is_number()) {
    value = v.get<double>();
  } else if (v.is_array()) {
    std::vector<std::string> list;
    for (const json& item : v) {
      if (!item.is_string()) return Status::Ok();
      list.push_back(item.get<std::string>());
    }
    value = std::move(list);
  } else {
    return Status::Ok();
  }
  return out->Add(name, std::move(value), field);
}

StatusOr<engine::Attributes> ToAttributes(const json& object, const std::string& field) {
  engine::Attributes out;
  RETURN_IF_ERROR(AddJson(&out, "", object, 0, field));
  return out;
}

// Page tokens are opaque to PEPs: the hex of the last candidate examined.
std::string EncodeToken(std::string_view cursor) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "p";
  for (unsigned char c : cursor) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::optional<std::string> DecodeToken(std::string_view token) {
  if (token.empty() || token[0] != 'p' || token.size() % 2 != 1) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 1; i < token.size(); i += 2) {
    const int hi = nibble(token[i]), lo = nibble(token[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
  }
  return out;
}

void Unauthorized(Response& res, const std::string& message) {
  res.SetHeader("WWW-Authenticate", R"(Bearer realm="warden")");
  WriteError(res, 401, "unauthenticated", message);
}

}  // namespace

// One request: the PEP, the body, and what its evaluations read from the store.
class AuthzenApi::Call {
 public:
  Call(const AuthzenApi& api, const Request& req, Response& res, std::vector<store::DecisionRow>* rows)
      : api_(api), req_(req), res_(res), rows_(rows) {}

  // Authenticates the PEP and checks that its policy grants `authzen: [permission]`. False
  // (the answer written, or *needs_store set) when the request goes no further.
  bool AuthorizePep(const char* permission, bool cache_only, bool* needs_store) {
    const std::string& header = req_.Header("Authorization");
    constexpr std::string_view kScheme = "bearer ";
    if (header.size() <= kScheme.size() ||
        !std::equal(kScheme.begin(), kScheme.end(), header.begin(),
                    [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); })) {
      Unauthorized(res_, "an Authorization: Bearer service-account token is required");
      return false;
    }
    int64_t retry_after = 0;
    switch (api_.service_->Authenticate({header.substr(kScheme.size()), false}, req_.remote_addr, cache_only, &pep_,
                                        &retry_after)) {
      case CheckService::Auth::kOk: break;
      case CheckService::Auth::kNotCached: *needs_store = true; return false;
      case CheckService::Auth::kUnavailable:
        WriteError(res_, UnavailableError("the token store is unavailable"));
        return false;
      case CheckService::Auth::kThrottled:
        res_.SetHeader("Retry-After", std::to_string(retry_after));
        WriteError(res_, ResourceExhaustedError("too many invalid tokens from this address"));
        return false;
    }
    if (pep_.failure || pep_.principal == nullptr) {
      Unauthorized(res_, pep_.failure == engine::Reason::kAccountDisabled ? "the service account is disabled"
                                                                            : "invalid token");
      return false;
    }
    std::span<const engine::CompiledPolicy* const> policies(&pep_.policy, pep_.policy ? 1 : 0);
    if (!pep_.policy || !pep_.snapshot->Evaluate(*pep_.principal, policies, "authzen", permission, {}, {}).allowed) {
      Unauthorized(res_, std::string("the service account's policy does not grant authzen: [") + permission + "]");
      return false;
    }
    facts_ = RequestFacts{req_.remote_addr, req_.method, req_.path, res_.Header("X-Request-Id")};
    return true;
  }

  // The body as a JSON object, or the 400/415 written.
  std::optional<json> Body() {
    StatusOr<json> body = ParseJsonObject(req_);
    if (!body.ok()) {
      WriteError(res_, body.status());
      return std::nullopt;
    }
    return std::move(body).value();
  }

  // Decides one evaluation (one row). A store failure is returned (answered 503).
  StatusOr<Verdict> Evaluate(const Evaluation& e) {
    Subject subject;
    RETURN_IF_ERROR(ResolveSubject(e.subject, &subject));
    ASSIGN_OR_RETURN(CheckInput input, ResolveResource(e.resource, *e.action.name));
    ASSIGN_OR_RETURN(engine::Attributes context, Context(e.context, e.action.properties));
    verdicts_.clear();
    api_.service_->Decide(subject, std::span<const CheckInput>(&input, 1), context, facts_, rows_, &verdicts_);
    return verdicts_.front();
  }

  // The Subject a decision is made for (DESIGN.md 6.1).
  Status ResolveSubject(const Entity& e, Subject* out) {
    ASSIGN_OR_RETURN(engine::Attributes sent, ToAttributes(e.properties, "subject.properties"));
    if (*e.type == kServiceAccountType) {
      StatusOr<store::ServiceAccount> account = api_.accounts_->GetAccount(pep_.tenant_id, *e.id);
      if (account.status().code() == StatusCode::kNotFound) {
        account = api_.accounts_->GetAccountByName(pep_.tenant_id, *e.id);
      }
      if (account.ok()) {
        api_.service_->AccountSubject(*account, sent, out);
        AskedBy(out);
        return Status::Ok();
      }
      if (account.status().code() != StatusCode::kNotFound) return account.status();
      return Unknown(*e.type, *e.id, std::move(sent), out);
    }
    const auto& types = pep_.snapshot->catalog().subject_types();
    if (std::find(types.begin(), types.end(), *e.type) == types.end()) {
      return Unknown(*e.type, *e.id, std::move(sent), out);
    }
    StatusOr<store::DirectoryEntry> entry =
        api_.directory_->GetDirectoryEntry(pep_.tenant_id, store::DirectoryKind::kSubject, *e.type, *e.id);
    if (!entry.ok() && entry.status().code() != StatusCode::kNotFound) return entry.status();
    if (!entry.ok()) return Unknown(*e.type, *e.id, std::move(sent), out);
    return FromEntry(*entry, e.properties, out);
  }

  // A directory subject with the request's properties merged over its own.
  Status FromEntry(const store::DirectoryEntry& entry, const json& sent, Subject* out) {
    engine::Principal p;
    p.type = engine::PrincipalType::kUser;
    p.id = entry.id;
    p.name = entry.id;
    p.roles = entry.roles;
    ASSIGN_OR_RETURN(p.attributes, ToAttributes(MergeObjects(entry.properties, sent), "subject.properties"));
    api_.service_->DirectorySubject(std::move(p), entry.type, out);
    AskedBy(out);
    return Status::Ok();
  }

  // The rows of `subject`'s decisions name the PEP: its token and its account as the caller.
  void AskedBy(Subject* subject) const {
    subject->tenant_id = pep_.tenant_id;
    subject->token_id = pep_.token_id;
    subject->caller_id = pep_.principal->id;
    subject->caller_name = pep_.principal->name;
  }

  // A subject nobody knows: decided (and logged) with no roles, so nothing is allowed.
  Status Unknown(const std::string& type, const std::string& id, engine::Attributes sent, Subject* out) {
    engine::Principal p;
    p.type = engine::PrincipalType::kUser;
    p.id = id;
    p.name = id;
    p.attributes = std::move(sent);
    api_.service_->DirectorySubject(std::move(p), type, out);
    AskedBy(out);
    return Status::Ok();
  }

  // A resource as a check: the directory entry's properties with the request's over them, and
  // `id` (as for /v1/check, an attribute conditions may use).
  StatusOr<CheckInput> ResolveResource(const Entity& e, const std::string& action) {
    json properties = e.properties;
    StatusOr<store::DirectoryEntry> entry =
        api_.directory_->GetDirectoryEntry(pep_.tenant_id, store::DirectoryKind::kResource, *e.type, *e.id);
    if (entry.ok()) {
      properties = MergeObjects(entry->properties, e.properties);
    } else if (entry.status().code() != StatusCode::kNotFound) {
      return entry.status();
    }
    return MakeInput(*e.type, *e.id, action, std::move(properties));
  }

  static StatusOr<CheckInput> MakeInput(const std::string& type, const std::string& id, const std::string& action,
                                        json properties) {
    properties["id"] = id;
    CheckInput input;
    input.model = type;
    input.action = action;
    input.resource_id = id;
    ASSIGN_OR_RETURN(input.resource, ToAttributes(properties, "resource.properties"));
    return input;
  }

  // The request's context; the action's properties are `context.action.<name>` (a condition
  // language has principal, resource and context: an action is named, its details are context).
  static StatusOr<engine::Attributes> Context(const json& context, const json& action_properties) {
    json merged = context;
    if (!action_properties.empty()) merged["action"] = action_properties;
    return ToAttributes(merged, "context");
  }

  const Subject& pep() const { return pep_; }
  const RequestFacts& facts() const { return facts_; }
  std::vector<Verdict>& verdicts() { return verdicts_; }

 private:
  const AuthzenApi& api_;
  const Request& req_;
  Response& res_;
  std::vector<store::DecisionRow>* rows_;
  Subject pep_;
  RequestFacts facts_;
  std::vector<Verdict> verdicts_;
};

AuthzenApi::AuthzenApi(Options options, CheckService* service, store::DirectoryStore* directory,
                       store::AccountStore* accounts)
    : options_(std::move(options)), service_(service), directory_(directory), accounts_(accounts) {}

namespace {

// An evaluation's fields from `item` over `defaults` (each entity merged field by field).
// An entity still missing, or ill-typed, is a Status (the single form: 400; an item: false).
StatusOr<Evaluation> MergeEvaluation(const json& defaults, const json& item, const std::string& field) {
  Evaluation e;
  auto entity = [&](const char* key) -> StatusOr<json> {
    const std::string name = field.empty() ? key : field + "." + key;
    json merged = json::object();
    if (auto d = defaults.find(key); d != defaults.end() && !d->is_null()) {
      if (!d->is_object()) return Bad(std::string(key) + " must be an object", key);
      merged = *d;
    }
    if (auto i = item.find(key); &item != &defaults && i != item.end() && !i->is_null()) {
      if (!i->is_object()) return Bad(name + " must be an object", name);
      merged = MergeObjects(std::move(merged), *i);
    }
    if (merged.empty()) return Bad(name + " is required", name);
    return merged;
  };
  ASSIGN_OR_RETURN(json subject, entity("subject"));
  ASSIGN_OR_RETURN(e.subject, ParseEntity(subject, "subject"));
  RETURN_IF_ERROR(RequireEntity(e.subject, "subject", true));
  ASSIGN_OR_RETURN(json action, entity("action"));
  ASSIGN_OR_RETURN(e.action, ParseAction(action, "action"));
  if (!e.action.name) return Bad("action.name is required", "action.name");
  ASSIGN_OR_RETURN(json resource, entity("resource"));
  ASSIGN_OR_RETURN(e.resource, ParseEntity(resource, "resource"));
  RETURN_IF_ERROR(RequireEntity(e.resource, "resource", true));
  ASSIGN_OR_RETURN(e.context, ParseContext(defaults, "context"));
  if (&item != &defaults) {
    ASSIGN_OR_RETURN(json item_context, ParseContext(item, field + ".context"));
    e.context = MergeObjects(std::move(e.context), item_context);
  }
  return e;
}

json DecisionJson(const Verdict& v, bool reasons) {
  json out = {{"decision", v.decision.allowed}};
  if (reasons) {
    out["context"] = {{"reason", engine::ReasonName(v.decision.reason)},
                      {"rule", std::string(v.decision.rule)},
                      {"decision_id", v.decision_id}};
  }
  return out;
}

bool WantsReasons(const json& body) {
  auto options = body.find("options");
  if (options == body.end() || !options->is_object()) return false;
  auto r = options->find("include_reasons");
  return r != options->end() && r->is_boolean() && r->get<bool>();
}

// page.limit (0: none) and page.token ("" : the start) of a search; 400 when ill-typed.
struct PageRequest {
  int limit = 0;
  std::string cursor;
  bool given = false;
};

StatusOr<PageRequest> ParsePage(const json& body) {
  PageRequest page;
  auto it = body.find("page");
  if (it == body.end() || it->is_null()) return page;
  if (!it->is_object()) return Bad("page must be an object", "page");
  if (auto limit = it->find("limit"); limit != it->end() && !limit->is_null()) {
    if (!limit->is_number_integer() || limit->get<int64_t>() < 0) {
      return Bad("page.limit must be a non-negative integer", "page.limit");
    }
    page.limit = static_cast<int>(std::min<int64_t>(limit->get<int64_t>(), store::kMaxPageLimit));
    page.given = page.limit > 0;
  }
  if (auto token = it->find("token"); token != it->end() && !token->is_null()) {
    if (!token->is_string()) return Bad("page.token must be a string", "page.token");
    if (!token->get<std::string>().empty()) {
      std::optional<std::string> cursor = DecodeToken(token->get<std::string>());
      if (!cursor) return Bad("page.token is not a token this server gave", "page.token");
      page.cursor = std::move(*cursor);
      page.given = true;
    }
  }
  return page;
}

}  // namespace

void AuthzenApi::Decide(Endpoint endpoint, const Request& req, Response& res, std::vector<store::DecisionRow>* rows,
                        bool cache_only, bool* needs_store) const {
  Call call(*this, req, res, rows);
  const bool search = endpoint != Endpoint::kEvaluation && endpoint != Endpoint::kEvaluations;
  if (!call.AuthorizePep(search ? "search" : "evaluate", cache_only, needs_store)) return;
  std::optional<json> parsed = call.Body();
  if (!parsed) return;
  const json& body = *parsed;
  const bool reasons = WantsReasons(body);
  // A failure after some rows were decided drops them: the answer is an error, nothing allowed.
  const size_t first_row = rows->size();
  auto fail = [&](const Status& status) {
    rows->resize(first_row);
    WriteError(res, status);
  };

  if (endpoint == Endpoint::kEvaluation || endpoint == Endpoint::kEvaluations) {
    auto items = body.find("evaluations");
    const bool batch = endpoint == Endpoint::kEvaluations && items != body.end() && !items->is_null() &&
                       !(items->is_array() && items->empty());
    if (!batch) {  // the single form (also /evaluations without an evaluations array)
      StatusOr<Evaluation> e = MergeEvaluation(body, body, "");
      if (!e.ok()) return fail(e.status());
      StatusOr<Verdict> v = call.Evaluate(*e);
      if (!v.ok()) return fail(v.status());
      return WriteJson(res, 200, DecisionJson(*v, reasons));
    }
    if (!items->is_array()) return fail(Bad("evaluations must be an array", "evaluations"));
    if (items->size() > static_cast<size_t>(options_.max_evaluations)) {
      return fail(Bad("at most " + std::to_string(options_.max_evaluations) + " evaluations per request",
                      "evaluations"));
    }
    enum class Semantic { kExecuteAll, kDenyOnFirstDeny, kPermitOnFirstPermit } semantic = Semantic::kExecuteAll;
    if (auto options = body.find("options"); options != body.end() && !options->is_null()) {
      if (!options->is_object()) return fail(Bad("options must be an object", "options"));
      if (auto s = options->find("evaluations_semantic"); s != options->end() && !s->is_null()) {
        const std::string name = s->is_string() ? s->get<std::string>() : "";
        if (name == "execute_all") semantic = Semantic::kExecuteAll;
        else if (name == "deny_on_first_deny") semantic = Semantic::kDenyOnFirstDeny;
        else if (name == "permit_on_first_permit") semantic = Semantic::kPermitOnFirstPermit;
        else {
          return fail(Bad("evaluations_semantic must be execute_all, deny_on_first_deny or permit_on_first_permit",
                          "options.evaluations_semantic"));
        }
      }
    }
    // The defaults themselves must be well-typed (an ill-typed default is the request's error).
    for (const char* key : {"subject", "resource"}) {
      if (auto d = body.find(key); d != body.end() && !d->is_null()) {
        if (Status s = ParseEntity(*d, key).status(); !s.ok()) return fail(s);
      }
    }
    if (auto d = body.find("action"); d != body.end() && !d->is_null()) {
      if (Status s = ParseAction(*d, "action").status(); !s.ok()) return fail(s);
    }
    if (Status s = ParseContext(body, "context").status(); !s.ok()) return fail(s);
    json answers = json::array();
    for (size_t i = 0; i < items->size(); ++i) {
      const json& item = (*items)[i];
      bool allowed = false;
      json answer;
      StatusOr<Evaluation> e = item.is_object() ? MergeEvaluation(body, item, "evaluations[" + std::to_string(i) + "]")
                                                : StatusOr<Evaluation>(Bad("not an object", "evaluations"));
      if (e.ok()) {
        StatusOr<Verdict> v = call.Evaluate(*e);
        if (!v.ok()) return fail(v.status());
        allowed = v->decision.allowed;
        answer = DecisionJson(*v, reasons);
      } else {  // an item that lacks (or mistypes) an entity is a deny, not an error (1.0, 7.2)
        answer = {{"decision", false}};
        if (reasons) answer["context"] = {{"error", e.status().message()}};
      }
      answers.push_back(std::move(answer));
      if (semantic == Semantic::kDenyOnFirstDeny && !allowed) break;
      if (semantic == Semantic::kPermitOnFirstPermit && allowed) break;
    }
    return WriteJson(res, 200, json{{"evaluations", std::move(answers)}});
  }

  // ---- search
  StatusOr<PageRequest> page = ParsePage(body);
  if (!page.ok()) return fail(page.status());
  auto required = [&](const char* key) -> StatusOr<json> {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return Bad(std::string(key) + " is required", key);
    return *it;
  };
  StatusOr<json> context = ParseContext(body, "context");
  if (!context.ok()) return fail(context.status());
  const Subject& pep = call.pep();
  const engine::Catalog& catalog = pep.snapshot->catalog();
  json results = json::array();
  std::string next;  // the next page's cursor, "" at the end
  const size_t limit = page->limit > 0 ? static_cast<size_t>(page->limit) : SIZE_MAX;
  size_t examined = 0;
  auto full = [&] { return results.size() >= limit || examined >= static_cast<size_t>(options_.max_search_candidates); };

  if (endpoint == Endpoint::kSearchSubject || endpoint == Endpoint::kSearchResource) {
    const bool subjects = endpoint == Endpoint::kSearchSubject;
    StatusOr<json> subject_json = required("subject");
    StatusOr<json> resource_json = required("resource");
    StatusOr<json> action_json = required("action");
    for (const auto* j : {&subject_json, &action_json, &resource_json}) {
      if (!j->ok()) return fail(j->status());
    }
    StatusOr<Entity> subject = ParseEntity(*subject_json, "subject");
    StatusOr<Entity> resource = ParseEntity(*resource_json, "resource");
    StatusOr<Action> action = ParseAction(*action_json, "action");
    if (!subject.ok()) return fail(subject.status());
    if (!resource.ok()) return fail(resource.status());
    if (!action.ok()) return fail(action.status());
    Status valid = RequireEntity(*subject, "subject", /*need_id=*/!subjects);
    if (valid.ok()) valid = RequireEntity(*resource, "resource", /*need_id=*/subjects);
    if (valid.ok() && !action->name) valid = Bad("action.name is required", "action.name");
    if (!valid.ok()) return fail(valid);
    StatusOr<engine::Attributes> ctx = Call::Context(*context, action->properties);
    if (!ctx.ok()) return fail(ctx.status());

    // Candidates are read kCandidateBatch at a time and decided one by one, so that a page
    // ends exactly at its limit (a candidate past it is neither decided nor logged); the
    // cursor is the last candidate decided (an id, or for service accounts the store's
    // cursor, read one account a store page when the PEP pages).
    const std::string& type = subjects ? *subject->type : *resource->type;
    const auto& types = catalog.subject_types();
    const bool accounts = subjects && type == kServiceAccountType;
    const bool known = subjects ? accounts || std::find(types.begin(), types.end(), type) != types.end()
                                : catalog.FindModel(type).has_value();
    Subject who;  // resource search: the one subject
    CheckInput target;  // subject search: the one resource
    if (known && subjects) {
      StatusOr<CheckInput> in = call.ResolveResource(*resource, *action->name);
      if (!in.ok()) return fail(in.status());
      target = std::move(*in);
    } else if (known) {
      if (Status s = call.ResolveSubject(*subject, &who); !s.ok()) return fail(s);
    }
    StatusOr<engine::Attributes> sent = ToAttributes(subject->properties, "subject.properties");
    if (!sent.ok()) return fail(sent.status());
    std::string cursor = page->cursor;
    bool more = known;
    while (more && !full()) {
      struct Candidate {
        std::string id;
        std::unique_ptr<Subject> subject;  // subject search (stable: Subject points into itself)
        CheckInput input;                  // resource search
      };
      std::vector<Candidate> batch;
      std::string batch_end;
      if (accounts) {
        store::ListOptions list;
        list.limit = page->given ? 1 : kCandidateBatch;
        list.cursor = cursor;
        auto found = accounts_->ListAccounts(pep.tenant_id, list);
        if (!found.ok()) return fail(found.status());
        for (const store::ServiceAccount& a : found->items) {
          batch.push_back({a.name, std::make_unique<Subject>(), {}});
          service_->AccountSubject(a, *sent, batch.back().subject.get());
          call.AskedBy(batch.back().subject.get());
        }
        more = !found->next_cursor.empty();
        batch_end = found->next_cursor;
      } else {
        store::DirectoryQuery q{pep.tenant_id, subjects ? store::DirectoryKind::kSubject : store::DirectoryKind::kResource,
                                type, cursor, kCandidateBatch};
        auto found = directory_->ListDirectoryEntries(q);
        if (!found.ok()) return fail(found.status());
        for (const store::DirectoryEntry& entry : *found) {
          Candidate c{entry.id, nullptr, {}};
          if (subjects) {
            c.subject = std::make_unique<Subject>();
            if (Status st = call.FromEntry(entry, subject->properties, c.subject.get()); !st.ok()) return fail(st);
          } else {
            StatusOr<CheckInput> in =
                Call::MakeInput(type, entry.id, *action->name, MergeObjects(entry.properties, resource->properties));
            if (!in.ok()) return fail(in.status());
            c.input = std::move(*in);
          }
          batch.push_back(std::move(c));
        }
        more = found->size() == static_cast<size_t>(kCandidateBatch);
        batch_end = found->empty() ? cursor : found->back().id;
      }
      size_t i = 0;
      for (; i < batch.size() && !(accounts ? false : full()); ++i) {
        const Subject& s = subjects ? *batch[i].subject : who;
        const CheckInput& in = subjects ? target : batch[i].input;
        call.verdicts().clear();
        service_->Decide(s, std::span<const CheckInput>(&in, 1), *ctx, call.facts(), rows, &call.verdicts());
        ++examined;
        if (call.verdicts().front().decision.allowed) results.push_back({{"type", type}, {"id", batch[i].id}});
      }
      if (i < batch.size()) {  // the page is full inside this batch
        cursor = batch[i - 1].id;
        more = true;
        break;
      }
      cursor = batch_end;
    }
    next = more ? cursor : "";
  } else {
    // Action search: the model's actions, decided for one subject and resource.
    StatusOr<json> subject_json = required("subject");
    StatusOr<json> resource_json = required("resource");
    if (!subject_json.ok()) return fail(subject_json.status());
    if (!resource_json.ok()) return fail(resource_json.status());
    StatusOr<Entity> subject = ParseEntity(*subject_json, "subject");
    StatusOr<Entity> resource = ParseEntity(*resource_json, "resource");
    if (!subject.ok()) return fail(subject.status());
    if (!resource.ok()) return fail(resource.status());
    Status valid = RequireEntity(*subject, "subject", true);
    if (valid.ok()) valid = RequireEntity(*resource, "resource", true);
    if (!valid.ok()) return fail(valid);
    json action_properties = json::object();
    if (auto a = body.find("action"); a != body.end() && !a->is_null()) {
      StatusOr<Action> action = ParseAction(*a, "action");
      if (!action.ok()) return fail(action.status());
      action_properties = action->properties;
    }
    StatusOr<engine::Attributes> ctx = Call::Context(*context, action_properties);
    if (!ctx.ok()) return fail(ctx.status());
    if (std::optional<engine::ModelId> model = catalog.FindModel(*resource->type)) {
      Subject who;
      if (Status s = call.ResolveSubject(*subject, &who); !s.ok()) return fail(s);
      StatusOr<CheckInput> base = call.ResolveResource(*resource, "");
      if (!base.ok()) return fail(base.status());
      const std::vector<std::string>& actions = catalog.models()[static_cast<size_t>(*model)].actions;
      size_t start = 0;
      if (!page->cursor.empty()) {
        auto at = std::find(actions.begin(), actions.end(), page->cursor);
        start = at == actions.end() ? actions.size() : static_cast<size_t>(at - actions.begin()) + 1;
      }
      // One at a time, so that a page ends at its limit (an action past it is not logged).
      CheckInput in = std::move(*base);
      for (size_t i = start; i < actions.size(); ++i) {
        if (results.size() >= limit) {
          next = actions[i - 1];
          break;
        }
        in.action = actions[i];
        call.verdicts().clear();
        service_->Decide(who, std::span<const CheckInput>(&in, 1), *ctx, call.facts(), rows, &call.verdicts());
        if (call.verdicts().front().decision.allowed) results.push_back({{"name", actions[i]}});
      }
    }
  }
  json answer = {{"results", std::move(results)}};
  if (page->given || !next.empty()) {
    answer["page"] = {{"next_token", next.empty() ? "" : EncodeToken(next)}};
  }
  WriteJson(res, 200, answer);
}

void AuthzenApi::Metadata(const Request& req, Response& res) const {
  std::string base = options_.public_url;
  if (base.empty()) {
    const std::string& host = req.Header("Host");
    base = std::string(options_.tls ? "https" : "http") + "://" + (host.empty() ? "127.0.0.1" : host);
  }
  while (!base.empty() && base.back() == '/') base.pop_back();
  WriteJson(res, 200,
            json{{"policy_decision_point", base},
                 {"access_evaluation_endpoint", base + kEvaluationPath},
                 {"access_evaluations_endpoint", base + kEvaluationsPath},
                 {"search_subject_endpoint", base + kSearchSubjectPath},
                 {"search_resource_endpoint", base + kSearchResourcePath},
                 {"search_action_endpoint", base + kSearchActionPath}});
}

}  // namespace warden::server
