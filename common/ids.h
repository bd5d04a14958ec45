// Identifiers: base62 text and ULIDs (time-ordered, 26 chars of Crockford base32).
// All functions are thread-safe; randomness comes from OpenSSL's RAND_bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace warden {

inline constexpr std::string_view kBase62Alphabet =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

bool IsBase62(std::string_view text);
// `value` as exactly `width` base62 digits, most significant first (truncates high digits).
std::string Base62Fixed(uint64_t value, int width);
// `count` uniformly random base62 characters (rejection sampling, no modulo bias).
std::string RandomBase62(int count);

// A new ULID at the clock's time. Monotonic within one process for the same millisecond.
std::string NewUlid(const Clock& clock = SystemClock::Get());
// A random RFC 4122 version-4 UUID, lowercase.
std::string NewUuid();

}  // namespace warden
