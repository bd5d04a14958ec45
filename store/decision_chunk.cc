#include "store/decision_chunk.h"

#include <algorithm>
#include <array>
#include <bit>
#include <functional>
#include <string_view>

namespace warden::store {

namespace {

// Version 1 stored each row's id as text (27 bytes for a ULID); version 2 stores a ULID as
// its time relative to the row's time (a varint, one byte when they agree) and its 80 random
// bits (10 bytes): 17 bytes less a decision; version 3 adds caller_id and caller_name to the
// dictionary fields; version 4 writes only the indexes that differ from the previous row's.
// All are read; chunks are written as version 4.
constexpr uint8_t kVersion1 = 1;
constexpr uint8_t kVersion2 = 2;
constexpr uint8_t kVersion3 = 3;  // version 2 and the caller fields
constexpr uint8_t kVersion = 4;   // version 3 and the repeat mask
constexpr size_t kMaskBytes = 3;
constexpr size_t kVersion2DictFields = 16;
// Version 2's row flags byte: bit 0 allowed, bit 1 the id is a ULID in compact form.
constexpr uint8_t kAllowedBit = 1;
constexpr uint8_t kCompactUlidBit = 2;

constexpr size_t kLinear = 8;  // a chunk's strings looked up by a scan before its index is built

constexpr std::string_view kCrockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

int CrockfordValue(char c) {
  const size_t i = kCrockford.find(c);
  return i == std::string_view::npos ? -1 : static_cast<int>(i);
}

// A canonical ULID (26 characters, upper-case Crockford base32, at most 128 bits) as its
// 48-bit time and 80 random bits; false for anything else (stored as text).
bool SplitUlid(std::string_view id, uint64_t* ms, std::array<uint8_t, 10>* random) {
  if (id.size() != 26 || id[0] > '7') return false;
  unsigned __int128 v = 0;
  for (char c : id) {
    const int d = CrockfordValue(c);
    if (d < 0) return false;
    v = (v << 5) | static_cast<unsigned>(d);
  }
  *ms = static_cast<uint64_t>(v >> 80);
  for (int i = 9; i >= 0; --i) {
    (*random)[static_cast<size_t>(i)] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  return true;
}

std::string JoinUlid(uint64_t ms, const unsigned char* random) {
  unsigned __int128 v = ms & ((uint64_t{1} << 48) - 1);
  for (int i = 0; i < 10; ++i) v = (v << 8) | random[i];
  std::string out(26, '0');
  for (int i = 25; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kCrockford[static_cast<size_t>(v & 31)];
    v >>= 5;
  }
  return out;
}

// The dictionary fields of a row, in DecisionRow order (the blob's order): pointers to
// const strings for a const row (encoding), to strings otherwise (decoding).
template <typename Row>
auto DictFields(Row& r) {
  return std::array{&r.tenant_id, &r.principal_type, &r.principal_id, &r.principal_name,
                    &r.token_id,  &r.model,          &r.action,       &r.resource_id,
                    &r.reason,    &r.rule,           &r.eval_error,   &r.policy_revision,
                    &r.client_addr, &r.method,       &r.path,         &r.request_id,
                    &r.caller_id,   &r.caller_name};
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
  uint32_t* previous = previous_[field];
  if (previous[0] < spans_.size() && String(previous[0]) == value) return previous[0];
  uint32_t found = UINT32_MAX;
  if (previous[1] < spans_.size() && String(previous[1]) == value) {
    found = previous[1];
  } else if (slots_.empty()) {
    for (uint32_t i = 0; i < spans_.size(); ++i) {
      if (String(i) == value) {
        found = i;
        break;
      }
    }
  } else {
    const size_t mask = slots_.size() - 1;
    for (size_t h = std::hash<std::string_view>()(value) & mask; slots_[h] != 0; h = (h + 1) & mask) {
      if (String(slots_[h] - 1) == value) {
        found = slots_[h] - 1;
        break;
      }
    }
  }
  if (found == UINT32_MAX) {
    found = static_cast<uint32_t>(spans_.size());
    ++strings_;
    PutVarint(&dict_, value.size());
    spans_.emplace_back(static_cast<uint32_t>(dict_.size()), static_cast<uint32_t>(value.size()));
    dict_.append(value);
    if (spans_.size() > kLinear && spans_.size() * 2 > slots_.size()) {
      Rehash(std::max<size_t>(32, slots_.size() * 2));
    } else if (!slots_.empty()) {
      const size_t mask = slots_.size() - 1;
      size_t h = std::hash<std::string_view>()(value) & mask;
      while (slots_[h] != 0) h = (h + 1) & mask;
      slots_[h] = found + 1;
    }
  }
  previous[1] = previous[0];
  previous[0] = found;
  return found;
}

void ChunkBuilder::Rehash(size_t slots) {
  slots_.assign(slots, 0);
  const size_t mask = slots - 1;
  for (uint32_t i = 0; i < spans_.size(); ++i) {
    size_t h = std::hash<std::string_view>()(String(i)) & mask;
    while (slots_[h] != 0) h = (h + 1) & mask;
    slots_[h] = i + 1;
  }
}

void ChunkBuilder::Compact() {
  if (compact() || rows_ == 0) return;
  std::vector<std::pair<uint32_t, uint32_t>>().swap(spans_);
  std::vector<uint32_t>().swap(slots_);
  dict_.shrink_to_fit();
  body_.shrink_to_fit();
}

void ChunkBuilder::Expand() {
  spans_.reserve(strings_);
  Reader in{reinterpret_cast<const unsigned char*>(dict_.data()),
            reinterpret_cast<const unsigned char*>(dict_.data()) + dict_.size()};
  while (in.p != in.end) {
    const std::string_view s = in.Bytes();  // written by Intern: always whole
    spans_.emplace_back(static_cast<uint32_t>(s.data() - dict_.data()), static_cast<uint32_t>(s.size()));
  }
  if (spans_.size() > kLinear) Rehash(std::max<size_t>(32, std::bit_ceil(spans_.size() * 2)));
}

bool ChunkBuilder::Add(const DecisionRow& row) {
  if (rows_ == 0) {
    first_seq_ = last_seq_ = row.seq;
    min_time_ = max_time_ = row.time;
    last_time_ = 0;
  } else if (rows_ >= kMaxChunkRows || row.seq <= last_seq_ || row.seq - first_seq_ >= kMaxChunkSpan) {
    return false;
  }
  if (compact()) Expand();
  PutVarint(&body_, static_cast<uint64_t>(row.seq - (rows_ == 0 ? first_seq_ : last_seq_)));
  PutVarint(&body_, ZigZag(WrappingSub(row.time, last_time_)));
  PutVarint(&body_, ZigZag(row.latency_us));
  uint64_t ulid_ms = 0;
  std::array<uint8_t, 10> random{};
  const bool compact_id = SplitUlid(row.id, &ulid_ms, &random);
  body_.push_back(static_cast<char>((row.allowed ? kAllowedBit : 0) | (compact_id ? kCompactUlidBit : 0)));
  if (compact_id) {
    PutVarint(&body_, ZigZag(WrappingSub(static_cast<int64_t>(ulid_ms), row.time)));
    body_.append(reinterpret_cast<const char*>(random.data()), random.size());
  } else {
    PutBytes(&body_, row.id);
  }
  const auto fields = DictFields(row);
  static_assert(fields.size() == kDictFields && kDictFields <= 8 * kMaskBytes);
  const size_t mask_at = body_.size();
  body_.append(kMaskBytes, '\0');
  uint32_t mask = 0;
  for (size_t f = 0; f < kDictFields; ++f) {
    const uint32_t before = previous_[f][0];
    const uint32_t index = Intern(f, *fields[f]);
    if (index == before) {
      mask |= uint32_t{1} << f;
    } else {
      PutVarint(&body_, index);
    }
  }
  for (size_t i = 0; i < kMaskBytes; ++i) body_[mask_at + i] = static_cast<char>((mask >> (8 * i)) & 0xff);
  ++rows_;
  last_seq_ = row.seq;
  last_time_ = row.time;
  min_time_ = std::min(min_time_, row.time);
  max_time_ = std::max(max_time_, row.time);
  return true;
}

void ChunkBuilder::Peek(std::string* out) const {
  out->clear();
  out->reserve(24 + dict_.size() + body_.size());
  out->push_back(static_cast<char>(kVersion));
  PutVarint(out, static_cast<uint64_t>(first_seq_));
  PutVarint(out, strings_);
  out->append(dict_);
  PutVarint(out, rows_);
  out->append(body_);
}

void ChunkBuilder::Finish(std::string* out) {
  Peek(out);
  Clear();
}

void ChunkBuilder::Clear() {
  rows_ = 0;
  strings_ = 0;
  body_.clear();
  dict_.clear();
  spans_.clear();
  slots_.clear();
  for (auto& p : previous_) p[0] = p[1] = 0;
}

size_t ChunkBuilder::MemoryBytes() const {
  return sizeof(*this) + body_.capacity() + dict_.capacity() + spans_.capacity() * sizeof(spans_[0]) +
         slots_.capacity() * sizeof(uint32_t);
}

Status DecodeChunkIf(std::string_view blob, const std::function<bool(const DecisionRowHead&)>& keep,
                     size_t max_rows, std::vector<DecisionRow>* out) {
  Reader in{reinterpret_cast<const unsigned char*>(blob.data()),
            reinterpret_cast<const unsigned char*>(blob.data()) + blob.size()};
  const auto corrupt = [] { return InternalError("a decision-log chunk is corrupt"); };
  const uint8_t version = in.Byte();
  if (version < kVersion1 || version > kVersion || !in.ok) return corrupt();
  const size_t dict_fields = version >= kVersion3 ? ChunkBuilder::kDictFields : kVersion2DictFields;
  int64_t seq = static_cast<int64_t>(in.Varint());
  const uint64_t n_strings = in.Varint();
  if (!in.ok || n_strings > static_cast<uint64_t>(in.end - in.p)) return corrupt();  // >= 1 byte each
  std::vector<std::string_view> strings;
  strings.reserve(n_strings);
  for (uint64_t i = 0; i < n_strings && in.ok; ++i) strings.push_back(in.Bytes());
  // A row takes at least min_row_bytes: a count beyond what is left is corrupt (and is not
  // allocated).
  const uint64_t min_row_bytes = version >= kVersion ? 5 + kMaskBytes : 5 + 16;
  const uint64_t n_rows = in.Varint();
  if (!in.ok || n_rows > static_cast<uint64_t>(in.end - in.p) / min_row_bytes) return corrupt();
  // Each row is read to its end, its id and string indexes located but nothing copied; the
  // last max_rows that `keep` takes wait in a ring, and only those are built, once the whole
  // blob checked out. So a page pays for the strings of the rows it returns.
  struct Parsed {
    int64_t seq, time, latency_us, id_ms;
    bool allowed;
    std::string_view id_text;
    const unsigned char* id_random;  // a compact ULID's 80 random bits, or null
    uint32_t index[ChunkBuilder::kDictFields];
  };
  thread_local std::vector<Parsed> ring;
  const size_t capacity = static_cast<size_t>(std::min<uint64_t>(n_rows, max_rows));
  ring.resize(capacity);
  size_t taken = 0;
  Parsed row{};  // version 4: the previous row's indexes until read
  for (uint64_t i = 0; i < n_rows && in.ok; ++i) {
    seq = WrappingAdd(seq, static_cast<int64_t>(in.Varint()));
    row.time = WrappingAdd(row.time, UnZigZag(in.Varint()));
    row.seq = seq;
    row.latency_us = UnZigZag(in.Varint());
    const uint8_t flags = in.Byte();
    row.allowed = version == kVersion1 ? flags != 0 : (flags & kAllowedBit) != 0;
    row.id_random = nullptr;
    if (version != kVersion1 && (flags & kCompactUlidBit)) {
      row.id_ms = WrappingAdd(row.time, UnZigZag(in.Varint()));
      if (!in.ok || in.end - in.p < 10) {
        in.ok = false;
        break;
      }
      row.id_random = in.p;
      in.p += 10;
    } else {
      row.id_text = in.Bytes();
    }
    uint32_t same = 0;  // version 4's mask
    if (version >= kVersion) {
      for (size_t b = 0; b < kMaskBytes; ++b) same |= static_cast<uint32_t>(in.Byte()) << (8 * b);
    }
    for (size_t f = 0; f < dict_fields; ++f) {
      if (!((same >> f) & 1)) {
        const uint64_t index = in.Varint();
        if (index >= strings.size()) in.ok = false;
        row.index[f] = static_cast<uint32_t>(index);
      } else if (row.index[f] >= strings.size()) {
        in.ok = false;
      }
    }
    if (!in.ok || capacity == 0) continue;
    constexpr size_t kModel = 5, kAction = 6;  // in DictFields order
    if (keep && !keep(DecisionRowHead{row.seq, row.time, row.allowed, strings[row.index[kModel]],
                                      strings[row.index[kAction]]})) {
      continue;
    }
    ring[taken++ % capacity] = row;
  }
  if (!in.ok || in.p != in.end) return corrupt();
  const size_t built = std::min(taken, capacity);
  out->reserve(out->size() + built);
  for (size_t k = taken - built; k < taken; ++k) {
    const Parsed& p = ring[k % capacity];
    DecisionRow& r = out->emplace_back();
    r.seq = p.seq;
    r.time = p.time;
    r.latency_us = p.latency_us;
    r.allowed = p.allowed;
    r.id = p.id_random ? JoinUlid(static_cast<uint64_t>(p.id_ms), p.id_random) : std::string(p.id_text);
    const auto fields = DictFields(r);
    for (size_t f = 0; f < dict_fields; ++f) *fields[f] = strings[p.index[f]];  // older versions leave the rest empty
  }
  return Status::Ok();
}

Status DecodeChunk(std::string_view blob, std::vector<DecisionRow>* out) {
  return DecodeChunkIf(blob, nullptr, SIZE_MAX, out);
}

}  // namespace warden::store
