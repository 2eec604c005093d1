#include "net/tcp_listen.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace otlpd {

using tcp = boost::asio::ip::tcp;

bool split_host_port(const std::string& address, std::string* host, std::string* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  *host = address.substr(0, colon);
  *port = address.substr(colon + 1);
  if (!host->empty() && host->front() == '[') {
    if (host->size() < 3 || host->back() != ']') return false;
    *host = host->substr(1, host->size() - 2);
  } else if (host->find(':') != std::string::npos) {
    return false;  // an IPv6 address needs brackets
  }
  if (host->empty()) *host = "0.0.0.0";
  if (port->empty() || port->size() > 5 || !std::all_of(port->begin(), port->end(), ::isdigit)) return false;
  return std::stoi(*port) <= 65535;
}

std::string endpoint_text(const tcp::endpoint& endpoint) {
  std::string host = endpoint.address().to_string();
  if (endpoint.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(endpoint.port());
}

Status listen_tcp(boost::asio::io_context& io, tcp::acceptor& acceptor, const std::string& address) {
  std::string host, port;
  if (!split_host_port(address, &host, &port)) {
    return Status::invalid_argument("address \"" + address + "\": expected host:port ([host]:port for IPv6)");
  }
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec) return Status::invalid_argument("resolve " + address + ": " + ec.message());
  std::vector<tcp::endpoint> candidates;
  for (const auto& entry : results) candidates.push_back(entry.endpoint());
  std::stable_partition(candidates.begin(), candidates.end(), [](const tcp::endpoint& e) { return e.address().is_v4(); });
  std::string error = "resolve " + address + ": no address";
  for (const tcp::endpoint& ep : candidates) {
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(tcp::acceptor::max_listen_connections, ec);
    if (!ec) return Status::ok();
    error = "bind " + endpoint_text(ep) + ": " + ec.message();
    boost::system::error_code ignored;
    acceptor.close(ignored);
  }
  return Status::internal(error);
}

}  // namespace otlpd
