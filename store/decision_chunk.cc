#include "store/decision_chunk.h"

#include <algorithm>
#include <array>

namespace warden::store {

namespace {

constexpr uint8_t kVersion = 1;

// The dictionary fields of a row, in DecisionRow order (the blob's order): pointers to
// const strings for a const row (encoding), to strings otherwise (decoding).
template <typename Row>
auto DictFields(Row& r) {
  return std::array{&r.tenant_id, &r.principal_type, &r.principal_id, &r.principal_name,
                    &r.token_id,  &r.model,          &r.action,       &r.resource_id,
                    &r.reason,    &r.rule,           &r.eval_error,   &r.policy_revision,
                    &r.client_addr, &r.method,       &r.path,         &r.request_id};
}

void PutVarint(std::string* out, uint64_t v) {
  char buf[10];
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out->append(buf, n);
}

// Times are deltas from the previous row's; any two int64 values have a delta modulo 2^64.
int64_t WrappingSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
int64_t WrappingAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

void PutBytes(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

// Reads varints and byte strings from a blob; an overrun or an over-long varint sets ok = false.
struct Reader {
  const unsigned char* p;
  const unsigned char* end;
  bool ok = true;

  uint64_t Varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p == end) break;
      const unsigned char b = *p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok = false;
    return 0;
  }
  uint8_t Byte() {
    if (p == end) {
      ok = false;
      return 0;
    }
    return *p++;
  }
  std::string_view Bytes() {
    const uint64_t n = Varint();
    if (!ok || n > static_cast<uint64_t>(end - p)) {
      ok = false;
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(p), n);
    p += n;
    return s;
  }
};

}  // namespace

uint32_t ChunkBuilder::Intern(size_t field, std::string_view value) {
  Recent& recent = recent_[field];
  for (int i = 0; i < recent.size; ++i) {
    if (recent.value[i] == value) return recent.index[i];
  }
  auto it = index_.find(value);
  if (it == index_.end()) {
    const std::string_view owned = owned_.emplace_back(value);
    it = index_.emplace(owned, static_cast<uint32_t>(strings_.size())).first;
    strings_.push_back(owned);
  }
  int slot = recent.size;
  if (recent.size < 2) {
    ++recent.size;
  } else {
    slot = recent.next;  // the older of the two
    recent.next ^= 1;
  }
  recent.value[slot] = it->first;
  recent.index[slot] = it->second;
  return it->second;
}

bool ChunkBuilder::Add(const DecisionRow& row) {
  if (rows_ == 0) {
    first_seq_ = last_seq_ = row.seq;
    min_time_ = max_time_ = row.time;
    last_time_ = 0;
  } else if (rows_ >= kMaxChunkRows || row.seq <= last_seq_ || row.seq - first_seq_ >= kMaxChunkSpan) {
    return false;
  }
  PutVarint(&body_, static_cast<uint64_t>(row.seq - (rows_ == 0 ? first_seq_ : last_seq_)));
  PutVarint(&body_, ZigZag(WrappingSub(row.time, last_time_)));
  PutVarint(&body_, ZigZag(row.latency_us));
  body_.push_back(row.allowed ? 1 : 0);
  PutBytes(&body_, row.id);
  const auto fields = DictFields(row);
  static_assert(fields.size() == kDictFields);
  for (size_t f = 0; f < kDictFields; ++f) PutVarint(&body_, Intern(f, *fields[f]));
  ++rows_;
  last_seq_ = row.seq;
  last_time_ = row.time;
  min_time_ = std::min(min_time_, row.time);
  max_time_ = std::max(max_time_, row.time);
  return true;
}

void ChunkBuilder::Finish(std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kVersion));
  PutVarint(out, static_cast<uint64_t>(first_seq_));
  PutVarint(out, strings_.size());
  for (std::string_view s : strings_) PutBytes(out, s);
  PutVarint(out, rows_);
  out->append(body_);
  rows_ = 0;
  body_.clear();
  strings_.clear();
  index_.clear();
  owned_.clear();
  std::fill(std::begin(recent_), std::end(recent_), Recent{});
}

Status DecodeChunk(std::string_view blob, std::vector<DecisionRow>* out) {
  Reader in{reinterpret_cast<const unsigned char*>(blob.data()),
            reinterpret_cast<const unsigned char*>(blob.data()) + blob.size()};
  const auto corrupt = [] { return InternalError("a decision-log chunk is corrupt"); };
  if (in.Byte() != kVersion || !in.ok) return corrupt();
  int64_t seq = static_cast<int64_t>(in.Varint());
  const uint64_t n_strings = in.Varint();
  if (!in.ok || n_strings > static_cast<uint64_t>(in.end - in.p)) return corrupt();  // >= 1 byte each
  std::vector<std::string_view> strings;
  strings.reserve(n_strings);
  for (uint64_t i = 0; i < n_strings && in.ok; ++i) strings.push_back(in.Bytes());
  // A row takes at least kMinRowBytes: a count beyond what is left is corrupt (and is not
  // allocated).
  constexpr uint64_t kMinRowBytes = 5 + 16;
  const uint64_t n_rows = in.Varint();
  if (!in.ok || n_rows > static_cast<uint64_t>(in.end - in.p) / kMinRowBytes) return corrupt();
  const size_t start = out->size();
  out->resize(start + n_rows);
  int64_t time = 0;
  for (uint64_t i = 0; i < n_rows && in.ok; ++i) {
    DecisionRow& r = (*out)[start + i];
    seq = WrappingAdd(seq, static_cast<int64_t>(in.Varint()));
    time = WrappingAdd(time, UnZigZag(in.Varint()));
    r.seq = seq;
    r.time = time;
    r.latency_us = UnZigZag(in.Varint());
    r.allowed = in.Byte() != 0;
    r.id = in.Bytes();
    for (std::string* field : DictFields(r)) {
      const uint64_t index = in.Varint();
      if (index >= strings.size()) {
        in.ok = false;
        break;
      }
      *field = strings[index];
    }
  }
  if (!in.ok || in.p != in.end) {
    out->resize(start);
    return corrupt();
  }
  return Status::Ok();
}

}  // namespace warden::store
