// Fork-join pool: every job is acknowledged by every worker before parallel_for returns, so no worker can still be
// looking at a job when the next one is published. Workers spin briefly after a job (the kernels of a step come in
// quick succession), then sleep on a condition variable.
#include "pool.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define LS_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define LS_PAUSE() __asm__ __volatile__("yield")
#else
#define LS_PAUSE() ((void)0)
#endif

namespace ls {
namespace {

/** Set while a thread runs a task: a kernel called from inside a task runs on that thread. */
thread_local bool in_task = false;

class Pool {
 public:
  ~Pool() { stop_workers(); }

  void set_threads(int n) {
    if (n < 1) n = 1;
    std::lock_guard<std::mutex> g(submit_);
    if (n == threads_) return;
    stop_workers();
    threads_ = n;
    stop_ = false;
    // The generation is read here, not in the new thread: a job published before a worker first runs must still count
    // as new to it, or the caller would wait forever for that worker's acknowledgement. (No job can be published
    // meanwhile: run() takes submit_, which this holds.)
    const uint64_t start = gen_.load(std::memory_order_acquire);
    for (int i = 0; i < n - 1; i++) workers_.emplace_back([this, start] { loop(start); });
  }

  int threads() const { return threads_; }

  void run(size_t tasks, TaskFn fn, void* ctx) {
    if (in_task) {
      for (size_t t = 0; t < tasks; t++) fn(ctx, t);
      return;
    }
    // One job at a time: a second JavaScript thread (another engine worker) runs its job on its own thread.
    std::unique_lock<std::mutex> g(submit_, std::try_to_lock);
    if (!g.owns_lock() || workers_.empty()) {
      in_task = true;
      for (size_t t = 0; t < tasks; t++) fn(ctx, t);
      in_task = false;
      return;
    }
    {
      std::lock_guard<std::mutex> l(m_);
      fn_ = fn;
      ctx_ = ctx;
      tasks_ = tasks;
      next_.store(0, std::memory_order_relaxed);
      acks_.store(0, std::memory_order_relaxed);
      gen_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    in_task = true;
    work(fn, ctx, tasks);
    in_task = false;
    const int want = (int)workers_.size();
    while (acks_.load(std::memory_order_acquire) != want) LS_PAUSE();
  }

 private:
  void work(TaskFn fn, void* ctx, size_t tasks) {
    for (;;) {
      const size_t t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= tasks) return;
      fn(ctx, t);
    }
  }

  void loop(uint64_t seen) {
    for (;;) {
      // Spin about 0.2 ms for the next job, then sleep.
      uint64_t g = gen_.load(std::memory_order_acquire);
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
      for (int i = 0; g == seen && !stop_.load(std::memory_order_relaxed); i++) {
        LS_PAUSE();
        g = gen_.load(std::memory_order_acquire);
        if ((i & 255) == 255 && std::chrono::steady_clock::now() > until) break;
      }
      if (g == seen) {
        std::unique_lock<std::mutex> l(m_);
        cv_.wait(l, [&] { return stop_.load() || gen_.load(std::memory_order_acquire) != seen; });
        g = gen_.load(std::memory_order_acquire);
      }
      if (stop_.load()) return;
      seen = g;
      TaskFn fn;
      void* ctx;
      size_t tasks;
      {
        std::lock_guard<std::mutex> l(m_);
        fn = fn_;
        ctx = ctx_;
        tasks = tasks_;
      }
      in_task = true;
      work(fn, ctx, tasks);
      in_task = false;
      acks_.fetch_add(1, std::memory_order_release);
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
    threads_ = 1;
  }

  std::mutex submit_;
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<size_t> next_{0};
  std::atomic<int> acks_{0};
  std::atomic<bool> stop_{false};
  TaskFn fn_ = nullptr;
  void* ctx_ = nullptr;
  size_t tasks_ = 0;
  int threads_ = 1;
};

Pool& pool() {
  // Never destroyed: worker threads must not be joined from a static destructor while Node tears the process down.
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

void parallel_for(size_t tasks, TaskFn fn, void* ctx) { pool().run(tasks, fn, ctx); }
void set_threads(int n) { pool().set_threads(n); }
int threads() { return pool().threads(); }

}  // namespace ls
