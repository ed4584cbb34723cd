// safetensors: round trips, the memory mapping's lifetime and copy-on-write, every header corruption the reader
// must reject (files built byte by byte), sharded checkpoints, and the real stories260K model.
#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <limits>

namespace fs = std::filesystem;
using namespace peft;
using namespace peft::safetensors;

namespace {

std::string u64_le(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// A safetensors file as raw bytes: length prefix, header text as given, data.
std::string raw_file(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

std::string floats_le(std::initializer_list<float> values) {
  std::string bytes;
  for (float value : values) bytes.append(reinterpret_cast<const char*>(&value), 4);
  return bytes;
}

// The message File::open throws for `path`, or "" when it does not throw.
std::string open_error(const std::string& path) {
  try {
    File::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool bytes_equal(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  auto x = a.contiguous(), y = b.contiguous();
  return x.nbytes() == 0 || std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) == 0;  // empty: null pointers
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = test::temp_dir("safetensors"); }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Writes `bytes` and expects File::open to reject them with one line naming the file and `phrase`.
  void expect_rejected(const std::string& bytes, const std::string& phrase) {
    std::string file = test::write_text(path("corrupt.safetensors"), bytes);
    std::string message = open_error(file);
    ASSERT_FALSE(message.empty()) << "accepted a corrupt file; expected an error containing: " << phrase;
    EXPECT_NE(message.find(file), std::string::npos) << message;
    EXPECT_NE(message.find(phrase), std::string::npos) << message;
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }

  std::string dir_;
};

// A valid one-tensor header around which the corruption tests vary one thing.
const std::string kGoodHeader = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
const std::string kGoodData = floats_le({1.0f, 2.0f});

}  // namespace

// ---------------------------------------------------------------- round trips

TEST_F(SafetensorsTest, RoundTripsEveryDtypeBitExact) {
  torch::manual_seed(1);
  auto f32 = torch::randn({2, 3, 4});
  f32[0][0][0] = -0.0f;
  f32[0][0][1] = std::numeric_limits<float>::quiet_NaN();
  f32[0][0][2] = std::numeric_limits<float>::infinity();
  std::map<std::string, torch::Tensor> tensors = {
      {"f64", torch::randn({3, 4}, torch::kDouble)},
      {"f32", f32},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({4, 4}).to(torch::kBFloat16)},
      {"i64", torch::tensor(
                  {std::numeric_limits<int64_t>::min(), int64_t{-1}, int64_t{0}, std::numeric_limits<int64_t>::max()})},
      {"i32", torch::randint(-100000, 100000, {7}, torch::kInt)},
      {"i16", torch::randint(-30000, 30000, {2, 2}, torch::kShort)},
      {"i8", torch::randint(-128, 128, {9}, torch::kChar)},
      {"u8", torch::randint(0, 256, {3, 3}, torch::kByte)},
      {"bool", torch::randint(0, 2, {6}).to(torch::kBool)},
      {"scalar", torch::scalar_tensor(3.5, torch::kFloat)},
      {"empty", torch::empty({0, 3})},
      {"empty_i32", torch::empty({4, 0}, torch::kInt)},
  };
  std::string file_path = path("all.safetensors");
  save(file_path, tensors);
  auto file = File::open(file_path);
  ASSERT_EQ(file->names().size(), tensors.size());
  const std::map<std::string, std::string> expected_names = {
      {"f64", "F64"},    {"f32", "F32"},   {"f16", "F16"},      {"bf16", "BF16"}, {"i64", "I64"},
      {"i32", "I32"},    {"i16", "I16"},   {"i8", "I8"},        {"u8", "U8"},     {"bool", "BOOL"},
      {"scalar", "F32"}, {"empty", "F32"}, {"empty_i32", "I32"}};
  for (const auto& [name, original] : tensors) {
    SCOPED_TRACE(name);
    const TensorInfo& info = file->tensors().at(name);
    EXPECT_EQ(info.dtype_name, expected_names.at(name));
    EXPECT_EQ(info.dtype, original.scalar_type());
    EXPECT_EQ(info.shape, original.sizes().vec());
    torch::Tensor loaded = file->tensor(name);
    EXPECT_TRUE(bytes_equal(loaded, original));
  }
  EXPECT_EQ(file->tensor("scalar").dim(), 0);
  EXPECT_EQ(file->tensor("scalar").item<float>(), 3.5f);
  EXPECT_EQ(file->tensor("empty").sizes().vec(), (std::vector<int64_t>{0, 3}));
}

TEST_F(SafetensorsTest, WritesTheExactReferenceLayout) {
  std::string file_path = path("exact.safetensors");
  save(file_path, {{"b", torch::tensor({3.0f})}, {"a", torch::tensor({1.0f, 2.0f})}});
  std::string header = R"({"__metadata__":{"format":"pt"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
                       R"("b":{"data_offsets":[8,12],"dtype":"F32","shape":[1]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(test::read_text(file_path), raw_file(header, floats_le({1.0f, 2.0f, 3.0f})));
}

TEST_F(SafetensorsTest, HeaderIsPaddedSoDataStartsEightAligned) {
  // Names of every length mod 8 make the unpadded header length take every residue.
  for (int length = 1; length <= 8; ++length) {
    SCOPED_TRACE(length);
    std::string file_path = path("aligned" + std::to_string(length) + ".safetensors");
    save(file_path, {{std::string(length, 'x'), torch::ones({3})}}, {});
    std::string bytes = test::read_text(file_path);
    uint64_t header_size = 0;
    std::memcpy(&header_size, bytes.data(), 8);
    EXPECT_EQ(header_size % 8, 0u);
    EXPECT_EQ(bytes.size(), 8 + header_size + 12);
    std::string header = bytes.substr(8, header_size);
    EXPECT_EQ(header.find_last_not_of(' '), header.rfind('}'));  // padding is spaces after the JSON
    auto file = File::open(file_path);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(file->tensor(std::string(length, 'x')).data_ptr()) % 8, 0u);
  }
}

