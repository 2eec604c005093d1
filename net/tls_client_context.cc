#include "net/tls_client_context.h"

#include <openssl/ssl.h>

#include "net/pem_files.h"

namespace otlpd {

namespace ssl = boost::asio::ssl;

Status read_tls_client_files(const TlsClientSettings& settings, TlsClientFiles* out) {
  TlsClientFiles files;
  Status s = read_tls_file("ca_file", settings.ca_file, true, &files.ca_pem);
  if (s.is_ok()) s = read_tls_file("cert_file", settings.cert_file, true, &files.cert_pem);
  if (s.is_ok()) s = read_tls_file("key_file", settings.key_file, false, &files.key_pem);
  if (!s.is_ok()) return s;
  // Building a context checks the key and that it belongs to the certificate.
  std::shared_ptr<ssl::context> ctx;
  if (s = make_tls_client_context(settings, files, &ctx); !s.is_ok()) return s;
  *out = std::move(files);
  return Status::ok();
}

Status make_tls_client_context(const TlsClientSettings& settings, const TlsClientFiles& files,
                               std::shared_ptr<ssl::context>* out) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, settings.min_version == TlsVersion::v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
  boost::system::error_code ec;
  if (files.ca_pem.empty()) {
    ctx->set_default_verify_paths(ec);
    if (ec) return Status::invalid_argument("cannot load the system's TLS roots: " + ec.message());
  } else {
    ctx->add_certificate_authority(boost::asio::buffer(files.ca_pem), ec);
    if (ec) return Status::invalid_argument("tls.ca_file " + settings.ca_file + ": " + ec.message());
  }
  if (!files.cert_pem.empty()) {
    Status s = load_tls_identity(*ctx, settings.cert_file, files.cert_pem, settings.key_file, files.key_pem);
    if (!s.is_ok()) return s;
  }
  ctx->set_verify_mode(settings.insecure_skip_verify ? ssl::verify_none : ssl::verify_peer);
  *out = std::move(ctx);
  return Status::ok();
}

}  // namespace otlpd
