// Small helpers for PEM files shared by the TLS server and client code.
#pragma once

#include <string>

#include <boost/asio/ssl/context.hpp>

#include "pipeline/status.h"

namespace otlpd {

// Reads the file a `tls.<key>` setting names into *out (an empty path: nothing, OK). With
// `certificates`, it must hold at least one PEM certificate. An error names the key and the file.
Status read_tls_file(const char* key, const std::string& path, bool certificates, std::string* out);
// Loads a certificate chain and its private key into `ctx` and checks that they belong together;
// an error names the files (cert_file, key_file: the settings' paths, for messages).
Status load_tls_identity(boost::asio::ssl::context& ctx, const std::string& cert_file, const std::string& cert_pem,
                         const std::string& key_file, const std::string& key_pem);
// OpenSSL's reason for its last failure; its error queue is emptied.
std::string openssl_reason();

}  // namespace otlpd
