// Tokenizer files: kdgrid's JSON (save/load, canonical text for the SHA-256) and GPT-2's
// vocab.json + merges.txt. Readers validate everything and throw UsageError naming the file.
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "data/byte_unicode.h"
#include "data/file_util.h"
#include "data/pretokenizer.h"
#include "data/tokenizer.h"
#include "src/core/check.h"

namespace kdgrid {

namespace {

constexpr char kFormat[] = "kdgrid-bpe";
constexpr int kFormatVersion = 1;
constexpr char kGpt2EndOfText[] = "<|endoftext|>";

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

[[noreturn]] void fileError(const std::string& path, const std::string& what) {
  throw UsageError(fmt::format("tokenizer file '{}': {}", path, what));
}

Json parseJsonFile(const std::string& path) {
  const std::string text = readWholeFile(path, "tokenizer file");
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    fileError(path, fmt::format("not valid JSON ({})", e.what()));
  }
}

const Json& field(const Json& object, const char* name, const std::string& path) {
  auto it = object.find(name);
  if (it == object.end()) fileError(path, fmt::format("missing field \"{}\"", name));
  return *it;
}

uint64_t unsignedField(const Json& object, const char* name, uint64_t max,
                       const std::string& path) {
  const Json& v = field(object, name, path);
  if (!v.is_number_unsigned() || v.get<uint64_t>() > max) {
    fileError(path, fmt::format("field \"{}\" must be an integer in [0, {}], not {}", name, max,
                                v.dump()));
  }
  return v.get<uint64_t>();
}

const std::string& stringField(const Json& object, const char* name, const std::string& path) {
  const Json& v = field(object, name, path);
  if (!v.is_string()) fileError(path, fmt::format("field \"{}\" must be a string", name));
  return v.get_ref<const std::string&>();
}

// "left right" (GPT-2 form) -> ids. Tokens in GPT-2 form never hold a space (byte 0x20 is 'Ġ').
std::pair<uint32_t, uint32_t> parseMerge(std::string_view line,
                                         const std::unordered_map<std::string, uint32_t>& ids,
                                         const std::string& path, size_t index) {
  const size_t space = line.find(' ');
  if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
    fileError(path, fmt::format("merge {} (\"{}\") is not two tokens separated by one space", index,
                                line));
  }
  auto left = ids.find(std::string(line.substr(0, space)));
  auto right = ids.find(std::string(line.substr(space + 1)));
  if (left == ids.end() || right == ids.end()) {
    fileError(path, fmt::format("merge {} (\"{}\") names a token that is not in the vocabulary",
                                index, line));
  }
  return {left->second, right->second};
}

}  // namespace

std::string Tokenizer::canonicalJson() const {
  OrderedJson j;
  j["format"] = kFormat;
  j["version"] = kFormatVersion;
  j["vocab_size"] = tokens_.size();
  j["eot_token"] = eot_;
  j["pattern"] = kGpt2Pattern;
  OrderedJson vocab = OrderedJson::array();
  for (uint32_t id = 0; id < tokens_.size(); ++id) {
    vocab.push_back(id == eot_ ? tokens_[id] : bytesToGpt2(tokens_[id]));
  }
  j["vocab"] = std::move(vocab);
  OrderedJson merges = OrderedJson::array();
  for (const auto& [left, right] : merges_) {
    merges.push_back(bytesToGpt2(tokens_[left]) + " " + bytesToGpt2(tokens_[right]));
  }
  j["merges"] = std::move(merges);
  return j.dump(1) + "\n";  // one vocab entry / merge per line: readable and diffable
}

void Tokenizer::save(const std::string& path) const {
  writeFileAtomically(path, canonicalJson(), "tokenizer file");
}

