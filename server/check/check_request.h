// The body of POST /v1/check, parsed from simdjson's DOM into what the check path needs.
// Separate from check_routes.cc so that tests/fuzz can drive the parser without a server.
// Every bound of the body is here (checks per request, name and token lengths) or in
// engine::Attributes::Add (attribute count, names, values); a refusal is InvalidArgument with
// the field it is about. Thread-safe (no shared state).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <simdjson.h>

#include "common/status.h"
#include "engine/engine.h"
#include "server/ops/metrics.h"

namespace warden::server {

struct CheckInput {
  std::string model;
  std::string action;
  std::string resource_id;
  engine::Attributes resource;
  // Set by an adapter that already knows the answer is a deny with this reason, before the
  // model is looked at (forward-auth: no route matched, UNKNOWN_ROUTE).
  std::optional<engine::Reason> refused;
};

struct CheckRequest {
  std::string token;
  bool tenant = false;
  bool single = false;
  std::vector<CheckInput> checks;
  engine::Attributes context;
  std::string client_addr, method, path, request_id;
};

// `tripped`, when given, is set to the bound that refused the body, if a bound (rather than a
// wrong shape) did.
StatusOr<CheckRequest> ParseCheckRequest(simdjson::dom::element doc, int max_checks,
                                         std::optional<BodyLimit>* tripped = nullptr);

}  // namespace warden::server
