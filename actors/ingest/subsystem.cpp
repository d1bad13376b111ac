#include "actors/ingest/subsystem.hpp"

#include "actors/ingest/verifier.hpp"
#include "actors/ingest/writer.hpp"

#include <algorithm>
#include <thread>

namespace ferry {

size_t verifier_count(const config::ingest_config& ingest) {
  if (ingest.verifiers > 0)
    return ingest.verifiers;
  return std::max(1u, std::thread::hardware_concurrency());
}

child_spec ingest_subsystem(const node_wiring& wiring, restart_policy policy) {
  writer_config wcfg;
  wcfg.batch_max = wiring.cfg.ingest.writer_batch_max;
  wcfg.purge_interval = wiring.cfg.store.purge_interval;
  std::vector<child_spec> children;
  children.push_back(slotted(
    "writer", "writer", wiring.writer,
    [store = wiring.store, hub = wiring.relay->hub,
     wcfg](caf::local_actor* self) {
      return self->system().spawn<caf::detached>(writer, store, hub, wcfg);
    }));
  for (size_t i = 0; i < wiring.relay->verifiers.size(); ++i)
    children.push_back(slotted(
      "verifier-" + std::to_string(i + 1), "verifier",
      wiring.relay->verifiers[i],
      [store = wiring.store, writer_slot = wiring.writer](caf::local_actor* self) {
        return self->system().spawn<caf::detached>(verifier, store, writer_slot);
      }));
  return supervisor_spec("ingest", std::move(children), policy);
}

} // namespace ferry
