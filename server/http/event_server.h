// The plain-HTTP front of warden: one epoll event loop owns every connection, and a small
// worker pool runs the handlers that may block.
//
// Why not httplib's server here: it runs one thread per keep-alive connection, so every
// check costs several context switches (socket wake-up, group-commit hand-off, wake-up of
// the answer), which on a 2-vCPU machine capped /v1/check near 8k requests/s. The loop
// instead reads every ready connection, decides the "inline" requests (the check) itself,
// lets the owner write all of their decision-log rows as one batch (`end_batch`), and
// only then writes the answers. A batch is exactly the requests that arrived together, so
// group commit needs no thread hand-off at all.
//
// Requests are parsed by llhttp (the parser of Node.js), fed incrementally with whatever
// each read brought, and held to RFC 9112: what it says to reject gets a 4xx with the JSON
// error (400, 411, 413, 414, 431, 505), including a missing or repeated Host on HTTP/1.1,
// obs-fold, control characters in header names or values, and Content-Length together with
// Transfer-Encoding. HTTP/1.1 with keep-alive and pipelining (answers leave in request
// order), HTTP/1.0, `Expect: 100-continue`, origin-form and absolute-form targets,
// Content-Length bodies up to `max_body` (413 otherwise; chunked request bodies get 411),
// headers up to 16 KiB (431).
//
// Everything a client can make the loop hold is bounded (see Options): the header block and
// the whole request each have a deadline counted from their first byte, so a trickle of
// bytes does not renew it (408, then close); an idle keep-alive connection, or one whose
// answers do not drain, closes after `idle_timeout_ms`; beyond a body whose headers are read,
// at most 64 KiB of a connection's input is read ahead (a pipeline waits in the kernel's
// buffers, not ours), and after a final answer (say 413) at most one largest request more is read and
// dropped before the connection is reset; a connection whose unwritten answers
// pass `connection_buffer_bytes` is not read until they drain, and while all of them together
// hold more than `total_buffer_bytes` the ones holding more than their share are not read;
// at `max_connections` a new connection displaces the longest-idle one that was never
// answered, else the longest-idle keep-alive one, or is refused; one client address holds at
// most `max_connections_per_address`; at most 64 connections are accepted a pass. Each bound
// reports through `Hooks::limit` when it trips.
//
// An address that reaches its cap goes into a classic BPF filter on the listener
// (address_filter.h), so its further SYNs are dropped by the kernel before any handshake: a
// client that reopens every refused connection then waits for its own SYN retransmissions
// (1 s, 3 s, ...) instead of costing this host a handshake, an accept and a reset each time
// (issue 12, idle-churn). It leaves the filter once it holds a tenth of the cap fewer (at
// least one), and a connection still accepted over the cap (queued before the filter had its
// address, beyond kMaxFilteredAddresses, or where the kernel refuses filters, which `notice`
// reports once) is reset as before. `uncapped_addresses` are never filtered. The filter is
// rebuilt at most once a loop pass, when the set changed, and detached from every accepted
// socket (which inherits it).
//
// Out of file descriptors (or memory), the loop stops watching the listener for 250 ms at a
// time instead of retrying accept() in a busy loop; new connections wait in the listen queue,
// and `notice` reports the start and the end of such an episode. TLS is not handled here (App
// uses httplib's SSLServer for it).
//
// Thread-safety: Bind() and Serve() from one thread; Stop() from any thread. The hooks run
// on the loop thread (is_inline, handle_inline, end_batch, log, limit) or on a worker (handle).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "server/http/message.h"

