#include "net/tls_settings.h"

namespace otlpd {

std::optional<TlsServerSettings> read_tls_server(config::Node& parent) {
  if (!parent.has("tls")) return std::nullopt;
  config::Node node = parent.child("tls");
  TlsServerSettings s;
  node.read("cert_file", s.cert_file);
  node.read("key_file", s.key_file);
  node.read("client_ca_file", s.client_ca_file);
  node.read_enum("min_version", s.min_version, {{"1.2", TlsVersion::v1_2}, {"1.3", TlsVersion::v1_3}});
  node.read_duration("reload_interval", s.reload_interval);
  // Half a TLS config must not quietly serve plaintext, or TLS without the client check.
  if (s.cert_file.empty()) node.error("cert_file", "required when tls is set");
  if (s.key_file.empty()) node.error("key_file", "required when tls is set");
  node.finish();
  return s;
}

TlsClientSettings read_tls_client(config::Node& parent) {
  TlsClientSettings s;
  if (!parent.has("tls")) return s;
  config::Node node = parent.child("tls");
  node.read("insecure", s.insecure);
  node.read("insecure_skip_verify", s.insecure_skip_verify);
  node.read("ca_file", s.ca_file);
  node.read("cert_file", s.cert_file);
  node.read("key_file", s.key_file);
  node.read("server_name_override", s.server_name_override);
  node.read_enum("min_version", s.min_version, {{"1.2", TlsVersion::v1_2}, {"1.3", TlsVersion::v1_3}});
  // A client certificate without its key (or the reverse) would silently not be presented.
  if (!s.cert_file.empty() && s.key_file.empty()) node.error("key_file", "required with cert_file");
  if (s.cert_file.empty() && !s.key_file.empty()) node.error("cert_file", "required with key_file");
  if (s.insecure && s.sets_tls_options()) {
    node.error("insecure", "true means plaintext: remove it or the other tls settings");
  }
  node.finish();
  return s;
}

}  // namespace otlpd
