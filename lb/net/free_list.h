#pragma once
// A worker's free list of heavy per-exchange objects (parsers with their header views,
// head strings): taken when an exchange starts and given back when it ends, so an idle
// connection holds none and steady traffic allocates nothing. Single-threaded.
#include <cstddef>
#include <memory>
#include <vector>

namespace lb::net {

template <class T>
class FreeList {
 public:
  explicit FreeList(size_t keep = 1024) : keep_(keep) {}
  template <class... Args>
  T* take(Args&&... make_args) {
    if (free_.empty()) return new T(std::forward<Args>(make_args)...);
    T* t = free_.back().release();
    free_.pop_back();
    return t;
  }
  void give(T* t) {
    if (!t) return;
    if (free_.size() >= keep_) {
      delete t;
      return;
    }
    free_.emplace_back(t);
  }
  size_t size() const { return free_.size(); }

 private:
  size_t keep_;
  std::vector<std::unique_ptr<T>> free_;
};

}  // namespace lb::net
