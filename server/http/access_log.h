// The access log: one line per answered request on stderr,
//   "<RFC 3339 time> <method> <path> <status> <ms>ms rid=<request id>"
// never the query string or a body (they may carry secrets). Fields are escaped (\xNN) so that
// a decoded path ("%0a") cannot end the line and forge another. The event loop buffers its
// lines and writes them with one write() a pass (Flush); other threads write each line at once.
// Thread-safety: Write() from any thread (the buffer is per thread).
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"

namespace warden::server {

class AccessLog {
 public:
  AccessLog(const Clock& clock, bool enabled) : clock_(clock), enabled_(enabled) {}
  // `buffer`: keep the line in this thread's buffer until Flush().
  void Write(std::string_view method, std::string_view path, int status, double seconds,
             std::string_view request_id, bool buffer);
  // Writes this thread's buffered lines.
  void Flush();

 private:
  const Clock& clock_;
  const bool enabled_;
};

}  // namespace warden::server
