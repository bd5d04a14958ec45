#include "store/decision_journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>

#include <zlib.h>

namespace warden::store {

namespace {

constexpr char kMagic[4] = {'W', 'D', 'J', '1'};
constexpr uint32_t kMaxRecordBytes = 64u << 20;

void PutU32(std::string* out, uint32_t v) { out->append(reinterpret_cast<const char*>(&v), 4); }
void PutI64(std::string* out, int64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }
void PutStr(std::string* out, const std::string& s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

// Reads fixed-size values and strings from a payload; any overrun sets ok = false.
struct Reader {
  const char* p;
  const char* end;
  bool ok = true;
  template <typename T>
  T Get() {
    T v{};
    if (end - p < static_cast<std::ptrdiff_t>(sizeof v)) {
      ok = false;
      return v;
    }
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
  void Str(std::string* s) {
    uint32_t n = Get<uint32_t>();
    if (!ok || end - p < static_cast<std::ptrdiff_t>(n)) {
      ok = false;
      return;
    }
    s->assign(p, n);  // reuses the capacity of a recycled row
    p += n;
  }
};

// Bit 31 of a record's row count: its rows end with caller_id and caller_name (records
// written before those fields existed lack the bit and the fields).
constexpr uint32_t kCallerFieldsBit = 0x8000'0000u;

void EncodeRow(const DecisionRow& r, std::string* out) {
  PutI64(out, r.seq);
  PutI64(out, r.time);
  PutI64(out, r.latency_us);
  out->push_back(r.allowed ? 1 : 0);
  for (const std::string* s : {&r.id, &r.tenant_id, &r.principal_type, &r.principal_id, &r.principal_name,
                               &r.token_id, &r.model, &r.action, &r.resource_id, &r.reason, &r.rule,
                               &r.eval_error, &r.policy_revision, &r.client_addr, &r.method, &r.path,
                               &r.request_id, &r.caller_id, &r.caller_name}) {
    PutStr(out, *s);
  }
}

bool DecodeRow(Reader& in, DecisionRow* r, bool caller_fields) {
  r->seq = in.Get<int64_t>();
  r->time = in.Get<int64_t>();
  r->latency_us = in.Get<int64_t>();
  r->allowed = in.Get<char>() != 0;
  for (std::string* s : {&r->id, &r->tenant_id, &r->principal_type, &r->principal_id, &r->principal_name,
                         &r->token_id, &r->model, &r->action, &r->resource_id, &r->reason, &r->rule,
                         &r->eval_error, &r->policy_revision, &r->client_addr, &r->method, &r->path,
                         &r->request_id}) {
    in.Str(s);
  }
  if (caller_fields) {
    in.Str(&r->caller_id);
    in.Str(&r->caller_name);
  } else {
    r->caller_id.clear();
    r->caller_name.clear();
  }
  return in.ok;
}

bool PreadAll(int fd, char* buf, size_t n, int64_t offset) {
  while (n > 0) {
    ssize_t got = ::pread(fd, buf, n, offset);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    buf += got;
    n -= static_cast<size_t>(got);
    offset += got;
  }
  return true;
}

bool PwriteAll(int fd, const char* buf, size_t n, int64_t offset) {
  while (n > 0) {
    ssize_t put = ::pwrite(fd, buf, n, offset);
    if (put < 0 && errno == EINTR) continue;
    if (put <= 0) return false;
    buf += put;
    n -= static_cast<size_t>(put);
    offset += put;
  }
  return true;
}

// CRC-32 (zlib's, several times faster than a byte-wise table) of the generation and the
// payload: records left from an earlier generation of the file never check out.
uint32_t RecordCrc(uint32_t generation, std::string_view payload) {
  uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(&generation), sizeof generation);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(payload.data()), static_cast<uInt>(payload.size()));
  return static_cast<uint32_t>(crc);
}

// Validates the record at `offset`; its payload goes to `payload`. False at the end of the
// valid records (end of the written part, torn tail, bad checksum, an older generation).
bool ReadRecord(int fd, uint32_t generation, int64_t offset, int64_t file_end, std::string* payload) {
  if (file_end - offset < 8) return false;
  uint32_t head[2];
  if (!PreadAll(fd, reinterpret_cast<char*>(head), sizeof head, offset)) return false;
  if (head[0] > kMaxRecordBytes || file_end - offset - 8 < static_cast<int64_t>(head[0])) return false;
  payload->resize(head[0]);
  if (!PreadAll(fd, payload->data(), head[0], offset + 8)) return false;
  return RecordCrc(generation, *payload) == head[1];
}

}  // namespace

StatusOr<std::unique_ptr<DecisionJournal>> DecisionJournal::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return UnavailableError("cannot open the decision journal " + path + ": " + std::strerror(errno));
  std::unique_ptr<DecisionJournal> j(new DecisionJournal(path, fd));
  struct stat st{};
  if (fstat(fd, &st) != 0) return UnavailableError("cannot stat the decision journal " + path);
  const int64_t size = st.st_size;
  char header[kHeaderBytes];
  if (size < kHeaderBytes || !PreadAll(fd, header, sizeof header, 0) || std::memcmp(header, kMagic, 4) != 0) {
    if (size >= kHeaderBytes) {
      return FailedPreconditionError("the decision journal " + path + " is not a warden journal");
    }
    RETURN_IF_ERROR(j->WriteHeader(1));  // new (or torn before its header was written)
    return j;
  }
  std::memcpy(&j->generation_, header + 4, 4);
  int64_t offset = kHeaderBytes;
  std::string payload;
  while (ReadRecord(fd, j->generation_, offset, size, &payload)) offset += 8 + static_cast<int64_t>(payload.size());
  j->end_ = offset;  // what follows is a torn record or an older generation's: overwritten next
  return j;
}

