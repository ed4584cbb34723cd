// Feeds: a YAML run config to RunConfig::load (yaml-cpp, every section's typed reading, each PEFT method's keys,
// the resolved-config writer). Lines after a line "#overrides" are passed as section.key=value overrides, one per
// line (the marker is a YAML comment, so seeds stay valid configs).
// A finding: a crash or sanitizer report (a stack overflow from deep nesting included), an exception other than
// peft::Error (a YAML:: or std::filesystem exception escaping the loader), a peft::Error message of more than one
// line, or an allocation beyond -malloc_limit_mb.
#include <string>
#include <vector>

#include "config/run_config.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = peft::fuzz::scratch_dir() + "/run.yaml";
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> overrides;
  const std::string marker = "\n#overrides\n";
  size_t at = text.find(marker);
  if (at != std::string::npos) {
    for (size_t start = at + marker.size(); start < text.size();) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      overrides.push_back(text.substr(start, end - start));
      start = end + 1;
    }
    text.resize(at + 1);
  }
  peft::fuzz::write_input(path, reinterpret_cast<const uint8_t*>(text.data()), text.size());
  peft::fuzz::reads([&] { peft::RunConfig::load(path, overrides); });
  return 0;
}
