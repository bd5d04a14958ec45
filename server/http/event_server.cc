#include "server/http/event_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <llhttp.h>

#include <algorithm>
#include <tuple>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "server/http/address_filter.h"

namespace warden::server {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr uint64_t kListenerId = 0;
constexpr uint64_t kWakeId = 1;
constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr auto kAcceptPause = std::chrono::milliseconds(250);
// Input read ahead of a connection whose request is being answered: pipelined requests wait
// in the kernel's buffers (and the client's), not in ours, beyond this much.
constexpr size_t kReadAhead = 64 * 1024;

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
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

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
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

bool StartsWithIgnoreCase(std::string_view s, std::string_view lower_prefix) {
  return s.size() >= lower_prefix.size() && EqualsIgnoreCase(s.substr(0, lower_prefix.size()), lower_prefix);
}

// The path and query of a request target: origin-form ("/p?q") as it is; absolute-form
// ("http://host/p?q", which RFC 9112 section 3.2.2 says a server MUST accept) without its
// scheme and authority. Empty when the target is neither (asterisk- or authority-form).
std::string_view OriginForm(std::string_view target) {
  if (!target.empty() && target.front() == '/') return target;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (!StartsWithIgnoreCase(target, scheme)) continue;
    std::string_view rest = target.substr(scheme.size());
    const size_t path = rest.find_first_of("/?");
    if (path == 0) return {};  // no authority
    if (path == std::string_view::npos) return "/";
    return rest[path] == '/' ? rest.substr(path) : std::string_view();  // "http://h?q" has no path
  }
  return {};
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

const char* HttpLimitName(HttpLimit limit) {
  switch (limit) {
    case HttpLimit::kHeaderDeadline: return "header_deadline";
    case HttpLimit::kRequestDeadline: return "request_deadline";
    case HttpLimit::kIdleTimeout: return "idle_timeout";
    case HttpLimit::kConnectionBuffer: return "connection_buffer";
    case HttpLimit::kTotalBuffer: return "total_buffer";
    case HttpLimit::kConnections: return "connections";
    case HttpLimit::kTargetLength: return "target_length";
    case HttpLimit::kHeaderSize: return "header_size";
    case HttpLimit::kBodySize: return "body_size";
    case HttpLimit::kConnectionsPerAddress: return "connections_per_address";
    case HttpLimit::kConnectionsPerAddressFiltered: return "connections_per_address_filtered";
  }
  return "unknown";
}

// One connection's parse of the request it is reading, as offsets into Conn::in (which is
// only cut at request boundaries, so offsets stay valid while it grows).
struct Span {
  size_t off = 0;
  size_t len = 0;
  std::string_view In(const std::string& in) const { return std::string_view(in).substr(off, len); }
};
struct Field {
  Span name, value;
};

struct EventServer::Conn {
  uint64_t id = 0;
  int fd = -1;
  std::string remote_addr;
  int remote_port = -1;
  std::string in;             // received bytes not yet consumed by a request
  size_t parsed = 0;          // prefix of `in` already given to the parser
  std::string out;            // answer bytes not yet written
  size_t out_off = 0;
  size_t accounted = 0;       // what this connection adds to total_buffered_
  uint32_t interest = 0;      // the epoll events registered
  bool waiting = false;       // a request of this connection is being answered
  bool close_after = false;   // close once `out` is written
  bool peer_closed = false;   // the peer will send nothing more
  bool continue_sent = false; // "100 Continue" sent for the request being read
  bool lingering = false;     // answered and shut down for writing; reading what the peer
                              // still sends (say, the rest of a 413 body) so that our answer
                              // is not lost to a reset
  size_t discarded = 0;       // bytes read and dropped while lingering (bounded: MaxRequestBytes)
  bool paused_out = false;    // not read: its unwritten answers are over the bound
  bool paused_total = false;  // not read: all connections' buffers are over the bound
  bool answered = false;      // at least one answer written: a client, not just a socket
  SteadyClock::time_point request_start;  // first byte of the request being read
  SteadyClock::time_point idle_since;     // last answer written (or accepted)
  SteadyClock::time_point last_active;    // last read or write progress

