#include "server/event_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace warden::server {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr uint64_t kListenerId = 0;
constexpr uint64_t kWakeId = 1;
constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr auto kAcceptPause = std::chrono::milliseconds(250);

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// ASCII case folding (header names and tokens are ASCII; std::tolower is a locale-aware
// library call, and header matching called it hundreds of times per request).
constexpr char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view lower) {
  return a.size() == lower.size() &&
         std::equal(a.begin(), a.end(), lower.begin(), [](char x, char y) { return AsciiLower(x) == AsciiLower(y); });
}

// Whether a comma-separated header value (Connection, Expect) lists `token`, any case.
bool ListsToken(std::string_view value, std::string_view token) {
  std::string_view rest = value;
  while (!rest.empty()) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return false;
}

std::string AddressString(const sockaddr_storage& addr, int* port) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    *port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    *port = ntohs(in6->sin6_port);
  }
  return buf;
}

}  // namespace

struct EventServer::Conn {
  uint64_t id = 0;
  int fd = -1;
  std::string remote_addr;
  int remote_port = -1;
  std::string in;             // received bytes not yet consumed by a request
  size_t scanned = 0;         // prefix of `in` known not to hold the end of the headers
  std::string out;            // answer bytes not yet written
  size_t out_off = 0;
  uint32_t interest = 0;      // the epoll events registered
  bool waiting = false;       // a request of this connection is being answered
  bool close_after = false;   // close once `out` is written
  bool peer_closed = false;   // the peer will send nothing more
  bool continue_sent = false; // "100 Continue" sent for the request at the head of `in`
  bool lingering = false;     // answered and shut down for writing; reading what the peer
                              // still sends (say, the rest of a 413 body) so that our answer
                              // is not lost to a reset
  SteadyClock::time_point last_active;
};

struct EventServer::Inflight {
  uint64_t conn_id;
  std::unique_ptr<httplib::Request> req;
  httplib::Response res;
  SteadyClock::time_point start;
  bool keep_alive;
};

EventServer::EventServer(Options options, Hooks hooks) : options_(std::move(options)), hooks_(std::move(hooks)) {}

EventServer::~EventServer() {
  Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  for (auto& [id, c] : conns_) ::close(c->fd);
  for (int fd : {listen_fd_, epoll_fd_, wake_fd_}) {
    if (fd >= 0) ::close(fd);
  }
}

StatusOr<int> EventServer::Bind() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(options_.port);
  if (getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found) != 0) {
    return UnavailableError("cannot resolve the listen host " + options_.host);
  }
  for (addrinfo* ai = found; ai != nullptr && listen_fd_ < 0; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0) {
      listen_fd_ = fd;
    } else {
      ::close(fd);
    }
  }
  freeaddrinfo(found);
  if (listen_fd_ < 0) return UnavailableError("cannot listen on " + options_.host + ":" + port);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  int bound_port = -1;
  AddressString(bound, &bound_port);

  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) return UnavailableError("cannot create the event loop");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
  ev.data.u64 = kWakeId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  return bound_port;
}

void EventServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
}

void EventServer::Serve() {
  if (epoll_fd_ < 0) return;
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  auto last_idle_scan = SteadyClock::now();
  while (!stopping_.load()) {
    int timeout_ms = ready_.empty() ? 1000 : 0;
    if (accept_paused_) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(accept_resume_at_ - SteadyClock::now()).count();
      timeout_ms = std::clamp(static_cast<int>(left), 0, timeout_ms);
    }
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      const uint32_t ev = events[i].events;
      if (id == kListenerId) {
        Accept();
        continue;
      }
      if (id == kWakeId) {
        uint64_t count;
        (void)!::read(wake_fd_, &count, sizeof count);
        DrainDone();
        continue;
      }
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      if (ev & (EPOLLERR | EPOLLHUP)) {  // reset or fully closed: nobody can read an answer
        Close(id);
        continue;
      }
      if (ev & EPOLLOUT) {
        OnWritable(*it->second);
        it = conns_.find(id);
        if (it == conns_.end()) continue;
      }
      if (ev & EPOLLIN) OnReadable(*it->second);
    }
    // Connections holding pipelined requests whose previous answer has been queued.
    std::vector<uint64_t> ready;
    ready.swap(ready_);
    for (uint64_t id : ready) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      Process(*it->second);
      Settle(*it->second);
    }
    RunBatch();
    if (hooks_.end_pass) hooks_.end_pass();
    ResumeAcceptingIfDue();
    auto now = SteadyClock::now();
    if (now - last_idle_scan >= std::chrono::seconds(1)) {
      last_idle_scan = now;
      CloseIdle();
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  for (auto& [id, c] : conns_) ::close(c->fd);
  conns_.clear();
}

