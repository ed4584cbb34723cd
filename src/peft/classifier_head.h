// PEFT's modules_to_save for sequence classification (task_type SEQ_CLS): whatever the method, the classifier
// head trains in full beside it and is saved in the adapter file, keyed as PEFT keys it
// (base_model.model.classifier.weight; base_model.classifier.weight for prompt-learning methods, whose PEFT
// model has no inner wrapper). Modules the checkpoint lacked (BERT's pooler in a pretraining checkpoint
// without one) are treated the same way, so that a saved adapter reproduces the trained model.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "peft/method.h"

namespace peft {

class SequenceClassifier;

// `method` with `model`'s head (and created modules) added: attach() attaches the method, then unfreezes them.
std::unique_ptr<Method> with_classifier_head(std::unique_ptr<Method> method, const SequenceClassifier& model);

// For loading: the modules adapter_config.json lists in modules_to_save, and the config without that key (the
// wrapped method's own reader refuses modules_to_save).
std::vector<std::string> take_modules_to_save(nlohmann::json& config);
std::unique_ptr<Method> with_saved_modules(std::unique_ptr<Method> method, std::vector<std::string> modules);

}  // namespace peft
