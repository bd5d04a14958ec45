#include "server/http/rate_limiter.h"

namespace warden::server {

int64_t RateLimiter::RetryAfter(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = windows_.find(addr);
  if (it == windows_.end()) return 0;
  const int64_t now = clock_.NowMillis();
  if (now - it->second.start >= 60'000) {
    windows_.erase(it);
    return 0;
  }
  if (it->second.count < per_minute_) return 0;
  return (it->second.start + 60'000 - now) / 1000 + 1;
}

void RateLimiter::Record(const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  if (windows_.size() > 100'000) windows_.clear();  // bound memory under address floods
  const int64_t now = clock_.NowMillis();
  Window& w = windows_[addr];
  if (w.count == 0 || now - w.start >= 60'000) w = Window{now, 0};
  ++w.count;
}

}  // namespace warden::server
