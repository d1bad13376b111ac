#include "net/thread_name.hpp"

#include <pthread.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace ferry::net {

void name_this_thread(const char* name) {
  // pthread_setname_np refuses a name longer than the kernel keeps.
  std::string kept{name, std::min<size_t>(std::strlen(name), 15)};
  ::pthread_setname_np(::pthread_self(), kept.c_str());
}

} // namespace ferry::net