TEST_F(SafetensorsTest, TensorsAreContiguousInKeyOrder) {
  std::string file_path = path("order.safetensors");
  save(file_path, {{"c", torch::ones({2})}, {"a", torch::ones({3})}, {"b", torch::ones({1})}});
  auto file = File::open(file_path);
  EXPECT_EQ(file->tensors().at("a").begin, 0u);
  EXPECT_EQ(file->tensors().at("b").begin, 12u);
  EXPECT_EQ(file->tensors().at("c").begin, 16u);
  EXPECT_EQ(file->tensors().at("c").end, 24u);
}

TEST_F(SafetensorsTest, MetadataRoundTrips) {
  std::map<std::string, std::string> metadata = {
      {"format", "pt"}, {"note", "quotes \" and \\ and\nnewline"}, {"unicode", "caf\xc3\xa9"}, {"empty", ""}};
  save(path("meta.safetensors"), {{"w", torch::zeros({2})}}, metadata);
  EXPECT_EQ(File::open(path("meta.safetensors"))->metadata(), metadata);
  save(path("nometa.safetensors"), {{"w", torch::zeros({2})}}, {});
  EXPECT_TRUE(File::open(path("nometa.safetensors"))->metadata().empty());
}

TEST_F(SafetensorsTest, SavesNonContiguousAndGradTensors) {
  auto base = torch::arange(12, torch::kFloat).reshape({3, 4}).requires_grad_(true);
  save(path("view.safetensors"), {{"t", base.t()}, {"s", base.slice(1, 1, 3)}});
  auto file = File::open(path("view.safetensors"));
  EXPECT_TRUE(torch::equal(file->tensor("t"), base.detach().t().contiguous()));
  EXPECT_TRUE(torch::equal(file->tensor("s"), base.detach().slice(1, 1, 3).contiguous()));
  EXPECT_EQ(file->tensor("t").sizes().vec(), (std::vector<int64_t>{4, 3}));
}

