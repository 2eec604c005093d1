// bearertokenauth: what a receiver accepts, what an exporter sends, and token files rotated.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "extensions/bearertokenauth/bearer_token.h"

using namespace otlpd;
namespace fs = std::filesystem;

namespace {

fs::path temp_file(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("otlpd-token-" + std::to_string(getpid()));
  fs::create_directories(dir);
  return dir / name;
}

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Polls `condition` until it holds or 5 s passed.
template <typename Condition>
bool eventually(Condition condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling a deadline
  }
  return true;
}

}  // namespace

TEST_CASE("constant_time_equal compares whole strings", "[bearertokenauth]") {
  CHECK(constant_time_equal("Bearer abc", "Bearer abc"));
  CHECK_FALSE(constant_time_equal("Bearer abd", "Bearer abc"));
  CHECK_FALSE(constant_time_equal("Bearer ab", "Bearer abc"));
  CHECK_FALSE(constant_time_equal("Bearer abcd", "Bearer abc"));
  CHECK_FALSE(constant_time_equal("", "Bearer abc"));
  CHECK(constant_time_equal("", ""));
  CHECK_FALSE(constant_time_equal(std::string("Bearer abc\0", 11), "Bearer abc"));
}

TEST_CASE("an inline token: exactly \"<scheme> <token>\" in the configured header is accepted", "[bearertokenauth]") {
  BearerTokenSettings settings;
  settings.token = "s3cret-token";
  Status error;
  auto token = BearerToken::open(settings, &error);
  REQUIRE(token);
  CHECK(token->header() == "authorization");
  CHECK(token->header_value() == "Bearer s3cret-token");
  CHECK(token->accepts("Bearer s3cret-token"));
  CHECK_FALSE(token->accepts("Bearer s3cret-tokeN"));  // same length, one byte differs
  CHECK_FALSE(token->accepts("Bearer s3cret-toke"));
  CHECK_FALSE(token->accepts("Bearer s3cret-token "));
  CHECK_FALSE(token->accepts("bearer s3cret-token"));
  CHECK_FALSE(token->accepts("s3cret-token"));
  CHECK_FALSE(token->accepts(""));

  settings.header = "X-Api-Key";
  settings.scheme = "";
  token = BearerToken::open(settings, &error);
  REQUIRE(token);
  CHECK(token->header() == "x-api-key");
  CHECK(token->accepts("s3cret-token"));
  CHECK_FALSE(token->accepts("Bearer s3cret-token"));
}

TEST_CASE("a token file is trimmed, re-read when it changes, and kept when it goes bad", "[bearertokenauth]") {
  const fs::path file = temp_file("token");
  write(file, "  first-token\n");
  BearerTokenSettings settings;
  settings.filename = file.string();
  Status error;
  auto token = BearerToken::open(settings, &error);
  REQUIRE(token);
  CHECK(token->accepts("Bearer first-token"));

  write(file, "second-token-longer\n");
  REQUIRE(eventually([&] { return token->accepts("Bearer second-token-longer"); }));
  CHECK_FALSE(token->accepts("Bearer first-token"));
  CHECK(token->header_value() == "Bearer second-token-longer");

  // Emptied: the previous token stays in use rather than letting nothing (or everything) in.
  write(file, "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // past one file check interval
  CHECK(token->accepts("Bearer second-token-longer"));
  CHECK_FALSE(token->accepts("Bearer "));
  fs::remove(file);
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  CHECK(token->accepts("Bearer second-token-longer"));
  fs::remove_all(file.parent_path());
}

TEST_CASE("a token file that is missing or empty at start is an error naming it", "[bearertokenauth]") {
  BearerTokenSettings settings;
  settings.filename = "/nonexistent/otlpd-token";
  Status error;
  CHECK_FALSE(BearerToken::open(settings, &error));
  CHECK(error.message() == "bearertokenauth: cannot read /nonexistent/otlpd-token");

  const fs::path file = temp_file("empty");
  write(file, " \n");
  settings.filename = file.string();
  CHECK_FALSE(BearerToken::open(settings, &error));
  CHECK(error.message() == "bearertokenauth: " + file.string() + " holds no token");
  fs::remove_all(file.parent_path());
}
