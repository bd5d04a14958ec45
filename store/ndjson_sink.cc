#include "store/ndjson_sink.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "common/json_text.h"

namespace warden::store {

namespace {

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

Status Errno(const std::string& what) { return UnavailableError(what + ": " + std::strerror(errno)); }

}  // namespace

StatusOr<std::unique_ptr<NdjsonSink>> NdjsonSink::Open(Options options, const Clock& clock) {
  if (options.path.empty()) return InvalidArgumentError("the export needs a path", "decision_export_path");
  if (options.max_bytes < 4096) return InvalidArgumentError("max_bytes must be at least 4 KiB", "decision_export_max_bytes");
  std::unique_ptr<NdjsonSink> sink(new NdjsonSink(std::move(options), clock));
  std::lock_guard<std::mutex> lock(sink->mu_);
  RETURN_IF_ERROR(sink->OpenFile());
  return sink;
}

NdjsonSink::~NdjsonSink() {
  if (fd_ >= 0) {
    (void)::fdatasync(fd_);
    ::close(fd_);
  }
}

Status NdjsonSink::OpenFile() {
  fd_ = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) return Errno("cannot open " + options_.path);
  struct stat st{};
  if (::fstat(fd_, &st) != 0) return Errno("cannot stat " + options_.path);
  size_ = st.st_size;
  return Status::Ok();
}

void NdjsonSink::AppendLine(const DecisionRow& r, std::string* out) {
  *out += R"({"decision_id":)";
  AppendJsonString(out, r.id);
  *out += R"(,"seq":)";
  AppendInt(out, r.seq);
  *out += R"(,"time":)";
  AppendJsonString(out, FormatTimestamp(r.time));
  *out += R"(,"tenant_id":)";
  AppendJsonString(out, r.tenant_id);
  *out += R"(,"principal":{"type":)";
  AppendJsonString(out, r.principal_type);
  *out += R"(,"id":)";
  AppendJsonStringOrNull(out, r.principal_id);
  *out += R"(,"name":)";
  AppendJsonStringOrNull(out, r.principal_name);
  *out += R"(,"token_id":)";
  AppendJsonStringOrNull(out, r.token_id);
  *out += '}';
  if (!r.caller_id.empty()) {  // AuthZEN: the PEP's account
    *out += R"(,"caller":{"type":"service_account","id":)";
    AppendJsonString(out, r.caller_id);
    *out += R"(,"name":)";
    AppendJsonString(out, r.caller_name);
    *out += '}';
  }
  *out += R"(,"model":)";
  AppendJsonString(out, r.model);
  *out += R"(,"action":)";
  AppendJsonString(out, r.action);
  *out += R"(,"resource_id":)";
  AppendJsonString(out, r.resource_id);
  *out += R"(,"allowed":)";
  *out += r.allowed ? "true" : "false";
  *out += R"(,"reason":)";
  AppendJsonString(out, r.reason);
  *out += R"(,"rule":)";
  AppendJsonString(out, r.rule);
  *out += R"(,"eval_error":)";
  *out += r.eval_error.empty() ? "false" : "true";
  *out += R"(,"policy_revision":)";
  AppendJsonString(out, r.policy_revision);
  *out += R"(,"context":{"client_addr":)";
  AppendJsonString(out, r.client_addr);
  *out += R"(,"method":)";
  AppendJsonString(out, r.method);
  *out += R"(,"path":)";
  AppendJsonString(out, r.path);
  *out += R"(,"request_id":)";
  AppendJsonString(out, r.request_id);
  *out += R"(},"latency_us":)";
  AppendInt(out, r.latency_us);
  *out += "}\n";
}

Status NdjsonSink::Write(const std::vector<DecisionRow>& rows) {
  if (rows.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  if (size_ >= options_.max_bytes) RETURN_IF_ERROR(RotateLocked());
  if (fd_ < 0) RETURN_IF_ERROR(OpenFile());
  line_.clear();
  for (const DecisionRow& r : rows) AppendLine(r, &line_);
  size_t done = 0;
  while (done < line_.size()) {
    ssize_t n = ::write(fd_, line_.data() + done, line_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Errno("cannot write " + options_.path);
    done += static_cast<size_t>(n);
  }
  size_ += static_cast<int64_t>(line_.size());
  return Status::Ok();
}

Status NdjsonSink::Sync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) return Errno("cannot sync " + options_.path);
  return Status::Ok();
}

Status NdjsonSink::RotateLocked() {
  if (fd_ >= 0) {
    (void)::fdatasync(fd_);
    ::close(fd_);
    fd_ = -1;
  }
  // <path>.<UTC time to the millisecond>: names sort in rotation order.
  std::string stamp = FormatTimestamp(clock_.NowMillis());
  std::replace(stamp.begin(), stamp.end(), ':', '-');
  std::string rotated = options_.path + "." + stamp;
  for (int i = 1; std::filesystem::exists(rotated); ++i) rotated = options_.path + "." + stamp + "-" + std::to_string(i);
  if (::rename(options_.path.c_str(), rotated.c_str()) != 0) return Errno("cannot rotate " + options_.path);
  // Keep the newest keep_files rotated files.
  std::error_code ec;
  const std::filesystem::path base(options_.path);
  std::vector<std::string> old;
  for (const auto& e : std::filesystem::directory_iterator(base.parent_path().empty() ? "." : base.parent_path(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(base.filename().string() + ".", 0) == 0) old.push_back(e.path().string());
  }
  std::sort(old.begin(), old.end());
  for (size_t i = 0; i + static_cast<size_t>(options_.keep_files) < old.size(); ++i) std::filesystem::remove(old[i], ec);
  return OpenFile();
}

}  // namespace warden::store
