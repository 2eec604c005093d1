// Tests of the in-memory test certificates (support/test_certs.h): their contents, chain
// verification with X509_verify_cert, and real TLS 1.2 / 1.3 handshakes (mTLS) between two SSL
// objects in this thread, joined by memory BIOs and pumped in a bounded loop.
#include "support/openssl_ptr.h"
#include "support/test_certs.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>
#include <unistd.h>

namespace {

using namespace otlpd::test;
using namespace std::chrono_literals;

template <auto Free>
using Deleter = OpensslDeleter<Free>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL_free>>;

X509Ptr load_cert(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(cert != nullptr);
  return cert;
}

PkeyPtr load_key(const std::string& pem) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(key != nullptr);
  return key;
}

std::string common_name(X509* cert) {
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

std::string octets(const ASN1_OCTET_STRING* s) {
  if (s == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
}

// X509_verify_cert of `cert_pem` against a store trusting `trusted`, for `purpose`
// (X509_PURPOSE_SSL_SERVER, ...); returns the verify error (X509_V_OK when it verifies).
int verify(const std::string& cert_pem, const std::vector<std::string>& trusted,
           int purpose = X509_PURPOSE_SSL_SERVER) {
  StorePtr store(X509_STORE_new());
  for (const std::string& pem : trusted) REQUIRE(X509_STORE_add_cert(store.get(), load_cert(pem).get()) == 1);
  X509Ptr cert = load_cert(cert_pem);
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr) == 1);
  REQUIRE(X509_STORE_CTX_set_purpose(ctx.get(), purpose) == 1);
  const int rc = X509_verify_cert(ctx.get());
  const int error = X509_STORE_CTX_get_error(ctx.get());
  INFO("X509_verify_cert: " << X509_verify_cert_error_string(error));
  CHECK(rc == (error == X509_V_OK ? 1 : 0));
  ERR_clear_error();
  return error;
}

// ---------------------------------------------------------------------------------------------
// TLS between two SSL objects over memory BIOs

SslCtxPtr server_ctx(const Pem& server, const std::string& client_ca_pem, int max_version) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  REQUIRE(ctx != nullptr);
  REQUIRE(SSL_CTX_set_max_proto_version(ctx.get(), max_version) == 1);
  REQUIRE(SSL_CTX_use_certificate(ctx.get(), load_cert(server.cert).get()) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), load_key(server.key).get()) == 1);
  REQUIRE(SSL_CTX_check_private_key(ctx.get()) == 1);
  REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), load_cert(client_ca_pem).get()) == 1);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  static const unsigned char sid[] = "test_certs_test";
  REQUIRE(SSL_CTX_set_session_id_context(ctx.get(), sid, sizeof sid - 1) == 1);
  return ctx;
}

// A client trusting `ca_pem`, presenting `cert` when it has one.
SslCtxPtr client_ctx(const std::string& ca_pem, const Pem* cert, int max_version) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  REQUIRE(ctx != nullptr);
  REQUIRE(SSL_CTX_set_max_proto_version(ctx.get(), max_version) == 1);
  REQUIRE(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), load_cert(ca_pem).get()) == 1);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (cert != nullptr) {
    REQUIRE(SSL_CTX_use_certificate(ctx.get(), load_cert(cert->cert).get()) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), load_key(cert->key).get()) == 1);
  }
  return ctx;
}

struct Outcome {
  bool client_done = false;
  bool server_done = false;
  int server_ssl_error = SSL_ERROR_NONE;  // SSL_get_error after a failed server handshake
  int server_reason = 0;                  // ERR_GET_REASON of the server's first error
  long server_verify = X509_V_OK;         // SSL_get_verify_result(server): the client's certificate
  int client_reason = 0;                  // the client's first error (an alert from the server)
  long client_verify = X509_V_OK;         // the server's certificate, as the client judged it
  std::string client_cn_seen;             // the client certificate's CN, on the server
  int version = 0;
  std::string server_got, client_got;     // application data after the handshake
};

struct Side {
  SSL* ssl;
  bool done = false;
  bool failed = false;
  int ssl_error = SSL_ERROR_NONE;
  int reason = 0;
};