DecisionJournal::~DecisionJournal() { ::close(fd_); }

Status DecisionJournal::WriteHeader(uint32_t generation) {
  char header[kHeaderBytes];
  std::memcpy(header, kMagic, 4);
  std::memcpy(header + 4, &generation, 4);
  // The file keeps its size: appends overwrite blocks it already has (no allocation).
  if (!PwriteAll(fd_, header, sizeof header, 0)) {
    return UnavailableError("cannot write the decision journal " + path_ + ": " + std::strerror(errno));
  }
  generation_ = generation;  // only once the file says so
  end_ = kHeaderBytes;
  return Status::Ok();
}

Status DecisionJournal::Append(const std::vector<DecisionRow>& rows) {
  std::string rec(8, '\0');
  PutU32(&rec, static_cast<uint32_t>(rows.size()) | kCallerFieldsBit);
  for (const DecisionRow& r : rows) EncodeRow(r, &rec);
  const uint32_t len = static_cast<uint32_t>(rec.size() - 8);
  if (len > kMaxRecordBytes) return InvalidArgumentError("a decision batch is too large for the journal");
  std::memcpy(rec.data(), &len, 4);
  std::lock_guard<std::mutex> lock(mu_);
  const uint32_t crc = RecordCrc(generation_, std::string_view(rec).substr(8));
  std::memcpy(rec.data() + 4, &crc, 4);
  const int64_t at = end_.load();
  if (!PwriteAll(fd_, rec.data(), rec.size(), at)) {
    // A partial record fails its checksum and is overwritten by the next append.
    return UnavailableError(std::string("cannot append to the decision journal: ") + std::strerror(errno));
  }
  end_ = at + static_cast<int64_t>(rec.size());
  return Status::Ok();
}

void DecisionJournal::ReleaseReadBuffers() const {
  std::string().swap(read_buffer_);
  std::vector<DecisionRow>().swap(spare_rows_);
}

StatusOr<int64_t> DecisionJournal::Read(int64_t offset, size_t max_rows, std::vector<DecisionRow>* out) const {
  constexpr int64_t kChunkBytes = 256 << 10;
  const int64_t end = end_.load();
  // One pread for many records (the mover's syscalls were most of its cost otherwise); a
  // record larger than the chunk is read on its own.
  // The buffer is kept: a fresh megabyte on every call was an mmap, its page faults and a
  // memset each time (a tenth of the mover's time).
  std::string& chunk = read_buffer_;
  const int64_t chunk_start = offset;
  const int64_t chunk_len = std::min(end - offset, kChunkBytes);
  if (chunk_len > 0) {
    if (chunk.size() < static_cast<size_t>(chunk_len)) chunk.resize(static_cast<size_t>(chunk_len));
    if (!PreadAll(fd_, chunk.data(), static_cast<size_t>(chunk_len), offset)) {
      return InternalError("cannot read the decision journal " + path_ + ": " + std::strerror(errno));
    }
  }
  std::string big;
  size_t rows = 0;
  size_t used = 0;  // rows of *out overwritten so far
  while (offset < end && rows < max_rows) {
    std::string_view payload;
    const int64_t in_chunk = offset - chunk_start;
    const int64_t left = chunk_len - in_chunk;
    uint32_t head[2] = {0, 0};
    if (left >= 8) std::memcpy(head, chunk.data() + in_chunk, sizeof head);
    // No checksum here: Open() checked every record it kept, and this process appended the
    // rest in whole. (Checking cost the mover a sixth of its time, on every row.)
    bool valid = true;
    if (left >= 8 && left - 8 >= static_cast<int64_t>(head[0])) {
      payload = std::string_view(chunk).substr(static_cast<size_t>(in_chunk + 8), head[0]);
    } else if (in_chunk > 0) {
      break;  // the record goes past the chunk: the next call reads it
    } else {
      valid = ReadRecord(fd_, generation_, offset, end, &big);  // larger than a chunk
      payload = big;
    }
    if (!valid) {
      return InternalError("the decision journal " + path_ + " is corrupt at offset " + std::to_string(offset));
    }
    Reader in{payload.data(), payload.data() + payload.size()};
    const uint32_t head_count = in.Get<uint32_t>();
    const bool caller_fields = (head_count & kCallerFieldsBit) != 0;
    const uint32_t count = head_count & ~kCallerFieldsBit;
    for (uint32_t i = 0; i < count && in.ok; ++i) {
      if (used == out->size()) {
        if (spare_rows_.empty()) {
          out->emplace_back();
        } else {
          out->push_back(std::move(spare_rows_.back()));
          spare_rows_.pop_back();
        }
      }
      if (DecodeRow(in, &(*out)[used], caller_fields)) ++used;
    }
    if (!in.ok) return InternalError("the decision journal " + path_ + " has a malformed record");
    rows += count;
    offset += 8 + static_cast<int64_t>(payload.size());
  }
  // Rows beyond what was read keep their strings' buffers for the next call: assigning into
  // a recycled row allocates nothing, a new row allocates its longer strings.
  while (out->size() > used) {
    spare_rows_.push_back(std::move(out->back()));
    out->pop_back();
  }
  return offset;
}

Status DecisionJournal::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  return WriteHeader(generation_ + 1);
}

}  // namespace warden::store
