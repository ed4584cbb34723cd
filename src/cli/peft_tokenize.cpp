// peft-tokenize --model DIR TEXT | --file FILE [--stats]
// Prints the token ids of TEXT (or of a whole file) as a JSON list, so that the tool's tokenization can be compared
// with any other implementation's; --stats prints the count and the encoding speed instead.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/main_guard.h"
#include "core/error.h"
#include "io/tokenizer.h"

int main(int argc, char** argv) {
  CLI::App app{"Print the token ids of a text as a JSON list."};
  std::string model, text, file;
  bool stats = false;
  app.add_option("--model,-m", model, "model directory (or tokenizer file) whose tokenizer to use")->required();
  auto* text_option = app.add_option("text", text, "the text to tokenize");
  app.add_option("--file,-f", file, "tokenize this file's whole contents instead")->excludes(text_option);
  app.add_flag("--stats", stats, "print the token count and tokens/s instead of the ids");
  CLI11_PARSE(app, argc, argv);

  return peft::run_main([&] {
    peft::check(!text.empty() || !file.empty() || app.count("text") > 0, "give a TEXT or --file FILE");
    auto tokenizer = peft::load_tokenizer(model, -1, -1);
    if (!file.empty()) {
      std::ifstream in(file, std::ios::binary);
      peft::check(in.good(), "cannot read " + file);
      std::ostringstream contents;
      contents << in.rdbuf();
      text = contents.str();
    }
    auto start = std::chrono::steady_clock::now();
    auto ids = tokenizer->encode(text);
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (stats) {
      std::printf("%zu tokens from %zu bytes in %.3f s: %.0f tokens/s, %.1f MB/s\n", ids.size(), text.size(), seconds,
                  static_cast<double>(ids.size()) / std::max(seconds, 1e-9),
                  static_cast<double>(text.size()) / 1e6 / std::max(seconds, 1e-9));
      return 0;
    }
    std::printf("[");
    for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? ", %ld" : "%ld", static_cast<long>(ids[i]));
    std::printf("]\n");
    return 0;
  });
}
