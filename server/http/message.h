// The request and the answer as every room of server/ sees them (DESIGN.md 2.1): both HTTP
// fronts (the event loop, the TLS front) fill a Request and write out a Response, and nothing
// above http/ sees httplib's or llhttp's types. Plain values; thread-compatible.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace warden::server {

// Header names compare without regard to ASCII case (RFC 9110 5.1).
struct HeaderNameLess {
  bool operator()(const std::string& a, const std::string& b) const;
};
using Headers = std::multimap<std::string, std::string, HeaderNameLess>;

struct Request {
  std::string method;   // "GET", "POST", ...
  std::string target;   // as sent: "/v1/x?y=1" (or absolute-form)
  std::string path;     // the target's path, percent-decoded
  std::string version;  // "HTTP/1.1" or "HTTP/1.0"
  Headers headers;
  std::multimap<std::string, std::string> params;  // the query, decoded
  std::string body;
  std::string remote_addr;
  int remote_port = 0;
  // What the route's pattern captured (Router): [0] the path, [i] the i-th segment capture.
  std::vector<std::string> captures;

  // The first value of header `name`, or "" when absent.
  const std::string& Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  // The first value of query parameter `name`, or "" when absent.
  const std::string& Param(const std::string& name) const;
  bool HasParam(const std::string& name) const { return params.count(name) > 0; }
};

struct Response {
  int status = -1;  // -1 until a handler sets it (then a front answers 500, a router 200)
  Headers headers;
  std::string body;

  const std::string& Header(std::string_view name) const;
  // Replaces every value of header `name`.
  void SetHeader(std::string name, std::string value);
  void SetContent(std::string content, std::string_view content_type);
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// A request target's path with %XX decoded (a malformed escape stays as it is; '+' is a '+').
std::string DecodePath(std::string_view path);
// "a=1&b=x%20y&c" -> {a: 1, b: "x y", c: ""}; '+' decodes to a space.
std::multimap<std::string, std::string> ParseQuery(std::string_view query);

}  // namespace warden::server
