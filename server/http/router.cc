#include "server/http/router.h"

#include <stdexcept>

namespace warden::server {

namespace {

// The segments of a path after its leading '/': "/a/b" -> {"a", "b"}, "/" -> {""}.
template <typename F>
bool ForEachSegment(std::string_view path, F&& f) {
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  for (;;) {
    const size_t slash = path.find('/');
    if (!f(path.substr(0, slash))) return false;
    if (slash == std::string_view::npos) return true;
    path.remove_prefix(slash + 1);
  }
}

std::bitset<256> ParseClass(std::string_view cls, std::string_view pattern) {
  std::bitset<256> allowed;
  std::vector<unsigned char> chars;  // the class with its escapes resolved; '-' of a range kept apart
  std::vector<bool> is_range_dash;
  for (size_t i = 0; i < cls.size(); ++i) {
    if (cls[i] == '\\' && i + 1 < cls.size()) {
      chars.push_back(static_cast<unsigned char>(cls[++i]));
      is_range_dash.push_back(false);
    } else {
      chars.push_back(static_cast<unsigned char>(cls[i]));
      is_range_dash.push_back(cls[i] == '-');
    }
  }
  for (size_t i = 0; i < chars.size(); ++i) {
    if (i + 2 < chars.size() && is_range_dash[i + 1]) {
      if (chars[i] > chars[i + 2]) throw std::invalid_argument("bad range in route pattern " + std::string(pattern));
      for (unsigned c = chars[i]; c <= chars[i + 2]; ++c) allowed.set(c);
      i += 2;
    } else {
      allowed.set(chars[i]);
    }
  }
  if (allowed.none()) throw std::invalid_argument("empty class in route pattern " + std::string(pattern));
  return allowed;
}

}  // namespace

void Router::Add(std::string method, std::string_view pattern, Handler handler) {
  Route route{std::move(method), {}, std::move(handler)};
  const bool ok = ForEachSegment(pattern, [&](std::string_view text) {
    Segment segment;
    if (text.size() > 5 && text.substr(0, 2) == "([" && text.substr(text.size() - 3) == "]+)") {
      segment.capture = true;
      segment.allowed = ParseClass(text.substr(2, text.size() - 5), pattern);
    } else if (text.find_first_of("()[]{}*+?\\|^$") == std::string_view::npos) {  // '.' is literal: /.well-known
      segment.literal = std::string(text);
    } else {
      return false;
    }
    route.segments.push_back(std::move(segment));
    return true;
  });
  size_t capture_count = 0;
  for (const Segment& segment : route.segments) capture_count += segment.capture ? 1 : 0;
  if (!ok || capture_count > kMaxCaptures) throw std::invalid_argument("unsupported route pattern " + std::string(pattern));
  routes_.push_back(std::move(route));
}

const Router::Handler* Router::Find(std::string_view method, std::string_view path, Captures* captures) const {
  for (const Route& route : routes_) {
    if (route.method != method) continue;
    size_t i = 0;
    std::string_view found[kMaxCaptures];
    size_t found_count = 0;
    const bool matched = ForEachSegment(path, [&](std::string_view text) {
      if (i == route.segments.size()) return false;
      const Segment& segment = route.segments[i++];
      if (!segment.capture) return text == segment.literal;
      if (text.empty()) return false;
      for (unsigned char ch : text) {
        if (!segment.allowed.test(ch)) return false;
      }
      found[found_count++] = text;
      return true;
    });
    if (!matched || i != route.segments.size()) continue;
    captures->assign(1, std::string(path));
    for (size_t k = 0; k < found_count; ++k) captures->emplace_back(found[k]);
    return &route.handler;
  }
  captures->clear();
  return nullptr;
}

}  // namespace warden::server
