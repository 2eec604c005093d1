#include "net/tls_server_context.h"

#include <sys/stat.h>


#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include "net/pem_files.h"

namespace otlpd {

namespace ssl = boost::asio::ssl;

namespace {

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

BioPtr memory_bio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

// ALPN: h2 when the client offers it (HTTP/2 over TLS), else http/1.1; a client that offers
// neither gets no ALPN answer and speaks HTTP/1.1.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in, unsigned int in_len,
                void*) {
  static const unsigned char kProtocols[] = "\x02h2\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, kProtocols, sizeof(kProtocols) - 1, in, in_len) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::string stamp_of(const std::string& path) {
  if (path.empty()) return "-";
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "?";
  return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_ino);
}

}  // namespace

Status read_tls_server_files(const TlsServerSettings& settings, TlsServerFiles* out) {
  TlsServerFiles files;
  Status s = read_tls_file("cert_file", settings.cert_file, true, &files.cert_pem);
  if (s.is_ok()) s = read_tls_file("key_file", settings.key_file, false, &files.key_pem);
  if (s.is_ok()) s = read_tls_file("client_ca_file", settings.client_ca_file, true, &files.client_ca_pem);
  if (!s.is_ok()) return s;
  // Loading them into a context checks the key and that it belongs to the certificate.
  std::shared_ptr<ssl::context> ctx;
  if (s = make_tls_server_context(settings, files, &ctx); !s.is_ok()) return s;
  *out = std::move(files);
  return Status::ok();
}

Status make_tls_server_context(const TlsServerSettings& settings, const TlsServerFiles& files,
                               std::shared_ptr<ssl::context>* out) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, settings.min_version == TlsVersion::v1_3 ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_alpn_select_cb(native, &select_alpn, nullptr);
  boost::system::error_code ec;
  Status s = load_tls_identity(*ctx, settings.cert_file, files.cert_pem, settings.key_file, files.key_pem);
  if (!s.is_ok()) return s;
  if (!files.client_ca_pem.empty()) {
    ctx->add_certificate_authority(boost::asio::buffer(files.client_ca_pem), ec);
    if (ec) return Status::invalid_argument("tls.client_ca_file " + settings.client_ca_file + ": " + ec.message());
    // Tell clients which CAs are accepted, and refuse the handshake without a valid certificate.
    BioPtr bio = memory_bio(files.client_ca_pem);
    STACK_OF(X509_NAME)* names = sk_X509_NAME_new_null();
    while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
      sk_X509_NAME_push(names, X509_NAME_dup(X509_get_subject_name(cert)));
      X509_free(cert);
    }
    ERR_clear_error();
    SSL_CTX_set_client_CA_list(native, names);
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  *out = std::move(ctx);
  return Status::ok();
}

std::shared_ptr<TlsServerContext> TlsServerContext::open(const TlsServerSettings& settings, Status* error) {
  std::shared_ptr<TlsServerContext> t(new TlsServerContext(settings));
  t->stamp_ = t->files_stamp();
  TlsServerFiles files;
  if (Status s = read_tls_server_files(settings, &files); !s.is_ok()) {
    *error = s;
    return nullptr;
  }
  if (Status s = make_tls_server_context(settings, files, &t->context_); !s.is_ok()) {
    *error = s;
    return nullptr;
  }
  t->files_ = std::move(files);
  t->next_check_ = std::chrono::steady_clock::now() + settings.reload_interval;
  return t;
}

std::string TlsServerContext::files_stamp() const {
  return stamp_of(settings_.cert_file) + "|" + stamp_of(settings_.key_file) + "|" + stamp_of(settings_.client_ca_file);
}

std::shared_ptr<ssl::context> TlsServerContext::current() {
  std::lock_guard lock(mu_);
  if (settings_.reload_interval.count() == 0) return context_;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return context_;
  next_check_ = now + settings_.reload_interval;
  std::string stamp = files_stamp();
  if (stamp == stamp_) return context_;
  TlsServerFiles files;
  std::shared_ptr<ssl::context> fresh;
  Status s = read_tls_server_files(settings_, &files);
  if (s.is_ok()) s = make_tls_server_context(settings_, files, &fresh);
  if (!s.is_ok()) {
    // Half-written files look like this too: the next interval tries again.
    spdlog::warn("TLS reload: {}; the previous certificate stays in use", s.message());
    return context_;
  }
  stamp_ = stamp;
  context_ = std::move(fresh);
  files_ = std::move(files);
  ++generation_;
  spdlog::info("TLS reload: read a new certificate from {}", settings_.cert_file);
  return context_;
}

TlsServerFiles TlsServerContext::files(uint64_t* generation) {
  std::lock_guard lock(mu_);
  *generation = generation_;
  return files_;
}

}  // namespace otlpd
