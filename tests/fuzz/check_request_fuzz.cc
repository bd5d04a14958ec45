// The POST /v1/check body: simdjson's DOM parse, then server::ParseCheckRequest (the same
// calls as App::DecideCheck, without a server). Oracle: a refusal is InvalidArgument, and
// an accepted body holds 1..max checks and bags within engine::kMaxAttributes.
#include <cstdint>
#include <cstdlib>

#include <simdjson.h>

#include "server/check/check_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden;
  constexpr int kMaxChecks = 100;  // Config::max_batch_checks' default
  static simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(reinterpret_cast<const char*>(data), size).get(doc) != simdjson::SUCCESS) return 0;
  std::optional<server::BodyLimit> tripped;
  StatusOr<server::CheckRequest> request = server::ParseCheckRequest(doc, kMaxChecks, &tripped);
  if (!request.ok()) {
    if (request.status().code() != StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  if (tripped) std::abort();
  if (request->checks.empty() || request->checks.size() > kMaxChecks) std::abort();
  if (request->context.size() > engine::kMaxAttributes) std::abort();
  for (const server::CheckInput& check : request->checks) {
    if (check.resource.size() > engine::kMaxAttributes || check.model.empty()) std::abort();
  }
  return 0;
}
