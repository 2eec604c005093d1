// Server-side TLS material for otlpd's listeners, loaded from a TlsServerSettings.
//
// TlsServerContext holds the OpenSSL context new HTTP connections handshake with. With
// reload_interval set, current() re-reads the files once that interval has passed and they changed
// (mtime, size or inode), so a rotated certificate is served without a restart; connections keep
// the context they started with. A reload that fails (unreadable file, key not matching the
// certificate) is logged and the previous context stays.
//
// Threads: open() on the control thread; current() from any I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "net/tls_settings.h"
#include "pipeline/status.h"

namespace otlpd {

// The PEM texts a TlsServerSettings names, read and checked together: the key matches the
// certificate, the client CA file holds at least one certificate.
struct TlsServerFiles {
  std::string cert_pem;
  std::string key_pem;
  std::string client_ca_pem;  // empty without client_ca_file
};

// Reads and checks the files; an error names the file and what is wrong with it.
Status read_tls_server_files(const TlsServerSettings& settings, TlsServerFiles* out);

// A fresh context holding `files`, requiring a client certificate signed by the client CA when
// there is one, and at least settings.min_version.
Status make_tls_server_context(const TlsServerSettings& settings, const TlsServerFiles& files,
                               std::shared_ptr<boost::asio::ssl::context>* out);

class TlsServerContext {
 public:
  static std::shared_ptr<TlsServerContext> open(const TlsServerSettings& settings, Status* error);

  std::shared_ptr<boost::asio::ssl::context> current();
  // The files behind current() (as checked then), and *generation: how many times they were
  // replaced since open(). For listeners that hand PEM texts on instead of using the context.
  TlsServerFiles files(uint64_t* generation);

 private:
  explicit TlsServerContext(const TlsServerSettings& settings) : settings_(settings) {}
  std::string files_stamp() const;

  const TlsServerSettings settings_;
  std::mutex mu_;  // guards the five below
  std::shared_ptr<boost::asio::ssl::context> context_;
  TlsServerFiles files_;
  uint64_t generation_ = 0;
  std::string stamp_;
  std::chrono::steady_clock::time_point next_check_;
};

}  // namespace otlpd
