#include "actors/runtime/logging.hpp"
#include "actors/runtime/node.hpp"
#include "app/commands.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>
#include <pthread.h>
#include <string>
#include <sys/resource.h>
#include <unistd.h>

namespace ferry::app {

namespace {

/// Raises the soft open-file limit to fit `max_connections` clients beside
/// the store's tables and the node's other sockets: past the limit, accept()
/// fails, and so would RocksDB opening its next table.
void fit_open_file_limit(size_t max_connections) {
  constexpr rlim_t others = 1024;
  const rlim_t wanted = static_cast<rlim_t>(max_connections) + others;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted)
    return;
  rlimit raised = limit;
  raised.rlim_cur = std::min(wanted, limit.rlim_max);
  if (::setrlimit(RLIMIT_NOFILE, &raised) == 0)
    limit = raised;
  if (limit.rlim_cur < wanted)
    log::warn("node may open {} files, fewer than relay.limits.max_connections "
              "({}) and {} for the store and its other sockets: raise the "
              "limit (LimitNOFILE= in a systemd unit, ulimit -n) or lower "
              "relay.limits.max_connections",
              limit.rlim_cur, max_connections, others);
}

} // namespace

std::optional<config::config> load_config(const std::string& path) {
  if (path.empty())
    return config::config{};
  auto cfg = config::load_file(path);
  if (!cfg) {
    std::fprintf(stderr, "ferry: %s\n", render(cfg.error()).c_str());
    return std::nullopt;
  }
  return std::move(*cfg);
}

int run_node(const config::config& cfg) {
  log::init(cfg.log.level);
  fit_open_file_limit(cfg.relay.limits.max_connections);
  // Block the signals before any thread exists, then wait for them here:
  // SIGINT and SIGTERM stop the node, SIGHUP reloads its config.
  sigset_t handled_signals;
  sigemptyset(&handled_signals);
  sigaddset(&handled_signals, SIGINT);
  sigaddset(&handled_signals, SIGTERM);
  sigaddset(&handled_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &handled_signals, nullptr);
  caf::actor_system_config sys_cfg;
  add_message_types(sys_cfg);
  tune_scheduler(sys_cfg);
  sys_cfg.load<caf::io::middleman>();
  if (cfg.cluster.enabled && cfg.cluster.tls.enabled()) {
    // Mutual TLS on the cluster port: CAF's OpenSSL module presents this
    // certificate and accepts only peers whose certificate cafile signed.
    sys_cfg.openssl_certificate = cfg.cluster.tls.certfile;
    sys_cfg.openssl_key = cfg.cluster.tls.keyfile;
    sys_cfg.openssl_cafile = cfg.cluster.tls.cafile;
    sys_cfg.load<caf::openssl::manager>();
  }
  sys_cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{sys_cfg};
  auto n = node::start(sys, cfg);
  if (!n) {
    log::error("node failed to start: {}", render(n.error()));
    return 1;
  }
  log::info("node running with config {}",
            cfg.source.empty() ? "<embedded default>" : cfg.source);
  // A root that gave up (a subsystem kept failing) leaves nothing running:
  // the process ends non-zero so that its service manager sees it.
  auto root_failure = std::make_shared<std::string>();
  auto root_down = std::make_shared<std::atomic<bool>>(false);
  caf::actor_cast<caf::actor>((*n)->root())
    ->attach_functor([root_failure, root_down](const caf::error& reason) {
      if (!reason || reason == caf::exit_reason::user_shutdown)
        return;
      *root_failure = render(reason);
      root_down->store(true);
      ::kill(::getpid(), SIGTERM);
    });
  int sig = 0;
  for (sigwait(&handled_signals, &sig); sig == SIGHUP;
       sigwait(&handled_signals, &sig)) {
    log::info("node reloads its config on SIGHUP");
    (*n)->reload_config();
  }
  if (root_down->load()) {
    log::error("node stopping: the root supervisor gave up: {}",
               *root_failure);
    n->reset();
    return 1;
  }
  log::info("node stopping on signal {}", sig);
  n->reset();
  return 0;
}

} // namespace ferry::app
