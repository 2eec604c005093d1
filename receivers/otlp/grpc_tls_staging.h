// GrpcTlsStaging: the certificate files the gRPC receiver's TLS watches when reload_interval is set.
//
// gRPC 1.51's file watcher loads whatever pair it finds on disk, a key that does not match its
// certificate included (a rotation written in two steps), and then fails every handshake until
// the next interval. So gRPC watches a private copy instead, which otlpd publishes only once
// TlsServerContext has checked the pair: each generation in a directory of its own, switched by
// renaming a symlink, its files with a modification time of their own so that gRPC's re-check
// after reading notices a switch in the middle of its read.
//
// Threads: create() and the destructor on the control thread; a thread of its own checks the
// user's files every reload_interval.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "net/tls_server_context.h"
#include "pipeline/status.h"

namespace otlpd {

class GrpcTlsStaging {
 public:
  // Publishes the current pair of `settings` (files already checked by the caller: an error here
  // is about the private directory) and starts watching.
  static std::unique_ptr<GrpcTlsStaging> create(const TlsServerSettings& settings, Status* error);
  ~GrpcTlsStaging();

  std::string cert_file() const { return (dir_ / "current" / "cert.pem").string(); }
  std::string key_file() const { return (dir_ / "current" / "key.pem").string(); }
  // Empty without client_ca_file.
  std::string client_ca_file() const;

 private:
  GrpcTlsStaging(std::shared_ptr<TlsServerContext> tls, std::filesystem::path dir, bool client_ca)
      : tls_(std::move(tls)), dir_(std::move(dir)), client_ca_(client_ca) {}
  Status publish(const TlsServerFiles& files, uint64_t generation);
  void watch(std::chrono::milliseconds interval);

  const std::shared_ptr<TlsServerContext> tls_;
  const std::filesystem::path dir_;
  const bool client_ca_;
  const int64_t first_mtime_ = static_cast<int64_t>(time(nullptr));
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace otlpd
