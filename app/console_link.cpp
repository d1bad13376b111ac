#include "app/console_link.hpp"

#include "messages/error.hpp"

#include <caf/actor_system.hpp>
#include <caf/io/middleman.hpp>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

namespace ferry::console {

namespace {

/// Why a connection attempt failed, short enough for the parentheses of
/// "cannot reach a node at ... (...)".
std::string describe_connect_failure(const caf::error& err,
                                     const endpoint& where) {
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
      case caf::sec::request_timeout:
        return "no answer within " + std::to_string(request_timeout.count())
               + " s";
      case caf::sec::no_actor_published_at_port:
        return "nothing is published on that port";
      case caf::sec::unexpected_actor_messaging_interface:
        return "it is not a console gate of this ferry version";
      case caf::sec::cannot_connect_to_node:
        if (auto cause = tcp_failure(where); !cause.empty())
          return cause;
        return "it accepts connections but does not answer like a node";
      default:
        break;
    }
  }
  return describe(err);
}

} // namespace

std::string tcp_failure(const endpoint& where) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto port = std::to_string(where.port);
  if (::getaddrinfo(where.host.c_str(), port.c_str(), &hints, &found) != 0)
    return "unknown host";
  std::string cause = "cannot connect";
  for (auto* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK,
                      ai->ai_protocol);
    if (fd < 0)
      continue;
    int error = 0;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        pollfd pfd{fd, POLLOUT, 0};
        auto ms = std::chrono::milliseconds{request_timeout}.count();
        if (::poll(&pfd, 1, static_cast<int>(ms)) == 1) {
          socklen_t len = sizeof(error);
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
        } else {
          error = ETIMEDOUT;
        }
      }
    }
    ::close(fd);
    if (error == 0) {
      cause.clear();
      break;
    }
    cause = std::strerror(error);
    cause[0] = static_cast<char>(std::tolower(cause[0]));
  }
  ::freeaddrinfo(found);
  return cause;
}

std::optional<endpoint> parse_endpoint(const std::string& text) {
  endpoint result;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos)
      return std::nullopt;
    result.host = text.substr(1, close - 1);
    if (close + 1 < text.size()) {
      if (text[close + 1] != ':')
        return std::nullopt;
      port = text.substr(close + 2);
    }
  } else if (auto colon = text.rfind(':'); colon != std::string::npos) {
    result.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (port.empty())
      return std::nullopt;
  } else {
    result.host = text;
  }
  if (result.host.empty())
    return std::nullopt;
  if (!port.empty()) {
    char* end = nullptr;
    errno = 0;
    auto n = std::strtol(port.c_str(), &end, 10);
    if (errno != 0 || *end != '\0' || n < 1 || n > 65535)
      return std::nullopt;
    result.port = static_cast<uint16_t>(n);
  }
  return result;
}

std::string describe(const caf::error& err) {
  if (err.category() == caf::atom("system")) {
    switch (static_cast<caf::sec>(err.code())) {
      case caf::sec::request_timeout:
        return "the node did not answer in time";
      case caf::sec::request_receiver_down:
        return "lost the connection to the node";
      default:
        break;
    }
  }
  return render(err);
}

answer<inspector_actor> login(caf::scoped_actor& self, const endpoint& where,
                              const std::string& secret) {
  auto& sys = self->system();
  // The middleman's own remote_actor() waits forever for a peer that accepts
  // but never speaks CAF; asking the middleman directly bounds the wait.
  caf::error failure;
  caf::strong_actor_ptr gate_ptr;
  self
    ->request(sys.middleman().actor_handle(), request_timeout,
              caf::connect_atom_v, where.host, where.port)
    .receive(
      [&](caf::node_id&, caf::strong_actor_ptr& ptr,
          std::set<std::string>& interface) {
        if (!ptr)
          failure = caf::make_error(caf::sec::no_actor_published_at_port);
        else if (!sys.assignable<console_gate_actor>(interface))
          failure
            = caf::make_error(caf::sec::unexpected_actor_messaging_interface);
        else
          gate_ptr = std::move(ptr);
      },
      [&](caf::error& err) { failure = std::move(err); });
  answer<inspector_actor> result;
  if (failure) {
    result.problem = "cannot reach a node at " + where.text() + " ("
                     + describe_connect_failure(failure, where) + ")";
    result.unreachable = true;
    return result;
  }
  auto gate = caf::actor_cast<console_gate_actor>(std::move(gate_ptr));
  self->request(gate, request_timeout, atom::login_v, secret)
    .receive(
      [&](inspector_actor& inspector) { result.value = std::move(inspector); },
      [&](caf::error& err) {
        result.problem = "the node at " + where.text()
                         + " refused the login: " + describe(err);
        if (secret.empty())
          result.problem += " (give --secret or set FERRY_CONSOLE_SECRET)";
      });
  return result;
}

} // namespace ferry::console
