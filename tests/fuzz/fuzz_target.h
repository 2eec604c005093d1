// Fuzz target interface: each target defines the libFuzzer entry point and a few seed inputs.
// Built with clang and -DOTLPD_LIBFUZZER=ON the targets link libFuzzer; otherwise driver.cc runs
// them on their seeds and on random mutations for a bounded time (part of the CTest suite, where
// the sanitizer builds make it catch memory errors). A target aborts when a property fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// Valid inputs to start mutating from.
std::vector<std::string> fuzz_seeds();
