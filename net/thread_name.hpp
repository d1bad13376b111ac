#pragma once

// Names for the node's busiest threads, so `top -H`, perf and the benches'
// per-thread CPU tell the writer, the verifiers, the query workers and the
// socket threads apart (CAF calls every detached actor's thread "caf.actor").

namespace ferry::net {

/// Names the calling thread. Linux keeps 15 bytes of it.
void name_this_thread(const char* name);

} // namespace ferry::net
