#include "extensions/bearertokenauth/bearer_token.h"

#include <sys/stat.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

namespace otlpd {

namespace {

constexpr int64_t kFileCheckIntervalMs = 1000;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trimmed(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return s.substr(begin, end - begin);
}

// What changes when the file is rewritten or replaced; empty when it cannot be stat'ed.
std::string stamp_of(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
         std::to_string(st.st_size) + ":" + std::to_string(st.st_ino);
}

}  // namespace

bool constant_time_equal(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

void read_authenticator(config::Node& node, std::string* authenticator) {
  if (!node.has("auth")) return;
  config::Node auth = node.child("auth");
  auth.read("authenticator", *authenticator);
  if (authenticator->empty()) auth.error("authenticator", "required (the id of a bearertokenauth extension)");
  auth.finish();
}

const BearerTokenSettings* find_bearer_token(const BearerTokens* tokens, const std::string& authenticator) {
  if (!tokens) return nullptr;
  auto it = tokens->find(authenticator);
  return it == tokens->end() ? nullptr : &it->second;
}

BearerToken::BearerToken(const BearerTokenSettings& settings)
    : settings_(settings), header_(lowercase(settings.header)) {}

std::shared_ptr<BearerToken> BearerToken::open(const BearerTokenSettings& settings, Status* error) {
  std::shared_ptr<BearerToken> t(new BearerToken(settings));
  std::string token = settings.token;
  if (!settings.filename.empty()) {
    t->file_stamp_ = stamp_of(settings.filename);
    if (!t->read_file(&token, error)) return nullptr;
  }
  if (token.empty()) {
    *error = Status::invalid_argument("bearertokenauth: the token is empty");
    return nullptr;
  }
  t->expected_ = std::make_shared<const std::string>(settings.scheme.empty() ? token : settings.scheme + " " + token);
  t->next_check_ms_ = steady_ms() + kFileCheckIntervalMs;
  return t;
}

bool BearerToken::read_file(std::string* token, Status* error) const {
  std::ifstream in(settings_.filename);
  if (!in) {
    *error = Status::invalid_argument("bearertokenauth: cannot read " + settings_.filename);
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  *token = trimmed(text.str());
  if (token->empty()) {
    *error = Status::invalid_argument("bearertokenauth: " + settings_.filename + " holds no token");
    return false;
  }
  return true;
}

std::shared_ptr<const std::string> BearerToken::expected() const {
  if (!settings_.filename.empty() && steady_ms() >= next_check_ms_.load(std::memory_order_relaxed)) {
    std::lock_guard lock(mu_);
    if (steady_ms() >= next_check_ms_.load(std::memory_order_relaxed)) {  // another thread may have checked
      next_check_ms_ = steady_ms() + kFileCheckIntervalMs;
      const std::string stamp = stamp_of(settings_.filename);
      if (stamp != file_stamp_) {
        file_stamp_ = stamp;
        std::string token;
        Status error;
        if (read_file(&token, &error)) {
          expected_ = std::make_shared<const std::string>(settings_.scheme.empty() ? token
                                                                                   : settings_.scheme + " " + token);
          spdlog::info("bearertokenauth: read a new token from {}", settings_.filename);
        } else {
          spdlog::warn("{}; the previous token stays in use", error.message());
        }
      }
    }
    return expected_;
  }
  std::lock_guard lock(mu_);
  return expected_;
}

bool BearerToken::accepts(std::string_view value) const { return constant_time_equal(value, *expected()); }

std::string BearerToken::header_value() const { return *expected(); }

}  // namespace otlpd
