#include "common/json_text.h"

namespace warden {

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;  // start of the characters that need no escape, appended together
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) continue;
    out->append(s, run, i - run);
    run = i + 1;
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      case '\b': *out += "\\b"; break;
      case '\f': *out += "\\f"; break;
      default:
        *out += "\\u00";
        out->push_back(kHex[(c >> 4) & 0xf]);
        out->push_back(kHex[c & 0xf]);
    }
  }
  out->append(s, run, s.size() - run);
  out->push_back('"');
}

void AppendJsonStringOrNull(std::string* out, std::string_view s) {
  if (s.empty()) *out += "null";
  else AppendJsonString(out, s);
}

}  // namespace warden
