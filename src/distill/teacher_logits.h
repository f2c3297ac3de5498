// `kdgrid teacher-logits`: a teacher's top-k next-token distribution at every position of a
// directory of token shards, written as kdgrid-teacher-topk shards (data/topk_shards.h) for
// offline distillation.
//
// Alignment: one output shard per input token shard, with the same file name, one row per
// token: row i = the top-k of log-softmax(z_t / T) (over the teacher's full vocabulary) of the
// prediction made at token i, i.e. for token i + 1. Context: each token shard is cut into
// windows of the teacher's max_seq tokens with stride max_seq, starting at the shard's first
// token, the last window shorter when the shard is not a multiple (documents inside a shard
// are not separated further: the stream is the concatenated documents with their EOT tokens,
// as training reads it). So the teacher sees between 1 and max_seq tokens of context, and
// never context from another shard.
//
// Ids: the k most likely ids below the token shards' vocab_size (ids a larger teacher
// vocabulary has beyond it never occur in the data), most likely first, ties to the lower id;
// vocabulary-parallel: each tp rank takes its slice's top-k, the candidates are gathered over
// tp and merged. Parallelism: token shard j is written by data-parallel replica j mod dp; the
// replica's pipeline stages and tp ranks run the teacher together; the last stage's tp rank 0
// writes.
#pragma once

#include <cstdint>
#include <string>

#include "src/core/options.h"
#include "src/parallel/grid.h"

namespace kdgrid {

struct TeacherLogitsConfig {
  std::string teacher;  // CKPT
  std::string data;     // DIR of kdgrid-tokens shards
  std::string out;      // DIR for the kdgrid-teacher-topk shards
  int64_t topk = 32;
  double temperature = 2.0;
  int batch_size = 8;
  std::string dtype = "float16";  // of /topk/logprobs: float16 | float32
  void validate() const;
};

// --teacher --data --out --topk --kd-temperature --batch-size --logprobs-dtype
po::options_description teacherLogitsOptions(TeacherLogitsConfig& config);

// Writes the shards (collective over the world). Exit-2 errors: no checkpoint, a tokenizer
// that differs between teacher and data, k above the vocabulary.
void writeTeacherLogits(const TeacherLogitsConfig& config, GridConfig grid_config);

}  // namespace kdgrid