TEST_F(SafetensorsTest, SaveRejectsUnsupportedDtypeAndReservedName) {
  std::string complex_path = path("complex.safetensors");
  try {
    save(complex_path, {{"z", torch::zeros({2}, torch::kComplexFloat)}});
    FAIL() << "saved a complex tensor";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(complex_path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'z'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(complex_path));
  EXPECT_THROW(save(path("reserved.safetensors"), {{"__metadata__", torch::zeros({1})}}), Error);
  EXPECT_TRUE(fs::is_empty(dir_));  // neither file nor temporary left behind
}

TEST_F(SafetensorsTest, DtypeNames) {
  EXPECT_EQ(dtype_from_name("BF16"), torch::kBFloat16);
  EXPECT_EQ(dtype_name(torch::kBool), "BOOL");
  EXPECT_THROW(dtype_from_name("F8_E4M3"), Error);
  EXPECT_THROW(dtype_name(torch::kComplexDouble), Error);
}

// ---------------------------------------------------------------- the mapping

TEST_F(SafetensorsTest, TensorsShareTheMapping) {
  save(path("m.safetensors"), {{"w", torch::arange(16, torch::kFloat)}});
  auto file = File::open(path("m.safetensors"));
  EXPECT_EQ(file->tensor("w").data_ptr(), file->tensor("w").data_ptr());  // zero-copy views
}

TEST_F(SafetensorsTest, MappingOutlivesTheFileObject) {
  auto expected = torch::arange(1000, torch::kFloat);
  save(path("m.safetensors"), {{"w", expected}});
  auto file = File::open(path("m.safetensors"));
  std::weak_ptr<File> watch = file;
  torch::Tensor w = file->tensor("w");
  file.reset();
  EXPECT_FALSE(watch.expired());  // the tensor keeps the mapping
  EXPECT_TRUE(torch::equal(w, expected));
  EXPECT_EQ(w.sum().item<float>(), 999.0f * 1000.0f / 2.0f);
  w = torch::Tensor();
  EXPECT_TRUE(watch.expired());  // and releases it with the last tensor
}

TEST_F(SafetensorsTest, InPlaceWritesAreCopyOnWrite) {
  std::string file_path = path("cow.safetensors");
  save(file_path, {{"w", torch::arange(8, torch::kFloat)}});
  const std::string before = test::read_text(file_path);
  {
    auto file = File::open(file_path);
    torch::Tensor w = file->tensor("w");
    w.fill_(42.0f);  // must neither fault nor reach the file
    EXPECT_EQ(w[3].item<float>(), 42.0f);
  }
  EXPECT_EQ(test::read_text(file_path), before);
  EXPECT_TRUE(torch::equal(File::open(file_path)->tensor("w"), torch::arange(8, torch::kFloat)));
}

TEST_F(SafetensorsTest, MisalignedDataIsCopied) {
  // Unpadded header of odd length: the F32 data starts at an address that is not 4-aligned.
  std::string header = kGoodHeader + " ";
  if ((8 + header.size()) % 4 == 0) header += " ";
  std::string file_path = test::write_text(path("odd.safetensors"), raw_file(header, kGoodData));
  auto file = File::open(file_path);
  torch::Tensor a = file->tensor("a");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data_ptr()) % 4, 0u);
  EXPECT_TRUE(torch::equal(a, torch::tensor({1.0f, 2.0f})));

  // The writer keeps key order, so a small I8 tensor can misalign the F32 after it.
  save(path("mixed.safetensors"), {{"a", torch::tensor({1, 2, 3}, torch::kChar)}, {"b", torch::tensor({4.5f, 5.5f})}});
  auto mixed = File::open(path("mixed.safetensors"));
  EXPECT_EQ(mixed->tensors().at("b").begin, 3u);
  EXPECT_TRUE(torch::equal(mixed->tensor("b"), torch::tensor({4.5f, 5.5f})));
}

