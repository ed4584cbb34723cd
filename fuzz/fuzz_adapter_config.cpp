// Feeds: the bytes of adapter_config.json, read by read_adapter_config from an adapter directory, to
// method_from_adapter_config (every method's options reader, compositions) both as a causal LM's adapter and as a
// sequence classifier's (take_modules_to_save + with_saved_modules), as load_adapter does.
// A finding: a crash or sanitizer report (a stack overflow from deep nesting included), an exception other than
// peft::Error (a nlohmann type_error means a reader took a value without checking its type), a peft::Error
// message of more than one line, or an allocation beyond -malloc_limit_mb.
#include "fuzz_util.h"
#include "peft/adapter_io.h"
#include "peft/classifier_head.h"
#include "peft/composition.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string directory = peft::fuzz::scratch_dir();
  peft::fuzz::write_input(directory + "/adapter_config.json", data, size);
  nlohmann::json config;
  if (!peft::fuzz::reads([&] { config = peft::read_adapter_config(directory); })) return 0;
  peft::fuzz::reads([&] { peft::method_from_adapter_config(config); });
  peft::fuzz::reads([&] {
    auto modules = peft::take_modules_to_save(config);
    peft::with_saved_modules(peft::method_from_adapter_config(config), modules);
  });
  return 0;
}
