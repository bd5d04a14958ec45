// The listener's drop filter (server/http/address_filter.*), run by the kernel on datagrams:
// a UDP socket's filter sees the same packets (network header first) as a TCP listener's.
#include "server/http/address_filter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

using warden::server::kMaxFilteredAddresses;
using warden::server::SetDropFilter;

namespace {

// A socket address of `ip` (IPv4 or IPv6 text), port `port`.
sockaddr_storage Address(const std::string& ip, int port, socklen_t* len) {
  sockaddr_storage out{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
  if (inet_pton(AF_INET, ip.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *v4;
  } else {
    REQUIRE(inet_pton(AF_INET6, ip.c_str(), &v6->sin6_addr) == 1);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof *v6;
  }
  return out;
}

// A UDP socket bound to `ip` (port 0 picks one; "::" takes IPv4 too); closed by the destructor.
struct Udp {
  explicit Udp(const std::string& ip) {
    socklen_t len = 0;
    sockaddr_storage addr = Address(ip, 0, &len);
    fd = ::socket(addr.ss_family, SOCK_DGRAM, 0);
    int dual = 0;
    if (addr.ss_family == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &dual, sizeof dual);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port = ntohs(addr.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  }
  ~Udp() { ::close(fd); }
  // Sends `text` to `port` on the loopback address of this socket's family.
  void SendTo(int to_port, const std::string& text, bool v6) const {
    socklen_t len = 0;
    sockaddr_storage to = Address(v6 ? "::1" : "127.0.0.1", to_port, &len);
    REQUIRE(::sendto(fd, text.data(), text.size(), 0, reinterpret_cast<sockaddr*>(&to), len) > 0);
  }
  int fd = -1;
  int port = 0;
};

bool IsIpv6(const std::string& ip) { return ip.find(':') != std::string::npos; }

// A socket bound to `receiver` that filters `blocked` gets one datagram from each of
// `senders` (its text is the sender's address), in order, then an end marker from 127.0.0.5;
// returns the senders whose datagram arrived before the marker.
std::vector<std::string> Delivered(const std::string& receiver, const std::vector<std::string>& blocked,
                                   const std::vector<std::string>& senders) {
  Udp in(receiver);
  REQUIRE(SetDropFilter(in.fd, blocked).ok());
  for (const std::string& sender : senders) Udp(sender).SendTo(in.port, sender, IsIpv6(sender));
  const std::string end = "end";
  Udp("127.0.0.5").SendTo(in.port, end, false);
  std::vector<std::string> arrived;
  for (;;) {
    pollfd p{in.fd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 2000) == 1);
    char buf[64];
    const ssize_t n = ::recv(in.fd, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    const std::string got(buf, static_cast<size_t>(n));
    if (got == end) return arrived;
    arrived.push_back(got);
  }
}

}  // namespace

TEST_CASE("address filter: drops the listed sources only, by IP version", "[http]") {
  using Strings = std::vector<std::string>;
  struct Case {
    const char* name;
    std::string receiver;  // "::" is a dual-stack socket: IPv4 clients as IPv4-mapped addresses
    Strings blocked, senders, arrived;
  };
  const std::vector<Case> cases = {
      {"IPv4", "127.0.0.1", {"127.0.0.2", "127.0.0.4"}, {"127.0.0.2", "127.0.0.3", "127.0.0.4"}, {"127.0.0.3"}},
      {"IPv6 addresses do not match IPv4 packets", "127.0.0.1", {"::1", "::7f00:2"}, {"127.0.0.2"}, {"127.0.0.2"}},
      {"IPv6 on a dual-stack socket", "::", {"::1"}, {"::1", "127.0.0.2"}, {"127.0.0.2"}},
      {"IPv4-mapped on a dual-stack socket", "::", {"::ffff:127.0.0.2"}, {"127.0.0.2", "::1", "127.0.0.3"},
       {"::1", "127.0.0.3"}},
      {"IPv4 addresses do not match IPv6 packets", "::", {"0.0.0.0", "0.0.0.1"}, {"::1"}, {"::1"}},
      {"an empty set filters nothing", "127.0.0.1", {}, {"127.0.0.2"}, {"127.0.0.2"}},
  };
  for (const Case& c : cases) {
    SECTION(c.name) { CHECK(Delivered(c.receiver, c.blocked, c.senders) == c.arrived); }
  }
}

TEST_CASE("address filter: a set that is too large or not addresses is refused", "[http]") {
  Udp in("127.0.0.1");
  CHECK(SetDropFilter(in.fd, {"127.0.0.2", "not-an-address"}).code() == warden::StatusCode::kInvalidArgument);
  std::vector<std::string> many;
  for (size_t i = 0; i <= kMaxFilteredAddresses; ++i) many.push_back("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  CHECK(SetDropFilter(in.fd, many).code() == warden::StatusCode::kInvalidArgument);
  many.pop_back();
  for (size_t i = 0; i < many.size(); ++i) many[i] = "2001:db8::" + std::to_string(i);
  CHECK(SetDropFilter(in.fd, many).ok());  // the bound in IPv6, the longest program, fits
}
