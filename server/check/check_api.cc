// POST /v1/check: the check service's JSON adapter (the hot path).
#include "server/check/check_api.h"

#include <optional>

#include <simdjson.h>

#include "common/json_text.h"
#include "server/http/json_io.h"

namespace warden::server {

namespace {

namespace sj = simdjson::dom;

}  // namespace

CheckApi::CheckApi(CheckService* service, Metrics* metrics, int max_batch_checks)
    : service_(service), metrics_(metrics), max_batch_checks_(max_batch_checks) {}

void CheckApi::Decide(const Request& req, Response& res, std::vector<store::DecisionRow>* log_rows,
                      bool cache_only, bool* needs_store) {
  if (!IsJsonContentType(req)) return WriteError(res, UnsupportedMediaType("the body must be application/json"));
  // simdjson, not nlohmann::json: building the nlohmann tree and reading it back was about
  // 60,000 instructions of a check's ~150,000. The loop thread (and each TLS-front thread)
  // keeps one parser, sized by the largest body it has seen; larger bodies get their own.
  constexpr size_t kKeptParserBytes = 16 << 10;  // a batch of 100 checks is ~10 KiB
  thread_local sj::parser kept_parser;
  std::optional<sj::parser> own_parser;
  sj::parser& parser = req.body.size() <= kKeptParserBytes ? kept_parser : own_parser.emplace();
  sj::element doc;
  if (parser.parse(req.body.data(), req.body.size()).get(doc) != simdjson::SUCCESS) {
    return WriteError(res, InvalidArgumentError("the body is not valid JSON"));
  }
  std::optional<BodyLimit> tripped;
  StatusOr<CheckRequest> parsed = ParseCheckRequest(doc, max_batch_checks_, &tripped);
  if (tripped) metrics_->CountLimitExceeded(*tripped);
  if (!parsed.ok()) return WriteError(res, parsed.status());
  CheckRequest& check = *parsed;

  // The protected API reports its own caller's address; it counts when the API is trusted.
  const std::string client = service_->ClientAddress(req.remote_addr, check.client_addr);
  Subject subject;
  if (!service_->AuthenticateOrAnswer({std::move(check.token), check.tenant}, client, cache_only, &subject, res,
                                      needs_store)) {
    return;
  }
  RequestFacts facts{check.client_addr.empty() ? req.remote_addr : check.client_addr, check.method, check.path,
                     check.request_id};
  thread_local std::vector<Verdict> verdicts;
  verdicts.clear();
  service_->Decide(subject, check.checks, check.context, facts, log_rows, &verdicts);
  const engine::Principal* principal = subject.principal;
  const std::string no_name;

  // The answer is written directly (not through a JSON tree): it is most of the check path's
  // allocations otherwise. Keys in the same (sorted) order nlohmann::json would print them.
  const std::string_view principal_type =
      principal ? engine::PrincipalTypeName(principal->type) : std::string_view("service_account");
  std::string out;
  out.reserve(256 + verdicts.size() * 200);
  out += '{';
  if (check.single) {
    out += R"("allowed":)";
    out += verdicts[0].decision.allowed ? "true" : "false";
    out += ',';
  }
  out += R"("decision_id":)";
  AppendJsonString(&out, verdicts.front().decision_id);
  out += R"(,"policy_revision":)";
  AppendJsonString(&out, subject.snapshot->revision());
  out += R"(,"principal":{"id":)";
  AppendJsonStringOrNull(&out, principal ? principal->id : no_name);
  out += R"(,"name":)";
  AppendJsonStringOrNull(&out, principal ? principal->name : no_name);
  out += R"(,"token_id":)";
  AppendJsonStringOrNull(&out, subject.token_id);
  out += R"(,"type":)";
  AppendJsonString(&out, principal_type);
  out += '}';
  if (check.single) {
    out += R"(,"reason":)";
    AppendJsonString(&out, engine::ReasonName(verdicts[0].decision.reason));
  }
  out += R"(,"results":[)";
  for (size_t i = 0; i < verdicts.size(); ++i) {
    const engine::Decision& d = verdicts[i].decision;
    if (i > 0) out += ',';
    out += R"({"action":)";
    AppendJsonString(&out, check.checks[i].action);
    out += R"(,"allowed":)";
    out += d.allowed ? "true" : "false";
    out += R"(,"decision_id":)";
    AppendJsonString(&out, verdicts[i].decision_id);
    out += R"(,"eval_error":)";
    out += d.eval_error ? "true" : "false";
    out += R"(,"model":)";
    AppendJsonString(&out, check.checks[i].model);
    out += R"(,"reason":)";
    AppendJsonString(&out, engine::ReasonName(d.reason));
    out += R"(,"rule":)";
    AppendJsonStringOrNull(&out, d.rule);
    out += '}';
  }
  out += ']';
  if (check.single) {
    out += R"(,"rule":)";
    AppendJsonStringOrNull(&out, verdicts[0].decision.rule);
  }
  out += '}';
  res.status = 200;
  res.SetContent(std::move(out), "application/json");
}

}  // namespace warden::server
