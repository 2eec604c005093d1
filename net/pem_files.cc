#include "net/pem_files.h"

#include <fstream>
#include <memory>
#include <sstream>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

namespace otlpd {

namespace {

bool read_whole_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream text;
  text << in.rdbuf();
  *out = text.str();
  return static_cast<bool>(in) || in.eof();
}

// The number of certificates in a PEM text (0 when it holds none or is malformed).
int count_pem_certificates(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  int n = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_free(cert);
    ++n;
  }
  ERR_clear_error();  // the read that ends the loop always fails
  return n;
}

}  // namespace

Status read_tls_file(const char* key, const std::string& path, bool certificates, std::string* out) {
  if (path.empty()) return Status::ok();
  if (!read_whole_file(path, out)) return Status::invalid_argument(std::string("cannot read tls.") + key + " " + path);
  if (certificates && count_pem_certificates(*out) == 0) {
    return Status::invalid_argument(std::string("tls.") + key + " " + path + " holds no PEM certificate");
  }
  return Status::ok();
}

Status load_tls_identity(boost::asio::ssl::context& ctx, const std::string& cert_file, const std::string& cert_pem,
                         const std::string& key_file, const std::string& key_pem) {
  boost::system::error_code ec;
  ctx.use_certificate_chain(boost::asio::buffer(cert_pem), ec);
  if (ec) return Status::invalid_argument("tls.cert_file " + cert_file + ": " + ec.message());
  ctx.use_private_key(boost::asio::buffer(key_pem), boost::asio::ssl::context::pem, ec);
  if (ec) return Status::invalid_argument("tls.key_file " + key_file + ": " + ec.message());
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
    return Status::invalid_argument("tls.key_file " + key_file + " does not match tls.cert_file " + cert_file + ": " +
                                    openssl_reason());
  }
  return Status::ok();
}

std::string openssl_reason() {
  unsigned long code = ERR_get_error();
  char text[256] = "unknown error";
  if (code != 0) ERR_error_string_n(code, text, sizeof(text));
  ERR_clear_error();
  return text;
}

}  // namespace otlpd