void EventServer::Accept() {
  for (;;) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) PauseAccepting(errno);
      return;  // EAGAIN: nothing more to accept
    }
    if (accept_failing_) {
      accept_failing_ = false;
      if (hooks_.notice) hooks_.notice("accepting new connections again");
    }
    if (conns_.size() >= options_.max_connections) {
      ::close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd = fd;
    c->remote_addr = AddressString(addr, &c->remote_port);
    c->last_active = SteadyClock::now();
    c->interest = EPOLLIN;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    conns_.emplace(c->id, std::move(c));
  }
}

void EventServer::PauseAccepting(int error) {
  epoll_event ev{};
  ev.events = 0;
  ev.data.u64 = kListenerId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
  accept_paused_ = true;
  accept_resume_at_ = SteadyClock::now() + kAcceptPause;
  if (!accept_failing_) {  // one line per episode, not one per retry
    accept_failing_ = true;
    if (hooks_.notice) {
      hooks_.notice(std::string("cannot accept a connection (") + std::strerror(error) +
                    "); new connections wait in the listen queue, retrying every " +
                    std::to_string(kAcceptPause.count()) + " ms");
    }
  }
}

void EventServer::ResumeAcceptingIfDue() {
  if (!accept_paused_ || SteadyClock::now() < accept_resume_at_) return;
  accept_paused_ = false;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenerId;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
}

void EventServer::OnReadable(Conn& c) {
  char buf[64 * 1024];
  if (c.lingering) {
    for (;;) {
      ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      return Close(c.id);  // EOF or error
    }
  }
  for (;;) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      c.in.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf || c.in.size() > InputCap()) break;
      continue;
    }
    if (n == 0) {
      c.peer_closed = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    Close(c.id);
    return;
  }
  c.last_active = SteadyClock::now();
  Process(c);
  Settle(c);
}

void EventServer::OnWritable(Conn& c) {
  Flush(c);
  Settle(c);
}

