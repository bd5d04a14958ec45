#include "server/check/forward_auth.h"

#include "server/http/json_io.h"

namespace warden::server {

namespace {

constexpr size_t kMaxForwardedPath = 8 * 1024;

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The path of an absolute URL ("https://api.example.com/companies/1?x" -> "/companies/1?x"),
// or the text itself when it is already origin-form.
std::string_view PathOfUrl(std::string_view url) {
  if (!url.empty() && url.front() == '/') return url;
  const size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  const size_t slash = url.find('/', scheme + 3);
  return slash == std::string_view::npos ? std::string_view("/") : url.substr(slash);
}

std::string_view WithoutQuery(std::string_view path) { return path.substr(0, path.find_first_of("?#")); }

// Header values we write come from the store and the policies; keep them to visible ASCII so
// that no value can break the header block.
std::string HeaderSafe(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  return out;
}

}  // namespace

bool IsForwardAuthPath(std::string_view path) {
  const std::string_view prefix = kForwardAuthPath;
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '/';
}

ForwardAuth::ForwardAuth(Options options, CheckService* service) : options_(std::move(options)), service_(service) {}

void ForwardAuth::Decide(const Request& req, Response& res, std::vector<store::DecisionRow>* rows, bool cache_only,
                         bool* needs_store) {
  // The request to decide.
  std::string_view method, target;
  if (req.HasHeader("X-Forwarded-Method") || req.HasHeader("X-Forwarded-Uri")) {
    method = req.Header("X-Forwarded-Method");
    target = req.Header("X-Forwarded-Uri");
  } else if (req.HasHeader("X-Original-Method") || req.HasHeader("X-Original-URI") || req.HasHeader("X-Original-URL")) {
    method = req.Header("X-Original-Method");
    target = req.HasHeader("X-Original-URI") ? std::string_view(req.Header("X-Original-URI"))
                                             : PathOfUrl(req.Header("X-Original-URL"));
  } else {
    method = req.method;
    target = std::string_view(req.path).substr(std::string_view(kForwardAuthPath).size());
    if (target.empty()) target = "/";
  }
  if (method.empty() || target.empty() || target.front() != '/') {
    return WriteError(res, InvalidArgumentError(
                               "forward-auth needs the request to decide: X-Forwarded-Method and X-Forwarded-Uri, "
                               "X-Original-Method and X-Original-URI (or X-Original-URL), or a path after " +
                                   std::string(kForwardAuthPath)));
  }
  if (target.size() > kMaxForwardedPath) {
    return WriteError(res, InvalidArgumentError("the forwarded URI is longer than 8 KiB", "X-Forwarded-Uri"));
  }
  const std::string_view path = WithoutQuery(target);

  // The credential.
  std::string_view credential = TrimSpaces(req.Header(options_.credential_header));
  if (credential.size() > 7 && EqualsIgnoreCase(credential.substr(0, 7), "Bearer ")) {
    credential = TrimSpaces(credential.substr(7));
  }
  // The last X-Forwarded-For entry is the one the trusted proxy itself added; entries before
  // it came from the client and may be forged.
  std::string_view forwarded_for = req.Header("X-Forwarded-For");
  if (const size_t comma = forwarded_for.rfind(','); comma != std::string_view::npos) {
    forwarded_for.remove_prefix(comma + 1);
  }
  if (TrimSpaces(forwarded_for).empty()) forwarded_for = req.Header("X-Real-IP");
  RequestFacts facts;
  facts.client_addr = service_->ClientAddress(req.remote_addr, TrimSpaces(forwarded_for));
  Subject subject;
  if (!service_->AuthenticateOrAnswer({std::string(credential), false}, facts.client_addr, cache_only, &subject, res,
                                      needs_store)) {
    return;
  }

  CheckInput check;
  std::optional<engine::RouteMatch> route = subject.snapshot->MatchRoute(method, path);
  if (route) {
    check.model = std::string(route->model);
    check.action = std::string(route->action);
    check.resource_id = std::move(route->resource_id);
    check.resource = std::move(route->resource);
  } else {
    check.refused = engine::Reason::kUnknownRoute;
  }
  facts.method = std::string(method.substr(0, 16));
  facts.path = std::string(path.substr(0, 2048));
  facts.request_id = req.Header("X-Request-Id").substr(0, 128);
  thread_local std::vector<Verdict> verdicts;
  verdicts.clear();
  service_->Decide(subject, std::span(&check, 1), engine::Attributes(), facts, rows, &verdicts);
  const Verdict& v = verdicts.front();
  const engine::Decision& d = v.decision;
  const std::string reason(engine::ReasonName(d.reason));
  res.SetHeader("X-Warden-Decision-Id", v.decision_id);
  if (d.allowed) {
    const engine::Principal& p = *subject.principal;
    res.status = 200;
    res.SetHeader("X-Warden-Principal-Type", std::string(engine::PrincipalTypeName(p.type)));
    res.SetHeader("X-Warden-Principal-Id", HeaderSafe(p.id));
    res.SetHeader("X-Warden-Principal-Name", HeaderSafe(p.name));
    res.SetHeader("X-Warden-Token-Id", HeaderSafe(subject.token_id));
    res.SetHeader("X-Warden-Rule", HeaderSafe(d.rule));
    return;
  }
  res.SetHeader("X-Warden-Reason", reason);
  if (subject.failure) {  // no usable credential: the gateway should ask for one
    res.SetHeader("WWW-Authenticate", "Bearer realm=\"warden\"");
    WriteError(res, 401, "unauthenticated",
               subject.failure == engine::Reason::kAccountDisabled ? "the service account is disabled"
                                                                  : "the token is missing, invalid, expired or deleted");
    return;
  }
  if (!d.rule.empty()) res.SetHeader("X-Warden-Rule", HeaderSafe(d.rule));
  WriteError(res, 403, "permission_denied",
             route ? "denied: " + std::string(method) + " " + std::string(path) + " is " + check.model + ":" +
                         check.action + " (" + reason + ")"
                   : "denied: no route matches " + std::string(method) + " " + std::string(path) + " (UNKNOWN_ROUTE)");
}

}  // namespace warden::server
