// Conversations rendered with a chat template: which tokens take the loss (the assistant's turns with their
// end-of-turn marker), the marker read off the template, conversation records in data files, and bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "data/byte_tokenizer.h"
#include "data/chat.h"
#include "data/dataset.h"
#include "io/tokenizer.h"
#include "test_util.h"

using namespace peft;
using nlohmann::json;
using peft::test::error_of;
using peft::test::temp_dir;
using peft::test::write_text;

namespace {

using peft::test::ByteTokenizer;

json conversation() {
  return json::array({{{"role", "system"}, {"content", "Be brief."}},
                      {{"role", "user"}, {"content", "Hello?"}},
                      {{"role", "assistant"}, {"content", "Hi there."}},
                      {{"role", "user"}, {"content", "Bye."}},
                      {{"role", "assistant"}, {"content", "Goodbye!"}}});
}

// The scored tokens, one string per contiguous run.
std::vector<std::string> scored_runs(const Example& example, const Tokenizer& tokenizer) {
  std::vector<std::string> runs;
  std::vector<int64_t> run;
  for (size_t t = 0; t <= example.labels.size(); ++t) {
    if (t < example.labels.size() && example.labels[t] != kIgnoreIndex) {
      run.push_back(example.labels[t]);
    } else if (!run.empty()) {
      runs.push_back(tokenizer.decode(run));
      run.clear();
    }
  }
  return runs;
}

}  // namespace

TEST(ChatFormat, SimpleTemplateScoresEachAssistantTurnAndItsEos) {
  ByteTokenizer tokenizer;
  auto format = ChatFormat::load("simple", "", tokenizer);
  EXPECT_EQ(format->end_of_turn(), "</s>");
  EXPECT_EQ(format->end_of_turn_id(), tokenizer.eos_id());
  EXPECT_EQ(format->render(conversation(), false),
            "<s>Be brief.\n\nUser: Hello?\nAssistant: Hi there.</s>\nUser: Bye.\nAssistant: Goodbye!</s>\n");
  Example example = format->example(conversation(), false);
  EXPECT_EQ(example.input_ids.front(), tokenizer.bos_id());  // the template's bos_token is the BOS id
  EXPECT_EQ(scored_runs(example, tokenizer), (std::vector<std::string>{" Hi there.</s>", " Goodbye!</s>"}));
  ASSERT_EQ(example.labels.size(), example.input_ids.size());
  for (size_t t = 0; t < example.labels.size(); ++t) {
    if (example.labels[t] != kIgnoreIndex) {
      EXPECT_EQ(example.labels[t], example.input_ids[t]);
    }
  }
}

TEST(ChatFormat, TrainOnAllScoresEveryTokenButTheFirst) {
  ByteTokenizer tokenizer;
  auto format = ChatFormat::load("simple", "", tokenizer);
  Example example = format->example(conversation(), true);
  EXPECT_EQ(example.labels[0], kIgnoreIndex);
  for (size_t t = 1; t < example.labels.size(); ++t) EXPECT_EQ(example.labels[t], example.input_ids[t]);
}

TEST(ChatFormat, EndOfTurnIsReadOffTheTemplate) {
  ByteTokenizer tokenizer;
  EXPECT_EQ(ChatFormat::load("chatml", "", tokenizer)->end_of_turn(), "<|im_end|>");
  ChatFormat custom(
      "{% for m in messages %}[{{ m.role }}] {{ m.content }} <END>\n\n{% endfor %}"
      "{% if add_generation_prompt %}[assistant] {% endif %}",
      "custom", "<s>", "</s>", tokenizer);
  EXPECT_EQ(custom.end_of_turn(), "<END>");
  Example example = custom.example(conversation(), false);
  EXPECT_EQ(scored_runs(example, tokenizer), (std::vector<std::string>{"Hi there. <END>", "Goodbye! <END>"}));
}

