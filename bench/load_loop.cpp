#include "bench/load_loop.h"

#include <algorithm>
#include <mutex>

namespace bench {

KeyedTarget keyed_target(const LoadSpec& spec) {
  KeyedTarget t;
  t.path = spec.path;
  t.headers = spec.headers;
  t.marker.assign(spec.key == KeyKind::address ? kAddressWidth : kUserKeyWidth, '\x01');
  if (spec.key == KeyKind::path) {
    t.path = "/s/" + t.marker + t.path;
  } else if (spec.key == KeyKind::address) {
    // The last path segment (before any query) becomes the address.
    const size_t q = t.path.find('?');
    const std::string query = q == std::string::npos ? "" : t.path.substr(q);
    const std::string p = t.path.substr(0, q);
    t.path = p.substr(0, p.rfind('/') + 1) + t.marker + query;
  } else if (spec.key == KeyKind::header) {
    t.headers.push_back(spec.key_name + ": " + t.marker);
  } else if (spec.key == KeyKind::cookie) {
    t.headers.push_back("Cookie: " + spec.key_name + "=" + t.marker);
  }
  return t;
}

void patch_key(const LoadSpec& spec, char* at, uint32_t user, uint64_t seq) {
  if (spec.key == KeyKind::address)
    format_base_address(user, seq, at);
  else
    format_user_key(user, at);
}

void LoadLoop::init_run() {
  uv_loop_init(&loop_);
  const double window = double(spec_.end_ns - spec_.measure_start_ns) / 1e9;
  out_.per_second.assign(size_t(window) + 2, 0);
  out_.per_second_class.assign(size_t(window) + 2, {});
  out_.user_backends.assign(spec_.users, 0);
  if (open_loop()) interval_ns_ = uint64_t(double(spec_.connections) / spec_.rate * 1e9);
}

void LoadLoop::run_loop() {
  uv_timer_init(&loop_, &end_timer_);
  end_timer_.data = this;
  const uint64_t now = uv_hrtime();
  uv_timer_start(
      &end_timer_,
      [](uv_timer_t* t) {
        auto* w = static_cast<LoadLoop*>(t->data);
        if (uv_hrtime() < w->spec_.end_ns) {  // ms timers may fire a little early
          uv_timer_start(t, t->timer_cb, 1, 0);
          return;
        }
        w->finish_run();
      },
      spec_.end_ns > now ? (spec_.end_ns - now) / 1'000'000 : 0, 0);

  uv_timer_init(&loop_, &sweep_timer_);
  sweep_timer_.data = this;
  const uint64_t period = std::clamp<uint64_t>(spec_.timeout_ns / 10'000'000, 1, 100);
  uv_timer_start(
      &sweep_timer_, [](uv_timer_t* t) { static_cast<LoadLoop*>(t->data)->sweep(); }, period,
      period);
  uv_timer_init(&loop_, &live_timer_);
  live_timer_.data = this;
  if (spec_.live)
    uv_timer_start(
        &live_timer_, [](uv_timer_t* t) { static_cast<LoadLoop*>(t->data)->publish(); }, 1000,
        1000);

  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void LoadLoop::close_timers() {
  uv_close(as_handle(&end_timer_), nullptr);
  uv_close(as_handle(&sweep_timer_), nullptr);
  uv_close(as_handle(&live_timer_), nullptr);
}

void LoadLoop::count_error(ErrorKind k) {
  ++out_.errors[k];
  if (const uint64_t now = uv_hrtime(); in_window(now)) {
    const size_t sec = size_t((now - spec_.measure_start_ns) / 1'000'000'000ULL);
    if (sec < out_.per_second_class.size()) ++out_.per_second_class[sec][class_error];
  }
  live_.errors.fetch_add(1, std::memory_order_relaxed);
}

int LoadLoop::intern_backend(std::string_view v) {
  for (size_t i = 0; i < out_.backends.size(); ++i)
    if (out_.backends[i] == v) return int(i);
  if (out_.backends.size() >= kMaxBackends) return -1;
  out_.backends.emplace_back(v);  // once per distinct backend, not per request
  return int(out_.backends.size() - 1);
}

bool LoadLoop::record_answer(uint64_t due, uint64_t sent, uint64_t now, int status) {
  // wrk2: an open-loop latency runs from when the message was due, not from when the
  // connection got round to sending it (a message sent up to 1 ms early counts from its send).
  const uint64_t start = std::min(due, sent);
  if (!in_window(start) || now >= spec_.end_ns) return false;
  out_.latency.record((now - start) / 1000);
  out_.uncorrected.record((now - sent) / 1000);
  ++out_.requests;
  live_.requests.fetch_add(1, std::memory_order_relaxed);
  const size_t sec = size_t((now - spec_.measure_start_ns) / 1'000'000'000ULL);
  if (sec < out_.per_second.size()) ++out_.per_second[sec];
  if (sec < out_.per_second_class.size()) ++out_.per_second_class[sec][answer_class(status)];
  return true;
}

void LoadLoop::record_unfinished(uint64_t due) {
  if (!in_window(due)) return;
  out_.latency.record((spec_.end_ns - due) / 1000);
  ++out_.unfinished;
}

void LoadLoop::record_unsent(uint64_t sched_base, uint64_t next_index) {
  for (uint64_t i = next_index;; ++i) {
    const uint64_t due = due_of(sched_base, i);
    if (due >= spec_.end_ns) break;
    record_unfinished(due);
  }
}

void LoadLoop::publish() {
  std::lock_guard<std::mutex> lock(live_.mu);
  live_.snapshot = out_.latency;
}

}  // namespace bench
