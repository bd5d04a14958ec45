// Counts events (failed logins and invalid tokens per client address, admin requests per
// credential) per key in one-minute windows that start at a key's first event: at most
// `per_minute` per window, then RetryAfter > 0 until the window ends. Memory is bounded: a
// table of more than 100,000 keys starts over.
// Thread-safe.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/clock.h"

namespace warden::server {

class RateLimiter {
 public:
  RateLimiter(int per_minute, const Clock& clock) : per_minute_(per_minute), clock_(clock) {}
  // Seconds to wait when the address is over its budget, else 0.
  int64_t RetryAfter(const std::string& addr);
  void Record(const std::string& addr);

 private:
  struct Window {
    int64_t start = 0;
    int count = 0;
  };
  const int per_minute_;
  const Clock& clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Window> windows_;  // guarded by mu_
};

}  // namespace warden::server
