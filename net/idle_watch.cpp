// The kernel's view of a socket's sending side (TCP_INFO), for the server's
// idle watch (net/ws_session.hpp). Apart from Asio: <linux/tcp.h> and the
// <netinet/tcp.h> Asio includes both define `struct tcp_info`, and only the
// kernel's has the byte counts.

#include "net/idle_watch.hpp"

#include <cstddef>

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace ferry::net {

std::optional<tcp_send_state> read_tcp_send_state(int fd) {
  tcp_info info{};
  socklen_t size = sizeof(info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &size) != 0
      || size < offsetof(tcp_info, tcpi_notsent_bytes) + sizeof(info.tcpi_notsent_bytes))
    return std::nullopt;
  return tcp_send_state{info.tcpi_bytes_acked,
                        info.tcpi_unacked > 0 || info.tcpi_notsent_bytes > 0};
}

} // namespace ferry::net
