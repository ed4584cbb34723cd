#include "train/loss.h"

#include "core/error.h"
#include "data/batch.h"
#include "data/dataset.h"
#include "models/causal_lm.h"
#include "models/sequence_classifier.h"
#include "models/torchscript/script_model.h"

namespace peft {
namespace {

// Rows per chunk so that one chunk's logits hold about 8M floats (32 MB) whatever the vocabulary.
int64_t chunk_rows(int64_t vocab_size) { return std::max<int64_t>(1, (int64_t{1} << 23) / vocab_size); }

// Log-probabilities (float32) of a chunk's rows and the negative log-likelihood of each row's target.
// log_softmax is one fused kernel; logsumexp is composed of several passes and was the slower choice.
struct ChunkStats {
  torch::Tensor log_probs;  // (n, V) float32
  torch::Tensor nll;        // (n)
  torch::Tensor capped;     // (n, V) tanh(z / cap) of soft-capped logits z, for the gradient; undefined without
};

ChunkStats chunk_stats(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                       double softcap) {
  auto logits = torch::matmul(hidden, weight.t());
  torch::Tensor capped;
  if (softcap > 0) {  // as HF: the cap is applied to the logits in the model's dtype
    capped = torch::tanh(logits / softcap);
    logits = capped * softcap;
  }
  auto log_probs = torch::log_softmax(logits.to(torch::kFloat), -1);
  auto nll = log_probs.gather(1, targets.unsqueeze(1)).squeeze(1).neg();
  return {log_probs, nll, capped};
}

class FusedLinearCrossEntropy : public torch::autograd::Function<FusedLinearCrossEntropy> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& weight, const torch::Tensor& targets, double softcap,
                               bool hidden_grad, bool weight_grad) {
    int64_t rows = hidden.size(0), step = chunk_rows(weight.size(0));
    auto loss = torch::zeros({}, hidden.options().dtype(torch::kFloat));
    torch::Tensor grad_hidden = hidden_grad ? torch::empty_like(hidden) : torch::Tensor();
    torch::Tensor grad_weight =
        weight_grad ? torch::zeros_like(weight, weight.options().dtype(torch::kFloat)) : torch::Tensor();
    for (int64_t start = 0; start < rows; start += step) {
      int64_t n = std::min(step, rows - start);
      auto h = hidden.narrow(0, start, n);
      auto t = targets.narrow(0, start, n);
      auto stats = chunk_stats(h, weight, t, softcap);
      loss += stats.nll.sum();
      if (!hidden_grad && !weight_grad) continue;
      // d(mean CE)/d(logits) = (softmax − onehot) / rows, formed in place in the log-probabilities' buffer.
      auto grad_logits = stats.log_probs.exp_();
      grad_logits.scatter_add_(1, t.unsqueeze(1), torch::full({n, 1}, -1.0f, grad_logits.options()));
      grad_logits.div_(static_cast<double>(rows));
      if (stats.capped.defined()) grad_logits.mul_(1 - stats.capped.to(torch::kFloat).square());  // d cap·tanh(z/cap)
      auto grad_logits_cast = grad_logits.to(weight.scalar_type());
      if (hidden_grad) grad_hidden.narrow(0, start, n).copy_(torch::matmul(grad_logits_cast, weight));
      if (weight_grad) grad_weight.add_(torch::matmul(grad_logits_cast.t(), h).to(torch::kFloat));
    }
    if (hidden_grad) ctx->saved_data["grad_hidden"] = grad_hidden;
    if (weight_grad) ctx->saved_data["grad_weight"] = grad_weight;
    ctx->saved_data["weight_dtype"] = weight.scalar_type();
    return loss / static_cast<double>(rows);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto scale = grad_outputs[0];
    torch::Tensor grad_hidden, grad_weight;
    if (ctx->saved_data.count("grad_hidden")) {
      grad_hidden = ctx->saved_data["grad_hidden"].toTensor();
      grad_hidden = grad_hidden * scale.to(grad_hidden.scalar_type());
    }
    if (ctx->saved_data.count("grad_weight")) {
      grad_weight = ctx->saved_data["grad_weight"].toTensor() * scale;
      grad_weight = grad_weight.to(ctx->saved_data["weight_dtype"].toScalarType());
    }
    return {grad_hidden, grad_weight, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor fused_linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                         const torch::Tensor& targets, double softcap) {
  bool grad = torch::GradMode::is_enabled();
  bool hidden_grad = grad && hidden.requires_grad();
  bool weight_grad = grad && weight.requires_grad();
  if (!hidden_grad && !weight_grad) return token_nll(hidden, weight, targets, softcap).mean();
  return FusedLinearCrossEntropy::apply(hidden, weight, targets, softcap, hidden_grad, weight_grad);
}

torch::Tensor token_nll(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                        double softcap) {
  torch::NoGradGuard no_grad;
  int64_t rows = hidden.size(0), step = chunk_rows(weight.size(0));
  auto nll = torch::empty({rows}, hidden.options().dtype(torch::kFloat));
  for (int64_t start = 0; start < rows; start += step) {
    int64_t n = std::min(step, rows - start);
    auto stats = chunk_stats(hidden.narrow(0, start, n), weight, targets.narrow(0, start, n), softcap);
    nll.narrow(0, start, n).copy_(stats.nll);
  }
  return nll;
}

ScoredPositions scored_positions(const torch::Tensor& labels) {
  int64_t length = labels.size(1);
  auto next = labels.narrow(1, 1, length - 1).reshape({-1});  // label of the token each position predicts
  auto flat_index = (next != kIgnoreIndex).nonzero().squeeze(1);
  return {flat_index, next.index_select(0, flat_index), torch::div(flat_index, length - 1, "floor")};
}

namespace {

// The final hidden states (N, d) of the positions that predict a scored token.
torch::Tensor scored_hidden_rows(CausalLM& model, const Batch& batch, const ScoredPositions& scored) {
  auto hidden = model.hidden_states(batch.input_ids, batch.attention_mask);  // (B, T, d)
  int64_t length = hidden.size(1), dim = hidden.size(2);
  return hidden.narrow(1, 0, length - 1).reshape({-1, dim}).index_select(0, scored.flat_index);
}

}  // namespace

torch::Tensor causal_lm_loss(CausalLM& model, const Batch& batch) {
  auto scored = scored_positions(batch.labels);
  auto rows = scored_hidden_rows(model, batch, scored);  // (N, d)
  auto head = model.head();
  if (!head->hooks().empty() || head->bias.defined()) {
    // A head adapted by a method goes through its projection; the logits then exist in full.
    return torch::nn::functional::cross_entropy(model.head_logits(rows).to(torch::kFloat), scored.targets);
  }
  return fused_linear_cross_entropy(rows, head->weight, scored.targets, model.config().final_logit_softcap);
}

torch::Tensor classification_loss(SequenceClassifier& model, const Batch& batch) {
  auto logits = model.classify(batch.input_ids, batch.attention_mask, batch.token_type_ids);
  return torch::nn::functional::cross_entropy(logits.to(torch::kFloat), batch.class_labels);
}

torch::Tensor training_loss(Model& model, const Batch& batch) {
  if (auto* script = dynamic_cast<ScriptModel*>(&model)) return script->loss(batch);
  if (auto* classifier = dynamic_cast<SequenceClassifier*>(&model)) return classification_loss(*classifier, batch);
  return causal_lm_loss(dynamic_cast<CausalLM&>(model), batch);
}

torch::Tensor scored_token_nll(Model& model, const Batch& batch) {
  torch::NoGradGuard no_grad;
  if (auto* script = dynamic_cast<ScriptModel*>(&model)) return script->scored_nll(batch);
  auto* causal = dynamic_cast<CausalLM*>(&model);
  check(causal != nullptr, model.description() + " classifies with its head; it does not score tokens");
  auto scored = scored_positions(batch.labels);
  auto rows = scored_hidden_rows(*causal, batch, scored);
  auto head = causal->head();
  if (head->hooks().empty() && !head->bias.defined()) {
    return token_nll(rows, head->weight, scored.targets, causal->config().final_logit_softcap);
  }
  return torch::nn::functional::cross_entropy(causal->head_logits(rows).to(torch::kFloat), scored.targets,
                                              torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
}

torch::Tensor class_logits(Model& model, const Batch& batch) {
  if (auto* classifier = dynamic_cast<SequenceClassifier*>(&model)) {
    return classifier->classify(batch.input_ids, batch.attention_mask, batch.token_type_ids);
  }
  auto* script = dynamic_cast<ScriptModel*>(&model);
  check(script != nullptr && script->output() == ScriptModel::Output::class_logits,
        model.description() + " has no classification head (it returns no class logits)");
  return script->forward(batch);
}

}  // namespace peft
