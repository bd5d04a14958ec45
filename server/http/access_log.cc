#include "server/http/access_log.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace warden::server {

namespace {

thread_local std::string t_buffered;

// `text` cut to `max` bytes, or "-" when empty. Bytes that are not printable ASCII (controls,
// DEL, bytes >= 0x80) are written as \xNN and a backslash as \\.
void AppendField(std::string* out, std::string_view text, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  if (text.empty()) out->push_back('-');
  for (unsigned char ch : text.substr(0, max)) {
    if (ch == '\\') {
      out->append("\\\\");
    } else if (ch < 0x20 || ch >= 0x7f) {
      const char escaped[] = {'\\', 'x', kHex[ch >> 4], kHex[ch & 0xf]};
      out->append(escaped, sizeof escaped);
    } else {
      out->push_back(static_cast<char>(ch));
    }
  }
}

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

}  // namespace

void AccessLog::Write(std::string_view method, std::string_view path, int status, double seconds,
                      std::string_view request_id, bool buffer) {
  if (!enabled_) return;
  // Built by hand: snprintf and the time formatting were ~7,000 instructions a request, on
  // the event loop.
  thread_local std::string line;
  thread_local int64_t cached_second = -1;
  thread_local std::string cached_prefix;  // "YYYY-MM-DDTHH:MM:SS." of cached_second
  const int64_t now = clock_.NowMillis();
  const int64_t second = now >= 0 ? now / 1000 : (now - 999) / 1000;
  if (second != cached_second) {
    cached_second = second;
    cached_prefix = FormatTimestamp(second * 1000).substr(0, 20);
  }
  const int64_t ms = now - second * 1000;
  line.assign(cached_prefix);
  line.push_back(static_cast<char>('0' + ms / 100));
  line.push_back(static_cast<char>('0' + ms / 10 % 10));
  line.push_back(static_cast<char>('0' + ms % 10));
  line += "Z ";
  AppendField(&line, method, 16);
  line.push_back(' ');
  AppendField(&line, path, 200);
  line.push_back(' ');
  AppendInt(&line, status);
  line.push_back(' ');
  const int64_t micros = std::llround(std::max(0.0, seconds) * 1e6);
  AppendInt(&line, micros / 1000);
  line.push_back('.');
  line.push_back(static_cast<char>('0' + micros % 1000 / 100));
  line.push_back(static_cast<char>('0' + micros % 100 / 10));
  line.push_back(static_cast<char>('0' + micros % 10));
  line += "ms rid=";
  if (!request_id.empty()) AppendField(&line, request_id, 128);
  line.push_back('\n');
  if (buffer) {
    t_buffered += line;
  } else {
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
}

void AccessLog::Flush() {
  if (t_buffered.empty()) return;
  std::fwrite(t_buffered.data(), 1, t_buffered.size(), stderr);
  t_buffered.clear();
}

}  // namespace warden::server
