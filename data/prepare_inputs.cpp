#include "data/prepare_inputs.h"

#include <charconv>
#include <filesystem>
#include <map>

#include "data/documents.h"
#include "data/file_util.h"
#include "src/core/check.h"

namespace kdgrid {
namespace {

// Parses "0=backtranslate,1=perturb" into code -> name; false when it is not of that form.
bool parseMethodCodes(std::string_view text, std::map<int, std::string>& codes) {
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq + 1 == item.size()) return false;
    int code = -1;
    auto [end, ec] = std::from_chars(item.data(), item.data() + eq, code);
    if (ec != std::errc() || end != item.data() + eq || code < 0 || code > 255) return false;
    const std::string name(item.substr(eq + 1));
    auto [it, inserted] = codes.emplace(code, name);
    if (!inserted && it->second != name) return false;
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return true;
}

std::string formatMethodCodes(const std::map<int, std::string>& codes) {
  std::string text;
  for (const auto& [code, name] : codes) {
    if (!text.empty()) text += ',';
    text += fmt::format("{}={}", code, name);
  }
  return text;
}

// Where each document's provenance comes from while inputs are read.
struct ProvenanceMerge {
  bool any = false;               // some input shard carries provenance columns
  bool any_token_offset = false;  // ... and some the source_token_offset column
  std::map<int, std::string> codes;
  std::string codes_from;  // the first shard that named codes
  std::map<std::string, std::pair<std::string, std::string>> params;  // name -> (value, shard)
};

}  // namespace

PrepareInputs readPrepareInputs(const std::vector<std::string>& paths, std::string_view option) {
  namespace fs = std::filesystem;
  PrepareInputs in;
  ProvenanceMerge merge;
  // Per document: the shard provenance it came from (nullptr: a plain text file) and its index.
  std::vector<std::pair<const Provenance*, size_t>> doc_source;
  std::vector<std::unique_ptr<const Provenance>> provenances;

  KDGRID_INPUT_CHECK(!paths.empty(), "{}: no input given", option);
  for (const std::string& path : paths) {
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    KDGRID_INPUT_CHECK(fs::exists(status), "{}: '{}' does not exist", option, path);
    if (fs::is_regular_file(status)) {
      auto text = std::make_unique<const std::string>(readWholeFile(path, "input file"));
      for (std::string_view doc : splitDocuments(*text)) {
        in.docs.push_back(doc);
        doc_source.emplace_back(nullptr, 0);
      }
      in.input_bytes += text->size();
      in.storage.push_back(std::move(text));
      ++in.num_text_files;
      continue;
    }
    KDGRID_INPUT_CHECK(fs::is_directory(status),
                       "{}: '{}' is neither a text file nor a directory of text shards", option,
                       path);
    for (const std::string& shard_path : listShards(path, kTextFormat)) {
      TextShard shard = readTextShard(shard_path);
      auto bytes = std::make_unique<const std::string>(std::move(shard.bytes));
      auto provenance = std::make_unique<const Provenance>(std::move(shard.provenance));
      const Provenance* prov = provenance.get();
      if (!prov->empty()) {
        merge.any = true;
        merge.any_token_offset |= !prov->source_token_offset.empty();
        std::map<int, std::string> codes = merge.codes;
        KDGRID_INPUT_CHECK(parseMethodCodes(prov->method_names, codes),
                           "{}: shard '{}': method codes '{}' are not of the form CODE=NAME,... or "
                           "disagree with those of '{}' ('{}')",
                           option, shard_path, prov->method_names, merge.codes_from,
                           formatMethodCodes(merge.codes));
        merge.codes = std::move(codes);
        if (merge.codes_from.empty()) merge.codes_from = shard_path;
      }
      for (const auto& [name, value] : prov->params) {
        auto [it, inserted] = merge.params.emplace(name, std::make_pair(value, shard_path));
        KDGRID_INPUT_CHECK(inserted || it->second.first == value,
                           "{}: shards '{}' and '{}' disagree on parameter '{}' ('{}' vs '{}'); "
                           "prepare them separately",
                           option, it->second.second, shard_path, name, it->second.first, value);
      }
      for (size_t d = 0; d < shard.numDocs(); ++d) {
        in.docs.push_back(std::string_view(*bytes).substr(shard.offsets[d],
                                                          shard.offsets[d + 1] - shard.offsets[d]));
        doc_source.emplace_back(prov->empty() ? nullptr : prov, d);
      }
      in.input_bytes += bytes->size();
      in.storage.push_back(std::move(bytes));
      provenances.push_back(std::move(provenance));
      ++in.num_text_shards;
    }
  }

  if (merge.any) {
    Provenance& out = in.provenance;
    const size_t n = in.docs.size();
    out.source_doc.resize(n);
    out.method.resize(n);
    if (merge.any_token_offset) out.source_token_offset.resize(n);
    bool any_plain = false;
    for (size_t i = 0; i < n; ++i) {
      const auto [prov, d] = doc_source[i];
      if (!prov) any_plain = true;
      out.source_doc[i] = prov ? prov->source_doc[d] : -1;
      out.method[i] = prov ? prov->method[d] : kPlainTextMethod;
      if (merge.any_token_offset) {
        out.source_token_offset[i] =
            prov && !prov->source_token_offset.empty() ? prov->source_token_offset[d] : -1;
      }
    }
    if (any_plain) {
      auto [it, inserted] = merge.codes.emplace(kPlainTextMethod, "none");
      KDGRID_INPUT_CHECK(
          inserted || it->second == "none",
          "{}: method code {} ('{}' in '{}') is reserved for documents from plain text "
          "files",
          option, kPlainTextMethod, it->second, merge.codes_from);
    }
    out.method_names = formatMethodCodes(merge.codes);
  }
  for (const auto& [name, value] : merge.params) in.provenance.params[name] = value.first;
  return in;
}

}  // namespace kdgrid
