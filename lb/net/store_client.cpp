// Skeleton: the link is never up, so every caller takes the local path (queue_* drops
// nothing it could not have sent). Replaced by the real client (issue 15).
#include "lb/net/store_client.h"

#include "lb/core/quota_guard.h"
#include "lb/net/proxy_state.h"

namespace lb::net {

struct StoreClient::Impl {};

StoreClient::StoreClient(uv_loop_t*, ProxyState&) : impl_(std::make_unique<Impl>()) {}
StoreClient::~StoreClient() = default;
void StoreClient::configure(const Runtime&) {}
bool StoreClient::up() const { return false; }
bool StoreClient::claim(const SessionKey&, const StoredPin&, StoreWaiter*) { return false; }
bool StoreClient::cas(const SessionKey&, std::string_view, const StoredPin&, StoreWaiter*) {
  return false;
}
void StoreClient::cancel(StoreWaiter*) {}
void StoreClient::queue_claim(const SessionKey&, const StoredPin&) {}
void StoreClient::queue_cas(const SessionKey&, std::string_view, const StoredPin&) {}
void StoreClient::note_refresh(const RefreshItem&) {}
bool StoreClient::quota_take(const std::string&, QuotaGuard&) { return false; }
void StoreClient::quota_cool(const std::string&, int, uint64_t) {}

}  // namespace lb::net