TEST_F(SafetensorsTest, ReadsHandWrittenFile) {
  std::string header = R"({"__metadata__":{"format":"pt"},"x":{"dtype":"I16","shape":[2],"data_offsets":[8,12]},)"
                       R"("y":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}})";
  std::string data = floats_le({0.5f, -2.0f}) + std::string("\x01\x00\xff\xff", 4);
  std::string file_path = test::write_text(path("hand.safetensors"), raw_file(header, data));
  auto file = File::open(file_path);
  EXPECT_EQ(file->names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(file->contains("x"));
  EXPECT_FALSE(file->contains("__metadata__"));
  EXPECT_TRUE(torch::equal(file->tensor("x"), torch::tensor({1, -1}, torch::kShort)));
  EXPECT_TRUE(torch::equal(file->tensor("y"), torch::tensor({{0.5f, -2.0f}})));
  EXPECT_EQ(file->metadata().at("format"), "pt");
}

TEST_F(SafetensorsTest, EmptyFileWithoutTensorsIsValid) {
  std::string file_path = test::write_text(path("none.safetensors"), raw_file("{}      ", ""));
  EXPECT_TRUE(File::open(file_path)->names().empty());
}

TEST_F(SafetensorsTest, UnknownTensorNameNamesTensorAndFile) {
  save(path("w.safetensors"), {{"w", torch::ones({1})}});
  auto file = File::open(path("w.safetensors"));
  try {
    file->tensor("missing.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.weight"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(path("w.safetensors")), std::string::npos);
  }
}

// ---------------------------------------------------------------- corruptions, one per case

TEST_F(SafetensorsTest, RejectsMissingFile) {
  std::string message = open_error(path("absent.safetensors"));
  EXPECT_NE(message.find(path("absent.safetensors")), std::string::npos) << message;
  EXPECT_NE(message.find("No such file"), std::string::npos) << message;
}

TEST_F(SafetensorsTest, RejectsDirectory) {
  fs::create_directories(path("dir.safetensors"));
  EXPECT_NE(open_error(path("dir.safetensors")).find("not a regular file"), std::string::npos);
}

TEST_F(SafetensorsTest, RejectsEmptyFile) { expect_rejected("", "shorter than 8 bytes"); }
TEST_F(SafetensorsTest, RejectsFileShorterThan8Bytes) {
  expect_rejected(std::string("\x05\0\0\0\0", 5), "shorter than 8 bytes");
}

TEST_F(SafetensorsTest, RejectsHeaderLengthLargerThanFile) {
  expect_rejected(u64_le(kGoodHeader.size() + 100) + kGoodHeader + kGoodData, "is larger than the file");
}

TEST_F(SafetensorsTest, RejectsHeaderLengthOver100MB) {
  expect_rejected(u64_le(100'000'001) + kGoodHeader + kGoodData, "exceeds the 100 MB limit");
  expect_rejected(u64_le(~uint64_t{0}) + kGoodHeader, "exceeds the 100 MB limit");
}

TEST_F(SafetensorsTest, RejectsInvalidJson) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32",)", ""), "header not valid JSON");
}

TEST_F(SafetensorsTest, RejectsInvalidUtf8InHeader) {
  expect_rejected(raw_file("{\"\xff\xfe\":{}}", ""), "header not valid JSON");
}

TEST_F(SafetensorsTest, RejectsHeaderThatIsNotAnObject) {
  expect_rejected(raw_file("[1, 2, 3]", ""), "header is not a JSON object");
}

TEST_F(SafetensorsTest, RejectsEntryThatIsNotAnObject) {
  expect_rejected(raw_file(R"({"a": [0, 8]})", ""), "tensor 'a': entry is not a JSON object");
}

TEST_F(SafetensorsTest, RejectsEntryWithoutDtype) {
  expect_rejected(raw_file(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", kGoodData), "tensor 'a': missing 'dtype'");
}

TEST_F(SafetensorsTest, RejectsEntryWithoutShape) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", kGoodData), "tensor 'a': missing 'shape'");
}

TEST_F(SafetensorsTest, RejectsEntryWithoutDataOffsets) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2]}})", kGoodData), "tensor 'a': missing 'data_offsets'");
}

TEST_F(SafetensorsTest, RejectsDtypeThatIsNotAString) {
  expect_rejected(raw_file(R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", kGoodData),
                  "'dtype' must be a string");
}

TEST_F(SafetensorsTest, RejectsShapeThatIsNotAnArray) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", kGoodData),
                  "'shape' must be an array of integers");
}

TEST_F(SafetensorsTest, RejectsNonIntegerDimension) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", kGoodData),
                  "'shape' must be an array of integers");
}

TEST_F(SafetensorsTest, RejectsNegativeDimension) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", kGoodData),
                  "negative dimension -2");
}

TEST_F(SafetensorsTest, RejectsOverflowingShape) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", kGoodData),
                  "is too large");
}

TEST_F(SafetensorsTest, RejectsDataOffsetsOfWrongLength) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", kGoodData),
                  "'data_offsets' must be two non-negative integers");
}

TEST_F(SafetensorsTest, RejectsNegativeDataOffsets) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", kGoodData),
                  "'data_offsets' must be two non-negative integers");
}

TEST_F(SafetensorsTest, RejectsNonNumericDataOffsets) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}})", kGoodData),
                  "'data_offsets' must be two non-negative integers");
}

TEST_F(SafetensorsTest, RejectsUnknownDtype) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", std::string(2, '\0')),
                  "tensor 'a': unsupported dtype 'F8_E4M3'");
}