  // The parse of the request being read (llhttp's callbacks fill it).
  llhttp_t parser;
  const EventServer* server = nullptr;
  Span url;
  std::vector<Field> fields;  // capacity kept across requests
  bool in_value = false;      // the last callback was a header value
  Span body;
  bool headers_done = false;
  bool keep_alive = false;
  bool expect_continue = false;
  int error_status = 0;       // set by a callback that refused the request
  const char* error_message = nullptr;

  size_t Unwritten() const { return out.size() - out_off; }
  // Bytes of a request have arrived and it is not complete yet (or not yet looked at).
  bool Reading() const { return !in.empty(); }
};

// llhttp's callbacks. They record where the parts of the request are in Conn::in and refuse
// what RFC 9112 says to reject and llhttp lets through; the request itself is built once it
// is complete (EventServer::Start).
struct Parsing {
  using Conn = EventServer::Conn;
  static Conn& Of(llhttp_t* p) { return *static_cast<Conn*>(p->data); }
  static size_t Offset(const Conn& c, const char* at) { return static_cast<size_t>(at - c.in.data()); }
  // A callback's refusal; Process answers it with `status`.
  static int Refuse(Conn& c, int status, const char* message) {
    c.error_status = status;
    c.error_message = message;
    return HPE_USER;
  }
  static int WithinHeaderLimit(Conn& c, const char* end) {
    return Offset(c, end) > kMaxHeaderBytes ? Refuse(c, 431, "the request headers are larger than 16 KiB") : 0;
  }

  static int OnMessageBegin(llhttp_t* p) {
    Conn& c = Of(p);
    c.url = {};
    c.fields.clear();
    c.in_value = false;
    c.body = {};
    c.headers_done = false;
    c.expect_continue = false;
    return 0;
  }
  static int OnUrl(llhttp_t* p, const char* at, size_t n) {
    Conn& c = Of(p);
    if (c.url.len == 0) c.url.off = Offset(c, at);
    c.url.len += n;
    if (c.url.len > c.server->options_.max_target_bytes) return Refuse(c, 414, "the request target is longer than the limit");
    return WithinHeaderLimit(c, at + n);
  }
  static int OnHeaderField(llhttp_t* p, const char* at, size_t n) {
    Conn& c = Of(p);
    if (c.fields.empty() || c.in_value) {
      c.fields.push_back(Field{{Offset(c, at), 0}, {Offset(c, at), 0}});
      c.in_value = false;
    }
    c.fields.back().name.len += n;
    return WithinHeaderLimit(c, at + n);
  }
  static int OnHeaderFieldComplete(llhttp_t* p) {
    Conn& c = Of(p);
    c.in_value = true;
    const std::string_view name = c.fields.back().name.In(c.in);
    if (!name.empty() && (name.back() == ' ' || name.back() == '\t')) {
      return Refuse(c, 400, "whitespace between a header name and its colon");
    }
    return 0;
  }
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t n) {
    Conn& c = Of(p);
    if (n == 0) return 0;  // an empty value, reported at the start of the next line
    // llhttp passes an obs-fold continuation line on as more of the value; RFC 9112 section
    // 5.2 lets a server refuse it. A piece that starts a line (after optional whitespace) is one.
    const char* q = at;
    while (q > c.in.data() && (q[-1] == ' ' || q[-1] == '\t')) --q;
    if (q > c.in.data() && q[-1] == '\n') return Refuse(c, 400, "obsolete line folding in a header");
    Field& f = c.fields.back();
    if (f.value.len == 0) f.value.off = Offset(c, at);
    f.value.len = Offset(c, at + n) - f.value.off;
    return WithinHeaderLimit(c, at + n);
  }
  static int OnHeadersComplete(llhttp_t* p) {
    Conn& c = Of(p);
    const EventServer::Options& options = c.server->options_;
    c.headers_done = true;
    if (p->http_major != 1) return Refuse(c, 505, "only HTTP/1.0 and HTTP/1.1 are served");
    if (OriginForm(c.url.In(c.in)).empty()) return Refuse(c, 400, "malformed request target");
    if ((p->flags & F_TRANSFER_ENCODING) && !(p->flags & F_CHUNKED)) {
      // RFC 9112 section 6.3: a request body whose length cannot be determined gets a 400.
      return Refuse(c, 400, "a Transfer-Encoding must end with chunked");
    }
    if (p->flags & F_CHUNKED) return Refuse(c, 411, "chunked request bodies are not supported: send Content-Length");
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > options.max_body) {
      return Refuse(c, 413, "the request body is larger than the payload limit");
    }
    int hosts = 0;
    for (const Field& f : c.fields) {
      const std::string_view name = f.name.In(c.in);
      if (EqualsIgnoreCase(name, "host")) ++hosts;
      else if (EqualsIgnoreCase(name, "expect")) c.expect_continue = ListsToken(f.value.In(c.in), "100-continue");
    }
    if (hosts > 1) return Refuse(c, 400, "more than one Host header");
    if (hosts == 0 && p->http_minor == 1) return Refuse(c, 400, "an HTTP/1.1 request needs a Host header");
    c.expect_continue = c.expect_continue && p->http_minor == 1;
    c.keep_alive = llhttp_should_keep_alive(p) != 0;
    p->upgrade = 0;  // Upgrade is not served: the connection stays HTTP/1.1
    return 0;
  }
  static int OnBody(llhttp_t* p, const char* at, size_t n) {
    Conn& c = Of(p);
    if (c.body.len == 0) c.body.off = Offset(c, at);
    c.body.len = Offset(c, at + n) - c.body.off;
    return 0;
  }
  // One request at a time: the parser stops after each, so that the next one is read only
  // once this one is answered (answers leave in order; a pipelining client is held back).
  static int OnMessageComplete(llhttp_t*) { return HPE_PAUSED; }

  static const llhttp_settings_t& Settings() {
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = OnMessageBegin;
      s.on_url = OnUrl;
      s.on_header_field = OnHeaderField;
      s.on_header_field_complete = OnHeaderFieldComplete;
      s.on_header_value = OnHeaderValue;
      s.on_headers_complete = OnHeadersComplete;
      s.on_body = OnBody;
      s.on_message_complete = OnMessageComplete;
      return s;
    }();
    return settings;
  }
};

