// A classic BPF socket filter that drops every packet from a set of source addresses, for
// EventServer's listener: on a TCP listener the kernel runs the filter on each SYN and
// handshake ACK before it answers, so a client whose address is in the set has its connect
// silently dropped (its kernel retransmits the SYN after 1 s, 3 s, ...) instead of costing a
// handshake, an accept and a reset. Packets of other addresses pass whole.
//
// Addresses are the strings EventServer's AddressString gives: IPv4 ("127.0.0.2"), IPv6, or
// IPv4-mapped IPv6 ("::ffff:127.0.0.2", the IPv4 clients of a dual-stack listener, whose
// packets carry an IPv4 header and are matched as IPv4). The program checks the IP version
// before it compares, so an IPv6 packet is never compared with IPv4 words.
//
// Stateless functions; thread-compatible.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/status.h"

namespace warden::server {

// At most this many addresses in one program (worst case, all IPv6: 9 instructions each,
// about 2,300 of the 4,096 classic BPF allows).
inline constexpr size_t kMaxFilteredAddresses = 256;

// Replaces the filter of socket `fd` with one dropping packets from `addresses` (at most
// kMaxFilteredAddresses; an address that does not parse is InvalidArgument). An empty set
// detaches the filter. Unavailable when the kernel refuses it (errno in the message).
[[nodiscard]] Status SetDropFilter(int fd, const std::vector<std::string>& addresses);

// Removes whatever filter `fd` has (an accepted socket inherits its listener's); a socket
// without one is fine.
void DetachFilter(int fd);

}  // namespace warden::server