TEST(ChatFormat, GenerationBlocksMarkTheAssistantTokens) {
  ByteTokenizer tokenizer;
  ChatFormat format(
      "{% for m in messages %}{% if m.role == 'assistant' %}A: {% generation %}{{ m.content }}!{% endgeneration %}"
      "\n{% else %}{{ m.role }}: {{ m.content }}\n{% endif %}{% endfor %}"
      "{% if add_generation_prompt %}A: {% endif %}",
      "blocks", "<s>", "</s>", tokenizer);
  Example example = format.example(conversation(), false);
  EXPECT_EQ(scored_runs(example, tokenizer), (std::vector<std::string>{"Hi there.!", "Goodbye!!"}));
}

TEST(ChatFormat, ATemplateThatRewritesEarlierTurnsStillFindsThem) {
  // Like Qwen3's: only the last assistant turn carries a think block, so a turn rendered alone differs from the
  // same turn once more follow; the turn is then found by its content.
  ByteTokenizer tokenizer;
  ChatFormat format(
      "{% for m in messages %}<|{{ m.role }}|>{% if m.role == 'assistant' and loop.last %}<think></think>{% endif %}"
      "{{ m.content }}<|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
      "rewriting", "<s>", "</s>", tokenizer);
  EXPECT_EQ(format.end_of_turn(), "<|end|>");
  Example example = format.example(conversation(), false);
  EXPECT_EQ(scored_runs(example, tokenizer),
            (std::vector<std::string>{"Hi there.<|end|>", "<think></think>Goodbye!<|end|>"}));
}

TEST(ChatFormat, AClosingTrailerIsNotTakenForTheEndOfTurn) {
  // Like Phi-3's: EOS closes the whole conversation when no generation prompt follows.
  ByteTokenizer tokenizer;
  ChatFormat format(
      "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}<|end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|assistant|>\n{% else %}{{ eos_token }}{% endif %}",
      "trailer", "<s>", "</s>", tokenizer);
  EXPECT_EQ(format.end_of_turn(), "<|end|>");
  Example example = format.example(conversation(), false);
  EXPECT_EQ(scored_runs(example, tokenizer), (std::vector<std::string>{"Hi there.<|end|>", "Goodbye!<|end|>"}));
}

TEST(ChatFormat, AGenerationPromptThatOpensAThinkBlockIsServed) {
  // Like QwQ's and DeepSeek-R1's: the generation prompt adds "<think>\n", rendered turns do not have it, and the
  // user may say what the assistant answers: the turn is looked for after the user's turn only.
  ByteTokenizer tokenizer;
  ChatFormat format(
      "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>{% endfor %}"
      "{% if add_generation_prompt %}<|assistant|><think>\n{% endif %}",
      "thinking", "<s>", "</s>", tokenizer);
  EXPECT_EQ(format.end_of_turn(), "<|end|>");
  json echo = json::array({{{"role", "user"}, {"content", "Say OK"}},
                           {{"role", "assistant"}, {"content", "OK"}},
                           {{"role", "user"}, {"content", "OK?"}},
                           {{"role", "assistant"}, {"content", "OK"}}});
  Example example = format.example(echo, false);
  EXPECT_EQ(scored_runs(example, tokenizer), (std::vector<std::string>{"OK<|end|>", "OK<|end|>"}));
  auto rendered = format.render_turns(echo);
  ASSERT_EQ(rendered.assistant.size(), 2u);
  EXPECT_EQ(rendered.text.substr(rendered.assistant[0].first - 13, 13), "<|assistant|>");
  EXPECT_EQ(rendered.text.substr(rendered.assistant[1].first - 13, 13), "<|assistant|>");
  std::string empty = error_of([&] {
    format.example(json::array({{{"role", "user"}, {"content", "x"}}, {{"role", "assistant"}, {"content", ""}}}),
                   false);
  });
  EXPECT_NE(empty.find("assistant message 1 is empty"), std::string::npos) << empty;
}

