// PEFT's modules_to_save: whole modules of the base trained beside the method, in full, and saved in the adapter
// file keyed as PEFT keys them (base_model.model.<module path>.<parameter>; base_model.<...> for prompt-learning
// methods, whose PEFT model has no inner wrapper), with their names in adapter_config.json's modules_to_save.
// Any method can be wrapped: a causal LM takes the names a config lists (`peft.modules_to_save: [lm_head]`), a
// sequence classifier always its head and the modules its checkpoint lacked (task_type SEQ_CLS).
//
// A name selects every module whose path ends with it, as PEFT matches ("lm_head", "embed_tokens" for
// model.embed_tokens). PEFT trains a copy of each module, so a head tied to the embeddings is untied first: the
// trained one changes, the other keeps the base's values, and a merged model is written with both matrices.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "peft/method.h"

namespace peft {

class SequenceClassifier;

// `method` with the named modules trained and saved too. attach() attaches the method, then unfreezes the
// modules; a name that selects nothing is an error (listing the model's modules) unless it is one of `optional`,
// as PEFT skips the names it lists for every classifier ("classifier", "score").
std::unique_ptr<Method> with_modules_to_save(std::unique_ptr<Method> method, std::vector<std::string> modules,
                                             std::vector<std::string> optional = {});

// A classifier's head and created modules, plus `modules`. Full fine-tuning trains and writes them anyway.
std::unique_ptr<Method> with_classifier_head(std::unique_ptr<Method> method, const SequenceClassifier& model,
                                             std::vector<std::string> modules = {});

// For loading: the modules adapter_config.json lists in modules_to_save, removed from the config (the wrapped
// method's own reader then sees none). Throws peft::Error for a value that is not a list of strings.
std::vector<std::string> take_modules_to_save(nlohmann::json& config);

}  // namespace peft
