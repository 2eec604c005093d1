#include "daemon/io_pool.h"

#include <pthread.h>

#include <string>

#include "pipeline/io_thread.h"

namespace otlpd {

IoPool::IoPool(size_t threads)
    : io_(static_cast<int>(threads)),
      guard_(std::make_unique<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>(
          io_.get_executor())) {
  running_ = threads;
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i] {
      std::string name = "otlpd-io-" + std::to_string(i);  // at most 15 characters
      pthread_setname_np(pthread_self(), name.c_str());
      mark_io_thread();
      io_.run();
      std::lock_guard lock(mu_);
      --running_;
      exited_cv_.notify_all();
    });
  }
}

IoPool::~IoPool() { stop(); }

void IoPool::stop(std::chrono::milliseconds grace) {
  guard_.reset();
  {
    std::unique_lock lock(mu_);
    if (!exited_cv_.wait_for(lock, grace, [&] { return running_ == 0; })) io_.stop();
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace otlpd
