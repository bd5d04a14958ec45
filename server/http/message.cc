#include "server/http/message.h"

#include <algorithm>

namespace warden::server {

namespace {

// ASCII case folding (header names are ASCII; std::tolower is a locale-aware library call,
// and header matching called it hundreds of times per request).
constexpr char AsciiLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int hi = HexValue(text[i + 1]), lo = HexValue(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

const std::string kEmpty;

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return AsciiLower(x) == AsciiLower(y); });
}

bool HeaderNameLess::operator()(const std::string& a, const std::string& b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](char x, char y) { return AsciiLower(x) < AsciiLower(y); });
}

const std::string& Request::Header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? kEmpty : it->second;
}

bool Request::HasHeader(std::string_view name) const { return headers.count(std::string(name)) > 0; }

const std::string& Request::Param(const std::string& name) const {
  auto it = params.find(name);
  return it == params.end() ? kEmpty : it->second;
}

const std::string& Response::Header(std::string_view name) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? kEmpty : it->second;
}

void Response::SetHeader(std::string name, std::string value) {
  headers.erase(name);
  headers.emplace(std::move(name), std::move(value));
}

void Response::SetContent(std::string content, std::string_view content_type) {
  body = std::move(content);
  SetHeader("Content-Type", std::string(content_type));
}

std::string DecodePath(std::string_view path) { return Decode(path, /*plus_is_space=*/false); }

std::multimap<std::string, std::string> ParseQuery(std::string_view query) {
  std::multimap<std::string, std::string> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      out.emplace(Decode(pair.substr(0, eq), true),
                  eq == std::string_view::npos ? std::string() : Decode(pair.substr(eq + 1), true));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace warden::server
