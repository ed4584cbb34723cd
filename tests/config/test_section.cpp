#include <gtest/gtest.h>

#include <yaml-cpp/yaml.h>

#include "config/section.h"
#include "core/error.h"

namespace peft {
namespace {

Section make(const std::string& yaml, const std::string& path = "train") {
  return Section::from_yaml_string(yaml, "cfg.yaml", path);
}

// The message of the peft::Error `body` throws; fails the test when it throws nothing.
template <typename Body>
std::string error_of(Body body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected peft::Error";
  return "";
}

TEST(Section, ReadsEveryType) {
  Section s = make(
      "name: llama\n"
      "steps: 120\n"
      "negative: -3\n"
      "lr: 2e-4\n"
      "ratio: 0.25\n"
      "whole: 3\n"
      "flag: true\n"
      "off: false\n"
      "modules: [q_proj, v_proj]\n"
      "one: all-linear\n"
      "many:\n"
      "  - a\n"
      "  - b\n");
  std::string name;
  int64_t steps = 0, negative = 0;
  double lr = 0, ratio = 0, whole = 0;
  bool flag = false, off = true;
  std::vector<std::string> modules;
  StringOrList one, many;
  s.get("name", name);
  s.get("steps", steps);
  s.get("negative", negative);
  s.get("lr", lr);
  s.get("ratio", ratio);
  s.get("whole", whole);
  s.get("flag", flag);
  s.get("off", off);
  s.get("modules", modules);
  s.get("one", one);
  s.get("many", many);
  EXPECT_EQ(name, "llama");
  EXPECT_EQ(steps, 120);
  EXPECT_EQ(negative, -3);
  EXPECT_DOUBLE_EQ(lr, 2e-4);
  EXPECT_DOUBLE_EQ(ratio, 0.25);
  EXPECT_DOUBLE_EQ(whole, 3.0);
  EXPECT_TRUE(flag);
  EXPECT_FALSE(off);
  EXPECT_EQ(modules, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_FALSE(one.is_list);
  EXPECT_EQ(one.string, "all-linear");
  EXPECT_TRUE(many.is_list);
  EXPECT_EQ(many.list, (std::vector<std::string>{"a", "b"}));
  EXPECT_NO_THROW(s.finish());
  EXPECT_EQ(s.path(), "train");
}

TEST(Section, AbsentKeysKeepDefaults) {
  Section s = make("present: 1\n");
  std::string text = "default";
  int64_t number = 7;
  double real = 0.5;
  bool flag = true;
  std::vector<std::string> list = {"x"};
  StringOrList either{true, "", {"y", "z"}};
  s.get("text", text);
  s.get("number", number);
  s.get("real", real);
  s.get("flag", flag);
  s.get("list", list);
  s.get("either", either);
  EXPECT_EQ(text, "default");
  EXPECT_EQ(number, 7);
  EXPECT_DOUBLE_EQ(real, 0.5);
  EXPECT_TRUE(flag);
  EXPECT_EQ(list, std::vector<std::string>{"x"});
  EXPECT_TRUE(either.is_list);
  EXPECT_EQ(either.list, (std::vector<std::string>{"y", "z"}));
  EXPECT_TRUE(s.has("present"));
  EXPECT_FALSE(s.has("text"));
}

TEST(Section, EmptyDocumentIsAnEmptySection) {
  Section s = make("");
  int64_t value = 3;
  s.get("value", value);
  EXPECT_EQ(value, 3);
  EXPECT_NO_THROW(s.finish());
}

TEST(Section, IntegerErrorsNameFileLineAndKey) {
  Section s = make("a: 1\nbatch_size: abc\nc: 1.5\nd: [1]\ne: 1e3\nf: 99999999999999999999999\n");
  int64_t value = 0;
  EXPECT_EQ(error_of([&] { s.get("batch_size", value); }),
            "cfg.yaml:2: train.batch_size: expected an integer, got 'abc'");
  EXPECT_EQ(error_of([&] { s.get("c", value); }), "cfg.yaml:3: train.c: expected an integer, got '1.5'");
  EXPECT_EQ(error_of([&] { s.get("d", value); }), "cfg.yaml:4: train.d: expected an integer, got a list");
  EXPECT_NE(error_of([&] { s.get("e", value); }).find("expected an integer, got '1e3'"), std::string::npos);
  EXPECT_NE(error_of([&] { s.get("f", value); }).find("cfg.yaml:6: train.f: expected an integer"), std::string::npos);
  EXPECT_EQ(value, 0);  // a failed get leaves the value alone
}

TEST(Section, DoubleAcceptsIntegersAndScientificButNotWords) {
  Section s = make("a: 1e-8\nb: -2.5E+3\nc: 4\nd: fast\ne: .inf\nf: 0x10\ng: {x: 1}\n");
  double value = 0;
  s.get("a", value);
  EXPECT_DOUBLE_EQ(value, 1e-8);
  s.get("b", value);
  EXPECT_DOUBLE_EQ(value, -2500.0);
  s.get("c", value);
  EXPECT_DOUBLE_EQ(value, 4.0);
  EXPECT_EQ(error_of([&] { s.get("d", value); }), "cfg.yaml:4: train.d: expected a number, got 'fast'");
  EXPECT_EQ(error_of([&] { s.get("e", value); }), "cfg.yaml:5: train.e: expected a number, got '.inf'");
  EXPECT_EQ(error_of([&] { s.get("f", value); }), "cfg.yaml:6: train.f: expected a number, got '0x10'");
  EXPECT_EQ(error_of([&] { s.get("g", value); }), "cfg.yaml:7: train.g: expected a number, got a mapping");
}

TEST(Section, BoolAcceptsOnlyTrueAndFalse) {
  Section s = make("a: True\nb: yes\nc: 1\nd:\n");
  bool value = false;
  s.get("a", value);
  EXPECT_TRUE(value);
  EXPECT_EQ(error_of([&] { s.get("b", value); }), "cfg.yaml:2: train.b: expected true or false, got 'yes'");
  EXPECT_EQ(error_of([&] { s.get("c", value); }), "cfg.yaml:3: train.c: expected true or false, got '1'");
  EXPECT_EQ(error_of([&] { s.get("d", value); }), "cfg.yaml:4: train.d: expected true or false, got an empty value");
}

TEST(Section, StringAndListErrors) {
  Section s = make("name: [a, b]\nlist: q_proj\nnested: [a, [b]]\nblank:\nmixed: {a: 1}\n", "peft");
  std::string text;
  std::vector<std::string> list;
  StringOrList either;
  EXPECT_EQ(error_of([&] { s.get("name", text); }), "cfg.yaml:1: peft.name: expected a string, got a list");
  EXPECT_EQ(error_of([&] { s.get("list", list); }), "cfg.yaml:2: peft.list: expected a list of strings, got 'q_proj'");
  EXPECT_EQ(error_of([&] { s.get("nested", list); }),
            "cfg.yaml:3: peft.nested: expected a list of strings, got a list at item 2");
  EXPECT_EQ(error_of([&] { s.get("blank", text); }), "cfg.yaml:4: peft.blank: expected a string, got an empty value");
  EXPECT_EQ(error_of([&] { s.get("mixed", either); }),
            "cfg.yaml:5: peft.mixed: expected a list of strings, got a mapping");
}

TEST(Section, RequireNamesTheMissingKeyAndAMisspelling) {
  std::string value;
  Section present = make("path: /models/x\n", "model");
  present.require("path", value);
  EXPECT_EQ(value, "/models/x");

  Section absent = make("dtype: float32\n", "model");
  EXPECT_EQ(error_of([&] { absent.require("path", value); }), "cfg.yaml: missing required key 'model.path'");

  Section misspelt = make("dtype: float32\npaht: /x\n", "model");
  std::string message = error_of([&] { misspelt.require("path", value); });
  EXPECT_EQ(message.rfind("cfg.yaml: missing required key 'model.path'", 0), 0u) << message;
  EXPECT_NE(message.find("'model.paht' at cfg.yaml:2"), std::string::npos) << message;
}

TEST(Section, GetChoiceListsTheAllowedValues) {
  Section s = make("scheduler: cosin\nother: linear\n");
  std::string value = "linear";
  EXPECT_EQ(error_of([&] {
              s.get_choice("scheduler", value, {"constant", "linear", "cosine"});
            }),
            "cfg.yaml:1: train.scheduler: expected one of constant, linear, cosine, got 'cosin' "
            "(did you mean 'cosine'?)");
  s.get_choice("other", value, {"constant", "linear", "cosine"});
  EXPECT_EQ(value, "linear");
  std::string absent = "constant";
  s.get_choice("absent", absent, {"constant", "linear"});
  EXPECT_EQ(absent, "constant");
  Section far = make("scheduler: zzzzzzzzzzzz\n");
  std::string message = error_of([&] { far.get_choice("scheduler", value, {"constant", "linear"}); });
  EXPECT_EQ(message, "cfg.yaml:1: train.scheduler: expected one of constant, linear, got 'zzzzzzzzzzzz'");
}

TEST(Section, FinishReportsTheFirstUnreadKeyWithAHint) {
  Section s = make("epochs: 1\n\nlerning_rate: 0.1\nzzzzzzzzzzzzzz: 3\n");
  int64_t epochs = 0;
  double lr = 0;
  s.get("epochs", epochs);
  s.get("learning_rate", lr);
  EXPECT_EQ(error_of([&] { s.finish(); }),
            "cfg.yaml:3: unknown key 'train.lerning_rate' (did you mean 'learning_rate'?)");

  Section far = make("epochs: 1\nzzzzzzzzzzzzzz: 3\n");
  far.get("epochs", epochs);
  far.get("learning_rate", lr);
  EXPECT_EQ(error_of([&] { far.finish(); }), "cfg.yaml:2: unknown key 'train.zzzzzzzzzzzzzz'");
}

TEST(Section, FailPointsAtTheKey) {
  Section s = make("# comment\nbatch_size: 0\n");
  EXPECT_EQ(error_of([&] { s.fail("batch_size", "must be positive"); }),
            "cfg.yaml:2: train.batch_size: must be positive");
  EXPECT_EQ(error_of([&] { s.fail("absent", "is bad"); }), "cfg.yaml: train.absent: is bad");
}

TEST(Section, RejectsBadShapes) {
  EXPECT_EQ(error_of([] { make("a: [1, 2\n"); }).rfind("cfg.yaml:", 0), 0u);
  EXPECT_NE(error_of([] { make("a: [1, 2\n"); }).find("invalid YAML"), std::string::npos);
  EXPECT_NE(error_of([] { make("- a\n- b\n"); }).find("section 'train' must be a mapping"), std::string::npos);
  EXPECT_EQ(error_of([] { make("a: 1\nb: 2\na: 3\n"); }),
            "cfg.yaml:3: duplicate key 'train.a' (first given at cfg.yaml:1)");
}

TEST(Section, RecordsEffectiveValuesInTheResolvedTree) {
  Section s = make("given: 5\nlr: 2e-4\nname: ''\nmodules: [q, v]\n", "train");
  int64_t given = 0, fallback = 11;
  double lr = 0, whole = 1.0, tiny = 1e-8;
  bool flag = true;
  std::string name = "x", kept = "16";
  std::vector<std::string> modules, empty;
  StringOrList one{false, "all-linear", {}};
  s.get("given", given);
  s.get("fallback", fallback);
  s.get("lr", lr);
  s.get("whole", whole);
  s.get("tiny", tiny);
  s.get("flag", flag);
  s.get("name", name);
  s.get("kept", kept);
  s.get("modules", modules);
  s.get("empty", empty);
  s.get("one", one);

  YAML::Node resolved = YAML::Load(s.resolved_yaml());
  ASSERT_TRUE(resolved["train"].IsMap()) << s.resolved_yaml();
  YAML::Node train = resolved["train"];
  EXPECT_EQ(train.size(), 11u);
  EXPECT_EQ(train["given"].Scalar(), "5");
  EXPECT_EQ(train["fallback"].Scalar(), "11");  // the default, recorded although absent
  EXPECT_EQ(train["lr"].Scalar(), "0.0002");
  EXPECT_EQ(train["whole"].Scalar(), "1.0");
  EXPECT_DOUBLE_EQ(train["tiny"].as<double>(), 1e-8);
  EXPECT_EQ(train["flag"].Scalar(), "true");
  EXPECT_TRUE(train["name"].IsScalar());
  EXPECT_EQ(train["name"].Scalar(), "");
  EXPECT_EQ(train["kept"].Scalar(), "16");
  EXPECT_EQ(train["modules"].as<std::vector<std::string>>(), (std::vector<std::string>{"q", "v"}));
  EXPECT_TRUE(train["empty"].IsSequence());
  EXPECT_EQ(train["empty"].size(), 0u);
  EXPECT_EQ(train["one"].Scalar(), "all-linear");
  // Keys appear in the order they were read.
  std::vector<std::string> order;
  for (const auto& pair : train) order.push_back(pair.first.Scalar());
  EXPECT_EQ(order.front(), "given");
  EXPECT_EQ(order.back(), "one");
}

TEST(Section, ResolvedValuesReadBackIdentically) {
  Section first = make("a: 3\nb: 0.1\nc: \"~\"\nd: [x, 'y z']\ne: false\nf: \"null\"\n");
  int64_t a = 0;
  double b = 0;
  std::string c, f;
  std::vector<std::string> d;
  bool e = true;
  first.get("a", a);
  first.get("b", b);
  first.get("c", c);
  first.get("d", d);
  first.get("e", e);
  first.get("f", f);
  ASSERT_EQ(c, "~");

  // Load the resolved train mapping as a new section and read the same keys.
  std::string text = first.resolved_yaml();
  YAML::Node train = YAML::Load(text)["train"];
  YAML::Emitter out;
  out << train;
  Section second = make(out.c_str());
  int64_t a2 = 0;
  double b2 = 0;
  std::string c2, f2;
  std::vector<std::string> d2;
  bool e2 = true;
  second.get("a", a2);
  second.get("b", b2);
  second.get("c", c2);
  second.get("d", d2);
  second.get("e", e2);
  second.get("f", f2);
  EXPECT_EQ(a2, a);
  EXPECT_EQ(b2, b);
  EXPECT_EQ(c2, c) << text;
  EXPECT_EQ(f2, f) << text;
  EXPECT_EQ(d2, d);
  EXPECT_EQ(e2, e);
  EXPECT_EQ(second.resolved_yaml(), text);
}

}  // namespace
}  // namespace peft