struct EventServer::Inflight {
  uint64_t conn_id;
  std::unique_ptr<Request> req;
  Response res;
  SteadyClock::time_point start;
  bool keep_alive;
};

EventServer::EventServer(Options options, Hooks hooks) : options_(std::move(options)), hooks_(std::move(hooks)) {
  // Deadlines are checked by a scan of every connection: often enough to hold each one to a
  // tenth of itself, and at most once per 10 ms.
  const int shortest = std::min({options_.header_timeout_ms, options_.request_timeout_ms, options_.idle_timeout_ms});
  scan_interval_ = std::chrono::milliseconds(std::clamp(shortest / 10, 10, 1000));
}

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
  auto last_scan = SteadyClock::now();
  while (!stopping_.load()) {
    int timeout_ms = ready_.empty() ? static_cast<int>(scan_interval_.count()) : 0;
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
    auto now = SteadyClock::now();
    if (now - last_scan >= scan_interval_) {
      last_scan = now;
      CheckTimers();
    }
    ResumePaused();
    ApplyFilter();
    if (hooks_.end_pass) hooks_.end_pass();
    ResumeAcceptingIfDue();
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
  // At most kAcceptsPerPass connections a pass: the listener stays readable (level-triggered)
  // and the rest are taken next pass, so a flood of connects cannot keep the loop from reading
  // the connections it has (a churn past max_connections starved every client).
  constexpr int kAcceptsPerPass = 64;
  // At the cap, the connections to close for new ones, found with one scan a pass (not one
  // per accept: 64 scans of 10,000 connections took the loop's whole CPU in a churn).
  Eviction victims;
  bool victims_found = false;
  for (int accepted = 0; accepted < kAcceptsPerPass; ++accepted) {
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
    int remote_port = -1;
    std::string remote_addr = AddressString(addr, &remote_port);
    if (!AddressHasRoom(remote_addr)) {
      // Refused before it takes anyone's place. A reset, not a FIN: a client that reconnects
      // at once would otherwise leave a TIME_WAIT socket here per attempt. Its handshake was
      // queued before the filter had the address, or the filter is full or unavailable.
      Trip(HttpLimit::kConnectionsPerAddress);
      FilterIfAtCap(remote_addr);
      const linger reset{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
      ::close(fd);
      continue;
    }
    if (conns_.size() >= options_.max_connections) {
      Trip(HttpLimit::kConnections);
      if (!victims_found) {
        victims = EvictionOrder(kAcceptsPerPass);
        victims_found = true;
      }
      std::deque<uint64_t>& from = !victims.silent.empty() ? victims.silent : victims.served;
      if (from.empty()) {
        ::close(fd);
        continue;
      }
      Close(from.front());
      from.pop_front();
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // The socket was cloned with the listener's filter of that moment: of no use to it (its
    // address passed), a cost on each of its packets, and wrong should its own address have
    // entered the filter between its handshake and the clone.
    if (filter_used_) DetachFilter(fd);
    auto c = std::make_unique<Conn>();
    c->id = next_id_++;
    c->fd = fd;
    c->remote_addr = std::move(remote_addr);
    c->remote_port = remote_port;
    c->last_active = c->idle_since = SteadyClock::now();
    c->interest = EPOLLIN;
    c->server = this;
    llhttp_init(&c->parser, HTTP_REQUEST, &Parsing::Settings());
    c->parser.data = c.get();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = c->id;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    // Accepted this pass and not yet read: the newest of the never-answered ones.
    if (victims_found) victims.silent.push_back(c->id);
    ++per_address_[c->remote_addr];
    FilterIfAtCap(c->remote_addr);
    conns_.emplace(c->id, std::move(c));
  }
}

EventServer::Eviction EventServer::EvictionOrder(size_t n) const {
  // The longest-idle connection that never had an answer goes first (held open and silent, or
  // a request not yet read: nothing is lost by closing it), then the longest-idle keep-alive
  // one. Clients that are served keep their connections while sockets that only hold a place
  // churn among themselves.
  std::vector<const Conn*> idle;
  for (const auto& [id, c] : conns_) {
    if (c->lingering || (!c->waiting && !c->Reading() && c->Unwritten() == 0)) idle.push_back(c.get());
  }
  const auto first = [](const Conn* a, const Conn* b) {
    return std::tie(a->answered, a->idle_since) < std::tie(b->answered, b->idle_since);
  };
  n = std::min(n, idle.size());
  std::partial_sort(idle.begin(), idle.begin() + static_cast<std::ptrdiff_t>(n), idle.end(), first);
  Eviction out;
  for (size_t i = 0; i < n; ++i) (idle[i]->answered ? out.served : out.silent).push_back(idle[i]->id);
  return out;
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
      if (n > 0) {
        // The rest of one request is worth draining; a client that keeps sending at full
        // speed (a pipeline that never reads) would keep the loop copying for the whole linger.
        c.discarded += static_cast<size_t>(n);
        if (c.discarded > MaxRequestBytes()) return Close(c.id);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      return Close(c.id);  // EOF or error
    }
  }
  if (!MayRead(c)) return;
  for (;;) {
    ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (c.in.empty()) c.request_start = SteadyClock::now();  // not renewed by later bytes
      c.in.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf || c.in.size() > InputCap(c)) break;
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
  Process(c);
  Settle(c);
}

void EventServer::OnWritable(Conn& c) {
  Flush(c);
  if (c.paused_out && c.Unwritten() <= options_.connection_buffer_bytes / 2) {
    c.paused_out = false;
    if (!c.in.empty()) ready_.push_back(c.id);
  }
  Settle(c);
}

void EventServer::Process(Conn& c) {
  while (!c.waiting && !c.close_after && c.parsed < c.in.size()) {
    if (c.paused_out || c.paused_total) return;
    if (c.Unwritten() > options_.connection_buffer_bytes) {
      // A client that pipelines and does not read its answers: read nothing more from it
      // until they drain (OnWritable).
      c.paused_out = true;
      Trip(HttpLimit::kConnectionBuffer);
      return UpdateInterest(c);
    }
    if (c.Unwritten() > 0 && total_buffered_ > options_.total_buffer_bytes && !MayRead(c)) return;
    const char* data = c.in.data();
    const llhttp_errno_t err = llhttp_execute(&c.parser, data + c.parsed, c.in.size() - c.parsed);
    if (err == HPE_PAUSED) {  // a request is complete
      const size_t end = static_cast<size_t>(llhttp_get_error_pos(&c.parser) - data);
      llhttp_resume(&c.parser);
      Start(c, end);
      continue;
    }
    if (err != HPE_OK) {
      if (c.error_status == 0) {
        if (err == HPE_INVALID_VERSION) return Fail(c, 505, "only HTTP/1.0 and HTTP/1.1 are served");
        return Fail(c, 400, std::string("malformed request: ") + llhttp_get_error_reason(&c.parser));
      }
      if (c.error_status == 414) Trip(HttpLimit::kTargetLength);
      if (c.error_status == 431) Trip(HttpLimit::kHeaderSize);
      if (c.error_status == 413) Trip(HttpLimit::kBodySize);
      return Fail(c, c.error_status, c.error_message);
    }
    c.parsed = c.in.size();
    if (!c.headers_done && c.in.size() > kMaxHeaderBytes) {  // no line end in sight
      Trip(HttpLimit::kHeaderSize);
      return Fail(c, 431, "the request headers are larger than 16 KiB");
    }
    if (c.headers_done && c.expect_continue && !c.continue_sent) {
      c.continue_sent = true;
      c.out += "HTTP/1.1 100 Continue\r\n\r\n";
      Flush(c);
    }
    if (c.peer_closed) c.close_after = true;  // the rest of the request will never arrive
    return;
  }
}

void EventServer::Start(Conn& c, size_t end) {
  auto req = std::make_unique<Request>();
  const llhttp_t& p = c.parser;
  req->method = llhttp_method_name(static_cast<llhttp_method_t>(p.method));
  req->version = p.http_minor == 1 ? "HTTP/1.1" : "HTTP/1.0";
  const std::string_view target = c.url.In(c.in);
  const std::string_view origin = OriginForm(target);
  req->target = std::string(target);
  const size_t q = origin.find('?');
  req->path = DecodePath(origin.substr(0, q));
  if (q != std::string_view::npos) req->params = ParseQuery(origin.substr(q + 1));
  for (const Field& f : c.fields) req->headers.emplace(std::string(f.name.In(c.in)), std::string(Trim(f.value.In(c.in))));
  req->body.assign(c.in, c.body.off, c.body.len);
  req->remote_addr = c.remote_addr;
  req->remote_port = c.remote_port;
  const bool keep_alive = c.keep_alive;
  c.in.erase(0, end);
  if (c.in.empty() && c.in.capacity() > 64 * 1024) std::string().swap(c.in);  // after a large body
  c.parsed = 0;
  c.headers_done = false;
  c.continue_sent = false;
  c.waiting = true;
  const auto start = SteadyClock::now();
  c.request_start = start;  // of the next request, if it is already here

  if (hooks_.is_inline(*req)) {
    auto f = std::make_unique<Inflight>(Inflight{c.id, std::move(req), {}, start, keep_alive});
    bool handled = true;
    try {
      handled = hooks_.handle_inline(*f->req, f->res);
    } catch (...) {
      f->res = Response();
      hooks_.error(f->res, 500, "internal error");
    }
    if (handled) {
      batch_.push_back(std::move(f));
      return;
    }
    req = std::move(f->req);  // to a worker, with a fresh answer
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    work_.push_back(Done{c.id, std::move(req), {}, start, keep_alive});
  }
  work_cv_.notify_one();
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

void EventServer::Queue(Conn& c, const Request& req, Response& res,
                        SteadyClock::time_point start, bool keep_alive) {
  if (res.status < 0) res.status = 500;
  if (hooks_.log) hooks_.log(req, res, std::chrono::duration<double>(SteadyClock::now() - start).count());
  if (c.Unwritten() == 0) c.last_active = SteadyClock::now();  // a write stall counts from here
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
  c.request_start = SteadyClock::now();  // the next request's clock starts when it is read
  Flush(c);
  if (!c.close_after && !c.in.empty()) ready_.push_back(c.id);
}

void EventServer::Fail(Conn& c, int status, const std::string& message) {
  Request none;
  Response res;
  hooks_.error(res, status, message);
  c.in.clear();
  c.parsed = 0;
  Queue(c, none, res, SteadyClock::now(), /*keep_alive=*/false);
}

void EventServer::Flush(Conn& c) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n > 0) {
      c.out_off += static_cast<size_t>(n);
      c.last_active = SteadyClock::now();
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
    if (!c.out.empty()) {
      c.idle_since = SteadyClock::now();
      c.answered = true;
    }
    c.out.clear();
    c.out_off = 0;
    if (c.out.capacity() > 64 * 1024) std::string().swap(c.out);  // after a large answer
  }
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
  Account(c);
  uint32_t want = 0;
  if (c.lingering ||
      (!c.peer_closed && !c.close_after && !c.paused_out && !c.paused_total && c.in.size() <= InputCap(c))) {
    want |= EPOLLIN;
  }
  if (!c.out.empty()) want |= EPOLLOUT;
  if (want == c.interest) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = c.id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  c.interest = want;
}

