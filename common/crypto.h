// Crypto helpers over OpenSSL 3: keyed hashes, password hashing, constant-time comparison,
// and the API token format of DESIGN.md section 4. All functions are thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace warden {

// HMAC-SHA256(key, data) as 32 raw bytes.
std::string HmacSha256(std::string_view key, std::string_view data);

// HMAC-SHA256 under one fixed key, for keys used on every request (the token pepper): the
// key's padded blocks are hashed once, here, and each Mac() copies those two states.
// HmacSha256() fetches the digest and hashes the key on every call (about 22,000
// instructions for a token secret; Mac() about a sixth of that). Mac() is thread-safe.
class HmacSha256Key {
 public:
  explicit HmacSha256Key(std::string_view key);
  ~HmacSha256Key();
  HmacSha256Key(const HmacSha256Key&) = delete;
  HmacSha256Key& operator=(const HmacSha256Key&) = delete;

  // Equal to HmacSha256(key, data).
  std::string Mac(std::string_view data) const;

 private:
  struct State;
  State* state_;
};
// SHA-256 of data as lowercase hex.
std::string Sha256Hex(std::string_view data);
std::string ToHex(std::string_view bytes);
// Constant-time equality (CRYPTO_memcmp); different lengths compare unequal.
bool ConstantTimeEquals(std::string_view a, std::string_view b);
// `n` random bytes as lowercase hex (2n chars).
std::string RandomHex(int n);
// CRC-32 (IEEE 802.3, as zlib computes it).
uint32_t Crc32(std::string_view data);

// scrypt (N=2^15, r=8, p=1) with a random salt, encoded as
// "scrypt$15$8$1$<salt hex>$<hash hex>".
StatusOr<std::string> HashPassword(std::string_view password);
// True when `password` matches an encoding made by HashPassword (constant-time compare).
bool VerifyPassword(std::string_view password, std::string_view encoded);

// API token: <prefix>_<id><secret><crc>, id 10 base62 chars, secret 32 base62 chars,
// crc = CRC32 of everything before it as 6 base62 chars.
struct ApiToken {
  std::string prefix;
  std::string id;      // 10 base62 chars; the public, stored lookup key
  std::string secret;  // 32 base62 chars; never stored, never logged
};
inline constexpr int kTokenIdLen = 10;
inline constexpr int kTokenSecretLen = 32;
inline constexpr int kTokenCrcLen = 6;

// True for a valid configurable prefix: [a-z0-9]{2,8}.
bool IsValidTokenPrefix(std::string_view prefix);
// A new token with fresh random id and secret.
ApiToken NewApiToken(std::string_view prefix);
std::string FormatApiToken(const ApiToken& token);
// Checks prefix, length, alphabet and checksum without any storage access. The error
// message never contains the token text.
StatusOr<ApiToken> ParseApiToken(std::string_view text, std::string_view expected_prefix);
// What lists show: "wdn_AbC1…" (prefix and the first 4 id characters).
std::string TokenDisplayPrefix(const ApiToken& token);

}  // namespace warden
