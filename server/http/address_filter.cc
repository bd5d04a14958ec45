#include "server/http/address_filter.h"

#include <arpa/inet.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>

namespace warden::server {

namespace {

constexpr uint32_t kDrop = 0;
constexpr uint32_t kAccept = 0xFFFFFFFF;  // the whole packet (0xFFFF would trim a 64 KiB loopback one)
// Offsets from the network header (the socket filter otherwise sees the transport header).
constexpr uint32_t kVersionByte = static_cast<uint32_t>(SKF_NET_OFF);
constexpr uint32_t kIpv4Source = static_cast<uint32_t>(SKF_NET_OFF + 12);
constexpr uint32_t kIpv6Source = static_cast<uint32_t>(SKF_NET_OFF + 8);

// The source words to compare, in host order as BPF_LD|BPF_W loads them.
struct Parsed {
  std::vector<uint32_t> v4;
  std::vector<std::array<uint32_t, 4>> v6;
};

uint32_t WordAt(const uint8_t* bytes) {
  uint32_t word;
  std::memcpy(&word, bytes, sizeof word);
  return ntohl(word);
}

Status Parse(const std::string& address, Parsed* out) {
  in_addr v4{};
  if (inet_pton(AF_INET, address.c_str(), &v4) == 1) {
    out->v4.push_back(ntohl(v4.s_addr));
    return Status();
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, address.c_str(), &v6) != 1) return InvalidArgumentError("not an IP address: " + address);
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {  // an IPv4 client of a dual-stack listener: an IPv4 packet
    out->v4.push_back(WordAt(v6.s6_addr + 12));
    return Status();
  }
  out->v6.push_back({WordAt(v6.s6_addr), WordAt(v6.s6_addr + 4), WordAt(v6.s6_addr + 8), WordAt(v6.s6_addr + 12)});
  return Status();
}

sock_filter Stmt(uint16_t code, uint32_t k) { return BPF_STMT(code, k); }
sock_filter Jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) { return BPF_JUMP(code, k, jt, jf); }

// Appends "drop when the word at `offset` is one of `words`". Each comparison falls through to
// its own drop and skips it otherwise, so no jump is longer than one instruction (conditional
// jumps reach at most 255 ahead).
void AppendIpv4(const std::vector<uint32_t>& words, std::vector<sock_filter>* program) {
  program->push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kIpv4Source));
  for (uint32_t word : words) {
    program->push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, word, 0, 1));
    program->push_back(Stmt(BPF_RET | BPF_K, kDrop));
  }
  program->push_back(Stmt(BPF_RET | BPF_K, kAccept));
}

// Per address: four loads and compares, a mismatch skipping to the next address.
void AppendIpv6(const std::vector<std::array<uint32_t, 4>>& addresses, std::vector<sock_filter>* program) {
  for (const auto& words : addresses) {
    for (uint8_t i = 0; i < 4; ++i) {
      program->push_back(Stmt(BPF_LD | BPF_W | BPF_ABS, kIpv6Source + 4u * i));
      const uint8_t to_next = static_cast<uint8_t>(2 * (3 - i) + 1);  // past the rest and the drop
      program->push_back(Jump(BPF_JMP | BPF_JEQ | BPF_K, words[i], 0, to_next));
    }
    program->push_back(Stmt(BPF_RET | BPF_K, kDrop));
  }
  program->push_back(Stmt(BPF_RET | BPF_K, kAccept));
}

// Dispatch on the IP version, then the IPv4 section, then the IPv6 one.
std::vector<sock_filter> Program(const Parsed& parsed) {
  std::vector<sock_filter> v4, v6;
  AppendIpv4(parsed.v4, &v4);
  AppendIpv6(parsed.v6, &v6);
  std::vector<sock_filter> program = {
      Stmt(BPF_LD | BPF_B | BPF_ABS, kVersionByte),
      Stmt(BPF_ALU | BPF_RSH | BPF_K, 4),
      Jump(BPF_JMP | BPF_JEQ | BPF_K, 4, 0, 1),
      Stmt(BPF_JMP | BPF_JA, 3),  // to the IPv4 section
      Jump(BPF_JMP | BPF_JEQ | BPF_K, 6, 0, 1),
      Stmt(BPF_JMP | BPF_JA, static_cast<uint32_t>(1 + v4.size())),  // to the IPv6 section
      Stmt(BPF_RET | BPF_K, kAccept),
  };
  program.insert(program.end(), v4.begin(), v4.end());
  program.insert(program.end(), v6.begin(), v6.end());
  return program;
}

}  // namespace

Status SetDropFilter(int fd, const std::vector<std::string>& addresses) {
  if (addresses.empty()) {
    DetachFilter(fd);
    return Status();
  }
  if (addresses.size() > kMaxFilteredAddresses) return InvalidArgumentError("too many addresses to filter");
  Parsed parsed;
  for (const std::string& address : addresses) RETURN_IF_ERROR(Parse(address, &parsed));
  std::vector<sock_filter> program = Program(parsed);
  sock_fprog fprog{static_cast<unsigned short>(program.size()), program.data()};
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fprog, sizeof fprog) != 0) {
    return UnavailableError(std::string("cannot attach a socket filter: ") + std::strerror(errno));
  }
  return Status();
}

void DetachFilter(int fd) {
  int unused = 0;
  (void)setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &unused, sizeof unused);  // ENOENT: none
}

}  // namespace warden::server
