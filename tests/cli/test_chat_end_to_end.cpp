// Conversations end to end on the embedded stories260K: peft-train on {"messages"} records with the built-in
// simple template, peft-eval --chat for --prompt and --task generation, and the one-line refusals.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cli_testing.h"

namespace peft {
namespace {

using test::expect_one_line_error;
using test::tool;

// The first `count` lines of a shipped chat file, written to `path`.
std::string head_of(const std::string& file, int count, const std::string& path) {
  std::istringstream lines(test::read_text(test::source_dir() + "/third_party/self_instruct_chat/" + file));
  std::string kept, line;
  for (int i = 0; i < count && std::getline(lines, line); ++i) kept += line + "\n";
  return test::write_text(path, kept);
}

std::string chat_config(const std::string& work, const std::string& data_lines) {
  return test::write_text(work + "/chat.yaml", "model:\n  path: " + test::model_dir() +
                                                   "\n"
                                                   "data:\n" +
                                                   data_lines +
                                                   "  max_length: 128\n"
                                                   "peft:\n  method: lora\n  r: 4\n"
                                                   "train:\n  max_steps: 4\n  batch_size: 4\n  threads: 1\n"
                                                   "output:\n  dir: " +
                                                   work + "/out\n");
}

TEST(ChatEndToEnd, TrainOnConversationsThenAnswerWithChat) {
  std::string work = test::temp_dir("chat-e2e");
  std::string train = head_of("train.jsonl", 16, work + "/train.jsonl");
  std::string eval = head_of("eval.jsonl", 4, work + "/eval.jsonl");
  auto trained =
      test::run_command(tool("peft-train") + " --config " +
                        chat_config(work, "  train: " + train + "\n  eval: " + eval + "\n  chat_template: simple\n"));
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  EXPECT_NE(trained.output.find("16 conversations rendered with the chat template simple"), std::string::npos)
      << trained.output;
  EXPECT_NE(test::read_text(work + "/out/run_config.yaml").find("chat_template: simple"), std::string::npos);

  // The held-out loss of the same conversations, measured by peft-eval with the same template.
  auto loss = test::run_command(tool("peft-eval") + " --threads 1 --model " + test::model_dir() + " --adapter " + work +
                                "/out --data " + eval + " --max-length 128 --chat-template simple");
  ASSERT_EQ(loss.exit_code, 0) << loss.output;
  EXPECT_GT(test::parse_loss(loss.output), 0.0);

  auto reply = test::run_command(tool("peft-eval") + " --threads 1 --model " + test::model_dir() + " --adapter " +
                                 work + "/out --chat --chat-template simple --prompt 'Name a fruit.'" +
                                 " --max-new-tokens 8 --json " + work + "/reply.json");
  ASSERT_EQ(reply.exit_code, 0) << reply.output;
  EXPECT_NE(reply.output.find("chat template: simple"), std::string::npos) << reply.output;
  EXPECT_EQ(reply.output.find("User:"), std::string::npos) << reply.output;  // the reply alone

  std::string set = head_of("eval_generation.jsonl", 3, work + "/gen.jsonl");
  auto scored = test::run_command(tool("peft-eval") + " --threads 1 --model " + test::model_dir() +
                                  " --task generation --chat --chat-template simple --data " + set +
                                  " --max-new-tokens 8 --json " + work + "/gen.json");
  ASSERT_EQ(scored.exit_code, 0) << scored.output;
  EXPECT_NE(scored.output.find("ROUGE-L"), std::string::npos) << scored.output;
  auto numbers = nlohmann::json::parse(test::read_text(work + "/gen.json"));
  EXPECT_EQ(numbers["generation"]["chat_template"], "simple");
}

TEST(ChatEndToEnd, ConversationsWithoutATemplateAndBadTemplatesAreOneLine) {
  std::string work = test::temp_dir("chat-e2e-bad");
  std::string train = head_of("train.jsonl", 4, work + "/train.jsonl");
  expect_one_line_error(
      test::run_command(tool("peft-train") + " --config " + chat_config(work, "  train: " + train + "\n")),
      "train.jsonl:1: a conversation needs a chat template");
  std::string broken = test::write_text(work + "/broken.jinja", "{% for m in messages %}\n{{ m.content | wordwrap }}");
  expect_one_line_error(
      test::run_command(tool("peft-train") + " --config " +
                        chat_config(work, "  train: " + train + "\n  chat_template: " + broken + "\n")),
      "line 2");
  expect_one_line_error(
      test::run_command(tool("peft-eval") + " --model " + test::model_dir() + " --chat --prompt hello"),
      "--chat: " + test::model_dir() + " has no chat template");
  expect_one_line_error(test::run_command(tool("peft-train") + " --config " +
                                          chat_config(work, "  train: " + train + "\n  train_on: everything\n")),
                        "train_on");
}

}  // namespace
}  // namespace peft
