// The checkpoint directory protocol (DESIGN sections 3 and 5), free of HDF5: step directory
// names, the `latest` and `best` pointer files, durable renames and pruning. Used by rank 0.
//
//   RUN_DIR/checkpoints/step_NNNNNNNN.tmp/   a save in progress (or a crashed one)
//   RUN_DIR/checkpoints/step_NNNNNNNN/       a finished save (fsynced, then renamed)
//   RUN_DIR/checkpoints/latest               "step_NNNNNNNN\n": the newest complete one
//   RUN_DIR/checkpoints/best                 the same, for the lowest validation loss
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kdgrid {

inline constexpr const char* kLatestFile = "latest";
inline constexpr const char* kBestFile = "best";
inline constexpr const char* kTmpSuffix = ".tmp";

// RUN_DIR/checkpoints
std::string checkpointsDir(const std::string& run_dir);

// "step_00000300" (at least 8 digits).
std::string stepDirName(int64_t step);

// The step of a name "step_" + at least 8 decimal digits; nullopt for anything else
// (including "step_00000300.tmp").
std::optional<int64_t> parseStepDirName(const std::string& name);

// Finished step directories in `ckpt_dir`, newest (highest step) first, as bare names.
std::vector<std::string> listStepDirs(const std::string& ckpt_dir);

// The name a pointer file (`latest`, `best`) holds; nullopt when the file is absent. A pointer
// that does not hold a step directory name is a UsageError naming the file.
std::optional<std::string> readPointer(const std::string& ckpt_dir, const std::string& which);

// Replaces the pointer file atomically: writes WHICH.tmp, fsyncs it, renames it over WHICH,
// fsyncs the directory. Throws Error (exit 1) naming the file on any failure.
void writePointer(const std::string& ckpt_dir, const std::string& which, const std::string& name);

// fsync of every regular file directly in `dir`, then of `dir` itself.
void fsyncDirectoryTree(const std::string& dir);
void fsyncPath(const std::string& path);

// Moves a finished `tmp_dir` to `final_dir` and fsyncs their parent. When `final_dir`
// already exists (the same step saved again) the two are exchanged atomically and the old
// one removed, so a complete copy exists at every moment.
void publishDirectory(const std::string& tmp_dir, const std::string& final_dir);

// Keeps the newest `keep` finished step directories plus those `latest` and `best` name
// (keep <= 0: keep all); removes the rest and every leftover `*.tmp` entry of crashed saves.
// Returns the names removed.
std::vector<std::string> pruneCheckpoints(const std::string& ckpt_dir, int keep);

}  // namespace kdgrid