TEST_F(SafetensorsTest, RejectsOffsetsOutsideTheDataBuffer) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", kGoodData),
                  "lie outside the data buffer of 8 bytes");
}

TEST_F(SafetensorsTest, RejectsBeginAfterEnd) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", kGoodData), "begin 8 > end 0");
}

TEST_F(SafetensorsTest, RejectsSizeThatDoesNotMatchShape) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kGoodData),
                  "tensor 'a': data_offsets [0, 8] span 8 bytes but shape [3] of F32 needs 12 bytes");
}

TEST_F(SafetensorsTest, RejectsOverlappingRanges) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           floats_le({1, 2, 3})),
                  "tensor 'b' (bytes 4..12) overlaps tensor 'a'");
}

TEST_F(SafetensorsTest, RejectsIdenticalRanges) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                           kGoodData),
                  "overlaps");
}

TEST_F(SafetensorsTest, RejectsGapBetweenRanges) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
                           floats_le({1, 2, 3})),
                  "gap of unused bytes 4..8 before tensor 'b'");
}

TEST_F(SafetensorsTest, RejectsGapBeforeFirstRange) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", kGoodData),
                  "gap of unused bytes 0..4 before tensor 'a'");
}

TEST_F(SafetensorsTest, RejectsDataAfterTheLastTensor) {
  expect_rejected(raw_file(kGoodHeader, kGoodData + "junk"),
                  "invalid data buffer length: tensors end at byte 8 but the data buffer has 12 bytes");
}

TEST_F(SafetensorsTest, RejectsDuplicateTensorNames) {
  expect_rejected(raw_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                           R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           kGoodData),
                  "duplicate key 'a'");
}

TEST_F(SafetensorsTest, RejectsMetadataThatIsNotAnObject) {
  expect_rejected(raw_file(R"({"__metadata__":"pt","a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kGoodData),
                  "__metadata__ is not a JSON object");
}

