#pragma once

// How both ends of our WebSockets (net/ws_client.cpp, net/ws_session.hpp)
// notice a peer that went away without closing.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace ferry::net {

/// "60 s" for whole seconds, else "200 ms".
inline std::string duration_text(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0)
    return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

/// The owner's timer ticks every `tick_interval()` (half the idle timeout)
/// and hands over its count of the peer's signs of life (what counts is the
/// owner's choice: frames read, writes the peer took off the socket). After
/// one quiet tick the owner pings; a second quiet tick in a row means the
/// peer has timed out, so a vanished peer is noticed after one to one and a
/// half idle timeouts. This replaces Beast's idle timeout, which re-armed a
/// timer on every frame read (a cancelled wait and a new one: ~3% of a
/// catching-up node's CPU, perf) and counted nothing but what the peer sent.
class idle_watch {
public:
  enum class step { none, ping, time_out };

  explicit idle_watch(std::chrono::milliseconds timeout) : timeout_(timeout) {
    // nop
  }

  std::chrono::milliseconds timeout() const {
    return timeout_;
  }

  std::chrono::milliseconds tick_interval() const {
    return timeout_ / 2;
  }

  step tick(uint64_t signs_of_life) {
    if (signs_of_life != at_last_tick_) {
      at_last_tick_ = signs_of_life;
      quiet_ticks_ = 0;
      return step::none;
    }
    return ++quiet_ticks_ >= 2 ? step::time_out : step::ping;
  }

private:
  std::chrono::milliseconds timeout_;
  uint64_t at_last_tick_ = 0;
  int quiet_ticks_ = 0;
};

/// What the kernel says of a TCP socket's sending side.
struct tcp_send_state {
  /// Bytes the peer has acknowledged since the connection opened.
  uint64_t bytes_acked = 0;
  /// Bytes written and not yet acknowledged, or not yet sent.
  bool outstanding = false;
};

/// The state of socket `fd` (TCP_INFO); nullopt if the kernel will not say.
std::optional<tcp_send_state> read_tcp_send_state(int fd);

} // namespace ferry::net