size_t EventServer::MaxRequestBytes() const { return kMaxHeaderBytes + options_.max_body + 4096; }

size_t EventServer::InputCap(const Conn& c) const {
  // Only a body whose headers have been read needs room for a whole request; anything else
  // (a header block, or the next requests of a pipeline while one is answered) gets a little
  // read-ahead. Reading a pipeline's megabyte cost a copy of it per request it held, and
  // counted against total_buffer_bytes, which then stopped the connection for its input alone.
  return c.headers_done ? MaxRequestBytes() : kReadAhead;
}

void EventServer::Account(Conn& c) {
  const size_t held = c.in.size() + c.Unwritten();
  total_buffered_ = total_buffered_ - c.accounted + held;
  c.accounted = held;
}

bool EventServer::MayRead(Conn& c) {
  if (total_buffered_ <= options_.total_buffer_bytes) return true;
  // Over the total, only the connections holding more than their share stop being read: a
  // crowd of clients that pipeline and never read must not stall every other client (it did,
  // when every connection stopped). What the others may still add is bounded by the same
  // total (each under total / connections).
  if (c.accounted <= options_.total_buffer_bytes / std::max<size_t>(1, conns_.size())) return true;
  if (!c.paused_total) {
    c.paused_total = true;
    paused_.push_back(c.id);
    Trip(HttpLimit::kTotalBuffer);
  }
  UpdateInterest(c);
  return false;
}