void EventServer::Process(Conn& c) {
  while (!c.waiting && !c.close_after) {
    size_t end = c.in.find("\r\n\r\n", c.scanned > 3 ? c.scanned - 3 : 0);
    if (end == std::string::npos) {
      if (c.in.size() > kMaxHeaderBytes) return Fail(c, 431, "the request headers are larger than 16 KiB");
      c.scanned = c.in.size();
      return;
    }
    if (end + 4 > kMaxHeaderBytes) return Fail(c, 431, "the request headers are larger than 16 KiB");
    std::string_view head(c.in.data(), end);

    // Request line: METHOD SP origin-form SP HTTP/1.x
    size_t line_end = head.find("\r\n");
    std::string_view line = head.substr(0, line_end);
    size_t sp1 = line.find(' '), sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp1 == 0 || sp2 == sp1) return Fail(c, 400, "malformed request line");
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!std::all_of(method.begin(), method.end(), IsTokenChar)) return Fail(c, 400, "malformed request method");
    if (target.empty() || target.front() != '/' ||
        std::any_of(target.begin(), target.end(), [](char ch) { return static_cast<unsigned char>(ch) <= 0x20 || ch == 0x7f; })) {
      return Fail(c, 400, "malformed request target");
    }
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
      return version.rfind("HTTP/", 0) == 0 ? Fail(c, 505, "only HTTP/1.0 and HTTP/1.1 are served")
                                            : Fail(c, 400, "malformed request line");
    }
    auto req = std::make_unique<httplib::Request>();
    // The headers this loop acts on, noted while parsing (not looked up afterwards in
    // httplib's case-insensitive multimap, which calls tolower per character compared).
    bool chunked = false;
    std::vector<std::string_view> content_lengths;
    std::string_view expect, connection;
    std::string_view rest = line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
    while (!rest.empty()) {
      size_t eol = rest.find("\r\n");
      std::string_view h = rest.substr(0, eol);
      rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
      size_t colon = h.find(':');
      if (colon == std::string_view::npos || colon == 0 ||
          !std::all_of(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(colon), IsTokenChar)) {
        return Fail(c, 400, "malformed header line");
      }
      std::string_view value = Trim(h.substr(colon + 1));
      if (std::any_of(value.begin(), value.end(), [](char ch) {
            return (static_cast<unsigned char>(ch) < 0x20 && ch != '\t') || ch == 0x7f;
          })) {
        return Fail(c, 400, "control characters in a header value");
      }
      const std::string_view name = h.substr(0, colon);
      if (EqualsIgnoreCase(name, "transfer-encoding")) chunked = true;
      else if (EqualsIgnoreCase(name, "content-length")) content_lengths.push_back(value);
      else if (EqualsIgnoreCase(name, "expect")) expect = value;
      else if (EqualsIgnoreCase(name, "connection")) connection = value;
      req->headers.emplace(std::string(name), std::string(value));
    }
    if (chunked) return Fail(c, 411, "chunked request bodies are not supported: send Content-Length");
    size_t length = 0;
    for (size_t i = 0; i < content_lengths.size(); ++i) {
      const std::string_view v = content_lengths[i];
      size_t parsed = 0;
      if (v.empty() || v.size() > 18 || !std::all_of(v.begin(), v.end(), [](char ch) { return ch >= '0' && ch <= '9'; }) ||
          std::from_chars(v.data(), v.data() + v.size(), parsed).ec != std::errc()) {
        return Fail(c, 400, "malformed Content-Length");
      }
      if (i > 0 && parsed != length) return Fail(c, 400, "conflicting Content-Length headers");
      length = parsed;
    }
    if (length > options_.max_body) return Fail(c, 413, "the request body is larger than the payload limit");
    const size_t total = end + 4 + length;
    if (c.in.size() < total) {
      if (!c.continue_sent && version == "HTTP/1.1" && ListsToken(expect, "100-continue")) {
        c.continue_sent = true;
        c.out += "HTTP/1.1 100 Continue\r\n\r\n";
        Flush(c);
      }
      c.scanned = end;
      if (c.peer_closed) c.close_after = true;  // the body will never arrive
      return;
    }

    req->method = std::string(method);
    req->version = std::string(version);
    req->target = std::string(target);
    size_t q = target.find('?');
    req->path = httplib::detail::decode_url(std::string(target.substr(0, q)), false);
    if (q != std::string_view::npos) httplib::detail::parse_query_text(std::string(target.substr(q + 1)), req->params);
    req->body.assign(c.in, end + 4, length);
    req->remote_addr = c.remote_addr;
    req->remote_port = c.remote_port;
    const bool keep_alive = version == "HTTP/1.1" ? !ListsToken(connection, "close") : ListsToken(connection, "keep-alive");
    c.in.erase(0, total);
    c.scanned = 0;
    c.continue_sent = false;
    c.waiting = true;
    const auto start = SteadyClock::now();

    if (hooks_.is_inline(*req)) {
      auto f = std::make_unique<Inflight>(Inflight{c.id, std::move(req), {}, start, keep_alive});
      try {
        hooks_.handle_inline(*f->req, f->res);
      } catch (...) {
        f->res = httplib::Response();
        hooks_.error(f->res, 500, "internal error");
      }
      batch_.push_back(std::move(f));
    } else {
      {
        std::lock_guard<std::mutex> lock(mu_);
        work_.push_back(Done{c.id, std::move(req), {}, start, keep_alive});
      }
      work_cv_.notify_one();
    }
  }
}

void EventServer::RunBatch() {
  if (batch_.empty()) return;
  hooks_.end_batch();
  Batch batch;
  batch.swap(batch_);
  for (auto& f : batch) {
    auto it = conns_.find(f->conn_id);
    if (it == conns_.end()) continue;  // closed during the pass
    Queue(*it->second, *f->req, f->res, f->start, f->keep_alive);
    Settle(*it->second);
  }
}

void EventServer::DrainDone() {
  std::vector<Done> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(done_);
  }
  for (auto& d : done) {
    auto it = conns_.find(d.conn_id);
    if (it == conns_.end()) continue;  // closed while the worker ran
    Queue(*it->second, *d.req, d.res, d.start, d.keep_alive);
    Settle(*it->second);
  }
}

