// Forward-auth for gateways (DESIGN.md 6.2): `/v1/forward-auth` and `/v1/forward-auth/<any>`,
// any method, no body needed. A thin adapter of the check service: it takes the credential
// from a header, the request to decide from the gateway's headers, maps it to a check with the
// snapshot's `kind: Routes` table, and answers with status and headers only:
//   - the request: X-Forwarded-Method + X-Forwarded-Uri (Traefik, Caddy); else
//     X-Original-Method + X-Original-URI or X-Original-URL (nginx, ingress-nginx); else this
//     request's method and its path after /v1/forward-auth (Envoy's path-prefix mode);
//   - the client address (recorded, and whose invalid-token budget counts): X-Forwarded-For's
//     last entry (the one the proxy added) or X-Real-IP when the peer is a trusted proxy
//     (CheckService options), else the peer;
//   - allow: 200, X-Warden-Decision-Id, -Principal-Type, -Principal-Id, -Principal-Name,
//     -Token-Id, -Rule; a missing, bad or expired token or a disabled account: 401 with
//     WWW-Authenticate: Bearer realm="warden" and X-Warden-Reason; deny: 403 with
//     X-Warden-Reason and X-Warden-Rule; throttled 429; log not writable 503.
// Every decision is one log row with the original method and path (no query string).
// Thread-safety: Decide() from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/check/check_service.h"
#include "server/http/message.h"
#include "store/store.h"

namespace warden::server {

inline constexpr char kForwardAuthPath[] = "/v1/forward-auth";

// True for /v1/forward-auth and /v1/forward-auth/...
bool IsForwardAuthPath(std::string_view path);

class ForwardAuth {
 public:
  struct Options {
    std::string credential_header = "Authorization";  // "Bearer <token>", or the bare token
  };
  ForwardAuth(Options options, CheckService* service);
  // A CheckService::Adapter.
  void Decide(const Request& req, Response& res, std::vector<store::DecisionRow>* rows, bool cache_only,
              bool* needs_store);

 private:
  const Options options_;
  CheckService* service_;
};

}  // namespace warden::server