void EventServer::ResumePaused() {
  if (paused_.empty() || total_buffered_ > options_.total_buffer_bytes) return;
  std::vector<uint64_t> paused;
  paused.swap(paused_);
  for (uint64_t id : paused) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = *it->second;
    c.paused_total = false;
    if (!c.in.empty()) ready_.push_back(id);
    UpdateInterest(c);
  }
}

void EventServer::Trip(HttpLimit limit) const {
  if (hooks_.limit) hooks_.limit(limit);
}

void EventServer::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  total_buffered_ -= it->second->accounted;
  ::close(it->second->fd);  // also leaves the epoll set
  if (auto a = per_address_.find(it->second->remote_addr); a != per_address_.end() && --a->second == 0) {
    per_address_.erase(a);
  }
  UnfilterIfBelowCap(it->second->remote_addr);
  conns_.erase(it);
}

bool EventServer::IsCapped(const std::string& addr) const {
  if (options_.max_connections_per_address == 0) return false;
  const auto& uncapped = options_.uncapped_addresses;
  return std::find(uncapped.begin(), uncapped.end(), addr) == uncapped.end();
}

bool EventServer::AddressHasRoom(const std::string& addr) const {
  const auto it = per_address_.find(addr);
  return it == per_address_.end() || it->second < options_.max_connections_per_address || !IsCapped(addr);
}

