// Package archives: how the package harnesses (ml_program, compress) take a whole .mlpackage as
// one fuzz input. test/fuzz/make_corpus.py writes them from real packages.
//
//   repeated until the input ends:
//     uint16 LE path length | path (relative to the package root) | uint32 LE size | file bytes
//
// A record cut short by the end of the input keeps what is there. Paths that are empty, absolute,
// or have a ".." part are dropped, so nothing is written outside the package folder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace palettize {

using ArchiveFiles = std::vector<std::pair<std::string, std::string>>;  // path, bytes

ArchiveFiles ParseArchive(const uint8_t* data, size_t size);

// A folder of its own for this process (under /dev/shm when it exists: the harnesses write a
// package per input), removed at exit.
const std::string& FuzzScratchDir();

// Replaces the folder `dir` with a package made of `files`. Files that cannot be written (a path
// that runs through a file) are left out: the library sees what a broken package would hold.
void WriteArchive(const ArchiveFiles& files, const std::string& dir);

// Adds a standard Manifest.json (the model at Data/com.apple.CoreML/model.mlmodel, the weights
// folder beside it) when `files` has none, so that an input need hold only the model and weights.
void AddDefaultManifest(ArchiveFiles* files);

// Whether the folder `dir` still holds the bytes WriteArchive(files, dir) wrote (a path the
// archive names twice holds its last bytes; files that could not be written are not checked).
bool ArchiveUnchanged(const ArchiveFiles& files, const std::string& dir);

// Whether anything in the scratch folder has a name starting with `prefix`: an output, or a
// temporary folder or file left beside it.
bool ScratchHas(const std::string& prefix);

}  // namespace palettize
