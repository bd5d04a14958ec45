// libFuzzer target: the HTTP/1.1 request framing of the plain-HTTP front (server/event_server:
// the event loop, llhttp and warden's own RFC 9112 checks), driven over a real loopback socket.
// One EventServer runs for the whole fuzzing session, with trivial hooks; each input is written
// in up to four pieces split where its first bytes say, then the write side is shut.
// Oracle beyond "no crash, leak or UB":
//   - the server answers and closes within 10 s (a hang is abort()ed: a finding),
//   - what comes back is a sequence of well-formed responses ("HTTP/1.1 NNN reason", headers,
//     Content-Length matching the body, no bytes after the last one), each status one the
//     front may send,
//   - a well-formed request on a new connection is still answered afterwards.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>

#include "server/http/event_server.h"

namespace {

using warden::server::EventServer;

int g_port = 0;

void Check(bool ok, const char* what, const std::string& reply) {
  if (ok) return;
  std::fprintf(stderr, "http_framing oracle: %s\nreply (%zu bytes): %.400s\n", what, reply.size(), reply.c_str());
  std::abort();
}

std::string Exchange(const uint8_t* data, size_t size) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(g_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = -1;
  for (int attempt = 0;; ++attempt) {  // libFuzzer's timers interrupt system calls (EINTR)
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) std::abort();
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
    const int error = errno;
    close(fd);
    if (error == EINTR && attempt < 10) continue;
    std::fprintf(stderr, "http_framing: connect: %s\n", std::strerror(error));
    std::abort();
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // The first byte chooses up to three split points: the server must frame requests the same
  // way whatever pieces the bytes arrive in.
  size_t pieces[3] = {size, size, size};
  if (size > 1) {
    const uint8_t k = data[0];
    data++;
    size--;
    pieces[0] = size ? (k & 0x0f) * size / 16 : 0;
    pieces[1] = size ? ((k >> 4) * size / 16 > pieces[0] ? (k >> 4) * size / 16 : pieces[0]) : 0;
    pieces[2] = size;
  }
  size_t sent = 0;
  for (size_t end : pieces) {
    while (sent < end) {
      ssize_t n = send(fd, data + sent, end - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server may close early (an error answer): fine
      sent += static_cast<size_t>(n);
    }
  }
  shutdown(fd, SHUT_WR);
  std::string reply;
  char buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) Check(false, "no close within 10 s", reply);
      break;  // reset by the server after an error answer
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  // Reset instead of TIME_WAIT: this side closes first, and a million exchanges would use up
  // the ephemeral ports (the first hour-long run stopped at ~143,000 with connect() failing).
  const linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
  close(fd);
  return reply;
}

void CheckResponses(const std::string& reply) {
  static const std::set<int> kStatuses = {100, 200, 400, 404, 408, 411, 413, 414, 431, 500, 505};
  size_t at = 0;
  while (at < reply.size()) {
    Check(reply.compare(at, 9, "HTTP/1.1 ") == 0, "a response does not start with HTTP/1.1", reply.substr(at));
    const size_t head_end = reply.find("\r\n\r\n", at);
    Check(head_end != std::string::npos, "a response without the end of its headers", reply.substr(at));
    const int status = std::atoi(reply.c_str() + at + 9);
    Check(kStatuses.count(status) == 1, "an unexpected status", reply.substr(at));
    size_t length = 0;
    const std::string head = reply.substr(at, head_end - at);
    const size_t cl = head.find("\r\nContent-Length: ");
    if (status >= 200) {
      Check(cl != std::string::npos, "a final response without Content-Length", head);
      length = std::strtoul(head.c_str() + cl + 18, nullptr, 10);
    }
    at = head_end + 4;
    Check(reply.size() - at >= length, "a body shorter than its Content-Length", reply.substr(at));
    at += length;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  EventServer::Options options;
  options.port = 0;
  options.workers = 2;
  // Deadlines well above a scheduling stall of a loaded machine: they are not what this
  // target fuzzes, and a 1 s header deadline closed a probe once under load average 19.
  options.header_timeout_ms = 4000;
  options.request_timeout_ms = 4000;
  options.idle_timeout_ms = 4000;
  options.max_body = 64 << 10;
  EventServer::Hooks hooks;
  hooks.is_inline = [](const warden::server::Request& req) { return req.path == "/v1/check"; };
  hooks.handle_inline = [](warden::server::Request& req, warden::server::Response& res) {
    res.status = 200;
    res.SetContent("{\"inline\":" + std::to_string(req.body.size()) + "}", "application/json");
    return req.body.size() % 2 == 0;  // odd bodies go to a worker, like a token-cache miss
  };
  hooks.end_batch = [] {};
  hooks.handle = [](warden::server::Request& req, warden::server::Response& res) {
    res.status = req.path == "/missing" ? 404 : 200;
    res.SetContent(req.method + " " + req.path, "text/plain");
  };
  hooks.error = [](warden::server::Response& res, int status, const std::string& message) {
    res.status = status;
    res.SetContent(message, "text/plain");
  };
  // Never destroyed: the loop runs until the process exits (a static's destructor would stop
  // it while libFuzzer's exit path still runs).
  static EventServer* server = new EventServer(options, hooks);
  auto port = server->Bind();
  if (!port.ok()) std::abort();
  g_port = *port;
  std::thread([] { server->Serve(); }).detach();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  CheckResponses(Exchange(data, size));
  static int n = 0;
  if (++n % 256 == 0) {  // still serving
    static const char kProbe[] = "\x10GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    std::string reply;
    for (int attempt = 0; attempt < 3 && reply.rfind("HTTP/1.1 200 ", 0) != 0; ++attempt) {
      reply = Exchange(reinterpret_cast<const uint8_t*>(kProbe), sizeof kProbe - 1);
    }
    Check(reply.rfind("HTTP/1.1 200 ", 0) == 0, "the server stopped answering a well-formed request (3 tries)", reply);
  }
  return 0;
}
