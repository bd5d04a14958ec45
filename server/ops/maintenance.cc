#include "server/ops/maintenance.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

namespace warden::server {

void Maintenance::Add(int every_seconds, std::function<void()> task) {
  tasks_.push_back(Task{every_seconds < 1 ? 1 : every_seconds, std::move(task)});
}

void Maintenance::Start(std::function<void()> first) {
  thread_ = std::thread([this, first = std::move(first)] { Loop(first); });
}

void Maintenance::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Maintenance::Loop(std::function<void()> first) {
  pthread_setname_np(pthread_self(), "warden-maint");
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
  if (first) first();
  int64_t tick = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) {
    lock.unlock();
    ++tick;
    for (const Task& task : tasks_) {
      if (tick % task.every_seconds == 0) task.run();
    }
    lock.lock();
  }
}

}  // namespace warden::server