TEST(ChatFormat, PromptCompletionMessagesTrainOnTheCompletionOnly) {
  ByteTokenizer tokenizer;
  auto format = ChatFormat::load("simple", "", tokenizer);
  std::string dir = temp_dir("chat-prompt-completion");
  json prompt = json::array({{{"role", "user"}, {"content", "2+2?"}},
                             {{"role", "assistant"}, {"content", "4"}},
                             {{"role", "user"}, {"content", "3+3?"}}});
  json completion = json::array({{{"role", "assistant"}, {"content", "6"}}});
  std::string file = write_text(dir + "/pc.jsonl", json{{"prompt", prompt}, {"completion", completion}}.dump() + "\n");
  auto examples = load_examples(file, tokenizer, 512, {format.get(), false});
  ASSERT_EQ(examples.size(), 1u);
  EXPECT_EQ(scored_runs(examples[0], tokenizer), (std::vector<std::string>{" 6</s>"}));
}

TEST(ChatFormat, MessagesRecordsMixWithTextRecordsInOneFile) {
  ByteTokenizer tokenizer;
  auto format = ChatFormat::load("simple", "", tokenizer);
  std::string dir = temp_dir("chat-mixed");
  std::string file = write_text(
      dir + "/mixed.jsonl", json{{"messages", conversation()}}.dump() + "\n" + json{{"text", "plain"}}.dump() + "\n");
  auto examples = load_examples(file, tokenizer, 512, {format.get(), false});
  ASSERT_EQ(examples.size(), 2u);
  EXPECT_EQ(scored_runs(examples[0], tokenizer).size(), 2u);
  EXPECT_EQ(examples[1].input_ids.front(), tokenizer.bos_id());
}

TEST(ChatFormat, TruncationKeepsTheMaskAligned) {
  ByteTokenizer tokenizer;
  auto format = ChatFormat::load("simple", "", tokenizer);
  std::string dir = temp_dir("chat-truncated");
  std::string file = write_text(dir + "/c.jsonl", json{{"messages", conversation()}}.dump() + "\n");
  auto whole = load_examples(file, tokenizer, 512, {format.get(), false});
  auto cut = load_examples(file, tokenizer, 40, {format.get(), false});
  ASSERT_EQ(cut[0].input_ids.size(), 40u);
  EXPECT_TRUE(std::equal(cut[0].labels.begin(), cut[0].labels.end(), whole[0].labels.begin()));
}

TEST(ChatFormat, BadConversationsAreOneLineNamingFileAndLine) {
  ByteTokenizer tokenizer;
  auto format = ChatFormat::load("simple", "", tokenizer);
  std::string dir = temp_dir("chat-bad");
  auto error_for = [&](const std::string& line, const ChatFormat* chat) {
    std::string file = write_text(dir + "/bad.jsonl", "{\"text\": \"fine\"}\n" + line + "\n");
    return error_of([&] { load_examples(file, tokenizer, 512, {chat, false}); });
  };
  EXPECT_NE(error_for(R"({"messages": "hello"})", format.get()).find("bad.jsonl:2: \"messages\" must be a list"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"messages": []})", format.get()).find("bad.jsonl:2: \"messages\" is empty"),
            std::string::npos);
  EXPECT_NE(error_for(R"({"messages": [{"content": "x"}]})", format.get()).find("message 0 has no \"role\""),
            std::string::npos);
  EXPECT_NE(
      error_for(R"({"messages": [{"role": "user", "content": 5}]})", format.get()).find("\"content\" must be a string"),
      std::string::npos);
  // The template's own raise_exception message passes through, with the record's place.
  std::string rejected = error_for(R"({"messages": [{"role": "tool", "content": "x"}]})", format.get());
  EXPECT_NE(rejected.find("bad.jsonl:2: "), std::string::npos) << rejected;
  EXPECT_NE(rejected.find("knows the roles system, user and assistant, not tool"), std::string::npos) << rejected;
  EXPECT_NE(error_for(R"({"messages": [{"role": "user", "content": "x"}]})", nullptr)
                .find("bad.jsonl:2: a conversation needs a chat template"),
            std::string::npos);
}

