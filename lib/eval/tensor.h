// The values the evaluator passes between ops: a MIL dtype, a shape and row-major storage.
//
// Precision model (README "palettize eval"): every float dtype (float16, bfloat16, float32) is
// stored as float. A float16 tensor holds only values exactly representable in float16: each op
// computes in float (fp32 accumulation in sums and products) and its outputs are rounded to
// float16 once, when the op sets them (OpContext::SetOutput), as Core ML's CPU path stores fp16
// activations between ops. float64 is stored as float too (MIL programs do not compute in it).
// Integer dtypes and bool are stored as int64 (bool as 0/1); string tensors, used only by a few
// ops (classify's labels), as strings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace palettize::eval {

// float16, bfloat16, float32, float64.
bool IsFloatDType(int t);
// bool and every signed or unsigned integer dtype.
bool IsIntDType(int t);

class Tensor {
 public:
  Tensor() = default;
  // A tensor of `dtype` and `shape`, every element zero (strings: empty).
  Tensor(int dtype, std::vector<int64_t> shape);

  int dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return int(shape_.size()); }
  int64_t dim(int axis) const { return shape_[size_t(axis)]; }
  size_t size() const { return size_; }
  bool is_float() const { return IsFloatDType(dtype_); }
  bool is_string() const;

  // Storage for float dtypes, integer/bool dtypes, strings; the other two are empty.
  std::vector<float>& f() { return f_; }
  const std::vector<float>& f() const { return f_; }
  std::vector<int64_t>& i() { return i_; }
  const std::vector<int64_t>& i() const { return i_; }
  std::vector<std::string>& s() { return s_; }
  const std::vector<std::string>& s() const { return s_; }

  // Element k as a double, whatever the storage (strings: NaN).
  double at(size_t k) const;
  // Sets element k from a double: float dtypes store float(x), integer ones ToInt64(x), bool x != 0.
  void set(size_t k, double x);

  // Element k of this tensor = element j of `src` (same storage kind: same dtype class).
  void CopyElement(size_t k, const Tensor& src, size_t j) {
    if (!f_.empty())
      f_[k] = src.f_[j];
    else if (!i_.empty())
      i_[k] = src.i_[j];
    else
      s_[k] = src.s_[j];
  }

  // The same storage under another shape of as many elements (reshape, squeeze, expand_dims).
  void Reshape(std::vector<int64_t> shape) { shape_ = std::move(shape); }

  // Rounds float16 (bfloat16) storage to its nearest float16 (bfloat16) values; wraps integer
  // storage to its dtype's range (int8 ... uint32), as a cast in C does. Other dtypes: unchanged.
  void RoundToDType();

 private:
  int dtype_ = 0;
  std::vector<int64_t> shape_;
  size_t size_ = 0;
  std::vector<float> f_;
  std::vector<int64_t> i_;
  std::vector<std::string> s_;
};

// x truncated toward zero and saturated to int64's range; NaN gives 0 (a cast past the range
// is undefined behaviour).
int64_t ToInt64(double x);

// Product of `shape`'s dimensions (1 for a scalar).
size_t ElementCount(const std::vector<int64_t>& shape);

// "float16 [1, 3]"
std::string DescribeTensor(const Tensor& t);
std::string ShapeText(const std::vector<int64_t>& shape);

}  // namespace palettize::eval
