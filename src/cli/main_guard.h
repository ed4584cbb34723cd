// Every command-line main runs its body through run_main: bad input (peft::Error) becomes one "error: ..." line
// and exit code 1; anything unexpected is reported as an internal error with exit code 2, never a crash.
#pragma once

#include <cstdio>
#include <exception>
#include <functional>

#include <c10/util/Exception.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/process_memory.h"

namespace peft {

inline int run_main(const std::function<int()>& body) {
  // Diagnostics go to stderr; stdout carries only results (counts, losses, generated text).
  spdlog::set_default_logger(spdlog::stderr_color_mt("peft"));
  keep_freed_tensors_in_heap();
  try {
    int code = body();
    std::fflush(stdout);
    return code;
  } catch (const Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "internal error (LibTorch): %s\n", e.what_without_backtrace());
    return 2;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "internal error: %s\n", e.what());
    return 2;
  }
}

}  // namespace peft