TEST(ChatFormat, TemplatesThatCannotServeAreRefused) {
  ByteTokenizer tokenizer;
  std::string missing = error_of([&] { ChatFormat::load("/no/such/template.jinja", "", tokenizer); });
  EXPECT_NE(missing.find("neither a file nor a built-in template (simple, chatml)"), std::string::npos) << missing;
  std::string dir = temp_dir("chat-template-file");
  std::string broken = write_text(dir + "/broken.jinja", "{% for m in messages %}\n{{ m.content }\n{% endfor %}");
  std::string message = error_of([&] { ChatFormat::load(broken, "", tokenizer); });
  EXPECT_NE(message.find(broken), std::string::npos) << message;
  EXPECT_NE(message.find("line 2"), std::string::npos) << message;
  // A model directory without tokenizer_config.json has no template of its own.
  EXPECT_EQ(ChatFormat::load("", dir, tokenizer), nullptr);
}

TEST(ChatFormat, ModelTemplateAndTokensComeFromTokenizerConfig) {
  ByteTokenizer tokenizer;
  std::string dir = temp_dir("chat-tokenizer-config");
  write_text(dir + "/tokenizer_config.json",
             json{{"bos_token", {{"content", "<B>"}}},
                  {"eos_token", "<E>"},
                  {"chat_template", "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"}}
                 .dump());
  auto format = ChatFormat::load("", dir, tokenizer);
  ASSERT_NE(format, nullptr);
  EXPECT_EQ(format->render(json::array({{{"role", "user"}, {"content", "a"}}}), false), "<B>a<E>");
  EXPECT_EQ(format->end_of_turn(), "<E>");
  EXPECT_EQ(format->end_of_turn_id(), tokenizer.eos_id());
}

TEST(ChatFormat, ChatTemplateJinjaBesideTheConfigIsPreferred) {
  ByteTokenizer tokenizer;
  std::string dir = temp_dir("chat-template-jinja");
  write_text(dir + "/tokenizer_config.json",
             json{{"eos_token", "<E>"}, {"chat_template", "{% for m in messages %}old{% endfor %}"}}.dump());
  write_text(dir + "/chat_template.jinja", "{% for m in messages %}[{{ m.content }}]{{ eos_token }}{% endfor %}");
  auto format = ChatFormat::load("", dir, tokenizer);
  ASSERT_NE(format, nullptr);
  EXPECT_EQ(format->render(json::array({{{"role", "user"}, {"content", "a"}}}), false), "[a]<E>");
  EXPECT_EQ(format->name(), dir + "/chat_template.jinja");
}

TEST(ChatFormat, RealSentencePieceTokenizerWithTheSimpleTemplate) {
  auto path = peft::test::stories_tokenizer();
  if (!path) GTEST_SKIP() << "stories260K tokenizer.model not found";
  auto tokenizer = load_tokenizer(*path, 1, 2);
  auto format = ChatFormat::load("simple", "", *tokenizer);
  Example example = format->example(conversation(), false);
  EXPECT_EQ(example.input_ids.front(), 1);
  auto runs = scored_runs(example, *tokenizer);
  ASSERT_EQ(runs.size(), 2u);
  // SentencePiece decodes without the leading space; each run ends with EOS, which decodes to nothing.
  int eos = 0;
  for (size_t t = 0; t < example.labels.size(); ++t) eos += example.labels[t] == 2;
  EXPECT_EQ(eos, 2);
  auto prompt = chat_prompt(*format, "Hello?");
  EXPECT_EQ(prompt.front(), 1);
  EXPECT_EQ(tokenizer->decode(prompt), "User: Hello?\nAssistant:");
}