namespace warden::server {

// The bounds of EventServer::Options, as reported when one trips.
enum class HttpLimit {
  kHeaderDeadline,    // the header block did not arrive within header_timeout_ms (408)
  kRequestDeadline,   // the whole request did not arrive within request_timeout_ms (408)
  kIdleTimeout,       // keep-alive connection idle, or its answers not read, for idle_timeout_ms
  kConnectionBuffer,  // a connection's unwritten answers passed connection_buffer_bytes
  kTotalBuffer,       // all connections' buffered bytes passed total_buffer_bytes
  kConnections,       // max_connections reached: an idle connection closed, or the new one refused
  kTargetLength,      // request target over max_target_bytes (414)
  kHeaderSize,        // header block over 16 KiB (431)
  kBodySize,          // body over max_body (413)
  kConnectionsPerAddress,  // max_connections_per_address reached: the new connection refused
  kConnectionsPerAddressFiltered,  // an address at max_connections_per_address added to the
                                   // listener's filter: its connects are dropped unanswered
};
inline constexpr size_t kHttpLimitCount = 11;
// The label of `limit` in /metrics, e.g. "header_deadline".
const char* HttpLimitName(HttpLimit limit);

class EventServer {
 public:
  struct Options {
    std::string host = "127.0.0.1";
    int port = 0;  // 0 picks a free port
    size_t max_body = 1 << 20;
    int workers = 8;
    int worker_nice = 5;  // the workers' nice value (the loop keeps 0); 0 leaves them as the loop
    size_t max_connections = 10'000;
    // Connections one client address may hold (0: no cap); past it a new one is refused at
    // once. A client that reopens every connection it loses can then churn only its own
    // share, not take the places of (or the loop's time from) clients on other addresses.
    size_t max_connections_per_address = 1'000;
    // Addresses held only to max_connections (say, a gateway or proxy in front that brings
    // many clients' connections from one address).
    std::vector<std::string> uncapped_addresses;
    int header_timeout_ms = 10'000;   // first byte of a request to the end of its headers
    int request_timeout_ms = 30'000;  // first byte of a request to its last
    int idle_timeout_ms = 30'000;     // no request under way, or answers not drained
    size_t max_target_bytes = 8 * 1024;
    size_t connection_buffer_bytes = 1 << 20;  // unwritten answers before reading pauses
    size_t total_buffer_bytes = 32 << 20;      // received and unwritten bytes, all connections
  };
  struct Hooks {
    // Requests the loop answers itself (never blocking for long). handle_inline returns false
    // when it cannot answer without blocking (e.g. it needs the store): the request then goes
    // to a worker (`handle`) like any other, and the loop goes on with the rest.
    std::function<bool(const Request&)> is_inline;
    std::function<bool(Request&, Response&)> handle_inline;
    // After the inline requests of one loop pass were handled and before any of their answers
    // is written; may still change those answers.
    std::function<void()> end_batch;
    // Every other request, on a worker thread.
    std::function<void(Request&, Response&)> handle;
    // Once per answer, when it is queued for writing; `seconds` since the request was read.
    std::function<void(const Request&, const Response&, double seconds)> log;
    // After every pass of the loop (optional): e.g. to write what `log` buffered.
    std::function<void()> end_pass;
    // Operational events worth a line in the server's log (optional).
    std::function<void(const std::string& message)> notice;
    // Errors found before a request could be parsed (400, 408, 411, 413, 414, 431, 505).
    std::function<void(Response&, int status, const std::string& message)> error;
    // A bound of Options tripped (optional).
    std::function<void(HttpLimit)> limit;
  };

  EventServer(Options options, Hooks hooks);
  ~EventServer();  // Stop()
  EventServer(const EventServer&) = delete;
  EventServer& operator=(const EventServer&) = delete;

  // Binds and listens. Returns the bound port.
  StatusOr<int> Bind();
  // Runs the loop until Stop().
  void Serve();
  void Stop();

 private:
  struct Conn;
  struct Inflight;  // an inline request waiting for end_batch
  using Batch = std::vector<std::unique_ptr<Inflight>>;
  struct Done {     // a worker's finished request
    uint64_t conn_id;
    std::unique_ptr<Request> req;
    Response res;
    std::chrono::steady_clock::time_point start;
    bool keep_alive;
  };

  friend struct Parsing;  // llhttp's callbacks (event_server.cc)

