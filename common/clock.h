// An injectable clock. Production code takes a Clock& so tests can control time.
// SystemClock is stateless and thread-safe; FakeClock is thread-safe (atomic).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace warden {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t NowMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // The process-wide instance.
  static SystemClock& Get() {
    static SystemClock clock;
    return clock;
  }
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_millis = 1'700'000'000'000) : now_(start_millis) {}
  int64_t NowMillis() const override { return now_.load(); }
  void Advance(int64_t millis) { now_ += millis; }
  void Set(int64_t millis) { now_ = millis; }

 private:
  std::atomic<int64_t> now_;
};

// RFC 3339 UTC with milliseconds: 2026-11-28T04:02:14.123Z.
std::string FormatTimestamp(int64_t millis);
// Parses RFC 3339 (with Z or an offset, optional fraction); false when malformed.
bool ParseTimestamp(const std::string& text, int64_t* millis);

}  // namespace warden
