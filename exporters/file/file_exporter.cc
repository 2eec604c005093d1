#include "exporters/file/file_exporter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <vector>

#include <spdlog/spdlog.h>

#include "exporters/common/queued_exporter.h"
#include "otlp/json_codec.h"

namespace otlpd {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kTimestampExample = "2006-01-02T15-04-05.000";  // lumberjack's layout

std::string errno_text(int err) { return std::strerror(err); }

// "<dir>/<stem>-" and "<ext>": what every backup name of `path` starts and ends with.
struct BackupPattern {
  fs::path dir;
  std::string prefix;
  std::string ext;
};

BackupPattern backup_pattern(const std::string& path) {
  fs::path p(path);
  BackupPattern b;
  b.dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  b.prefix = p.stem().string() + "-";
  b.ext = p.extension().string();
  return b;
}

std::string format_timestamp(std::chrono::system_clock::time_point t, bool localtime) {
  auto since_epoch = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  std::time_t secs = static_cast<std::time_t>(since_epoch.count() / 1000);
  std::tm tm{};
  if (localtime) {
    localtime_r(&secs, &tm);
  } else {
    gmtime_r(&secs, &tm);
  }
  char buf[96];  // room for any int values, which silences -Wformat-truncation
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d-%02d-%02d.%03d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(since_epoch.count() % 1000));
  return buf;
}

// Inverse of format_timestamp; nullopt when `text` is not exactly such a timestamp.
std::optional<std::chrono::system_clock::time_point> parse_timestamp(const std::string& text, bool localtime) {
  if (text.size() != kTimestampExample.size()) return std::nullopt;
  std::tm tm{};
  int ms = 0;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d-%2d-%2d.%3d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &ms, &consumed) != 7 ||
      consumed != static_cast<int>(text.size())) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  std::time_t secs = localtime ? std::mktime(&tm) : timegm(&tm);
  return std::chrono::system_clock::from_time_t(secs) + std::chrono::milliseconds(ms);
}

void parse_rotation(config::Node& node, FileExporterConfig& cfg) {
  config::Node r = node.child("rotation");
  // `rotation:` with nothing after it reads as absent; `rotation: {}` turns rotation on with defaults.
  if (r.is_null()) return;
  FileRotationConfig rot;
  r.read("max_megabytes", rot.max_megabytes);
  r.read("max_days", rot.max_days);
  r.read("max_backups", rot.max_backups);
  r.read("localtime", rot.localtime);
  r.check_range("max_megabytes", rot.max_megabytes, 1, 1 << 20);
  r.check_range("max_days", rot.max_days, 0, 36'500);
  r.check_range("max_backups", rot.max_backups, 0, 1'000'000);
  r.finish();
  cfg.rotation = rot;
}

}  // namespace

// ---- FileWriter ----

FileWriter::Options FileWriter::options_from(const FileExporterConfig& config) {
  Options o;
  o.path = config.path;
  if (config.rotation) {
    o.rotate = true;
    o.max_bytes = static_cast<uint64_t>(config.rotation->max_megabytes) << 20;
    o.max_days = config.rotation->max_days;
    o.max_backups = config.rotation->max_backups;
    o.localtime = config.rotation->localtime;
  }
  return o;
}

FileWriter::FileWriter(Options options) : options_(std::move(options)) {}

FileWriter::~FileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileWriter::open() {
  std::lock_guard lock(mu_);
  return open_locked();
}

