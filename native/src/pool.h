// The cpu backend's thread pool: fork-join over a fixed list of tasks. Which thread runs which task never changes a
// result — the kernels split their work into tasks that write disjoint outputs, in the same way for any thread count —
// so it only changes the speed.
#pragma once
#include <cstddef>
#include <type_traits>

namespace ls {

using TaskFn = void (*)(void* ctx, size_t task);

/** Runs fn(ctx, 0..tasks-1) on the pool (the calling thread takes part) and returns when all are done. */
void parallel_for(size_t tasks, TaskFn fn, void* ctx);

/** Threads the pool uses, the caller's included (1 = no workers). */
void set_threads(int threads);
int threads();

template <typename F>
static inline void parallel(size_t tasks, F&& f) {
  if (tasks == 0) return;
  if (tasks == 1) {
    f((size_t)0);
    return;
  }
  parallel_for(
      tasks, [](void* c, size_t t) { (*static_cast<std::remove_reference_t<F>*>(c))(t); }, (void*)&f);
}

}  // namespace ls
