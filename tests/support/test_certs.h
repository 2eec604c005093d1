// In-memory X.509 test certificates for the TLS and mTLS tests, made with the OpenSSL 3 C API
// (no openssl CLI, no files unless a test writes them with write_file).
//
//  - make_ca(cn): a self-signed CA.
//  - make_cert(ca, options): a server or client certificate signed by that CA.
//  - make_self_signed(options): a leaf certificate signed by its own key (not a CA).
//  - write_file(dir, name, text): puts a PEM text into a test's temp dir for a `tls:` config block.
//
// Every key is a fresh EC P-256 key (fast to generate), written as unencrypted PKCS#8 PEM
// ("-----BEGIN PRIVATE KEY-----"); every certificate is X.509 v3, signed with SHA-256, with a random
// 128-bit serial, subjectKeyIdentifier and authorityKeyIdentifier. Errors throw std::runtime_error
// carrying OpenSSL's reason: this is test code.
//
// Example (mTLS):
//   auto ca = make_ca("otlpd test CA");
//   auto server = make_cert(ca, {.common_name = "localhost", .dns_names = {"localhost"},
//                                .ip_addresses = {"127.0.0.1", "::1"}});
//   auto client = make_cert(ca, {.common_name = "client", .client = true});
//   std::string ca_file = write_file(dir, "ca.pem", ca.cert);
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace otlpd::test {

// A certificate and its private key, both as PEM text.
struct Pem {
  std::string cert;  // "-----BEGIN CERTIFICATE-----"
  std::string key;   // "-----BEGIN PRIVATE KEY-----" (PKCS#8, unencrypted)
};

// What make_cert and make_self_signed put into a leaf certificate. Every member has a default
// initializer, so designated initializers may leave any out without -Wmissing-field-initializers.
struct CertOptions {
  // Subject CN. Hostname checks (X509_check_host, gRPC, asio) use the SAN entries below, not the
  // CN, whenever the certificate has a DNS SAN, so put every name a peer dials into dns_names.
  std::string common_name{};
  // subjectAltName entries. Nothing is added by default: a server certificate for a loopback
  // listener typically wants dns_names {"localhost"} and ip_addresses {"127.0.0.1", "::1"}.
  // With both empty the certificate has no subjectAltName extension at all.
  std::vector<std::string> dns_names{};
  std::vector<std::string> ip_addresses{};  // IPv4 or IPv6 literals, e.g. "127.0.0.1", "::1"
  // basicConstraints CA:TRUE and keyUsage keyCertSign,cRLSign as well (a CA that is also a leaf);
  // for a plain CA use make_ca.
  bool is_ca = false;
  // extendedKeyUsage clientAuth when true, else serverAuth.
  bool client = false;
  // notBefore = now + not_before_offset (default an hour ago, to tolerate clock skew);
  // notAfter = notBefore + valid_for. An already-expired certificate:
  //   {.not_before_offset = -std::chrono::hours(48), .valid_for = std::chrono::hours(24)}
  // A not-yet-valid one: a positive not_before_offset.
  std::chrono::seconds not_before_offset{-3600};
  std::chrono::seconds valid_for{86400 * 30};
};

// A self-signed CA: subject = issuer = CN common_name, basicConstraints critical CA:TRUE, keyUsage
// critical keyCertSign,cRLSign,digitalSignature; valid from an hour ago for ten years.
Pem make_ca(const std::string& common_name);

// A certificate for `options`, signed by `issuer` (a CA from make_ca; its key signs, its subject
// becomes the issuer name and its key identifier the authorityKeyIdentifier).
Pem make_cert(const Pem& issuer, const CertOptions& options);

// A certificate for `options` signed by its own key (issuer = subject). Peers trust it only when
// it is itself in their trust store.
Pem make_self_signed(const CertOptions& options);

// Writes `text` to dir/name (through a temporary file renamed into place, so a file watcher never
// sees half a PEM) and returns the path. `dir` must exist: it is a test's temp dir.
std::string write_file(const std::string& dir, const std::string& name, const std::string& text);

}  // namespace otlpd::test
