// Next-token cross-entropy computed without materialising the (tokens × vocabulary) logits: the head product,
// log-softmax and loss run over chunks of rows, and because the loss is the end of the graph its gradient with
// respect to the hidden states (and the head weight, when trainable) is formed chunk by chunk in the forward
// pass. Backward then only scales the stored gradients: no logits are kept or recomputed.
#pragma once

#include <torch/torch.h>

namespace peft {

class CausalLM;
class Model;
class SequenceClassifier;
struct Batch;

// Mean cross-entropy over rows: hidden (N, d), weight (V, d), targets (N) int64 in [0, V); `softcap` > 0 caps
// the logits z first: cap·tanh(z / cap) (Gemma 2's final_logit_softcapping).
torch::Tensor fused_linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                         const torch::Tensor& targets, double softcap = 0.0);

// Per-row negative log-likelihood (N) in float32, without autograd (evaluation).
torch::Tensor token_nll(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
                        double softcap = 0.0);

// The scored positions of a batch after the causal shift: rows of hidden (B, T-1) whose next label is not
// -100, as flat indices into (B * (T-1)), and their targets.
struct ScoredPositions {
  torch::Tensor flat_index;  // (N) int64
  torch::Tensor targets;     // (N) int64
  torch::Tensor row;         // (N) int64: which example each position belongs to
};
ScoredPositions scored_positions(const torch::Tensor& labels);

// The training loss of `model` on `batch`: mean next-token cross-entropy over the scored tokens.
torch::Tensor causal_lm_loss(CausalLM& model, const Batch& batch);

// The training loss of a sequence classifier: mean cross-entropy of the batch's classes.
torch::Tensor classification_loss(SequenceClassifier& model, const Batch& batch);

// Whichever of the above fits the model (a ScriptModel computes its own by its output contract).
torch::Tensor training_loss(Model& model, const Batch& batch);

// Negative log-likelihood of each scored position (scored_positions() order), float32, without autograd:
// what held-out loss and rank classification are computed from.
torch::Tensor scored_token_nll(Model& model, const Batch& batch);

// (B, C) class logits of a model that classifies with a head (a SequenceClassifier, or a ScriptModel that returns
// class logits); a peft::Error for other models.
torch::Tensor class_logits(Model& model, const Batch& batch);

}  // namespace peft
