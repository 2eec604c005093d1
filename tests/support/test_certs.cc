#include "support/test_certs.h"

#include "support/openssl_ptr.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <unistd.h>

namespace otlpd::test {
namespace {

template <auto Free>
using Deleter = OpensslDeleter<Free>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING_free>>;
using Ia5StringPtr = std::unique_ptr<ASN1_IA5STRING, Deleter<ASN1_IA5STRING_free>>;

// Throws with `what` and every reason on OpenSSL's (thread-local) error queue, which it empties.
[[noreturn]] void fail(const std::string& what) {
  std::string message = "test_certs: " + what;
  const char* sep = ": ";
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    message += sep;
    message += buf;
    sep = "; ";
  }
  throw std::runtime_error(message);
}

void check(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

PkeyPtr generate_key() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EC P-256 key generation");
  return key;
}

template <typename Write>
std::string to_pem(Write&& write, const char* what) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(bio != nullptr, "BIO_new");
  check(write(bio.get()) == 1, what);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

BioPtr read_bio(const std::string& text) {
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  check(bio != nullptr, "BIO_new_mem_buf");
  return bio;
}

// A random positive serial of up to 128 bits (RFC 5280 allows 20 octets; nonzero).
void set_random_serial(X509* cert) {
  BnPtr bn(BN_new());
  check(bn != nullptr, "BN_new");
  do {
    check(BN_rand(bn.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1, "BN_rand");
  } while (BN_is_zero(bn.get()));
  check(BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) != nullptr, "serial number");
}

// Adds one extension written in openssl.cnf syntax ("critical,CA:TRUE", "hash", ...), resolved in
// `ctx` (which names the subject and issuer certificates for the key identifiers).
void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  check(ext != nullptr, std::string("extension ") + OBJ_nid2sn(nid) + "=" + value);
  check(X509_add_ext(cert, ext.get(), -1) == 1, std::string("adding extension ") + OBJ_nid2sn(nid));
}

// subjectAltName from DNS names and IP literals, built as GENERAL_NAMEs rather than through the
// config-string parser, so that no name is split at a comma or colon.
void add_subject_alt_name(X509* cert, const std::vector<std::string>& dns_names,
                          const std::vector<std::string>& ip_addresses) {
  if (dns_names.empty() && ip_addresses.empty()) return;
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  check(names != nullptr, "sk_GENERAL_NAME_new_null");
  for (const std::string& dns : dns_names) {
    GeneralNamePtr name(GENERAL_NAME_new());
    Ia5StringPtr value(ASN1_IA5STRING_new());
    check(name && value && ASN1_STRING_set(value.get(), dns.data(), static_cast<int>(dns.size())) == 1,
          "DNS name " + dns);
    GENERAL_NAME_set0_value(name.get(), GEN_DNS, value.release());
    check(sk_GENERAL_NAME_push(names.get(), name.get()) > 0, "sk_GENERAL_NAME_push");
    name.release();
  }
  for (const std::string& ip : ip_addresses) {
    OctetStringPtr value(a2i_IPADDRESS(ip.c_str()));
    check(value != nullptr, "not an IP address: '" + ip + "'");
    GeneralNamePtr name(GENERAL_NAME_new());
    check(name != nullptr, "GENERAL_NAME_new");
    GENERAL_NAME_set0_value(name.get(), GEN_IPADD, value.release());
    check(sk_GENERAL_NAME_push(names.get(), name.get()) > 0, "sk_GENERAL_NAME_push");
    name.release();
  }
  check(X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_APPEND) == 1, "subjectAltName");
}

struct Spec {
  std::string common_name;
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  bool is_ca = false;
  bool leaf = true;  // extendedKeyUsage (serverAuth or clientAuth) and digitalSignature
  bool client = false;
  std::chrono::seconds not_before_offset{0};
  std::chrono::seconds valid_for{0};
};