  void Accept();
  // At max_connections: up to `n` idle connections to close for new ones, in closing order:
  // the never-answered ones first, then the answered ones, each longest idle first. Found with
  // one scan an accept pass (a scan per accept took the loop's whole CPU in a churn).
  struct Eviction {
    std::deque<uint64_t> silent;
    std::deque<uint64_t> served;
  };
  Eviction EvictionOrder(size_t n) const;
  // Out of descriptors or memory: accept() would fail again at once on the still-readable
  // listener, so stop watching it for kAcceptPause; new connections wait in the listen queue.
  void PauseAccepting(int error);
  void ResumeAcceptingIfDue();
  void OnReadable(Conn& c);
  void OnWritable(Conn& c);
  // Parses and starts every complete request in c.in while c is not waiting for an answer
  // and its unwritten answers are within bounds.
  void Process(Conn& c);
  // Starts the request llhttp just completed, the first `end` bytes of c.in.
  void Start(Conn& c, size_t end);
  void RunBatch();
  void DrainDone();
  void Queue(Conn& c, const Request& req, Response& res,
             std::chrono::steady_clock::time_point start, bool keep_alive);
  void Fail(Conn& c, int status, const std::string& message);
  void Flush(Conn& c);
  // Closes c when it is finished (nothing to write or wait for, and closing or closed by the
  // peer), else updates its epoll interest. c must not be used after.
  void Settle(Conn& c);
  void UpdateInterest(Conn& c);
  // One largest request and change (headers, max_body).
  size_t MaxRequestBytes() const;
  // Unparsed input c may buffer before the loop stops reading it: MaxRequestBytes while the
  // body of a request whose headers are read arrives, else kReadAhead.
  size_t InputCap(const Conn& c) const;
  // Brings total_buffered_ up to date with what c holds.
  void Account(Conn& c);
  // Whether c may read more now; pauses it (and reports the bound) when not.
  bool MayRead(Conn& c);
  void ResumePaused();
  void Trip(HttpLimit limit) const;
  void Close(uint64_t id);
  // Whether `addr` is held to max_connections_per_address at all.
  bool IsCapped(const std::string& addr) const;
  // Whether a new connection from `addr` is within max_connections_per_address.
  bool AddressHasRoom(const std::string& addr) const;
  // An address at its cap goes into the listener's filter (while there is room in it);
  // one that fell far enough below leaves it. Both only mark the filter for ApplyFilter.
  void FilterIfAtCap(const std::string& addr);
  void UnfilterIfBelowCap(const std::string& addr);
  // Installs the filtered set on the listener when it changed (once a loop pass at most).
  void ApplyFilter();
  // Deadlines, idle and stalled connections; runs every scan_interval_.
  void CheckTimers();
  void WorkerLoop();

  const Options options_;
  const Hooks hooks_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: worker results and Stop()
  std::atomic<bool> stopping_{false};
  uint64_t next_id_ = 2;  // 0 = listener, 1 = wake_fd_
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;  // loop thread only
  std::unordered_map<std::string, size_t> per_address_;         // loop thread only: open conns
  std::set<std::string> filtered_;  // loop thread only: addresses whose packets the listener drops
  bool filter_changed_ = false;     // loop thread only: filtered_ differs from the listener's
  bool filter_used_ = false;        // loop thread only: a filter was attached to the listener once
  bool filter_unavailable_ = false; // loop thread only: the kernel refused it; refuse by reset only
  Batch batch_;                                                  // loop thread only
  std::vector<uint64_t> ready_;  // connections with buffered requests to process next pass
  bool accept_paused_ = false;                   // loop thread only
  std::chrono::steady_clock::time_point accept_resume_at_;
  bool accept_failing_ = false;  // since the last accept() that failed for lack of resources
  size_t total_buffered_ = 0;       // loop thread only: sum of every Conn's `accounted`
  std::vector<uint64_t> paused_;    // loop thread only: not read while total_buffered_ is over
  std::chrono::milliseconds scan_interval_{1000};

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::deque<Done> work_;                   // guarded by mu_; requests for the workers
  std::vector<Done> done_;                  // guarded by mu_
  bool workers_stop_ = false;               // guarded by mu_
  std::vector<std::thread> workers_;
};

}  // namespace warden::server