// One SSL_do_handshake step; WANT_READ / WANT_WRITE leave the side pending.
void step(Side& side) {
  if (side.done || side.failed) return;
  ERR_clear_error();
  const int rc = SSL_do_handshake(side.ssl);
  if (rc == 1) {
    side.done = true;
    return;
  }
  const int e = SSL_get_error(side.ssl, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
  side.failed = true;
  side.ssl_error = e;
  side.reason = ERR_GET_REASON(ERR_peek_error());
  ERR_clear_error();
}

// Reads whatever `ssl` has; on failure records the reason (an alert) in *reason.
std::string read_some(SSL* ssl, int* reason) {
  ERR_clear_error();
  char buf[64];
  const int n = SSL_read(ssl, buf, sizeof buf);
  if (n > 0) return std::string(buf, static_cast<size_t>(n));
  if (reason != nullptr && SSL_get_error(ssl, n) == SSL_ERROR_SSL) *reason = ERR_GET_REASON(ERR_peek_error());
  ERR_clear_error();
  return {};
}

Outcome handshake(SSL_CTX* server_ctx, SSL_CTX* client_ctx, const char* host = "localhost") {
  SslPtr server(SSL_new(server_ctx));
  SslPtr client(SSL_new(client_ctx));
  REQUIRE(server != nullptr);
  REQUIRE(client != nullptr);
  // Two one-way pipes: what the client writes to c2s the server reads, and s2c the other way.
  // An empty memory BIO reads as "retry", which SSL turns into SSL_ERROR_WANT_READ.
  BIO* c2s = BIO_new(BIO_s_mem());
  BIO* s2c = BIO_new(BIO_s_mem());
  REQUIRE(c2s != nullptr);
  REQUIRE(s2c != nullptr);
  // Each SSL takes one reference to each BIO.
  REQUIRE(BIO_up_ref(c2s) == 1);
  REQUIRE(BIO_up_ref(s2c) == 1);
  SSL_set0_rbio(client.get(), s2c);
  SSL_set0_wbio(client.get(), c2s);
  SSL_set0_rbio(server.get(), c2s);
  SSL_set0_wbio(server.get(), s2c);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  REQUIRE(SSL_set_tlsext_host_name(client.get(), host) == 1);
  REQUIRE(SSL_set1_host(client.get(), host) == 1);

  Side c{client.get()}, s{server.get()};
  for (int i = 0; i < 20; ++i) {
    step(c);
    step(s);
    if ((c.done || c.failed) && (s.done || s.failed)) break;
    if (c.failed || s.failed) {
      // Let the other side read the alert, then stop.
      step(c);
      step(s);
      break;
    }
  }

  Outcome out;
  out.client_done = c.done;
  out.server_done = s.done;
  out.server_ssl_error = s.ssl_error;
  out.server_reason = s.reason;
  out.client_reason = c.reason;
  out.server_verify = SSL_get_verify_result(server.get());
  out.client_verify = SSL_get_verify_result(client.get());
  if (X509* peer = SSL_get0_peer_certificate(server.get())) out.client_cn_seen = common_name(peer);
  out.version = SSL_version(client.get());
  if (c.done && s.failed) {
    // TLS 1.3: the client finishes before the server has judged its certificate; the server's
    // alert reaches it on its first read.
    read_some(client.get(), &out.client_reason);
  }
  if (c.done && s.done) {
    REQUIRE(SSL_write(client.get(), "ping", 4) == 4);
    out.server_got = read_some(server.get(), nullptr);
    REQUIRE(SSL_write(server.get(), "pong", 4) == 4);
    out.client_got = read_some(client.get(), nullptr);
  }
  ERR_clear_error();
  return out;
}

struct Fixture {
  Pem ca = make_ca("otlpd test CA");
  Pem other_ca = make_ca("otlpd other CA");
  Pem server = make_cert(ca, {.common_name = "otlpd server", .dns_names = {"localhost"},
                              .ip_addresses = {"127.0.0.1", "::1"}});
  Pem client = make_cert(ca, {.common_name = "otlpd client", .client = true});
};

CertOptions expired_options(bool client) {
  return {.common_name = "expired", .dns_names = {"localhost"}, .client = client,
          .not_before_offset = -48h, .valid_for = 24h};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("make_ca makes a self-signed P-256 CA with a PKCS#8 key") {
  const Pem ca = make_ca("otlpd test CA");
  CHECK(ca.cert.rfind("-----BEGIN CERTIFICATE-----\n", 0) == 0);
  CHECK(ca.key.rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
  CHECK(ERR_peek_error() == 0);

  X509Ptr cert = load_cert(ca.cert);
  PkeyPtr key = load_key(ca.key);
  CHECK(X509_get_version(cert.get()) == X509_VERSION_3);
  CHECK(common_name(cert.get()) == "otlpd test CA");
  CHECK(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())) == 0);
  CHECK(X509_check_ca(cert.get()) == 1);
  CHECK(X509_get_key_usage(cert.get()) == (KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK((X509_get_extension_flags(cert.get()) & EXFLAG_SS) != 0);
  CHECK(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256);
  CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
  CHECK(EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_EC);
  char group[64] = {};
  REQUIRE(EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, nullptr) == 1);
  CHECK(std::string(group) == "prime256v1");
  // subjectKeyIdentifier, and an authorityKeyIdentifier naming itself.
  const std::string ski = octets(X509_get0_subject_key_id(cert.get()));
  CHECK(ski.size() == 20);
  CHECK(octets(X509_get0_authority_key_id(cert.get())) == ski);
  // Valid from about an hour ago for ten years.
  CHECK(X509_cmp_current_time(X509_get0_notBefore(cert.get())) < 0);
  int days = 0, seconds = 0;
  REQUIRE(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())) == 1);
  CHECK(days == 3650);
  CHECK(seconds == 0);
  // Trusted as itself.
  CHECK(verify(ca.cert, {ca.cert}) == X509_V_OK);
}