// Issues a certificate for a new key. `issuer` and `issuer_key` both null: self-signed.
Pem issue(const Spec& spec, X509* issuer, EVP_PKEY* issuer_key) {
  PkeyPtr key = generate_key();
  X509Ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
  set_random_serial(cert.get());

  // Both times from one clock reading, so that notAfter - notBefore is exactly valid_for.
  time_t now = std::time(nullptr);
  const long not_before = static_cast<long>(spec.not_before_offset.count());
  const long not_after = not_before + static_cast<long>(spec.valid_for.count());
  check(X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, not_before, &now) != nullptr, "notBefore");
  check(X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, not_after, &now) != nullptr, "notAfter");

  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (!spec.common_name.empty()) {
    check(X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(spec.common_name.c_str()), -1, -1,
                                     0) == 1,
          "subject CN '" + spec.common_name + "' (1 to 64 characters)");
  }
  check(X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : subject) == 1,
        "X509_set_issuer_name");
  // The public key first: subjectKeyIdentifier=hash is computed from it.
  check(X509_set_pubkey(cert.get(), key.get()) == 1, "X509_set_pubkey");

  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  if (spec.is_ca) {
    add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign");
  } else {
    add_ext(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
  }
  if (spec.leaf) add_ext(cert.get(), &ctx, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
  add_subject_alt_name(cert.get(), spec.dns_names, spec.ip_addresses);
  add_ext(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  // "always": OpenSSL 3 leaves the AKID out of self-signed certificates for a plain "keyid"; with
  // "always" it copies the issuer's subjectKeyIdentifier (for self-signed ones, the one just added).
  add_ext(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always");

  check(X509_sign(cert.get(), issuer_key ? issuer_key : key.get(), EVP_sha256()) > 0, "X509_sign");

  Pem pem;
  pem.cert = to_pem([&](BIO* b) { return PEM_write_bio_X509(b, cert.get()); }, "PEM_write_bio_X509");
  pem.key = to_pem([&](BIO* b) { return PEM_write_bio_PKCS8PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr); },
                   "PEM_write_bio_PKCS8PrivateKey");
  return pem;
}

Spec leaf_spec(const CertOptions& options) {
  Spec spec;
  spec.common_name = options.common_name;
  spec.dns_names = options.dns_names;
  spec.ip_addresses = options.ip_addresses;
  spec.is_ca = options.is_ca;
  spec.leaf = true;
  spec.client = options.client;
  spec.not_before_offset = options.not_before_offset;
  spec.valid_for = options.valid_for;
  return spec;
}

}  // namespace

Pem make_ca(const std::string& common_name) {
  Spec spec;
  spec.common_name = common_name;
  spec.is_ca = true;
  spec.leaf = false;
  spec.not_before_offset = std::chrono::seconds(-3600);
  spec.valid_for = std::chrono::seconds(86400L * 3650);
  return issue(spec, nullptr, nullptr);
}

Pem make_cert(const Pem& issuer, const CertOptions& options) {
  BioPtr cert_bio = read_bio(issuer.cert);
  X509Ptr issuer_cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  check(issuer_cert != nullptr, "reading the issuer certificate PEM");
  BioPtr key_bio = read_bio(issuer.key);
  PkeyPtr issuer_key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  check(issuer_key != nullptr, "reading the issuer key PEM");
  check(X509_check_private_key(issuer_cert.get(), issuer_key.get()) == 1,
        "the issuer key does not match the issuer certificate");
  return issue(leaf_spec(options), issuer_cert.get(), issuer_key.get());
}

Pem make_self_signed(const CertOptions& options) { return issue(leaf_spec(options), nullptr, nullptr); }

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::filesystem::path path = std::filesystem::path(dir) / name;
  std::filesystem::path tmp = path;
  tmp += ".tmp" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    if (!out) throw std::runtime_error("test_certs: cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, path);
  return path.string();
}

}  // namespace otlpd::test
