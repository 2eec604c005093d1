#include "receivers/otlp/grpc_tls_staging.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <spdlog/spdlog.h>

namespace otlpd {

namespace fs = std::filesystem;

namespace {

// Writes `text` to `path` (owner-only: it may be a private key) with the modification time `mtime`.
bool write_private(const fs::path& path, const std::string& text, int64_t mtime) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const struct timespec times[2] = {{mtime, 0}, {mtime, 0}};
  ok = ::futimens(fd, times) == 0 && ok;
  return ::close(fd) == 0 && ok;
}

std::string generation_name(uint64_t generation) { return "gen-" + std::to_string(generation); }

}  // namespace

std::unique_ptr<GrpcTlsStaging> GrpcTlsStaging::create(const TlsServerSettings& settings, Status* error) {
  std::shared_ptr<TlsServerContext> tls = TlsServerContext::open(settings, error);
  if (!tls) return nullptr;
  std::string pattern = (fs::temp_directory_path() / "otlpd-grpc-tls-XXXXXX").string();
  if (!mkdtemp(pattern.data())) {
    *error = Status::internal("cannot create a directory for the gRPC TLS files in " + fs::temp_directory_path().string());
    return nullptr;
  }
  std::unique_ptr<GrpcTlsStaging> staging(
      new GrpcTlsStaging(std::move(tls), pattern, !settings.client_ca_file.empty()));
  uint64_t generation = 0;
  TlsServerFiles files = staging->tls_->files(&generation);
  if (Status s = staging->publish(files, generation); !s.is_ok()) {
    *error = s;
    return nullptr;
  }
  staging->thread_ = std::thread([s = staging.get(), interval = settings.reload_interval] { s->watch(interval); });
  return staging;
}

GrpcTlsStaging::~GrpcTlsStaging() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

std::string GrpcTlsStaging::client_ca_file() const {
  return client_ca_ ? (dir_ / "current" / "client_ca.pem").string() : std::string();
}

Status GrpcTlsStaging::publish(const TlsServerFiles& files, uint64_t generation) {
  const fs::path gen_dir = dir_ / generation_name(generation);
  std::error_code ec;
  fs::create_directory(gen_dir, ec);
  // A modification time per generation: gRPC re-reads when a file's time changes during its read.
  const int64_t mtime = first_mtime_ + static_cast<int64_t>(generation);
  bool ok = !ec && write_private(gen_dir / "cert.pem", files.cert_pem, mtime) &&
            write_private(gen_dir / "key.pem", files.key_pem, mtime) &&
            (!client_ca_ || write_private(gen_dir / "client_ca.pem", files.client_ca_pem, mtime));
  const fs::path link = dir_ / "current.new";
  fs::remove(link, ec);
  if (ok) fs::create_directory_symlink(generation_name(generation), link, ec);
  if (ok && !ec) fs::rename(link, dir_ / "current", ec);  // atomic: gRPC sees the old pair or the new one
  if (!ok || ec) return Status::internal("cannot write the gRPC TLS files in " + dir_.string());
  if (generation >= 2) fs::remove_all(dir_ / generation_name(generation - 2), ec);  // gRPC may still read gen-1
  return Status::ok();
}

void GrpcTlsStaging::watch(std::chrono::milliseconds interval) {
  uint64_t published = 0;
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval, [&] { return stopping_; })) {
    lock.unlock();
    tls_->current();  // re-reads and checks the files when they changed
    uint64_t generation = 0;
    TlsServerFiles files = tls_->files(&generation);
    if (generation != published) {
      Status s = publish(files, generation);
      if (s.is_ok()) {
        published = generation;
      } else {
        spdlog::warn("TLS reload (gRPC): {}; the previous certificate stays in use", s.message());
      }
    }
    lock.lock();
  }
}

}  // namespace otlpd
