#include "common/ids.h"

#include <openssl/rand.h>

#include <array>
#include <mutex>
#include <stdexcept>

namespace warden {
namespace {

void RandomBytes(unsigned char* out, int n) {
  if (RAND_bytes(out, n) != 1) {
    // No entropy means no safe ids or secrets; there is nothing sensible to continue with.
    std::abort();
  }
}

constexpr std::string_view kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

}  // namespace

bool IsBase62(std::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

std::string Base62Fixed(uint64_t value, int width) {
  std::string out(static_cast<size_t>(width), '0');
  for (int i = width - 1; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kBase62Alphabet[value % 62];
    value /= 62;
  }
  return out;
}

std::string RandomBase62(int count) {
  std::string out;
  out.reserve(static_cast<size_t>(count));
  std::array<unsigned char, 64> buf{};
  while (static_cast<int>(out.size()) < count) {
    RandomBytes(buf.data(), static_cast<int>(buf.size()));
    for (unsigned char b : buf) {
      if (b >= 248) continue;  // 248 = 4 * 62: keep the distribution uniform
      out.push_back(kBase62Alphabet[b % 62]);
      if (static_cast<int>(out.size()) == count) break;
    }
  }
  return out;
}

std::string NewUlid(const Clock& clock) {
  static std::mutex mu;
  static int64_t last_ms = -1;              // guarded by mu
  static std::array<unsigned char, 10> last_rand{};  // guarded by mu
  std::array<unsigned char, 10> rnd{};
  int64_t ms = clock.NowMillis();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (ms <= last_ms) {
      ms = last_ms;
      // Same millisecond: increment the previous randomness so ids stay ordered.
      for (int i = 9; i >= 0; --i) {
        if (++last_rand[static_cast<size_t>(i)] != 0) break;
      }
      rnd = last_rand;
    } else {
      RandomBytes(rnd.data(), static_cast<int>(rnd.size()));
      last_ms = ms;
      last_rand = rnd;
    }
  }
  std::string out(26, '0');
  uint64_t t = static_cast<uint64_t>(ms);
  for (int i = 9; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kCrockford[t & 31];
    t >>= 5;
  }
  // 80 bits of randomness (big-endian: hi = the top 16, lo = the other 64) -> 16 chars,
  // least significant last.
  uint64_t hi = static_cast<uint64_t>(rnd[0]) << 8 | rnd[1];
  uint64_t lo = 0;
  for (size_t i = 2; i < rnd.size(); ++i) lo = lo << 8 | rnd[i];
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(10 + i)] = kCrockford[lo & 31];
    lo = lo >> 5 | (hi & 31) << 59;
    hi >>= 5;
  }
  return out;
}

std::string NewUuid() {
  std::array<unsigned char, 16> b{};
  RandomBytes(b.data(), 16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[static_cast<size_t>(i)] >> 4]);
    out.push_back(kHex[b[static_cast<size_t>(i)] & 15]);
  }
  return out;
}

}  // namespace warden
