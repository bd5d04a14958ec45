// OpenID AuthZEN 1.0, the PDP side (DESIGN.md 6.1): access evaluation, evaluations (all three
// evaluations_semantic options), subject/resource/action search and the metadata document,
// as adapters of the check service.
//
// The caller is a PEP that authenticates with its own service-account token (Authorization:
// Bearer) whose policy grants `authzen: [evaluate]` (`[search]` for the search endpoints);
// the subject it asks about is resolved separately: `service_account` by account id or name,
// any type of the catalog's `subjects:` through the directory (store::DirectoryStore), with
// the request's `properties` merged over the stored ones. Every decision is one decision-log
// row with the subject as principal and the PEP's token as the token (check_service.h).
//
// Bounds: the body (the front's payload limit), evaluations per request (max_evaluations),
// candidates decided per search request (max_search_candidates: past it the answer pages
// even without page.limit), and page.limit (at most kMaxPageLimit of store.h).
// Thread-safety: Decide() and Metadata() from any thread (no mutable state).
#pragma once

#include <string>
#include <vector>

#include "server/check/check_service.h"
#include "server/http/message.h"
#include "store/store.h"

namespace warden::server {

class AuthzenApi {
 public:
  struct Options {
    std::string public_url;  // policy_decision_point; empty: the scheme and Host of the request
    bool tls = false;        // the scheme when public_url is empty
    int max_evaluations = 100;
    int max_search_candidates = 10'000;
  };
  enum class Endpoint { kEvaluation, kEvaluations, kSearchSubject, kSearchResource, kSearchAction };

  AuthzenApi(Options options, CheckService* service, store::DirectoryStore* directory, store::AccountStore* accounts);

  // A CheckService::Adapter for `endpoint` (bind it with a lambda).
  void Decide(Endpoint endpoint, const Request& req, Response& res, std::vector<store::DecisionRow>* rows,
              bool cache_only, bool* needs_store) const;
  // GET /.well-known/authzen-configuration.
  void Metadata(const Request& req, Response& res) const;

  // The paths, for the router.
  static constexpr char kEvaluationPath[] = "/access/v1/evaluation";
  static constexpr char kEvaluationsPath[] = "/access/v1/evaluations";
  static constexpr char kSearchSubjectPath[] = "/access/v1/search/subject";
  static constexpr char kSearchResourcePath[] = "/access/v1/search/resource";
  static constexpr char kSearchActionPath[] = "/access/v1/search/action";
  static constexpr char kMetadataPath[] = "/.well-known/authzen-configuration";

 private:
  class Call;  // one request's state (authzen_api.cc)

  const Options options_;
  CheckService* service_;
  store::DirectoryStore* directory_;
  store::AccountStore* accounts_;
};

}  // namespace warden::server
