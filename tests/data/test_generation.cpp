// Generation data: E2E NLG's CSV (quoted fields, several references per meaning representation) and JSONL with
// one or several references; bad files are one line naming file and line.
#include <gtest/gtest.h>

#include "data/generation.h"
#include "test_util.h"

namespace peft {
namespace {

TEST(GenerationData, E2eRowsSharingAMeaningRepresentationAreOneExample) {
  auto path = test::write_text(test::temp_dir("gen-e2e") + "/dev.csv",
                               "mr,ref\n"
                               "\"name[Alimentum], area[city centre]\",\"Alimentum, in the city centre.\"\n"
                               "\"name[Alimentum], area[city centre]\",Alimentum is central.\n"
                               "\"name[Aromi], food[£20]\",\"Aromi said \"\"hi\"\"\r\nover two lines.\"\n");
  auto set = load_generation_set(path);
  ASSERT_EQ(set.examples.size(), 2u);
  EXPECT_EQ(set.format, "e2e");
  EXPECT_EQ(set.examples[0].source, "name[Alimentum], area[city centre]");
  EXPECT_EQ(set.examples[0].references,
            (std::vector<std::string>{"Alimentum, in the city centre.", "Alimentum is central."}));
  EXPECT_EQ(set.examples[1].references, (std::vector<std::string>{"Aromi said \"hi\"\r\nover two lines."}));
  EXPECT_EQ(generation_prompt(default_generation_template(set), set.examples[1]), "name[Aromi], food[£20]\n");
}

TEST(GenerationData, JsonlTakesReferencesOrACompletion) {
  auto path = test::write_text(test::temp_dir("gen-jsonl") + "/eval.jsonl",
                               "{\"prompt\": \"2+2=\", \"references\": [\"4\", \"four\"]}\n\n"
                               "{\"prompt\": \"Capital of France?\", \"completion\": \" Paris\"}\n");
  auto set = load_generation_set(path);
  ASSERT_EQ(set.examples.size(), 2u);
  EXPECT_EQ(set.examples[0].references, (std::vector<std::string>{"4", "four"}));
  EXPECT_EQ(set.examples[1].references, (std::vector<std::string>{" Paris"}));
  EXPECT_EQ(generation_prompt("Q: {source} A:", set.examples[0]), "Q: 2+2= A:");
}

TEST(GenerationData, BadFilesNameTheFileAndLine) {
  auto dir = test::temp_dir("gen-bad");
  auto error = [&](const std::string& name, const std::string& text) {
    return test::error_of([&] { load_generation_set(test::write_text(dir + "/" + name, text)); });
  };
  EXPECT_NE(error("a.csv", "MR\nx\n").find("a.csv:1: expected the header mr,ref"), std::string::npos);
  EXPECT_NE(error("b.csv", "mr,ref\nx,y\nx,y,z\n").find("b.csv:3: expected 2 fields (mr, ref), got 3"),
            std::string::npos);
  EXPECT_NE(error("c.csv", "mr,ref\n\"x,y\n").find("c.csv:2: unterminated quoted field"), std::string::npos);
  EXPECT_NE(error("d.jsonl", "{\"prompt\": \"p\"}\n").find("d.jsonl:1: needs \"references\""), std::string::npos);
  EXPECT_NE(error("e.jsonl", "{\"prompt\": \"p\", \"references\": []}\n").find("non-empty list"), std::string::npos);
  EXPECT_NE(error("f.jsonl", "[1]\n").find("f.jsonl:1: not a JSON object"), std::string::npos);
  EXPECT_NE(error("g.txt", "x\n").find("expected a .csv (E2E NLG) or .jsonl file"), std::string::npos);
  EXPECT_NE(error("h.csv", "mr,ref\n").find("holds no examples"), std::string::npos);
}

}  // namespace
}  // namespace peft
