// peft-compare's methods: each is trained on the comparison's base config, so that model, data, steps, batch and
// seed are the same for all; a method brings only its `peft` section and its optimiser settings (learning rate,
// schedule, weight decay, ...), since a fair comparison tunes those per method. Given as
//   run config files (lora.yaml, ...): their peft section and optimiser keys are taken, the rest is noted as ignored;
//   or one YAML file holding a list whose items are such file paths (relative to the list) or inline mappings
//   {name: ..., peft: {...}, train: {learning_rate: ...}}.
#pragma once

#include <string>
#include <vector>

namespace peft {

struct ComparisonEntry {
  std::string name;       // the row's name: the file's stem or the item's name (made unique)
  std::string source;     // where it was given, for messages
  std::string peft_yaml;  // the peft section
  std::vector<std::pair<std::string, std::string>> train;  // optimiser keys it sets, with YAML values
  std::vector<std::string> ignored;                        // what it sets that the base config decides instead
};

// The train keys a method may set for itself; all others come from the base config.
const std::vector<std::string>& per_method_train_keys();

// Throws peft::Error naming the file (and item) for: a missing or unparsable file, an entry without a peft section,
// an inline item with keys other than name, peft and train, a train key outside per_method_train_keys(), and an
// empty list.
std::vector<ComparisonEntry> load_comparison_entries(const std::vector<std::string>& files);

// Writes `path`: the base config with the entry's peft section and optimiser keys, output.dir = `output_dir` (which
// it may overwrite), and no held-out evaluation inside the timed training loop (train.eval_every = 0).
void write_entry_config(const std::string& base_path, const ComparisonEntry& entry, const std::string& output_dir,
                        const std::string& path);

}  // namespace peft