TEST_F(SafetensorsTest, RejectsNonStringMetadataValue) {
  expect_rejected(
      raw_file(R"({"__metadata__":{"step":3},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kGoodData),
      "__metadata__ value for 'step' is not a string");
}

TEST_F(SafetensorsTest, RejectsDuplicateMetadataKeys) {
  expect_rejected(
      raw_file(R"({"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kGoodData),
      "duplicate key 'k'");
}

// ---------------------------------------------------------------- checkpoints

namespace {

// Two shards and an index: "a" and "b" in the first, "c" in the second.
void write_sharded(const std::string& dir) {
  save(dir + "/model-00001-of-00002.safetensors", {{"a", torch::ones({2})}, {"b", torch::full({3}, 2.0f)}});
  save(dir + "/model-00002-of-00002.safetensors", {{"c", torch::full({1, 2}, 3.0f)}});
  test::write_text(dir + "/model.safetensors.index.json",
                   R"({"metadata": {"total_size": 28}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                   "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
}

std::string checkpoint_error(const std::string& dir) {
  try {
    Checkpoint::open_directory(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_F(SafetensorsTest, CheckpointFromSingleFileDirectory) {
  save(path("model.safetensors"), {{"w", torch::ones({2, 2})}});
  auto checkpoint = Checkpoint::open_directory(dir_);
  EXPECT_EQ(checkpoint.names(), std::vector<std::string>{"w"});
  EXPECT_EQ(checkpoint.info("w").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_TRUE(torch::equal(checkpoint.tensor("w"), torch::ones({2, 2})));
  EXPECT_NE(checkpoint.describe().find(dir_), std::string::npos);
}

TEST_F(SafetensorsTest, CheckpointFromShards) {
  write_sharded(dir_);
  auto checkpoint = Checkpoint::open_directory(dir_);
  EXPECT_EQ(checkpoint.names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(checkpoint.contains("c"));
  EXPECT_TRUE(torch::equal(checkpoint.tensor("b"), torch::full({3}, 2.0f)));
  EXPECT_TRUE(torch::equal(checkpoint.tensor("c"), torch::full({1, 2}, 3.0f)));
  EXPECT_EQ(checkpoint.info("c").dtype_name, "F32");
}

TEST_F(SafetensorsTest, CheckpointMissingTensorNamesTensorAndCheckpoint) {
  write_sharded(dir_);
  auto checkpoint = Checkpoint::open_directory(dir_);
  try {
    checkpoint.tensor("lm_head.weight");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lm_head.weight"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir_), std::string::npos) << e.what();
  }
  EXPECT_THROW(checkpoint.info("lm_head.weight"), Error);
}

TEST_F(SafetensorsTest, CheckpointRejectsMissingShardFile) {
  write_sharded(dir_);
  fs::remove(path("model-00002-of-00002.safetensors"));
  std::string message = checkpoint_error(dir_);
  EXPECT_NE(message.find("shard 'model-00002-of-00002.safetensors'"), std::string::npos) << message;
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
}

TEST_F(SafetensorsTest, CheckpointRejectsTensorAbsentFromItsShard) {
  write_sharded(dir_);
  test::write_text(path("model.safetensors.index.json"),
                   R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors",
                   "ghost": "model-00002-of-00002.safetensors"}})");
  std::string message = checkpoint_error(dir_);
  EXPECT_NE(message.find("tensor 'ghost' is listed in shard"), std::string::npos) << message;
  EXPECT_NE(message.find("does not contain it"), std::string::npos) << message;
}

TEST_F(SafetensorsTest, CheckpointRejectsTensorInTwoShards) {
  write_sharded(dir_);
  save(path("model-00002-of-00002.safetensors"), {{"a", torch::ones({2})}, {"c", torch::full({1, 2}, 3.0f)}});
  std::string message = checkpoint_error(dir_);
  EXPECT_NE(message.find("tensor 'a' is present in two shards"), std::string::npos) << message;
}

TEST_F(SafetensorsTest, CheckpointRejectsBadIndex) {
  test::write_text(path("model.safetensors.index.json"), "{\"weight_map\": ");
  EXPECT_NE(checkpoint_error(dir_).find("not valid JSON"), std::string::npos);
  test::write_text(path("model.safetensors.index.json"), R"({"metadata": {}})");
  EXPECT_NE(checkpoint_error(dir_).find("missing 'weight_map' object"), std::string::npos);
  test::write_text(path("model.safetensors.index.json"), R"({"weight_map": {"a": 1}})");
  EXPECT_NE(checkpoint_error(dir_).find("is not a string"), std::string::npos);
}

TEST_F(SafetensorsTest, CheckpointRejectsDirectoryWithoutWeights) {
  std::string message = checkpoint_error(dir_);
  EXPECT_EQ(message, "no model.safetensors or model.safetensors.index.json in " + dir_);
  EXPECT_NE(checkpoint_error(path("nonexistent")).find("does not exist"), std::string::npos);
}

TEST_F(SafetensorsTest, CheckpointPropagatesCorruptShardError) {
  test::write_text(path("model.safetensors"), "short");
  std::string message = checkpoint_error(dir_);
  EXPECT_NE(message.find(path("model.safetensors")), std::string::npos) << message;
  EXPECT_NE(message.find("shorter than 8 bytes"), std::string::npos) << message;
}

// ---------------------------------------------------------------- real data

TEST(SafetensorsRealData, ReadsStories260K) {
  auto data = test::shared_data_dir();
  if (!data) GTEST_SKIP() << "no shared data";
  std::string file_path = *data + "/stories260K-hf/model.safetensors";
  if (!fs::exists(file_path)) GTEST_SKIP() << file_path << " missing";
  auto file = File::open(file_path);
  EXPECT_EQ(file->names().size(), 47u);
  for (const auto& [name, info] : file->tensors()) EXPECT_EQ(info.dtype_name, "F32") << name;
  torch::Tensor embed = file->tensor("model.embed_tokens.weight");
  EXPECT_EQ(embed.sizes().vec(), (std::vector<int64_t>{512, 64}));
  EXPECT_TRUE(torch::isfinite(embed).all().item<bool>());
  EXPECT_GT(embed.abs().sum().item<float>(), 0.0f);

  // Re-saving reproduces every tensor bit-exactly.
  std::map<std::string, torch::Tensor> all;
  for (const auto& name : file->names()) all[name] = file->tensor(name);
  std::string dir = test::temp_dir("stories");
  save(dir + "/model.safetensors", all);
  auto checkpoint = Checkpoint::open_directory(dir);
  for (const auto& name : file->names()) EXPECT_TRUE(bytes_equal(checkpoint.tensor(name), all[name])) << name;
  fs::remove_all(dir);
}