void EventServer::FilterIfAtCap(const std::string& addr) {
  if (filter_unavailable_ || AddressHasRoom(addr) || filtered_.size() >= kMaxFilteredAddresses) return;
  if (!filtered_.insert(addr).second) return;
  filter_changed_ = true;
  Trip(HttpLimit::kConnectionsPerAddressFiltered);
}

void EventServer::UnfilterIfBelowCap(const std::string& addr) {
  const auto f = filtered_.find(addr);
  if (f == filtered_.end()) return;
  // Out only a tenth of the cap below it (at least one), so an address that keeps its cap
  // full does not flip the filter every pass.
  const size_t cap = options_.max_connections_per_address;
  const auto a = per_address_.find(addr);
  const size_t held = a == per_address_.end() ? 0 : a->second;
  if (held + std::max<size_t>(1, cap / 10) > cap) return;
  filtered_.erase(f);
  filter_changed_ = true;
}

void EventServer::ApplyFilter() {
  if (!filter_changed_) return;
  filter_changed_ = false;
  const Status attached = SetDropFilter(listen_fd_, std::vector<std::string>(filtered_.begin(), filtered_.end()));
  if (attached.ok()) {
    filter_used_ = filter_used_ || !filtered_.empty();
    return;
  }
  // Refusing by reset after the accept still holds each address to its cap.
  filter_unavailable_ = true;
  filtered_.clear();
  if (hooks_.notice) {
    hooks_.notice("capped client addresses are refused after the accept, not filtered below it (" +
                  attached.message() + ")");
  }
}

