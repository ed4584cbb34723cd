// SentencePiece through libsentencepiece on small hand-built models, so that each rule is pinned without shared
// data.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "io/sentencepiece_tokenizer.h"
#include "test_util.h"

using namespace peft;
using peft::test::temp_dir;
using peft::test::write_text;

namespace {

enum Type { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// Protobuf wire format, just enough to write a ModelProto.
std::string varint(uint64_t value) {
  std::string out;
  do {
    uint8_t byte = value & 0x7F;
    value >>= 7;
    out.push_back(static_cast<char>(value ? byte | 0x80 : byte));
  } while (value);
  return out;
}
std::string field_bytes(int number, const std::string& value) {
  return varint(number << 3 | 2) + varint(value.size()) + value;
}
std::string field_int(int number, uint64_t value) { return varint(number << 3) + varint(value); }
std::string field_float(int number, float value) {
  char raw[4];
  std::memcpy(raw, &value, 4);
  return varint(number << 3 | 5) + std::string(raw, 4);
}

struct ModelSpec {
  std::vector<std::tuple<std::string, float, Type>> pieces;
  int model_type = 2;
  bool byte_fallback = false;
  std::string normalizer = field_bytes(1, "identity");
};

std::string write_model(const ModelSpec& spec) {
  std::string model;
  for (const auto& [text, score, type] : spec.pieces)
    model += field_bytes(1, field_bytes(1, text) + field_float(2, score) + field_int(3, type));
  model += field_bytes(2, field_int(3, spec.model_type) + field_int(35, spec.byte_fallback));
  model += field_bytes(3, spec.normalizer);
  return write_text(temp_dir("spm") + "/tokenizer.model", model);
}

const std::string kSpace = "\xE2\x96\x81";

// <unk> <s> </s> ▁ a b c ab ▁a ▁ab bc
ModelSpec small_model() {
  ModelSpec spec;
  spec.pieces = {{"<unk>", 0, kUnknown},      {"<s>", 0, kControl},
                 {"</s>", 0, kControl},       {kSpace, 0, kNormal},
                 {"a", 0, kNormal},           {"b", 0, kNormal},
                 {"c", 0, kNormal},           {"ab", -1, kNormal},
                 {kSpace + "a", -2, kNormal}, {kSpace + "ab", -3, kNormal},
                 {"bc", -0.5, kNormal}};
  return spec;
}

std::string error_of(const std::string& path) {
  try {
    SentencePieceTokenizer tokenizer(path);
  } catch (const Error& error) {
    return error.what();
  }
  return "(no peft::Error thrown)";
}

}  // namespace

TEST(SentencePiece, MergesHighestScoringPairFirst) {
  SentencePieceTokenizer tokenizer(write_model(small_model()));
  EXPECT_EQ(tokenizer.vocab_size(), 11);
  // "▁abc": bc (-0.5) beats ab (-1) and ▁a (-2); then ▁a; "abc" and "▁abc" are not pieces.
  EXPECT_EQ(tokenizer.encode("abc"), (std::vector<int64_t>{8, 10}));
  // "▁ab": ab, then ▁ab.
  EXPECT_EQ(tokenizer.encode("ab"), (std::vector<int64_t>{9}));
  EXPECT_EQ(tokenizer.encode("ab ab"), (std::vector<int64_t>{9, 9}));
  EXPECT_EQ(tokenizer.decode({9, 9}), "ab ab");
  EXPECT_EQ(tokenizer.decode({1, 8, 10, 2}), "abc");
  EXPECT_EQ(tokenizer.model_pad_id(), -1);
}

TEST(SentencePiece, CollapsesSpacesByDefault) {
  SentencePieceTokenizer tokenizer(write_model(small_model()));
  EXPECT_EQ(tokenizer.encode("  ab   ab  "), tokenizer.encode("ab ab"));
  EXPECT_TRUE(tokenizer.encode("   ").empty());
}

TEST(SentencePiece, KeepsSpacesWhenTheNormaliserSaysSo) {
  ModelSpec spec = small_model();
  spec.normalizer = field_bytes(1, "identity") + field_int(4, 0);  // remove_extra_whitespaces: false
  SentencePieceTokenizer tokenizer(write_model(spec));
  EXPECT_EQ(tokenizer.encode(" ab"), (std::vector<int64_t>{3, 9}));
  EXPECT_EQ(tokenizer.decode({3, 9}), " ab");  // only the dummy prefix goes
}

TEST(SentencePiece, UnknownCharactersBecomeOneUnknownPerRun) {
  SentencePieceTokenizer tokenizer(write_model(small_model()));
  EXPECT_EQ(tokenizer.encode("xyz a"), (std::vector<int64_t>{3, 0, 8}));
  EXPECT_EQ(tokenizer.decode({3, 0, 8}), " \xE2\x81\x87  a");  // " ⁇ " stands for unknown text
}

TEST(SentencePiece, ByteFallbackSpellsUnknownCharactersInBytes) {
  ModelSpec spec = small_model();
  spec.byte_fallback = true;
  for (int byte = 0; byte < 256; ++byte) {  // SentencePiece requires all 256 byte pieces with byte_fallback
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", byte);
    spec.pieces.emplace_back(name, 0, kByte);
  }
  SentencePieceTokenizer tokenizer(write_model(spec));
  auto byte_id = [](int byte) { return int64_t{11} + byte; };
  // x and é have no piece: they are spelled in bytes (<0x78>; <0xC3> <0xA9>).
  EXPECT_EQ(tokenizer.encode("x\xC3\xA9"), (std::vector<int64_t>{3, byte_id(0x78), byte_id(0xC3), byte_id(0xA9)}));
  EXPECT_EQ(tokenizer.decode({byte_id(0x78), byte_id(0xC3), byte_id(0xA9)}), "x\xC3\xA9");
  EXPECT_EQ(tokenizer.decode({byte_id(0xC3), byte_id(0x78)}), "\xEF\xBF\xBDx");  // a broken UTF-8 byte -> U+FFFD
}

TEST(SentencePiece, UserDefinedPiecesAreKeptWhole) {
  ModelSpec spec = small_model();
  spec.pieces.emplace_back("<x>", 0, kUserDefined);
  spec.pieces.emplace_back("<|pad|>", 0, kControl);
  spec.pieces.emplace_back("<pad>", 0, kControl);
  SentencePieceTokenizer tokenizer(write_model(spec));
  EXPECT_EQ(tokenizer.encode("a<x>b"), (std::vector<int64_t>{8, 11, 5}));
  EXPECT_EQ(tokenizer.decode({8, 11, 5}), "a<x>b");
  EXPECT_EQ(tokenizer.model_pad_id(), 13);
}

TEST(SentencePiece, UnusedPiecesAreSplitBack) {
  ModelSpec spec = small_model();
  std::get<2>(spec.pieces[9]) = kUnused;  // ▁ab
  SentencePieceTokenizer tokenizer(write_model(spec));
  EXPECT_EQ(tokenizer.encode("ab"), (std::vector<int64_t>{3, 7}));
}

TEST(SentencePiece, MalformedFilesAreErrorsNamingThem) {
  std::string dir = temp_dir("spm-bad");
  for (const std::string& contents : {std::string(""), std::string("\x0A\xFF", 2), std::string("\x0A\x05\x0A\x01", 4),
                                      std::string("just text, not protobuf")}) {
    std::string path = write_text(dir + "/bad.model", contents);
    std::string message = error_of(path);
    EXPECT_EQ(message.rfind("cannot load tokenizer " + path + ": ", 0), 0u) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}
