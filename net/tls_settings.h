// The `tls` block of a receiver protocol (the Collector's configtls server keys):
//
//   tls:
//     cert_file: /etc/otlpd/server.crt     # PEM chain, leaf first
//     key_file: /etc/otlpd/server.key
//     client_ca_file: /etc/otlpd/clients.pem  # mTLS: clients must present a certificate it signed
//     min_version: "1.2"                   # "1.2" or "1.3"
//     reload_interval: 1h                  # re-read the files when they change; 0: only at start
//
// A `tls` block is all or nothing: without cert_file and key_file both it is a config error,
// never a plaintext fallback. The files are read when the receiver starts (unreadable or
// mismatched: start error).
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "config/node.h"

namespace otlpd {

enum class TlsVersion { v1_2, v1_3 };

struct TlsServerSettings {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // empty: clients are not asked for a certificate
  TlsVersion min_version = TlsVersion::v1_2;
  std::chrono::milliseconds reload_interval{0};  // 0: the files are read once, at start

  bool operator==(const TlsServerSettings&) const = default;
};

// Reads `node`'s `tls` key; nullopt when it is absent. Errors name their path.
std::optional<TlsServerSettings> read_tls_server(config::Node& node);

// The `tls` block of an exporter (the Collector's configtls client keys):
//
//   tls:
//     insecure: false              # otlp exporter: true = plaintext
//     ca_file: /etc/otlpd/backend-ca.pem     # roots to trust instead of the system's
//     cert_file: /etc/otlpd/client.crt       # mTLS: the certificate otlpd presents
//     key_file: /etc/otlpd/client.key
//     insecure_skip_verify: false  # do not verify the server's certificate or name
//     server_name_override: backend.internal # name to verify (and send as SNI) instead of the host
//     min_version: "1.2"
//
// cert_file and key_file come together; insecure (plaintext) with any TLS setting is an error.
struct TlsClientSettings {
  bool insecure = false;
  bool insecure_skip_verify = false;
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string server_name_override;
  TlsVersion min_version = TlsVersion::v1_2;

  bool operator==(const TlsClientSettings&) const = default;
  // Whether a key other than `insecure` was set.
  bool sets_tls_options() const {
    return insecure_skip_verify || !ca_file.empty() || !cert_file.empty() || !key_file.empty() ||
           !server_name_override.empty() || min_version != TlsVersion::v1_2;
  }
};

// Reads `node`'s `tls` key (absent: defaults). Errors name their path.
TlsClientSettings read_tls_client(config::Node& node);

}  // namespace otlpd
