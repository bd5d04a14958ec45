// The HTTPS front: cpp-httplib's SSLServer (OpenSSL), one pool thread per connection. It turns
// each httplib request into a Request, hands it to the same handler the event loop's workers
// run (so every route, /v1/check included, takes the same path as over plain HTTP) and
// writes the Response back. Routing is never httplib's (its router runs std::regex over the
// path): every request goes to `handle`.
// Thread-safety: Bind() and Serve() from one thread; Stop() from any thread; the hooks run on
// the pool's threads, concurrently.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "server/http/event_server.h"
#include "server/http/message.h"

namespace httplib {
class SSLServer;
}

namespace warden::server {

class TlsFront {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 0;  // 0 picks a free port
    std::string cert_file, key_file;
    int threads = 64;
    size_t max_body = 1 << 20;
    size_t max_target_bytes = 8 * 1024;
  };
  struct Hooks {
    std::function<void(Request&, Response&)> handle;
    // Once per answer; `seconds` since the request started.
    std::function<void(const Request&, const Response&, double seconds)> log;
    // Errors found before a request reached `handle` (404, 405, 413, 414, ...).
    std::function<void(Response&, int status, const std::string& message)> error;
    std::function<void(HttpLimit)> limit;
  };

  TlsFront(Options options, Hooks hooks);
  ~TlsFront();
  TlsFront(const TlsFront&) = delete;
  TlsFront& operator=(const TlsFront&) = delete;

  // Loads the certificate and key, binds and listens. Returns the bound port.
  StatusOr<int> Bind();
  void Serve();
  void Stop();

 private:
  const Options options_;
  const Hooks hooks_;
  std::unique_ptr<httplib::SSLServer> server_;
};

}  // namespace warden::server
