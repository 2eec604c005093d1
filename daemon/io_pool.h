// IoPool: the io_context and the threads that run it (service.runtime.worker_threads).
//
// Threads are named otlpd-io-0, otlpd-io-1, ... A work guard keeps them running while idle.
// stop() releases the guard and joins: queued work runs to completion first, so it is called
// only after every component has shut down. Work still pending after `grace` (a timer someone
// forgot to cancel) is abandoned with io_context::stop() so the process can exit.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace otlpd {

class IoPool {
 public:
  explicit IoPool(size_t threads);
  ~IoPool();

  boost::asio::io_context& io() { return io_; }
  size_t size() const { return threads_.size(); }
  // Releases the work guard and joins the threads. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

 private:
  boost::asio::io_context io_;
  std::unique_ptr<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable exited_cv_;
  size_t running_ = 0;  // guarded by mu_
};

}  // namespace otlpd
