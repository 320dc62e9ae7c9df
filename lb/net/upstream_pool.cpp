#include "lb/net/upstream_pool.h"

#include <algorithm>

#include "lb/net/upstream_conn.h"

namespace lb::net {

UpstreamConn* UpstreamPool::take(BackendRef ref) {
  if (ref >= idle_.size() || idle_[ref].empty()) return nullptr;
  UpstreamConn* c = idle_[ref].back();
  idle_[ref].pop_back();
  c->in_pool_ = false;
  return c;
}

bool UpstreamPool::put(UpstreamConn* conn) {
  BackendRef ref = conn->ref();
  if (ref >= idle_.size()) idle_.resize(ref + 1);
  if (idle_[ref].size() >= kMaxIdlePerBackend) return false;
  idle_[ref].push_back(conn);
  return true;
}

void UpstreamPool::remove(UpstreamConn* conn) {
  BackendRef ref = conn->ref();
  if (ref >= idle_.size()) return;
  auto& v = idle_[ref];
  v.erase(std::remove(v.begin(), v.end(), conn), v.end());
}

void UpstreamPool::close_all() {
  for (auto& v : idle_) {
    std::vector<UpstreamConn*> conns;
    conns.swap(v);
    for (UpstreamConn* c : conns) {
      c->in_pool_ = false;
      c->abort();
    }
  }
}

size_t UpstreamPool::idle_count() const {
  size_t n = 0;
  for (const auto& v : idle_) n += v.size();
  return n;
}

}  // namespace lb::net
