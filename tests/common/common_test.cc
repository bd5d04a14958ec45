#include <catch2/catch.hpp>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/ids.h"
#include "common/status.h"

namespace warden {
namespace {

StatusOr<int> Half(int v) {
  if (v % 2) return InvalidArgumentError("odd", "v");
  return v / 2;
}

StatusOr<int> Quarter(int v) {
  ASSIGN_OR_RETURN(int h, Half(v));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int v) {
  RETURN_IF_ERROR(Half(v).status());
  return Status();
}

TEST_CASE("StatusOr and the macros propagate the first error") {
  REQUIRE(Quarter(8).ok());
  REQUIRE(*Quarter(8) == 2);
  StatusOr<int> bad = Quarter(6);
  REQUIRE_FALSE(bad.ok());
  REQUIRE(bad.status().code() == StatusCode::kInvalidArgument);
  REQUIRE(bad.status().field() == "v");
  REQUIRE(CheckEven(3).code() == StatusCode::kInvalidArgument);
  REQUIRE(CheckEven(4).ok());
}

TEST_CASE("status codes have stable snake_case names") {
  auto [code, name] = GENERATE(table<StatusCode, std::string>({
      {StatusCode::kInvalidArgument, "invalid_argument"},
      {StatusCode::kFailedPrecondition, "failed_precondition"},
      {StatusCode::kUnauthenticated, "unauthenticated"},
      {StatusCode::kPermissionDenied, "permission_denied"},
      {StatusCode::kNotFound, "not_found"},
      {StatusCode::kAlreadyExists, "already_exists"},
      {StatusCode::kResourceExhausted, "resource_exhausted"},
      {StatusCode::kUnavailable, "unavailable"},
      {StatusCode::kInternal, "internal"},
  }));
  REQUIRE(StatusCodeName(code) == name);
}

TEST_CASE("ULIDs are 26 Crockford chars and strictly increase within a millisecond") {
  FakeClock clock;
  std::string prev = NewUlid(clock);
  REQUIRE(prev.size() == 26);
  // The 80 random bits as one number: the same millisecond adds exactly 1.
  auto randomness = [](const std::string& ulid) {
    constexpr std::string_view kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    unsigned __int128 v = 0;
    for (char c : ulid.substr(10)) v = v << 5 | kCrockford.find(c);
    return v;
  };
  for (int i = 0; i < 1000; ++i) {
    std::string next = NewUlid(clock);
    REQUIRE(next > prev);
    REQUIRE(next.substr(0, 10) == prev.substr(0, 10));
    REQUIRE(randomness(next) == randomness(prev) + 1);
    prev = next;
  }
  clock.Advance(1);
  REQUIRE(NewUlid(clock) > prev);
}

TEST_CASE("base62 helpers") {
  REQUIRE(Base62Fixed(0, 3) == "000");
  REQUIRE(Base62Fixed(61, 2) == "0z");
  REQUIRE(Base62Fixed(62, 2) == "10");
  REQUIRE(IsBase62("abcXYZ019"));
  REQUIRE_FALSE(IsBase62("ab-c"));
  std::string r = RandomBase62(100);
  REQUIRE(r.size() == 100);
  REQUIRE(IsBase62(r));
  REQUIRE(RandomBase62(32) != RandomBase62(32));
}

TEST_CASE("UUIDs are version 4") {
  std::string u = NewUuid();
  REQUIRE(u.size() == 36);
  REQUIRE(u[14] == '4');
  REQUIRE(std::string("89ab").find(u[19]) != std::string::npos);
}

TEST_CASE("timestamps round-trip and reject malformed text") {
  int64_t ms = 0;
  REQUIRE(ParseTimestamp("2026-11-28T04:02:14.123Z", &ms));
  REQUIRE(FormatTimestamp(ms) == "2026-11-28T04:02:14.123Z");
  REQUIRE(ParseTimestamp("2026-11-28T06:02:14+02:00", &ms));
  REQUIRE(FormatTimestamp(ms) == "2026-11-28T04:02:14.000Z");
  auto bad = GENERATE(as<std::string>{}, "", "2026-11-28", "2026-13-01T00:00:00Z", "2026-11-28T04:02:14",
                      "2026-11-28T04:02:14.Z", "2026-11-28T04:02:14Zjunk", "yesterday");
  REQUIRE_FALSE(ParseTimestamp(bad, &ms));
}

TEST_CASE("CRC32 matches the IEEE check value") {
  REQUIRE(Crc32("123456789") == 0xCBF43926u);
  REQUIRE(Crc32("") == 0u);
}

TEST_CASE("HMAC-SHA256 matches RFC 4231 test case 2") {
  REQUIRE(ToHex(HmacSha256("Jefe", "what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  REQUIRE(ConstantTimeEquals("abc", "abc"));
  REQUIRE_FALSE(ConstantTimeEquals("abc", "abd"));
  REQUIRE_FALSE(ConstantTimeEquals("abc", "abcd"));
}

TEST_CASE("HmacSha256Key gives HMAC-SHA256 under its key, short and long keys, from many threads") {
  // RFC 4231 test cases 2 and 6 (a key longer than the 64-byte block is hashed first).
  REQUIRE(ToHex(HmacSha256Key("Jefe").Mac("what do ya want for nothing?")) ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  REQUIRE(ToHex(HmacSha256Key(std::string(131, '\xaa')).Mac("Test Using Larger Than Block-Size Key - Hash Key First")) ==
          "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  for (size_t key_len : {0, 1, 32, 63, 64, 65, 200}) {
    const std::string key(key_len, 'k');
    HmacSha256Key keyed(key);
    for (size_t data_len : {0, 1, 32, 55, 56, 64, 1000}) {
      const std::string data(data_len, 'd');
      REQUIRE(keyed.Mac(data) == HmacSha256(key, data));
      REQUIRE(keyed.Mac(data) == HmacSha256(key, data));  // the key's states are reusable
    }
  }
  HmacSha256Key shared("pepper");
  const std::string want = HmacSha256("pepper", "secret");
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) if (shared.Mac("secret") != want) wrong++;
    });
  }
  for (auto& t : threads) t.join();
  REQUIRE(wrong == 0);
}

TEST_CASE("scrypt password hashes verify only the right password") {
  StatusOr<std::string> hash = HashPassword("correct horse");
  REQUIRE(hash.ok());
  REQUIRE(hash->rfind("scrypt$15$8$1$", 0) == 0);
  REQUIRE(VerifyPassword("correct horse", *hash));
  REQUIRE_FALSE(VerifyPassword("correct horse!", *hash));
  REQUIRE_FALSE(VerifyPassword("correct horse", "not-a-hash"));
  REQUIRE_FALSE(VerifyPassword("x", "scrypt$40$8$1$00$00"));  // absurd cost refused
  REQUIRE(*HashPassword("same") != *HashPassword("same"));      // salted
}

TEST_CASE("API tokens: format, parse and every malformation") {
  ApiToken t = NewApiToken("wdn");
  std::string text = FormatApiToken(t);
  REQUIRE(text.size() == 3 + 1 + 10 + 32 + 6);
  REQUIRE(text.rfind("wdn_", 0) == 0);
  StatusOr<ApiToken> parsed = ParseApiToken(text, "wdn");
  REQUIRE(parsed.ok());
  REQUIRE(parsed->id == t.id);
  REQUIRE(parsed->secret == t.secret);
  REQUIRE(TokenDisplayPrefix(t) == "wdn_" + t.id.substr(0, 4) + "\u2026");

  std::string flipped = text;
  flipped[10] = flipped[10] == 'a' ? 'b' : 'a';
  std::string bad_char = text;
  bad_char[20] = '-';
  auto bad = GENERATE_COPY(values<std::string>({
      "", "wdn_", text.substr(1), text + "0", "xyz" + text.substr(3), flipped, bad_char,
      "wdn-" + text.substr(4)}));
  StatusOr<ApiToken> r = ParseApiToken(bad, "wdn");
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.status().code() == StatusCode::kUnauthenticated);
  REQUIRE(r.status().message().find(t.secret) == std::string::npos);
}

TEST_CASE("token prefixes are [a-z0-9]{2,8}") {
  REQUIRE(IsValidTokenPrefix("wdn"));
  REQUIRE(IsValidTokenPrefix("ab12cd34"));
  REQUIRE_FALSE(IsValidTokenPrefix("a"));
  REQUIRE_FALSE(IsValidTokenPrefix("abcdefghi"));
  REQUIRE_FALSE(IsValidTokenPrefix("Wdn"));
  REQUIRE_FALSE(IsValidTokenPrefix("w_n"));
}

TEST_CASE("ids are unique across threads") {
  std::vector<std::vector<std::string>> per(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&per, t] {
      for (int i = 0; i < 2000; ++i) per[t].push_back(NewUlid());
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (auto& v : per) all.insert(v.begin(), v.end());
  REQUIRE(all.size() == 8000);
}

}  // namespace
}  // namespace warden
