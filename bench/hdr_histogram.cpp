#include "bench/hdr_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace bench {

HdrHistogram::HdrHistogram() : counts_(new uint64_t[kCountsLen]()) {}

HdrHistogram::HdrHistogram(const HdrHistogram& o) : HdrHistogram() { *this = o; }

HdrHistogram& HdrHistogram::operator=(const HdrHistogram& o) {
  if (this == &o) return *this;
  if (!counts_) counts_.reset(new uint64_t[kCountsLen]());
  std::memcpy(counts_.get(), o.counts_.get(), kCountsLen * sizeof(uint64_t));
  count_ = o.count_;
  sum_ = o.sum_;
  min_ = o.min_;
  max_ = o.max_;
  return *this;
}

// hdr_histogram.c: counts_index(bucket, sub_bucket) after get_bucket_index and
// get_sub_bucket_index, with unit_magnitude 0 (the lowest discernible value is 1 µs).
size_t HdrHistogram::index_of(uint64_t value) {
  const int pow2ceiling = 64 - std::countl_zero(value | kSubBucketMask);
  const int bucket = pow2ceiling - (kSubBucketHalfCountMagnitude + 1);
  const int64_t sub_bucket = int64_t(value >> bucket);
  return size_t(((int64_t(bucket) + 1) << kSubBucketHalfCountMagnitude) +
                (sub_bucket - kSubBucketHalfCount));
}

uint64_t HdrHistogram::value_at_index(size_t index) {
  int bucket = int(index >> kSubBucketHalfCountMagnitude) - 1;
  int64_t sub_bucket = int64_t(index & size_t(kSubBucketHalfCount - 1)) + kSubBucketHalfCount;
  if (bucket < 0) {
    sub_bucket -= kSubBucketHalfCount;
    bucket = 0;
  }
  return uint64_t(sub_bucket) << bucket;
}

// The largest value that lands in the same count as `value` (lowest equivalent value plus
// the size of its equivalent range, minus 1).
uint64_t HdrHistogram::highest_equivalent(uint64_t value) {
  const int pow2ceiling = 64 - std::countl_zero(value | kSubBucketMask);
  const int bucket = pow2ceiling - (kSubBucketHalfCountMagnitude + 1);
  const uint64_t sub_bucket = value >> bucket;
  const int adjusted = bucket + (sub_bucket >= uint64_t(kSubBucketCount) ? 1 : 0);
  const uint64_t lowest = sub_bucket << bucket;
  return lowest + (uint64_t{1} << adjusted) - 1;
}

void HdrHistogram::record_n(uint64_t value, uint64_t n) {
  if (n == 0) return;
  counts_[index_of(std::min(value, kHighest))] += n;
  count_ += n;
  sum_ += value * n;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void HdrHistogram::merge(const HdrHistogram& o) {
  for (size_t i = 0; i < kCountsLen; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

void HdrHistogram::reset() {
  std::memset(counts_.get(), 0, kCountsLen * sizeof(uint64_t));
  count_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

// hdr_value_at_percentile: the first value whose cumulative count reaches
// round(p/100 * count), reported as the highest equivalent value of its count.
uint64_t HdrHistogram::percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  uint64_t target = uint64_t(p / 100.0 * double(count_) + 0.5);
  target = std::clamp<uint64_t>(target, 1, count_);
  if (target == count_) return max_;  // the top rank is the max, which is kept exact
  uint64_t seen = 0;
  for (size_t i = 0; i < kCountsLen; ++i) {
    seen += counts_[i];
    if (seen >= target) return std::clamp(highest_equivalent(value_at_index(i)), min_, max_);
  }
  return max_;
}

}  // namespace bench