Status FileWriter::open_locked() {
  if (fd_ >= 0) return Status::ok();
  int fd = ::open(options_.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::internal("cannot open " + options_.path + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::internal("cannot stat " + options_.path + ": " + errno_text(err));
  }
  fd_ = fd;
  size_ = static_cast<uint64_t>(st.st_size);
  // As lumberjack does on open: apply max_days / max_backups to backups left by earlier runs.
  if (options_.rotate) prune_backups_locked();
  return Status::ok();
}

Status FileWriter::write(std::initializer_list<std::string_view> parts) {
  uint64_t total = 0;
  std::vector<iovec> iov;
  iov.reserve(parts.size());
  for (std::string_view p : parts) {
    total += p.size();
    if (!p.empty()) iov.push_back({const_cast<char*>(p.data()), p.size()});
  }

  std::lock_guard lock(mu_);
  if (Status s = open_locked(); !s.is_ok()) return s;
  if (options_.rotate && size_ > 0 && size_ + total > options_.max_bytes) {
    if (Status s = rotate_locked(); !s.is_ok()) return s;
  }

  // One writev per record in the common case; loop for short writes (disk nearly full, signals).
  const uint64_t start = size_;
  uint64_t written = 0;
  size_t first = 0;
  while (first < iov.size()) {
    ssize_t n = ::writev(fd_, iov.data() + first, static_cast<int>(iov.size() - first));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      // Cut the half-written record off so the file stays a sequence of whole records.
      if (written > 0 && ::ftruncate(fd_, static_cast<off_t>(start)) != 0) {
        spdlog::warn("file exporter: cannot truncate {} after a failed write: {}", options_.path, errno_text(errno));
      }
      // A full disk or quota may clear: let the queue retry rather than drop.
      if (err == ENOSPC || err == EDQUOT || err == EIO) {
        return Status::unavailable("write to " + options_.path + ": " + errno_text(err), std::chrono::milliseconds(0));
      }
      return Status::internal("write to " + options_.path + ": " + errno_text(err));
    }
    written += static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    while (first < iov.size() && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < iov.size()) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  size_ += total;
  return Status::ok();
}

Status FileWriter::rotate_locked() {
  ::close(fd_);
  fd_ = -1;
  std::string backup = backup_name_locked();
  if (std::rename(options_.path.c_str(), backup.c_str()) != 0 && errno != ENOENT) {
    // Keep writing to the current file rather than lose data; the next write tries again.
    spdlog::warn("file exporter: cannot rename {} to {}: {}", options_.path, backup, errno_text(errno));
    return open_locked();
  }
  if (Status s = open_locked(); !s.is_ok()) return s;
  prune_backups_locked();
  return Status::ok();
}

std::string FileWriter::backup_name_locked() {
  BackupPattern b = backup_pattern(options_.path);
  // Names must sort in rotation order even when rotations come faster than once a millisecond, or
  // pruning would delete the wrong backups: never reuse or go below the last name's time.
  auto t = std::max(std::chrono::system_clock::now(), last_backup_time_ + std::chrono::milliseconds(1));
  t = std::chrono::time_point_cast<std::chrono::milliseconds>(t);
  for (;;) {
    fs::path candidate = b.dir / (b.prefix + format_timestamp(t, options_.localtime) + b.ext);
    std::error_code ec;
    if (!fs::exists(candidate, ec)) {
      last_backup_time_ = t;
      return candidate.string();
    }
    t += std::chrono::milliseconds(1);
  }
}

void FileWriter::prune_backups_locked() {
  if (options_.max_backups == 0 && options_.max_days == 0) return;
  BackupPattern b = backup_pattern(options_.path);
  std::vector<std::pair<std::chrono::system_clock::time_point, fs::path>> backups;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(b.dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.size() != b.prefix.size() + kTimestampExample.size() + b.ext.size()) continue;
    if (name.compare(0, b.prefix.size(), b.prefix) != 0) continue;
    if (name.compare(name.size() - b.ext.size(), b.ext.size(), b.ext) != 0) continue;
    auto t = parse_timestamp(name.substr(b.prefix.size(), kTimestampExample.size()), options_.localtime);
    if (t) backups.emplace_back(*t, entry.path());
  }
  std::sort(backups.begin(), backups.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  auto cutoff = std::chrono::system_clock::now() - std::chrono::hours(24) * options_.max_days;
  for (size_t i = 0; i < backups.size(); ++i) {
    bool too_many = options_.max_backups > 0 && i >= static_cast<size_t>(options_.max_backups);
    bool too_old = options_.max_days > 0 && backups[i].first < cutoff;
    if (too_many || too_old) fs::remove(backups[i].second, ec);
  }
}

// ---- FileSender ----

FileSender::FileSender(Signal signal, FileFormat format, std::shared_ptr<FileWriter> writer)
    : signal_(signal), format_(format), writer_(std::move(writer)) {}

Status FileSender::start() { return writer_->open(); }

void FileSender::send(BatchPtr batch, Clock::time_point /*deadline*/, Done done) {
  // A local write(2) does not wait on a peer, so the deadline is not consulted.
  done(format_ == FileFormat::json ? write_json(*batch) : write_proto(*batch));
}

Status FileSender::write_json(const Batch& batch) {
  std::string line;
  std::string err = otlp::request_proto_to_json(signal_, batch.payload, &line);
  if (!err.empty()) {
    return Status::invalid_argument("cannot convert " + std::string(otlp::signal_name(signal_)) + " to JSON: " + err);
  }
  line += '\n';
  return writer_->write({line});
}

Status FileSender::write_proto(const Batch& batch) {
  if (batch.payload.size() > UINT32_MAX) return Status::too_large("request larger than 4 GiB");
  const auto n = static_cast<uint32_t>(batch.payload.size());
  const char prefix[4] = {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                          static_cast<char>(n)};
  return writer_->write({std::string_view(prefix, 4), batch.payload});
}

// ---- FileExporterFactory ----

ComponentConfigPtr FileExporterFactory::parse(config::Node& node) const {
  auto cfg = std::make_unique<FileExporterConfig>();
  node.read("path", cfg->path);
  if (cfg->path.empty()) node.error("path", "required");
  node.read_enum("format", cfg->format, {{"json", FileFormat::json}, {"proto", FileFormat::proto}});
  parse_rotation(node, *cfg);
  node.read_duration("flush_interval", cfg->flush_interval);
  if (cfg->flush_interval.count() <= 0) node.error("flush_interval", "must be positive");
  cfg->exporter.parse(node);
  node.finish();
  return cfg;
}

std::shared_ptr<FileWriter> FileExporterFactory::writer_for(const FileExporterConfig& config) const {
  // "out.json" and "./out.json" are one file: key the map by the normalised absolute path.
  std::error_code ec;
  fs::path abs = fs::absolute(config.path, ec);
  std::string key = ec ? config.path : abs.lexically_normal().string();

  std::lock_guard lock(mu_);
  std::erase_if(writers_, [](const auto& kv) { return kv.second.expired(); });
  if (auto it = writers_.find(key); it != writers_.end()) {
    if (auto writer = it->second.lock()) return writer;
  }
  auto writer = std::make_shared<FileWriter>(FileWriter::options_from(config));
  writers_[key] = writer;
  return writer;
}

ExporterPtr FileExporterFactory::create(const ComponentId& id, const ComponentConfig& config, Signal signal,
                                        Host& host) const {
  const auto& cfg = static_cast<const FileExporterConfig&>(config);
  auto sender = std::make_unique<FileSender>(signal, cfg.format, writer_for(cfg));
  return std::make_shared<QueuedExporter>(id, signal, cfg.exporter, std::move(sender), host);
}

}  // namespace otlpd