TEST_CASE("serials are random 128-bit numbers and keys are fresh") {
  std::set<std::string> serials, keys;
  for (int i = 0; i < 8; ++i) {
    const Pem ca = make_ca("ca");
    X509Ptr cert = load_cert(ca.cert);
    BnPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
    REQUIRE(serial != nullptr);
    CHECK(BN_is_negative(serial.get()) == 0);
    CHECK(BN_num_bits(serial.get()) <= 128);
    CHECK(BN_num_bits(serial.get()) > 64);  // fails with probability 2^-64
    char* hex = BN_bn2hex(serial.get());
    serials.insert(hex);
    OPENSSL_free(hex);
    keys.insert(ca.key);
  }
  CHECK(serials.size() == 8);
  CHECK(keys.size() == 8);
}

TEST_CASE("a server certificate from make_ca verifies against that CA") {
  Fixture f;
  X509Ptr ca = load_cert(f.ca.cert);
  X509Ptr cert = load_cert(f.server.cert);
  CHECK(f.server.key.rfind("-----BEGIN PRIVATE KEY-----\n", 0) == 0);
  CHECK(verify(f.server.cert, {f.ca.cert}, X509_PURPOSE_SSL_SERVER) == X509_V_OK);
  // serverAuth only: not a client certificate.
  CHECK(verify(f.server.cert, {f.ca.cert}, X509_PURPOSE_SSL_CLIENT) == X509_V_ERR_INVALID_PURPOSE);
  CHECK(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_SERVER, 0) == 1);
  CHECK(X509_check_purpose(cert.get(), X509_PURPOSE_SSL_CLIENT, 0) == 0);
  CHECK(X509_get_extended_key_usage(cert.get()) == XKU_SSL_SERVER);
  CHECK(X509_get_key_usage(cert.get()) == KU_DIGITAL_SIGNATURE);
  CHECK(X509_check_ca(cert.get()) == 0);

  // subjectAltName.
  CHECK(X509_check_host(cert.get(), "localhost", 0, 0, nullptr) == 1);
  CHECK(X509_check_host(cert.get(), "example.com", 0, 0, nullptr) == 0);
  CHECK(X509_check_host(cert.get(), "otlpd server", 0, 0, nullptr) == 0);  // the CN is not used
  CHECK(X509_check_ip_asc(cert.get(), "127.0.0.1", 0) == 1);
  CHECK(X509_check_ip_asc(cert.get(), "::1", 0) == 1);
  CHECK(X509_check_ip_asc(cert.get(), "0:0:0:0:0:0:0:1", 0) == 1);
  CHECK(X509_check_ip_asc(cert.get(), "127.0.0.2", 0) == 0);
  CHECK(X509_check_ip_asc(cert.get(), "10.0.0.1", 0) == 0);

  // Names, key identifiers, key, signature.
  CHECK(common_name(cert.get()) == "otlpd server");
  CHECK(X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(ca.get())) == 0);
  CHECK(X509_check_issued(ca.get(), cert.get()) == X509_V_OK);
  CHECK(octets(X509_get0_authority_key_id(cert.get())) == octets(X509_get0_subject_key_id(ca.get())));
  CHECK(octets(X509_get0_subject_key_id(cert.get())).size() == 20);
  CHECK(octets(X509_get0_subject_key_id(cert.get())) != octets(X509_get0_subject_key_id(ca.get())));
  CHECK(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256);
  CHECK(X509_check_private_key(cert.get(), load_key(f.server.key).get()) == 1);
  CHECK(X509_check_private_key(cert.get(), load_key(f.ca.key).get()) == 0);
  ERR_clear_error();
  int days = 0, seconds = 0;
  REQUIRE(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())) == 1);
  CHECK(days == 30);
  CHECK(seconds == 0);
}