Tokenizer Tokenizer::load(const std::string& path) {
  const Json j = parseJsonFile(path);
  if (!j.is_object()) fileError(path, "not a JSON object");
  if (stringField(j, "format", path) != kFormat) {
    fileError(path, fmt::format("format is \"{}\", expected \"{}\"", stringField(j, "format", path),
                                kFormat));
  }
  const uint64_t version = unsignedField(j, "version", std::numeric_limits<int>::max(), path);
  if (version != kFormatVersion) {
    fileError(path, fmt::format("version {} is not supported (this build reads version {})",
                                version, kFormatVersion));
  }
  const uint64_t vocab_size = unsignedField(j, "vocab_size", kMaxVocabSize, path);
  const uint64_t eot = unsignedField(j, "eot_token", kMaxVocabSize, path);
  if (stringField(j, "pattern", path) != kGpt2Pattern) {
    fileError(path, "\"pattern\" is not GPT-2's pre-tokeniser pattern (the only one supported)");
  }
  const Json& vocab = field(j, "vocab", path);
  if (!vocab.is_array() || vocab.size() != vocab_size) {
    fileError(path,
              fmt::format("\"vocab\" must be an array of vocab_size = {} strings", vocab_size));
  }
  if (eot >= vocab_size)
    fileError(path, fmt::format("eot_token {} >= vocab_size {}", eot, vocab_size));

  std::vector<std::string> tokens(vocab_size);
  std::unordered_map<std::string, uint32_t> id_of_spelling;  // GPT-2 form -> id
  id_of_spelling.reserve(vocab_size);
  for (uint32_t id = 0; id < vocab_size; ++id) {
    if (!vocab[id].is_string()) fileError(path, fmt::format("vocab entry {} is not a string", id));
    const auto& spelling = vocab[id].get_ref<const std::string&>();
    if (id == eot) {
      tokens[id] = spelling;
      continue;
    }
    auto bytes = gpt2ToBytes(spelling);
    if (!bytes) {
      fileError(path, fmt::format("vocab entry {} is not in GPT-2's byte-to-unicode form", id));
    }
    tokens[id] = std::move(*bytes);
    id_of_spelling.emplace(spelling, id);
  }
  const Json& merge_list = field(j, "merges", path);
  if (!merge_list.is_array()) fileError(path, "\"merges\" must be an array of strings");
  std::vector<std::pair<uint32_t, uint32_t>> merges;
  merges.reserve(merge_list.size());
  for (size_t i = 0; i < merge_list.size(); ++i) {
    if (!merge_list[i].is_string()) fileError(path, fmt::format("merge {} is not a string", i));
    merges.push_back(
        parseMerge(merge_list[i].get_ref<const std::string&>(), id_of_spelling, path, i));
  }
  return Tokenizer(std::move(tokens), std::move(merges), static_cast<uint32_t>(eot), path);
}

Tokenizer Tokenizer::fromGpt2Files(const std::string& vocab_json, const std::string& merges_txt) {
  const Json vocab = parseJsonFile(vocab_json);
  if (!vocab.is_object() || vocab.size() < kMinVocabSize || vocab.size() > kMaxVocabSize) {
    fileError(vocab_json, fmt::format("must be a JSON object of {}..{} \"token\": id entries",
                                      kMinVocabSize, kMaxVocabSize));
  }
  const size_t n = vocab.size();
  std::vector<std::string> tokens(n);
  std::vector<bool> seen(n, false);
  std::unordered_map<std::string, uint32_t> id_of_spelling;
  uint32_t eot = UINT32_MAX;
  for (const auto& [spelling, id_json] : vocab.items()) {
    if (!id_json.is_number_unsigned() || id_json.get<uint64_t>() >= n ||
        seen[id_json.get<uint64_t>()]) {
      fileError(vocab_json, fmt::format("token \"{}\" has id {}; ids must be 0..{} each used once",
                                        spelling, id_json.dump(), n - 1));
    }
    const auto id = static_cast<uint32_t>(id_json.get<uint64_t>());
    seen[id] = true;
    if (spelling == kGpt2EndOfText) {
      eot = id;
      tokens[id] = spelling;
      continue;
    }
    auto bytes = gpt2ToBytes(spelling);
    if (!bytes) {
      fileError(vocab_json, fmt::format("token {} (\"{}\") is not in GPT-2's byte-to-unicode form",
                                        id, spelling));
    }
    tokens[id] = std::move(*bytes);
    id_of_spelling.emplace(spelling, id);
  }
  if (eot == UINT32_MAX) fileError(vocab_json, fmt::format("has no {} token", kGpt2EndOfText));

  const std::string text = readWholeFile(merges_txt, "GPT-2 merges file");
  std::vector<std::pair<uint32_t, uint32_t>> merges;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    merges.push_back(parseMerge(line, id_of_spelling, merges_txt, merges.size()));
  }
  return Tokenizer(std::move(tokens), std::move(merges), eot, vocab_json + " + " + merges_txt);
}

void Tokenizer::writeGpt2Files(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  KDGRID_INPUT_CHECK(!ec, "cannot create directory '{}': {}", dir, ec.message());
  OrderedJson vocab = OrderedJson::object();
  for (uint32_t id = 0; id < tokens_.size(); ++id) {
    vocab[id == eot_ ? tokens_[id] : bytesToGpt2(tokens_[id])] = id;
  }
  writeFileAtomically(dir + "/vocab.json", vocab.dump(), "GPT-2 vocab file");
  std::string merges = "#version: 0.2\n";
  for (const auto& [left, right] : merges_) {
    merges += bytesToGpt2(tokens_[left]) + " " + bytesToGpt2(tokens_[right]) + "\n";
  }
  writeFileAtomically(dir + "/merges.txt", merges, "GPT-2 merges file");
}

}  // namespace kdgrid
