// The route table both HTTP fronts dispatch through: METHOD + path pattern -> handler.
//
// A pattern is a path whose segments are each literal text or one whole-segment capture
// "([class]+)", class being single characters and ranges as in a regex bracket expression:
//   /v1/service-accounts/([A-Za-z0-9_.\-]+)/tokens/([A-Za-z0-9]+)
// Matching splits the path at '/' and compares segment by segment, in time linear in the
// path and without recursion: std::regex, used before, recursed once per character of a
// capture and overflowed the stack on an 8,000-character path.
//
// Thread-safety: Add() before serving; Find() from any thread afterwards.
#pragma once

#include "server/http/message.h"

#include <bitset>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace warden::server {

class Router {
 public:
  // What a match captured, numbered as a regex would: [0] the whole path, [i] the i-th group.
  using Captures = std::vector<std::string>;
  using Handler = std::function<void(const Request&, Response&, const Captures&)>;

  // Throws std::invalid_argument for a pattern outside the form above: a programming error,
  // found when the server starts.
  void Add(std::string method, std::string_view pattern, Handler handler);
  // The handler of the first route added that matches, filling *captures; null when none does.
  const Handler* Find(std::string_view method, std::string_view path, Captures* captures) const;

 private:
  static constexpr size_t kMaxCaptures = 4;
  struct Segment {
    bool capture = false;
    std::string literal;         // !capture
    std::bitset<256> allowed;    // capture: the bytes of its class
  };
  struct Route {
    std::string method;
    std::vector<Segment> segments;
    Handler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace warden::server
