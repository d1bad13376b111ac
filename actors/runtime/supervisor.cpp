#include "actors/runtime/supervisor.hpp"

#include "actors/runtime/logging.hpp"
#include "messages/clock.hpp"
#include "messages/error.hpp"

#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/settings.hpp>

#include <algorithm>
#include <chrono>
#include <exception>
#include <set>
#include <utility>

namespace ferry {

namespace {

using self_pointer = supervisor_actor::stateful_pointer<supervisor_state>;

/// Whole seconds as "60s", anything finer as "1500ms".
std::string to_text(caf::timespan x) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(x).count();
  if (ms % 1000 == 0)
    return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

void start(self_pointer self, supervisor_state::child& c);

/// Marks `c` failed, stops the other children and fails the supervisor, so
/// that its parent applies its own policy.
void give_up(self_pointer self, supervisor_state::child& c) {
  auto& st = self->state;
  c.state = child_state::failed;
  auto n = st.policy.max_restarts;
  auto text = st.label + " gave up on " + c.spec.name + " after "
              + std::to_string(n) + (n == 1 ? " restart" : " restarts")
              + " in " + to_text(st.policy.window);
  log::error("{}: {}", text, c.last_error);
  st.stop_children();
  self->quit(caf::make_error(caf::sec::runtime_error, std::move(text)));
}

/// Counts a failure of `c` and schedules its restart after the backoff, or
/// gives up on it when it failed too often.
void on_failure(self_pointer self, supervisor_state::child& c,
                std::string reason) {
  auto& st = self->state;
  c.forget_incarnation();
  c.last_error = std::move(reason);
  c.last_error_at = unix_now();
  if (st.note_failure(c, self->clock().now())) {
    give_up(self, c);
    return;
  }
  auto delay = st.next_delay(c);
  c.state = child_state::restarting;
  log::warn("{} restarting {} in {}: {}", st.label, c.spec.name,
            to_text(delay), c.last_error);
  self->delayed_send(self, delay, atom::restart_v, c.spec.name, c.incarnation);
}

/// Starts a new incarnation of `c` now; a start function that throws or
/// returns no actor is a failure like any other.
void start(self_pointer self, supervisor_state::child& c) {
  ++c.incarnation;
  c.restart_requested = false;
  caf::actor handle;
  std::string problem = "start function returned no actor";
  try {
    handle = c.spec.start(self);
  } catch (const std::exception& e) {
    problem = e.what();
  } catch (...) {
    problem = "start function threw";
  }
  if (!handle) {
    on_failure(self, c, c.spec.name + " did not start: " + problem);
    return;
  }
  c.handle = std::move(handle);
  c.state = child_state::running;
  c.started_at = unix_now();
  self->monitor(c.handle);
  self->delayed_send(self, self->state.policy.stable_after, atom::stable_v,
                     c.spec.name, c.incarnation);
  if (c.spec.on_started)
    c.spec.on_started(c.handle);
}

/// Starts `c` again, counted as a restart.
void restart(self_pointer self, supervisor_state::child& c) {
  ++c.restarts;
  ++self->state.restarts;
  start(self, c);
}

/// Starts the children from `next` on, in spec order. A child supervisor
/// starts its own children on another worker, later; the next sibling waits
/// until it answers, which it does only once all of them have started (or it
/// failed). Invariant: a child starts only after every child before it, and
/// its whole subtree, has; so a door that opens last (the admin port) opens on
/// a node whose actors are all in their slots.
void start_in_order(self_pointer self, size_t next) {
  auto& children = self->state.children;
  for (; next < children.size(); ++next) {
    auto& c = children[next];
    start(self, c);
    if (c.state == child_state::failed)
      return; // gave up at once: the supervisor is already quitting
    if (c.state != child_state::running || c.spec.kind != "supervisor")
      continue;
    // Awaited: nothing else is handled meanwhile, so our own parent, asking
    // us anything, waits for this subtree too. A child that dies on the way
    // answers with an error; its down_msg schedules its restart as usual.
    auto resume = [self, next] { start_in_order(self, next + 1); };
    self
      ->request(caf::actor_cast<supervisor_actor>(c.handle), caf::infinite,
                atom::get_v, atom::status_v)
      .await([resume](const status_map&) { resume(); },
             [resume](const caf::error&) { resume(); });
    return;
  }
}

caf::error unknown_child(const std::string& name) {
  return caf::make_error(ec::invalid_input, "no actor named " + name);
}

} // namespace

child_spec supervisor_spec(std::string name, std::vector<child_spec> children,
                           restart_policy policy) {
  child_spec spec;
  spec.name = name;
  spec.kind = "supervisor";
  spec.start = [name, children = std::move(children),
                policy](caf::local_actor* self) {
    return caf::actor_cast<caf::actor>(
      self->spawn(supervisor, name, children, policy));
  };
  return spec;
}

caf::error validate(const restart_policy& policy) {
  auto invalid = [](std::string what) {
    return caf::make_error(ec::invalid_configuration, std::move(what));
  };
  if (policy.base <= caf::timespan::zero())
    return invalid("restart base delay must be positive");
  if (policy.cap < policy.base)
    return invalid("restart delay cap must not be below the base delay");
  if (!(policy.jitter >= 0.0 && policy.jitter < 1.0))
    return invalid("restart jitter must be in [0, 1)");
  if (policy.stable_after <= caf::timespan::zero())
    return invalid("restart stable-after must be positive");
  if (policy.window <= caf::timespan::zero())
    return invalid("restart window must be positive");
  return caf::none;
}

supervisor_state::~supervisor_state() {
  stop_children();
}

supervisor_state::child* supervisor_state::find(const std::string& name) {
  auto i = std::find_if(children.begin(), children.end(),
                        [&](const child& c) { return c.spec.name == name; });
  return i != children.end() ? &*i : nullptr;
}

supervisor_state::child* supervisor_state::find(const caf::actor_addr& addr) {
  auto i = std::find_if(children.begin(), children.end(), [&](const child& c) {
    return c.handle && c.handle.address() == addr;
  });
  return i != children.end() ? &*i : nullptr;
}

caf::timespan supervisor_state::next_delay(child& c) {
  auto delay = c.backoff;
  if (policy.jitter > 0.0) {
    std::uniform_real_distribution<double> factor{1.0 - policy.jitter,
                                                  1.0 + policy.jitter};
    delay = std::chrono::duration_cast<caf::timespan>(delay * factor(rng));
  }
  c.backoff = std::min(c.backoff * 2, policy.cap);
  return delay;
}

bool supervisor_state::note_failure(child& c,
                                    caf::actor_clock::time_point now) {
  while (!c.failures.empty() && now - c.failures.front() >= policy.window)
    c.failures.pop_front();
  c.failures.push_back(now);
  return c.failures.size() > policy.max_restarts;
}

void supervisor_state::child::forget_incarnation() {
  if (!handle)
    return;
  handle = nullptr;
  if (spec.on_stopped)
    spec.on_stopped();
}

void supervisor_state::stop_children() {
  for (auto& c : children) {
    if (!c.handle)
      continue;
    caf::anon_send_exit(c.handle, caf::exit_reason::user_shutdown);
    c.forget_incarnation();
    c.state = child_state::stopped;
  }
}

std::vector<child_info> supervisor_state::snapshot() const {
  std::vector<child_info> result;
  result.reserve(children.size());
  for (const auto& c : children) {
    child_info x;
    x.name = c.spec.name;
    x.kind = c.spec.kind;
    x.parent = label;
    x.state = c.state;
    x.restarts = c.restarts;
    x.last_error = c.last_error;
    x.last_error_at = c.last_error_at;
    x.started_at = c.started_at;
    if (c.state == child_state::running)
      x.handle = c.handle;
    result.push_back(std::move(x));
  }
  return result;
}

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           std::string name, std::vector<child_spec> children,
           restart_policy policy) {
  auto& st = self->state;
  if (auto err = validate(policy)) {
    self->quit(std::move(err));
    return supervisor_actor::behavior_type::make_empty_behavior();
  }
  std::set<std::string> names;
  for (const auto& spec : children) {
    if (!names.insert(spec.name).second) {
      self->quit(caf::make_error(ec::invalid_configuration,
                                 name + " has two children named "
                                   + spec.name));
      return supervisor_actor::behavior_type::make_empty_behavior();
    }
  }
  st.label = std::move(name);
  st.policy = policy;
  st.children.reserve(children.size());
  for (auto& spec : children) {
    supervisor_state::child c;
    c.spec = std::move(spec);
    c.backoff = policy.base;
    st.children.push_back(std::move(c));
  }
  // Children are monitored, not linked, so a crash reaches us as a down_msg
  // and never takes the supervisor with it.
  self->set_down_handler([self](caf::down_msg& msg) {
    auto c = self->state.find(msg.source);
    if (c == nullptr)
      return; // an incarnation we already stopped or replaced
    c->forget_incarnation();
    if (c->restart_requested) {
      restart(self, *c);
      return;
    }
    if (!msg.reason || msg.reason == caf::exit_reason::user_shutdown) {
      c->state = child_state::stopped;
      return;
    }
    on_failure(self, *c, render(msg.reason));
  });
  // Trapping exits lets the supervisor stop its children before it goes:
  // monitored children would otherwise outlive it, and its parent may soon
  // start a fresh set.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    // A child that a start function linked to us: its down_msg follows.
    if (self->state.find(msg.source) != nullptr)
      return;
    self->state.stop_children();
    self->quit(std::move(msg.reason));
  });
  start_in_order(self, 0);
  return {
    [self](atom::get, atom::children) -> std::vector<child_info> {
      return self->state.snapshot();
    },
    [self](atom::restart, const std::string& name) -> caf::result<bool> {
      auto c = self->state.find(name);
      if (c == nullptr)
        return unknown_child(name);
      if (c->handle) {
        // user_shutdown lets the child clean up; the flag tells the down
        // handler that this stop is the first half of a restart.
        c->restart_requested = true;
        self->send_exit(c->handle, caf::exit_reason::user_shutdown);
      } else {
        restart(self, *c);
      }
      return true;
    },
    [self](atom::stop, const std::string& name) -> caf::result<bool> {
      auto c = self->state.find(name);
      if (c == nullptr)
        return unknown_child(name);
      if (c->state == child_state::stopped)
        return false;
      if (c->handle) {
        self->demonitor(c->handle);
        self->send_exit(c->handle, caf::exit_reason::user_shutdown);
        c->forget_incarnation();
      }
      c->state = child_state::stopped;
      return true;
    },
    [self](atom::start, const std::string& name) -> caf::result<bool> {
      auto c = self->state.find(name);
      if (c == nullptr)
        return unknown_child(name);
      if (c->state == child_state::running)
        return false;
      // An operator start is a fresh start: old failures no longer count.
      c->failures.clear();
      c->backoff = self->state.policy.base;
      start(self, *c);
      return true;
    },
    [self](atom::fault, const std::string& name) -> caf::result<bool> {
      auto c = self->state.find(name);
      if (c == nullptr)
        return unknown_child(name);
      if (!c->handle)
        return false;
      self->send_exit(c->handle, caf::make_error(ec::injected_fault,
                                                 "fault injected by operator"));
      return true;
    },
    [self](atom::get, atom::status) -> status_map {
      auto& st = self->state;
      auto running = std::count_if(
        st.children.begin(), st.children.end(),
        [](const auto& c) { return c.state == child_state::running; });
      status_map result;
      caf::put(result, "children", static_cast<int64_t>(st.children.size()));
      caf::put(result, "running", static_cast<int64_t>(running));
      caf::put(result, "restarts", static_cast<int64_t>(st.restarts));
      caf::put(result, "mailbox",
               static_cast<int64_t>(self->mailbox().size()));
      return result;
    },
    [self](atom::restart, const std::string& name, uint64_t incarnation) {
      auto c = self->state.find(name);
      if (c != nullptr && c->state == child_state::restarting
          && c->incarnation == incarnation)
        restart(self, *c);
    },
    [self](atom::stable, const std::string& name, uint64_t incarnation) {
      auto c = self->state.find(name);
      if (c != nullptr && c->state == child_state::running
          && c->incarnation == incarnation)
        c->backoff = self->state.policy.base;
    },
  };
}

} // namespace ferry