TEST_CASE("a client certificate is for clientAuth and has no subjectAltName unless asked") {
  Fixture f;
  X509Ptr cert = load_cert(f.client.cert);
  CHECK(verify(f.client.cert, {f.ca.cert}, X509_PURPOSE_SSL_CLIENT) == X509_V_OK);
  CHECK(verify(f.client.cert, {f.ca.cert}, X509_PURPOSE_SSL_SERVER) == X509_V_ERR_INVALID_PURPOSE);
  CHECK(X509_get_extended_key_usage(cert.get()) == XKU_SSL_CLIENT);
  CHECK(X509_get_ext_by_NID(cert.get(), NID_subject_alt_name, -1) == -1);
  CHECK(X509_check_host(cert.get(), "localhost", 0, 0, nullptr) == 0);
  CHECK(X509_check_private_key(cert.get(), load_key(f.client.key).get()) == 1);
}

TEST_CASE("a certificate from another CA does not verify") {
  Fixture f;
  const Pem stranger = make_cert(f.other_ca, {.common_name = "otlpd server", .dns_names = {"localhost"}});
  CHECK(verify(stranger.cert, {f.other_ca.cert}) == X509_V_OK);
  CHECK(verify(stranger.cert, {f.ca.cert}) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  CHECK(verify(stranger.cert, {}) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  CHECK(verify(f.server.cert, {f.other_ca.cert}) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);

  // Another CA with the very same name: the authorityKeyIdentifier tells them apart, so the
  // trusted namesake is not even tried as the issuer.
  const Pem namesake = make_ca("otlpd test CA");
  const Pem impostor = make_cert(namesake, {.common_name = "otlpd server", .dns_names = {"localhost"}});
  CHECK(verify(impostor.cert, {f.ca.cert}) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  CHECK(verify(impostor.cert, {f.ca.cert, namesake.cert}) == X509_V_OK);
}

TEST_CASE("an expired or not yet valid certificate does not verify") {
  Fixture f;
  const Pem expired = make_cert(f.ca, expired_options(false));
  X509Ptr cert = load_cert(expired.cert);
  CHECK(X509_cmp_current_time(X509_get0_notAfter(cert.get())) < 0);
  CHECK(verify(expired.cert, {f.ca.cert}) == X509_V_ERR_CERT_HAS_EXPIRED);
  CHECK(X509_check_private_key(cert.get(), load_key(expired.key).get()) == 1);

  const Pem future = make_cert(f.ca, {.common_name = "future", .not_before_offset = 3600s, .valid_for = 3600s});
  CHECK(verify(future.cert, {f.ca.cert}) == X509_V_ERR_CERT_NOT_YET_VALID);
}

TEST_CASE("make_self_signed verifies only against itself") {
  Fixture f;
  const Pem self = make_self_signed({.common_name = "self", .dns_names = {"localhost"}, .ip_addresses = {"127.0.0.1"}});
  X509Ptr cert = load_cert(self.cert);
  CHECK(X509_NAME_cmp(X509_get_subject_name(cert.get()), X509_get_issuer_name(cert.get())) == 0);
  CHECK((X509_get_extension_flags(cert.get()) & EXFLAG_SS) != 0);
  CHECK(X509_check_ca(cert.get()) == 0);
  CHECK(X509_check_private_key(cert.get(), load_key(self.key).get()) == 1);
  CHECK(X509_check_host(cert.get(), "localhost", 0, 0, nullptr) == 1);
  CHECK(X509_check_ip_asc(cert.get(), "127.0.0.1", 0) == 1);
  CHECK(verify(self.cert, {self.cert}) == X509_V_OK);
  CHECK(verify(self.cert, {f.ca.cert}) == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);

  // is_ca: a self-signed certificate that can also issue.
  const Pem self_ca = make_self_signed({.common_name = "self CA", .dns_names = {"localhost"}, .is_ca = true});
  X509Ptr ca_cert = load_cert(self_ca.cert);
  CHECK(X509_check_ca(ca_cert.get()) == 1);
  CHECK(X509_get_key_usage(ca_cert.get()) == (KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(verify(self_ca.cert, {self_ca.cert}) == X509_V_OK);
  const Pem child = make_cert(self_ca, {.common_name = "child", .dns_names = {"localhost"}});
  CHECK(verify(child.cert, {self_ca.cert}) == X509_V_OK);
}

TEST_CASE("bad input throws std::runtime_error with the reason") {
  const Pem ca = make_ca("ca");
  CHECK_THROWS_WITH(make_cert(ca, {.common_name = "x", .ip_addresses = {"not-an-ip"}}),
                    Catch::Contains("not an IP address: 'not-an-ip'"));
  CHECK_THROWS_WITH(make_cert(Pem{"garbage", ca.key}, {.common_name = "x"}),
                    Catch::Contains("reading the issuer certificate PEM"));
  CHECK_THROWS_WITH(make_cert(Pem{ca.cert, make_ca("other").key}, {.common_name = "x"}),
                    Catch::Contains("the issuer key does not match the issuer certificate"));
  CHECK_THROWS_AS(make_self_signed({.common_name = std::string(65, 'a')}), std::runtime_error);
  // The error queue is left empty.
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("mTLS handshake over memory BIOs") {
  const int max_version = GENERATE(TLS1_2_VERSION, TLS1_3_VERSION);
  CAPTURE(max_version);
  Fixture f;
  SslCtxPtr server = server_ctx(f.server, f.ca.cert, max_version);

  SECTION("a client certificate from the CA is accepted") {
    SslCtxPtr client = client_ctx(f.ca.cert, &f.client, max_version);
    const Outcome out = handshake(server.get(), client.get());
    CHECK(out.client_done);
    CHECK(out.server_done);
    CHECK(out.version == max_version);
    CHECK(out.server_verify == X509_V_OK);
    CHECK(out.client_verify == X509_V_OK);
    CHECK(out.client_cn_seen == "otlpd client");
    CHECK(out.server_got == "ping");
    CHECK(out.client_got == "pong");
  }

  SECTION("no client certificate: the server refuses") {
    SslCtxPtr client = client_ctx(f.ca.cert, nullptr, max_version);
    const Outcome out = handshake(server.get(), client.get());
    CHECK_FALSE(out.server_done);
    CHECK(out.server_ssl_error == SSL_ERROR_SSL);
    CHECK(out.server_reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE);
    CHECK(out.server_verify == X509_V_OK);  // nothing was verified
    CHECK(out.client_cn_seen.empty());
    CHECK(out.client_reason == (max_version == TLS1_3_VERSION ? SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED
                                                               : SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE));
  }

  SECTION("a client certificate from another CA: the server refuses") {
    const Pem stranger = make_cert(f.other_ca, {.common_name = "stranger", .client = true});
    SslCtxPtr client = client_ctx(f.ca.cert, &stranger, max_version);
    const Outcome out = handshake(server.get(), client.get());
    CHECK_FALSE(out.server_done);
    CHECK(out.server_ssl_error == SSL_ERROR_SSL);
    CHECK(out.server_reason == SSL_R_CERTIFICATE_VERIFY_FAILED);
    CHECK(out.server_verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    CHECK(out.client_reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA);
  }

  SECTION("an expired client certificate: the server refuses") {
    const Pem expired = make_cert(f.ca, expired_options(true));
    SslCtxPtr client = client_ctx(f.ca.cert, &expired, max_version);
    const Outcome out = handshake(server.get(), client.get());
    CHECK_FALSE(out.server_done);
    CHECK(out.server_ssl_error == SSL_ERROR_SSL);
    CHECK(out.server_reason == SSL_R_CERTIFICATE_VERIFY_FAILED);
    CHECK(out.server_verify == X509_V_ERR_CERT_HAS_EXPIRED);
    CHECK(out.client_reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED);
  }

  SECTION("a serverAuth certificate offered as a client certificate: the server refuses") {
    const Pem wrong_purpose = make_cert(f.ca, {.common_name = "not a client", .client = false});
    SslCtxPtr client = client_ctx(f.ca.cert, &wrong_purpose, max_version);
    const Outcome out = handshake(server.get(), client.get());
    CHECK_FALSE(out.server_done);
    CHECK(out.server_reason == SSL_R_CERTIFICATE_VERIFY_FAILED);
    CHECK(out.server_verify == X509_V_ERR_INVALID_PURPOSE);
    CHECK(out.client_reason == SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE);
  }

  SECTION("the client refuses a server certificate for another host or from another CA") {
    SslCtxPtr client = client_ctx(f.ca.cert, &f.client, max_version);
    const Outcome wrong_host = handshake(server.get(), client.get(), "otlpd.example");
    CHECK_FALSE(wrong_host.client_done);
    CHECK_FALSE(wrong_host.server_done);
    CHECK(wrong_host.client_reason == SSL_R_CERTIFICATE_VERIFY_FAILED);
    CHECK(wrong_host.client_verify == X509_V_ERR_HOSTNAME_MISMATCH);

    // SSL_set1_host takes an IP literal as an IP address, checked against the IP SANs.
    CHECK(handshake(server.get(), client.get(), "::1").client_verify == X509_V_OK);
    const Outcome wrong_ip = handshake(server.get(), client.get(), "10.0.0.1");
    CHECK_FALSE(wrong_ip.client_done);
    CHECK(wrong_ip.client_verify == X509_V_ERR_IP_ADDRESS_MISMATCH);

    SslCtxPtr distrustful = client_ctx(f.other_ca.cert, &f.client, max_version);
    const Outcome unknown = handshake(server.get(), distrustful.get());
    CHECK_FALSE(unknown.client_done);
    CHECK(unknown.client_reason == SSL_R_CERTIFICATE_VERIFY_FAILED);
    // Not UNABLE_TO_GET_ISSUER_CERT_LOCALLY: the server sends its CA along with its certificate
    // (OpenSSL builds the chain from the server's store, which holds the CA for the client
    // certificates, unless SSL_MODE_NO_AUTO_CHAIN), and that self-signed CA is not trusted here.
    CHECK(unknown.client_verify == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN);
  }
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("write_file writes PEM files that SSL_CTX loads") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("otlpd-test-certs-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(dir, ec);
    }
  } cleanup{dir};

  Fixture f;
  const std::string ca_file = write_file(dir.string(), "ca.pem", f.ca.cert);
  const std::string cert_file = write_file(dir.string(), "server.pem", f.server.cert);
  const std::string key_file = write_file(dir.string(), "server.key", f.server.key);
  CHECK(ca_file == (dir / "ca.pem").string());
  {
    std::ifstream in(key_file, std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == f.server.key);
  }
  // Overwrites, and leaves no temporary file behind.
  CHECK(write_file(dir.string(), "server.key", "replaced") == key_file);
  {
    std::ifstream in(key_file, std::ios::binary);
    CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "replaced");
  }
  CHECK(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 3);
  write_file(dir.string(), "server.key", f.server.key);
  CHECK_THROWS_AS(write_file((dir / "missing").string(), "x.pem", "x"), std::runtime_error);

  // The way a receiver loads them: a handshake with a file-configured server.
  SslCtxPtr server(SSL_CTX_new(TLS_server_method()));
  REQUIRE(SSL_CTX_use_certificate_chain_file(server.get(), cert_file.c_str()) == 1);
  REQUIRE(SSL_CTX_use_PrivateKey_file(server.get(), key_file.c_str(), SSL_FILETYPE_PEM) == 1);
  REQUIRE(SSL_CTX_check_private_key(server.get()) == 1);
  REQUIRE(SSL_CTX_load_verify_locations(server.get(), ca_file.c_str(), nullptr) == 1);
  SSL_CTX_set_verify(server.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SslCtxPtr client = client_ctx(f.ca.cert, &f.client, TLS1_3_VERSION);
  const Outcome out = handshake(server.get(), client.get(), "127.0.0.1");
  CHECK(out.server_done);
  CHECK(out.client_done);
  CHECK(out.server_verify == X509_V_OK);
  CHECK(out.client_got == "pong");
}
