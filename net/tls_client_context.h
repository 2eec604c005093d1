// Client-side TLS for otlpd's exporters, from a TlsClientSettings.
//
// read_tls_client_files() reads and checks the PEM files a TlsClientSettings names (the gRPC
// exporter hands the texts to gRPC); make_tls_client_context() builds the OpenSSL context the
// OTLP/HTTP exporter connects with. Both run at exporter start, on the control thread; the
// context is read-only afterwards and shared by the exporter's connections.
#pragma once

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "net/tls_settings.h"
#include "pipeline/status.h"

namespace otlpd {

struct TlsClientFiles {
  std::string ca_pem;    // empty: the system's roots
  std::string cert_pem;  // empty: no client certificate
  std::string key_pem;
};

// Reads the files; an error names the file and what is wrong (unreadable, no certificate in it,
// a key that does not match the certificate).
Status read_tls_client_files(const TlsClientSettings& settings, TlsClientFiles* out);

// A context verifying the server against the roots (unless insecure_skip_verify), presenting the
// client certificate when there is one, and speaking at least settings.min_version.
Status make_tls_client_context(const TlsClientSettings& settings, const TlsClientFiles& files,
                               std::shared_ptr<boost::asio::ssl::context>* out);

}  // namespace otlpd
