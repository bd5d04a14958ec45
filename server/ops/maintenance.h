// The maintenance thread: runs background tasks (WAL checkpoints, decision-log pruning,
// last-used writes, expired sessions) every N seconds, at a lower CPU priority than the
// request threads, so that the event loop preempts it.
// Thread-safety: Add() before Start(); Start() and Stop() from one thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace warden::server {

class Maintenance {
 public:
  ~Maintenance() { Stop(); }
  void Add(int every_seconds, std::function<void()> task);
  // `first` runs once on the thread before the tasks start (e.g. a policy watcher's start).
  void Start(std::function<void()> first = {});
  // Returns once the thread has finished its current task.
  void Stop();

 private:
  struct Task {
    int every_seconds;
    std::function<void()> run;
  };
  void Loop(std::function<void()> first);

  std::vector<Task> tasks_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace warden::server
