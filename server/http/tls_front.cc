#include "server/http/tls_front.h"

#include <chrono>

#include <httplib.h>

namespace warden::server {

namespace {

thread_local std::chrono::steady_clock::time_point t_request_start;
// The path of a request with a body while httplib reads the body (see Bind).
thread_local std::string t_parked_path;
thread_local bool t_path_parked = false;

Request FromHttplib(const httplib::Request& in) {
  Request out;
  out.method = in.method;
  out.target = in.target;
  out.path = in.path;
  out.version = in.version;
  for (const auto& [name, value] : in.headers) out.headers.emplace(name, value);
  for (const auto& [name, value] : in.params) out.params.emplace(name, value);
  out.body = in.body;
  out.remote_addr = in.remote_addr;
  out.remote_port = in.remote_port;
  return out;
}

void ToHttplib(Response& in, httplib::Response* out) {
  out->status = in.status < 0 ? 500 : in.status;
  for (auto& [name, value] : in.headers) out->set_header(name, value);
  out->body = std::move(in.body);
}

}  // namespace

TlsFront::TlsFront(Options options, Hooks hooks) : options_(std::move(options)), hooks_(std::move(hooks)) {}

TlsFront::~TlsFront() { Stop(); }

StatusOr<int> TlsFront::Bind() {
  auto ssl = std::make_unique<httplib::SSLServer>(options_.cert_file.c_str(), options_.key_file.c_str());
  if (!ssl->is_valid()) return InvalidArgumentError("cannot load the TLS certificate or key", "tls_cert");
  server_ = std::move(ssl);
  const int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  server_->set_tcp_nodelay(true);
  server_->set_keep_alive_max_count(1'000'000);
  server_->set_keep_alive_timeout(30);
  server_->set_read_timeout(30);
  server_->set_payload_max_length(options_.max_body);

  // A request without a body is answered in the pre-routing handler. httplib reads a body
  // only after that handler, so a request with one has its path parked (same thread, until
  // the handler or the logger) and replaced by "/", whose only routes, below, put it back and
  // hand the request on.
  auto handle = [this](const httplib::Request& hreq, httplib::Response& hres) {
    Request req = FromHttplib(hreq);
    Response res;
    hooks_.handle(req, res);
    ToHttplib(res, &hres);
  };
  server_->set_pre_routing_handler([this, handle](const httplib::Request& req, httplib::Response& res) {
    t_request_start = std::chrono::steady_clock::now();
    t_path_parked = false;  // whatever an earlier request on this thread left
    if (req.target.size() > options_.max_target_bytes) {
      Response error;
      if (hooks_.limit) hooks_.limit(HttpLimit::kTargetLength);
      hooks_.error(error, 414, "the request target is longer than the limit");
      ToHttplib(error, &res);
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method == "POST" || req.method == "PUT" || req.method == "PATCH" || req.method == "DELETE") {
      t_parked_path = std::move(const_cast<httplib::Request&>(req).path);
      t_path_parked = true;
      const_cast<httplib::Request&>(req).path = "/";
      return httplib::Server::HandlerResponse::Unhandled;
    }
    handle(req, res);
    return httplib::Server::HandlerResponse::Handled;
  });
  auto unpark = [](const httplib::Request& req) {
    if (!t_path_parked) return;
    t_path_parked = false;
    const_cast<httplib::Request&>(req).path = std::move(t_parked_path);
  };
  auto with_body = [handle, unpark](const httplib::Request& req, httplib::Response& res) {
    unpark(req);
    handle(req, res);
  };
  server_->Post("/", with_body);
  server_->Put("/", with_body);
  server_->Patch("/", with_body);
  server_->Delete("/", with_body);
  server_->set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    Response error;
    switch (res.status) {
      case 404: hooks_.error(error, 404, "no such endpoint: " + req.method + " " + req.path); break;
      case 413: hooks_.error(error, 413, "the request body is larger than the payload limit"); break;
      case 405: hooks_.error(error, 405, "method not allowed"); break;
      default: hooks_.error(error, res.status, "the request could not be processed"); break;
    }
    ToHttplib(error, &res);
  });
  server_->set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    Response error;
    hooks_.error(error, 500, "internal error");
    ToHttplib(error, &res);
  });
  server_->set_logger([this, unpark](const httplib::Request& hreq, const httplib::Response& hres) {
    unpark(hreq);  // the body was refused (say, a 413) before the handler ran
    if (!hooks_.log) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_request_start).count();
    Request req;
    req.method = hreq.method;
    req.path = hreq.path;
    Response res;
    res.status = hres.status;
    res.SetHeader("X-Request-Id", hres.get_header_value("X-Request-Id"));
    hooks_.log(req, res, secs);
  });
  int port = options_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(options_.host);
  } else if (!server_->bind_to_port(options_.host, port)) {
    port = -1;
  }
  if (port < 0) return UnavailableError("cannot listen on " + options_.host + ":" + std::to_string(options_.port));
  return port;
}

void TlsFront::Serve() {
  if (server_) server_->listen_after_bind();
}

void TlsFront::Stop() {
  if (server_) server_->stop();
}

}  // namespace warden::server
