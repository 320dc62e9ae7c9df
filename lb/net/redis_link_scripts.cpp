// RedisLink's Lua scripts (redis_link.h): SCRIPT LOADed on every connect before any command,
// EVALSHA by index, and a NOSCRIPT reply (SCRIPT FLUSH, a failover) loads them again.
#include <hiredis/async.h>
#include <openssl/sha.h>

#include <string>

#include "lb/net/log.h"
#include "lb/net/redis_link.h"

namespace lb::net {

void RedisLink::set_scripts(std::vector<std::string> bodies) {
  scripts_ = std::move(bodies);
  shas_.clear();
  for (const auto& b : scripts_) {
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(b.data()), b.size(), md);
    static const char* hex = "0123456789abcdef";
    std::string h;
    for (unsigned char c : md) {
      h += hex[c >> 4];
      h += hex[c & 15];
    }
    shas_.push_back(std::move(h));
  }
}

void RedisLink::load_scripts() {
  if (loading_ != 0) return;  // a burst of NOSCRIPT replies reloads once
  for (const auto& b : scripts_) {
    const char* argv[3] = {"SCRIPT", "LOAD", b.data()};
    size_t len[3] = {6, 4, b.size()};
    if (redisAsyncCommandArgv(ctx_, &RedisLink::on_script_load, nullptr, 3, argv, len) == REDIS_OK)
      ++loading_;
  }
}

void RedisLink::on_script_load(redisAsyncContext* ac, void* r, void*) {
  auto* self = static_cast<RedisLink*>(ac->data);
  auto* reply = static_cast<redisReply*>(r);
  if (self == nullptr || self->ctx_ != ac) return;  // a context we already let go
  if (self->loading_ > 0) --self->loading_;         // NULL too: the context went away
  if (self->state_ == LinkState::connecting) self->handshake_reply(ac, reply);
  if (reply == nullptr || reply->type != REDIS_REPLY_ERROR) return;
  if (reply->len >= 6 && std::string_view(reply->str, 6) == "NOAUTH") return;  // not ours
  // A script Redis refuses is a bug of ours: say so once; its EVALSHAs get NOSCRIPT.
  if (!self->script_error_logged_) {
    self->script_error_logged_ = true;
    logf(LogLevel::error, "redis %s:%u: SCRIPT LOAD failed: %.*s", self->opts_.ip.c_str(),
         static_cast<unsigned>(self->opts_.port), static_cast<int>(reply->len), reply->str);
  }
}

Ticket RedisLink::evalsha(size_t index, const std::vector<std::string_view>& keys,
                          const std::vector<std::string_view>& args, ReplyFn done,
                          uint64_t timeout_ms) {
  if (index >= shas_.size()) return 0;
  std::string nkeys = std::to_string(keys.size());
  std::vector<std::string_view> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back("EVALSHA");
  argv.push_back(shas_[index]);
  argv.push_back(nkeys);
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return command(argv, std::move(done), timeout_ms);
}

}  // namespace lb::net
