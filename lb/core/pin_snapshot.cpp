// The state file codec (see pin_snapshot.h for the layout).
//
// Decoding is done in two passes so that every kind of damage gets the most useful
// error: a first pass walks the lengths and counts, bounds-checking each against the
// bytes left ("truncated at byte N"), which locates the checksum; the checksum is then
// verified before any record is trusted, so a flipped bit inside a record reads as
// "checksum mismatch" rather than as a plausible but wrong pin.
#include "lb/core/pin_snapshot.h"

#include <xxhash.h>

#include <unordered_map>

namespace lb {
namespace {

constexpr std::string_view kMagic = "CORRALPINS";
constexpr size_t kRecordBytes = 8 + 8 + 4 + 8 + 8;
constexpr size_t kChecksumBytes = 8;

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A bounds-checked little-endian reader. Every read first checks the bytes left; the
// first failure is remembered and later reads return zero, so callers test once.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool need(size_t n) {
    if (failed_) return false;
    if (n > data_.size() - pos_) {
      failed_ = true;
      return false;
    }
    return true;
  }
  uint64_t uint(size_t width) {
    if (!need(width)) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < width; ++i)
      v |= static_cast<uint64_t>(static_cast<unsigned char>(data_[pos_ + i])) << (8 * i);
    pos_ += width;
    return v;
  }
  uint32_t u32() { return static_cast<uint32_t>(uint(4)); }
  uint64_t u64() { return uint(8); }
  std::string_view bytes(size_t n) {
    if (!need(n)) return {};
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  void skip(size_t n) {
    if (need(n)) pos_ += n;
  }
  size_t pos() const { return pos_; }
  size_t left() const { return data_.size() - pos_; }
  bool failed() const { return failed_; }
  void seek(size_t pos) { pos_ = pos; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

DecodeResult fail(std::string error) {
  DecodeResult r;
  r.error = std::move(error);
  return r;
}

std::string truncated(std::string_view bytes, std::string_view what) {
  return "truncated at byte " + std::to_string(bytes.size()) + " (in " + std::string(what) + ")";
}

}  // namespace

std::string encode_pins(const std::vector<PinRecord>& pins,
                        const std::vector<QuotaRecord>& quotas) {
  std::unordered_map<std::string_view, uint32_t> index;
  std::vector<std::string_view> names;
  std::vector<uint32_t> record_name(pins.size());
  for (size_t i = 0; i < pins.size(); ++i) {
    auto [it, fresh] = index.try_emplace(pins[i].backend, static_cast<uint32_t>(names.size()));
    if (fresh) names.push_back(pins[i].backend);
    record_name[i] = it->second;
  }
  std::string out;
  size_t names_bytes = 0;
  for (std::string_view n : names) names_bytes += 4 + n.size();
  out.reserve(kMagic.size() + 4 + 4 + names_bytes + 8 + pins.size() * kRecordBytes +
              kChecksumBytes);
  out.append(kMagic);
  put_u32(out, kPinSnapshotVersion);
  put_u32(out, static_cast<uint32_t>(names.size()));
  for (std::string_view n : names) {
    put_u32(out, static_cast<uint32_t>(n.size()));
    out.append(n);
  }
  put_u64(out, pins.size());
  for (size_t i = 0; i < pins.size(); ++i) {
    const PinRecord& p = pins[i];
    put_u64(out, p.key.lo);
    put_u64(out, p.key.hi);
    put_u32(out, record_name[i]);
    put_u64(out, p.last_slot);
    put_u64(out, p.last_seen_unix_ms);
  }
  put_u32(out, static_cast<uint32_t>(quotas.size()));
  for (const QuotaRecord& q : quotas) {
    put_u32(out, static_cast<uint32_t>(q.pool.size()));
    out.append(q.pool);
    put_u64(out, q.day);
    put_u64(out, q.used);
  }
  put_u64(out, XXH3_64bits(out.data(), out.size()));
  return out;
}

uint64_t pin_idle_ms(const PinRecord& pin, uint64_t now_unix_ms) {
  return now_unix_ms > pin.last_seen_unix_ms ? now_unix_ms - pin.last_seen_unix_ms : 0;
}

DecodeResult decode_pins(std::string_view bytes, uint64_t v1_saved_unix_ms) {
  // A short prefix of the magic is a truncated state file; anything else is not ours.
  size_t head = std::min(bytes.size(), kMagic.size());
  if (bytes.substr(0, head) != kMagic.substr(0, head)) return fail("not a corral state file");
  Reader r(bytes);
  r.skip(kMagic.size());
  if (r.failed()) return fail(truncated(bytes, "magic"));
  uint32_t version = r.u32();
  if (r.failed()) return fail(truncated(bytes, "version"));
  // Version 1 has the same layout with idle-at-save in place of last-seen; versions 1 and
  // 2 end at the records (no daily counts).
  if (version != kPinSnapshotVersion && version != 1 && version != 2)
    return fail("unsupported version " + std::to_string(version));

  // Pass 1: structure only. Each count is checked against the bytes left before anything
  // is reserved: a name takes at least 4 bytes and a record exactly kRecordBytes, so a
  // huge count in a short file fails here without allocating.
  uint32_t name_count = r.u32();
  if (r.failed()) return fail(truncated(bytes, "name count"));
  if (name_count > r.left() / 4) return fail(truncated(bytes, "name table"));
  size_t names_at = r.pos();
  for (uint32_t i = 0; i < name_count; ++i) {
    uint32_t len = r.u32();
    r.skip(len);
    if (r.failed()) return fail(truncated(bytes, "name table"));
  }
  uint64_t record_count = r.u64();
  if (r.failed()) return fail(truncated(bytes, "record count"));
  size_t records_at = r.pos();
  if (record_count > r.left() / kRecordBytes) return fail(truncated(bytes, "records"));
  r.skip(static_cast<size_t>(record_count) * kRecordBytes);
  size_t quotas_at = r.pos();
  uint32_t quota_count = 0;
  if (version >= 3) {
    quota_count = r.u32();
    if (r.failed()) return fail(truncated(bytes, "quota count"));
    // Each count takes at least 4 + 8 + 8 bytes.
    if (quota_count > r.left() / 20) return fail(truncated(bytes, "quota counts"));
    for (uint32_t i = 0; i < quota_count; ++i) {
      uint32_t len = r.u32();
      r.skip(len);
      r.skip(16);
      if (r.failed()) return fail(truncated(bytes, "quota counts"));
    }
  }
  size_t checksum_at = r.pos();
  uint64_t checksum = r.u64();
  if (r.failed()) return fail(truncated(bytes, "checksum"));
  if (r.left() != 0)
    return fail(std::to_string(r.left()) + " unexpected bytes after the checksum at byte " +
                std::to_string(r.pos()));
  if (XXH3_64bits(bytes.data(), checksum_at) != checksum) return fail("checksum mismatch");
  if (version == 1 && v1_saved_unix_ms == 0)
    return fail("version 1 file and no time it was saved: its pins cannot be aged");

  // Pass 2: the bytes are intact; read them.
  std::vector<std::string_view> names;
  names.reserve(name_count);
  r.seek(names_at);
  for (uint32_t i = 0; i < name_count; ++i) {
    uint32_t len = r.u32();
    names.push_back(r.bytes(len));
  }
  DecodeResult out;
  out.pins.reserve(static_cast<size_t>(record_count));
  r.seek(records_at);
  for (uint64_t i = 0; i < record_count; ++i) {
    PinRecord p;
    p.key.lo = r.u64();
    p.key.hi = r.u64();
    uint32_t name = r.u32();
    p.last_slot = r.u64();
    const uint64_t stamp = r.u64();
    p.last_seen_unix_ms =
        version == 1 ? (v1_saved_unix_ms > stamp ? v1_saved_unix_ms - stamp : 0) : stamp;
    // Only a bug in the writer gets here (the checksum matched), but a bad index must
    // still never index past the table.
    if (name >= names.size())
      return fail("record " + std::to_string(i) + " names backend " + std::to_string(name) +
                  " of " + std::to_string(names.size()));
    p.backend = std::string(names[name]);
    out.pins.push_back(std::move(p));
  }
  if (version >= 3) {
    r.seek(quotas_at);
    r.skip(4);
    out.quotas.reserve(quota_count);
    for (uint32_t i = 0; i < quota_count; ++i) {
      QuotaRecord q;
      uint32_t len = r.u32();
      q.pool = std::string(r.bytes(len));
      q.day = r.u64();
      q.used = r.u64();
      out.quotas.push_back(std::move(q));
    }
  }
  return out;
}

}  // namespace lb