void EventServer::CheckTimers() {
  using std::chrono::milliseconds;
  const auto now = SteadyClock::now();
  const auto linger_deadline = now - std::chrono::seconds(2);
  const auto idle_deadline = now - milliseconds(options_.idle_timeout_ms);
  const auto header_deadline = now - milliseconds(options_.header_timeout_ms);
  const auto request_deadline = now - milliseconds(options_.request_timeout_ms);
  std::vector<uint64_t> idle;
  std::vector<std::pair<uint64_t, HttpLimit>> late;
  for (const auto& [id, cp] : conns_) {
    const Conn& c = *cp;
    if (c.lingering) {
      if (c.last_active < linger_deadline) idle.push_back(id);
    } else if (c.waiting) {
      // Answering takes as long as it takes; the client is not the one late.
    } else if (c.Unwritten() > 0) {
      if (c.last_active < idle_deadline) {  // answers not read
        Trip(HttpLimit::kIdleTimeout);
        idle.push_back(id);
      }
    } else if (c.Reading()) {
      if (!c.headers_done && c.request_start < header_deadline) late.emplace_back(id, HttpLimit::kHeaderDeadline);
      else if (c.request_start < request_deadline) late.emplace_back(id, HttpLimit::kRequestDeadline);
    } else if (c.idle_since < idle_deadline) {
      Trip(HttpLimit::kIdleTimeout);
      idle.push_back(id);
    }
  }
  for (uint64_t id : idle) Close(id);
  for (const auto& [id, limit] : late) {
    Conn& c = *conns_.at(id);
    Trip(limit);
    Fail(c, 408, limit == HttpLimit::kHeaderDeadline ? "the request headers did not arrive in time"
                                                     : "the request did not arrive in time");
    Settle(c);
  }
}

void EventServer::WorkerLoop() {
  pthread_setname_np(pthread_self(), "warden-worker");  // the loop itself is the main thread
  // Below the loop: a flood of requests that need a worker (admin writes, /metrics) then
  // takes the CPU the loop leaves, not the loop's own, so the checks it answers keep their
  // latency (issue 12: yaml-alias, pipeline-96).
  if (options_.worker_nice > 0) (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), options_.worker_nice);
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
      task.res = Response();
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
