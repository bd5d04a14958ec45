// POST /v1/check (DESIGN.md 6): the JSON body (simdjson, bounded: check/check_request.h) in,
// the decisions out, through the check service. A thin adapter: everything about who is
// asking, what is decided and what is logged is CheckService's.
// Thread-safety: Decide() from any thread (it keeps a parser per thread).
#pragma once

#include <vector>

#include "server/check/check_service.h"
#include "server/http/message.h"
#include "server/ops/metrics.h"
#include "store/store.h"

namespace warden::server {

class CheckApi {
 public:
  CheckApi(CheckService* service, Metrics* metrics, int max_batch_checks);
  // A CheckService::Adapter.
  void Decide(const Request& req, Response& res, std::vector<store::DecisionRow>* rows, bool cache_only,
              bool* needs_store);

 private:
  CheckService* service_;
  Metrics* metrics_;
  const int max_batch_checks_;
};

}  // namespace warden::server