void EventServer::Queue(Conn& c, const httplib::Request& req, httplib::Response& res,
                        SteadyClock::time_point start, bool keep_alive) {
  if (res.status < 0) res.status = 500;
  if (hooks_.log) hooks_.log(req, res, std::chrono::duration<double>(SteadyClock::now() - start).count());
  std::string& o = c.out;
  o += "HTTP/1.1 ";
  o += std::to_string(res.status);
  o += ' ';
  o += ReasonPhrase(res.status);
  o += "\r\n";
  for (const auto& [name, value] : res.headers) {
    if (EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Connection")) {
      continue;
    }
    o += name;
    o += ": ";
    o += value;
    o += "\r\n";
  }
  if (res.status != 204 && res.status != 304) {
    o += "Content-Length: ";
    o += std::to_string(res.body.size());
    o += "\r\n";
  }
  if (!keep_alive) {
    o += "Connection: close\r\n";
    c.close_after = true;
  } else if (req.version == "HTTP/1.0") {
    o += "Connection: keep-alive\r\n";
  }
  o += "\r\n";
  if (res.status != 204 && res.status != 304 && req.method != "HEAD") o += res.body;
  c.waiting = false;
  Flush(c);
  if (!c.close_after && !c.in.empty()) ready_.push_back(c.id);
}

void EventServer::Fail(Conn& c, int status, const std::string& message) {
  httplib::Request none;
  httplib::Response res;
  hooks_.error(res, status, message);
  c.in.clear();
  c.scanned = 0;
  Queue(c, none, res, SteadyClock::now(), /*keep_alive=*/false);
}

void EventServer::Flush(Conn& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // The peer is gone: drop what is left and close once nothing is pending.
    c.out.clear();
    c.out_off = 0;
    c.close_after = true;
    c.peer_closed = true;
    break;
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  }
  c.last_active = SteadyClock::now();
}

void EventServer::Settle(Conn& c) {
  const bool flushed = c.out.empty();
  if (flushed && !c.waiting && (c.close_after || c.peer_closed)) {
    // A peer that only half-closed still gets the answers to complete requests it sent.
    if (!c.close_after && c.peer_closed && !c.in.empty()) {
      Process(c);
      if (c.waiting || !c.out.empty()) return UpdateInterest(c);
    }
    if (c.close_after && !c.peer_closed) {
      ::shutdown(c.fd, SHUT_WR);
      c.lingering = true;
      c.in.clear();
      c.last_active = SteadyClock::now();
      return UpdateInterest(c);
    }
    return Close(c.id);
  }
  UpdateInterest(c);
}

void EventServer::UpdateInterest(Conn& c) {
  uint32_t want = 0;
  if (c.lingering || (!c.peer_closed && !c.close_after && c.in.size() <= InputCap())) want |= EPOLLIN;
  if (!c.out.empty()) want |= EPOLLOUT;
  if (want == c.interest) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.interest = want;
}

size_t EventServer::InputCap() const { return kMaxHeaderBytes + options_.max_body + 4096; }

void EventServer::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  ::close(it->second->fd);  // also leaves the epoll set
  conns_.erase(it);
}

void EventServer::CloseIdle() {
  const auto now = SteadyClock::now();
  const auto deadline = now - std::chrono::seconds(options_.idle_timeout_s);
  const auto linger_deadline = now - std::chrono::seconds(2);
  std::vector<uint64_t> idle;
  for (const auto& [id, c] : conns_) {
    if (c->lingering ? c->last_active < linger_deadline : !c->waiting && c->last_active < deadline) idle.push_back(id);
  }
  for (uint64_t id : idle) Close(id);
}

void EventServer::WorkerLoop() {
  pthread_setname_np(pthread_self(), "warden-worker");  // the loop itself is the main thread
  for (;;) {
    Done task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [&] { return workers_stop_ || !work_.empty(); });
      if (workers_stop_) return;
      task = std::move(work_.front());
      work_.pop_front();
    }
    try {
      hooks_.handle(*task.req, task.res);
    } catch (...) {
      task.res = httplib::Response();
      hooks_.error(task.res, 500, "internal error");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.push_back(std::move(task));
    }
    uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
}

}  // namespace warden::server
