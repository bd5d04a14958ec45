#include "common/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "common/ids.h"

namespace warden {
namespace {

constexpr uint64_t kScryptLogN = 15;
constexpr uint64_t kScryptR = 8;
constexpr uint64_t kScryptP = 1;
constexpr size_t kScryptKeyLen = 32;

bool FromHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  auto nib = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nib(hex[i]), lo = nib(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

bool Scrypt(std::string_view password, std::string_view salt, uint64_t log_n, uint64_t r,
            uint64_t p, std::string* out) {
  out->assign(kScryptKeyLen, '\0');
  // maxmem must cover 128 * r * N bytes (32 MiB here) plus slack.
  return EVP_PBE_scrypt(password.data(), password.size(),
                        reinterpret_cast<const unsigned char*>(salt.data()), salt.size(),
                        uint64_t{1} << log_n, r, p, 64ull * 1024 * 1024,
                        reinterpret_cast<unsigned char*>(out->data()), out->size()) == 1;
}

}  // namespace

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

struct HmacSha256Key::State {
  EVP_MD* md = nullptr;
  EVP_MD_CTX* inner = nullptr;  // SHA-256 after (key ^ ipad)
  EVP_MD_CTX* outer = nullptr;  // SHA-256 after (key ^ opad)
};

HmacSha256Key::HmacSha256Key(std::string_view key) : state_(new State) {
  constexpr size_t kBlock = 64;  // SHA-256 block size (RFC 2104: B)
  state_->md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  state_->inner = EVP_MD_CTX_new();
  state_->outer = EVP_MD_CTX_new();
  std::array<unsigned char, kBlock> k{};
  if (key.size() > kBlock) {
    unsigned int n = 0;
    EVP_Digest(key.data(), key.size(), k.data(), &n, state_->md, nullptr);
  } else {
    std::copy(key.begin(), key.end(), k.begin());
  }
  std::array<unsigned char, kBlock> pad{};
  bool ok = state_->md != nullptr && state_->inner != nullptr && state_->outer != nullptr;
  for (auto [ctx, x] : {std::pair{state_->inner, 0x36}, std::pair{state_->outer, 0x5c}}) {
    for (size_t i = 0; i < kBlock; ++i) pad[i] = static_cast<unsigned char>(k[i] ^ x);
    ok = ok && EVP_DigestInit_ex(ctx, state_->md, nullptr) == 1 && EVP_DigestUpdate(ctx, pad.data(), pad.size()) == 1;
  }
  OPENSSL_cleanse(k.data(), k.size());
  OPENSSL_cleanse(pad.data(), pad.size());
  if (!ok) std::abort();  // OpenSSL without SHA-256: nothing can be verified
}

HmacSha256Key::~HmacSha256Key() {
  EVP_MD_CTX_free(state_->inner);
  EVP_MD_CTX_free(state_->outer);
  EVP_MD_free(state_->md);
  delete state_;
}

std::string HmacSha256Key::Mac(std::string_view data) const {
  unsigned char inner[EVP_MAX_MD_SIZE];
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int inner_len = 0, out_len = 0;
  EVP_MD_CTX* c = EVP_MD_CTX_new();
  const bool ok = c != nullptr && EVP_MD_CTX_copy_ex(c, state_->inner) == 1 &&
                  EVP_DigestUpdate(c, data.data(), data.size()) == 1 &&
                  EVP_DigestFinal_ex(c, inner, &inner_len) == 1 && EVP_MD_CTX_copy_ex(c, state_->outer) == 1 &&
                  EVP_DigestUpdate(c, inner, inner_len) == 1 && EVP_DigestFinal_ex(c, out, &out_len) == 1;
  EVP_MD_CTX_free(c);
  if (!ok) std::abort();  // only on allocation failure
  return std::string(reinterpret_cast<char*>(out), out_len);
}

std::string Sha256Hex(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return ToHex(std::string_view(reinterpret_cast<char*>(out), sizeof out));
}

std::string ToHex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string RandomHex(int n) {
  std::vector<unsigned char> buf(static_cast<size_t>(n));
  if (RAND_bytes(buf.data(), n) != 1) std::abort();
  return ToHex(std::string_view(reinterpret_cast<char*>(buf.data()), buf.size()));
}

uint32_t Crc32(std::string_view data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char ch : data) crc = table[(crc ^ ch) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

StatusOr<std::string> HashPassword(std::string_view password) {
  std::string salt_hex = RandomHex(16);
  std::string salt;
  FromHex(salt_hex, &salt);
  std::string hash;
  if (!Scrypt(password, salt, kScryptLogN, kScryptR, kScryptP, &hash)) {
    return InternalError("scrypt failed");
  }
  char head[64];
  std::snprintf(head, sizeof head, "scrypt$%llu$%llu$%llu$",
                static_cast<unsigned long long>(kScryptLogN),
                static_cast<unsigned long long>(kScryptR),
                static_cast<unsigned long long>(kScryptP));
  return std::string(head) + salt_hex + "$" + ToHex(hash);
}

bool VerifyPassword(std::string_view password, std::string_view encoded) {
  unsigned long long log_n = 0, r = 0, p = 0;
  char salt_hex[129] = {0}, hash_hex[129] = {0};
  std::string enc(encoded);
  if (std::sscanf(enc.c_str(), "scrypt$%llu$%llu$%llu$%128[0-9a-f]$%128[0-9a-f]", &log_n, &r, &p,
                  salt_hex, hash_hex) != 5) {
    return false;
  }
  if (log_n < 10 || log_n > 20 || r == 0 || r > 16 || p == 0 || p > 4) return false;
  std::string salt, expected, got;
  if (!FromHex(salt_hex, &salt) || !FromHex(hash_hex, &expected)) return false;
  if (!Scrypt(password, salt, log_n, r, p, &got)) return false;
  return ConstantTimeEquals(got, expected);
}

bool IsValidTokenPrefix(std::string_view prefix) {
  if (prefix.size() < 2 || prefix.size() > 8) return false;
  for (char c : prefix) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

ApiToken NewApiToken(std::string_view prefix) {
  return ApiToken{std::string(prefix), RandomBase62(kTokenIdLen), RandomBase62(kTokenSecretLen)};
}

std::string FormatApiToken(const ApiToken& token) {
  std::string body = token.prefix + "_" + token.id + token.secret;
  return body + Base62Fixed(Crc32(body), kTokenCrcLen);
}

StatusOr<ApiToken> ParseApiToken(std::string_view text, std::string_view expected_prefix) {
  const size_t want = expected_prefix.size() + 1 + kTokenIdLen + kTokenSecretLen + kTokenCrcLen;
  if (text.size() != want) return UnauthenticatedError("malformed token: wrong length");
  if (text.substr(0, expected_prefix.size()) != expected_prefix ||
      text[expected_prefix.size()] != '_') {
    return UnauthenticatedError("malformed token: wrong prefix");
  }
  std::string_view rest = text.substr(expected_prefix.size() + 1);
  if (!IsBase62(rest)) return UnauthenticatedError("malformed token: bad characters");
  std::string_view body = text.substr(0, text.size() - kTokenCrcLen);
  if (Base62Fixed(Crc32(body), kTokenCrcLen) != text.substr(body.size())) {
    return UnauthenticatedError("malformed token: bad checksum");
  }
  return ApiToken{std::string(expected_prefix), std::string(rest.substr(0, kTokenIdLen)),
                  std::string(rest.substr(kTokenIdLen, kTokenSecretLen))};
}

std::string TokenDisplayPrefix(const ApiToken& token) {
  return token.prefix + "_" + token.id.substr(0, 4) + "\u2026";
}

}  // namespace warden
