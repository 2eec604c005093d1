// Listening sockets for otlpd's servers (the OTLP/HTTP receiver, the self-metrics and health
// endpoints): one way to read "host:port", resolve it and bind it, so every endpoint key behaves
// and reports errors alike.
#pragma once

#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "pipeline/status.h"

namespace otlpd {

// "host:port", "[v6]:port" or ":port" (every IPv4 interface) into its parts; false when
// malformed (no port, a port that is not a number up to 65535, an IPv6 address without brackets).
bool split_host_port(const std::string& address, std::string* host, std::string* port);

// "127.0.0.1:4318" or "[::1]:4318".
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& endpoint);

// Resolves `address` (as split_host_port reads it; a host name is looked up) and opens, binds
// (SO_REUSEADDR, so a restart is not refused while old connections linger in TIME_WAIT) and
// listens `acceptor` on the first address that binds, IPv4 addresses first: "localhost" often
// resolves to ::1 first while clients are mostly pointed at 127.0.0.1. On failure the acceptor is
// closed and the Status names the address: `address "x": expected host:port ...`,
// `resolve x: ...` or `bind 127.0.0.1:4318: Address already in use`.
Status listen_tcp(boost::asio::io_context& io, boost::asio::ip::tcp::acceptor& acceptor, const std::string& address);

}  // namespace otlpd
