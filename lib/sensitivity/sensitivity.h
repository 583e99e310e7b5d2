// Sensitivities: per-element weights of the k-means objective, sum_i s_i (w_i - c(w_i))^2, read
// from a .safetensors file and matched to a model's consts (README "Sensitivity-weighted
// k-means", docs/format.md section 6).
//
// Which tensor applies to which const:
//   - A tensor `X.sensitivity` is the sensitivity of key X; any other tensor X is the sensitivity
//     of key X, unless the file also holds `X.sensitivity` (then X holds the weight's values).
//   - Key X applies to the const named X (names as `palettize inspect` lists them): a name match.
//     Its shape must be the const's.
//   - Otherwise, when the file holds tensor X (the original weight, as training code saved it), it
//     applies to every const of X's shape whose values equal X's rounded to the const's dtype
//     (bit patterns compared; +0 and -0 differ): a value match. The first key in name order wins.
// Every sensitivity must be finite and >= 0.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "mil/weights.h"
#include "palettize/status.h"
#include "safetensors/safetensors.h"

namespace palettize {

// The sensitivities of one weight, read lazily from the file, optionally normalised as
// coremltools' SKMPalettizer does (per tensor: all zero -> all 1; divide by the maximum; zeros
// become the smallest non-zero value; anything below 1e-12 becomes 1e-12).
//
// With a file descriptor (`fd` >= 0, as SensitivitySet::Match gives), Read copies the elements
// from the file with pread through a small per-thread buffer and never touches `tensor->data`, so
// no page of the file becomes part of the process's resident set: a weighted run costs the memory
// of a plain one. (Reading the mapping and dropping its pages after each chunk keeps ~10% of them
// resident: each page fault maps its neighbours too, the kernel's fault-around.) Without one,
// Read reads `tensor->data`, which may be ordinary memory.
struct ElementWeights {
  const SafeTensor* tensor = nullptr;
  bool normalize = false;
  double max = 0;           // the largest value
  double min_positive = 0;  // the smallest value > 0 (0 when there is none)
  // Without normalisation, Read returns the values times 2^-exponent: sensitivities whose largest
  // lies outside [2^-256, 2^256) (FarExponent) come to ~1, so that weighted sums of squares neither
  // overflow nor underflow. A positive scale leaves the weighted k-means' optimum where it was;
  // weighted error sums computed from Read are 2^-exponent times the true ones.
  int exponent = 0;
  // The data is a read-only file mapping, whose pages Release may drop. Never for data in
  // ordinary memory: dropping those pages would zero them.
  bool mapped = false;
  int fd = -1;               // the file, open for reading, or -1
  uint64_t file_offset = 0;  // where the tensor's data starts in it

  // Elements [begin, begin + n) in the weight's row-major order, normalised if asked, into out.
  void Read(uint64_t begin, uint64_t n, double* out) const;
  // Done with elements [begin, begin + n) for now: when `mapped`, their pages leave memory (see
  // ReleaseMappedPages; read again from the file if needed). Nothing to do when read with `fd`.
  void Release(uint64_t begin, uint64_t n) const;
};

struct SensitivityMatch {
  std::string key;     // the key that applies; "" when none does
  std::string tensor;  // the sensitivity tensor's name
  std::string match;   // "name" or "values"
  ElementWeights weights;
};

class SensitivitySet {
 public:
  SensitivitySet() = default;
  ~SensitivitySet();
  SensitivitySet(const SensitivitySet&) = delete;
  SensitivitySet& operator=(const SensitivitySet&) = delete;

  // Opens and checks the file: safetensors layout, every sensitivity finite and >= 0, each
  // `X.sensitivity` of the shape of its X. Errors are InvalidInput naming the file and tensor.
  Status Open(const std::string& path, bool normalize);

  const std::string& path() const { return file_.path(); }

  // The sensitivity of weight `name` of `shape` whose raw values are `data` (nullptr: no value
  // match), or an empty key. A name match of the wrong shape is an InvalidInput error. `mapped`:
  // `data` lies in a file mapping, whose pages the comparisons let go again.
  Status Match(const std::string& name, const TensorShape& shape, const uint8_t* data, bool mapped,
               SensitivityMatch* out);
  // The same for const `w` (mapped when its value is in a blob).
  Status Match(const ConstWeight& w, const uint8_t* data, SensitivityMatch* out);

  // Keys no call to Match has used, in name order.
  std::vector<std::string> Unused() const;

 private:
  struct Key {
    const SafeTensor* sensitivity = nullptr;
    const SafeTensor* values = nullptr;  // the original weight, for value matches
    double max = 0, min_positive = 0;
    bool used = false;
  };
  SensitivityMatch MakeMatch(const std::string& key, Key& k, const char* how) const;
  uint64_t OffsetOf(const SafeTensor& t) const { return uint64_t(t.data - file_.mapped().data()); }

  SafeTensorsFile file_;
  int fd_ = -1;  // the same file, for ElementWeights' reads
  bool normalize_ = false;
  std::map<std::string, Key> keys_;
};

}  // namespace palettize
