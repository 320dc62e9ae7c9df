#pragma once
// A log-linear latency histogram after HdrHistogram (Gil Tene, hdrhistogram.org; the
// index arithmetic follows HdrHistogram_c's hdr_histogram.c): values 1 µs .. 1 hour kept
// to 3 significant decimal digits in a fixed array of counts, so recording is O(1), never
// allocates, and the memory does not grow with the number of values recorded.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace bench {

class HdrHistogram {
 public:
  static constexpr uint64_t kHighest = 3'600'000'000ULL;  // 1 hour in microseconds
  // 3 significant digits: a unit resolution up to 2 * 10^3 needs 2048 sub-buckets.
  static constexpr int kSubBucketCountMagnitude = 11;
  static constexpr int64_t kSubBucketCount = int64_t{1} << kSubBucketCountMagnitude;
  static constexpr int kSubBucketHalfCountMagnitude = kSubBucketCountMagnitude - 1;
  static constexpr int64_t kSubBucketHalfCount = kSubBucketCount / 2;
  static constexpr uint64_t kSubBucketMask = uint64_t(kSubBucketCount - 1);
  static constexpr int kBucketCount = [] {
    // Buckets double the range until it covers kHighest (hdr_calculate_bucket_count).
    uint64_t smallest_untrackable = uint64_t(kSubBucketCount);
    int buckets = 1;
    while (smallest_untrackable <= kHighest) {
      smallest_untrackable <<= 1;
      ++buckets;
    }
    return buckets;
  }();
  static constexpr size_t kCountsLen = size_t(kBucketCount + 1) * size_t(kSubBucketHalfCount);

  HdrHistogram();
  HdrHistogram(const HdrHistogram& o);
  HdrHistogram& operator=(const HdrHistogram& o);
  HdrHistogram(HdrHistogram&&) noexcept = default;
  HdrHistogram& operator=(HdrHistogram&&) noexcept = default;

  // Values above kHighest are counted at kHighest (max() still says the real value).
  void record(uint64_t value_us) { record_n(value_us, 1); }
  void record_n(uint64_t value_us, uint64_t n);
  void merge(const HdrHistogram& o);
  void reset();

  // The value at percentile p (0..100): the highest value equivalent (within 3
  // significant digits) to the recorded value at that rank, capped at max(). 0 if empty.
  uint64_t percentile(double p) const;
  uint64_t max() const { return max_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t count() const { return count_; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }
  // Bytes held, fixed at construction.
  static constexpr size_t memory_bytes() {
    return sizeof(HdrHistogram) + kCountsLen * sizeof(uint64_t);
  }

  static size_t index_of(uint64_t value);
  static uint64_t value_at_index(size_t index);
  static uint64_t highest_equivalent(uint64_t value);

 private:
  std::unique_ptr<uint64_t[]> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace bench
