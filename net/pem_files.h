// Small helpers for PEM files shared by the TLS server and client code.
#pragma once

#include <string>

#include "pipeline/status.h"

namespace otlpd {

// Reads the file a `tls.<key>` setting names into *out (an empty path: nothing, OK). With
// `certificates`, it must hold at least one PEM certificate. An error names the key and the file.
Status read_tls_file(const char* key, const std::string& path, bool certificates, std::string* out);
// OpenSSL's reason for its last failure; its error queue is emptied.
std::string openssl_reason();

}  // namespace otlpd
