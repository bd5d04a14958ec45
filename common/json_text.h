// Writing JSON text by hand where a JSON tree costs too much (the check answer, the decision
// export): string escaping per RFC 8259. Reentrant.
#pragma once

#include <string>
#include <string_view>

namespace warden {

// Appends `s` as a JSON string (quotes, escapes for '"', '\\' and control characters; other
// bytes as they are).
void AppendJsonString(std::string* out, std::string_view s);
// The same, or null when `s` is empty.
void AppendJsonStringOrNull(std::string* out, std::string_view s);

}  // namespace warden