// The real Llama 3, Gemma and Qwen3 templates and the built-ins, against Python's jinja2 and the same span rule
// re-implemented in Python (scripts/reference/make_chat_mask_fixtures.py): byte-identical renderings, the same
// end-of-turn marker and the same assistant spans.
TEST(ChatFormat, AssistantSpansMatchTheReference) {
  ByteTokenizer tokenizer;
  std::string dir = peft::test::fixture("chat_templates");
  std::map<std::string, json> conversations;
  std::istringstream conversation_lines(peft::test::read_text(dir + "/conversations.jsonl"));
  for (std::string line; std::getline(conversation_lines, line);) {
    auto record = json::parse(line);
    conversations[record["name"]] = record["messages"];
  }
  std::map<std::string, int> per_template;
  std::istringstream lines(peft::test::read_text(dir + "/assistant_spans.jsonl"));
  for (std::string line; std::getline(lines, line);) {
    auto row = json::parse(line);
    std::string name = row["template"], conversation = row["conversation"];
    SCOPED_TRACE(name + " / " + conversation);
    // The special tokens as the reference passed them: a tokenizer_config.json without a template of its own for
    // the built-ins, with the fixture template for the others.
    json config = row["special_tokens"];
    for (const char* key : {"bos_token", "eos_token"})
      if (!config.contains(key)) config[key] = nullptr;
    bool builtin = name == "simple" || name == "chatml";
    if (!builtin) config["chat_template"] = peft::test::read_text(dir + "/" + name + ".jinja");
    std::string model_dir = temp_dir("chat-spans");
    write_text(model_dir + "/tokenizer_config.json", config.dump());
    auto format = ChatFormat::load(builtin ? name : "", model_dir, tokenizer);
    ASSERT_NE(format, nullptr);
    format->fix_date("2026-01-15 12:00:00");
    EXPECT_EQ(format->end_of_turn(), row["end_of_turn"].get<std::string>());
    auto rendered = format->render_turns(conversations.at(conversation));
    EXPECT_EQ(rendered.text, row["text"].get<std::string>());
    std::vector<std::pair<size_t, size_t>> expected;
    for (const auto& span : row["assistant_spans"]) expected.emplace_back(span[0], span[1]);
    EXPECT_EQ(rendered.assistant, expected);
    ++per_template[name];
  }
  for (const char* name : {"llama3", "gemma", "qwen3", "generation", "simple", "chatml"})
    EXPECT_GE(per_template[name], 5) << name;
}

// Qwen3's own tokenizer: the masked tokens are exactly the assistant spans' text (its added tokens, such as
// <|im_end|>, decode to nothing, so the span's text is compared without them).
TEST(ChatFormat, Qwen3TokensInsideTheSpansAreTheAssistantTurns) {
  auto shared = peft::test::shared_data_dir();
  if (!shared) GTEST_SKIP() << "../shared/data not found";
  std::string model_dir = *shared + "/qwen3-tokenizer";
  auto tokenizer = load_tokenizer(model_dir, -1, 151645);
  auto format = ChatFormat::load("", model_dir, *tokenizer);
  ASSERT_NE(format, nullptr);
  EXPECT_EQ(format->end_of_turn(), "<|im_end|>");
  EXPECT_EQ(format->end_of_turn_id(), 151645);
  Example example = format->example(conversation(), false);
  auto rendered = format->render_turns(conversation());
  ASSERT_EQ(rendered.assistant.size(), 2u);
  auto runs = scored_runs(example, *tokenizer);
  ASSERT_EQ(runs.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    auto [begin, end] = rendered.assistant[k];
    std::string text = rendered.text.substr(begin, end - begin);
    text.erase(text.find("<|im_end|>"));
    EXPECT_EQ(runs[k], text);
  }
  // Encoding piece by piece at the span edges gives the ids of encoding the rendering whole.
  EXPECT_EQ(example.input_ids, tokenizer->encode(rendered.text));
}
