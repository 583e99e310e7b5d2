#include "eval/tensor.h"

#include <cmath>
#include <limits>

#include "MIL.pb.h"
#include "eval/limits.h"
#include "mil/dtype.h"
#include "util/half.h"
#include "util/half_array.h"

namespace palettize::eval {

namespace MT = CoreML::Specification::MILSpec;

bool IsFloatDType(int t) {
  return t == MT::FLOAT16 || t == MT::FLOAT32 || t == MT::FLOAT64 || t == MT::BFLOAT16;
}

bool IsIntDType(int t) {
  switch (t) {
    case MT::BOOL:
    case MT::INT8:
    case MT::INT16:
    case MT::INT32:
    case MT::INT64:
    case MT::INT4:
    case MT::UINT8:
    case MT::UINT16:
    case MT::UINT32:
    case MT::UINT64:
    case MT::UINT4:
    case MT::UINT2:
    case MT::UINT1:
    case MT::UINT6:
    case MT::UINT3: return true;
    default: return false;
  }
}

// x truncated toward zero, saturated to int64's range (a float's cast past it is undefined); NaN 0.
int64_t ToInt64(double x) {
  if (!(x == x)) return 0;
  if (x >= 9223372036854775807.0) return std::numeric_limits<int64_t>::max();
  if (x <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  return int64_t(x);
}

size_t ElementCount(const std::vector<int64_t>& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= size_t(d);
  return n;
}

Tensor::Tensor(int dtype, std::vector<int64_t> shape)
    : dtype_(dtype), shape_(std::move(shape)), size_(ElementCount(shape_)) {
  CheckTensorShape(shape_);  // throws before the storage below is allocated
  if (IsFloatDType(dtype_))
    f_.assign(size_, 0.0f);
  else if (dtype_ == MT::STRING)
    s_.assign(size_, std::string());
  else
    i_.assign(size_, 0);
}

bool Tensor::is_string() const { return dtype_ == MT::STRING; }

double Tensor::at(size_t k) const {
  if (!f_.empty()) return f_[k];
  if (!i_.empty()) return double(i_[k]);
  return std::numeric_limits<double>::quiet_NaN();
}

void Tensor::set(size_t k, double x) {
  if (is_float())
    f_[k] = float(x);
  else if (dtype_ == MT::BOOL)
    i_[k] = x != 0;
  else if (!i_.empty())
    i_[k] = ToInt64(x);
}

void Tensor::RoundToDType() {
  if (dtype_ == MT::FLOAT16) {
    RoundFloatsToHalf(f_.data(), f_.size());
  } else if (dtype_ == MT::BFLOAT16) {
    for (float& v : f_) v = RoundFloatToBFloat16(v);
  } else if (IsIntDType(dtype_) && dtype_ != MT::INT64 && dtype_ != MT::UINT64) {
    if (dtype_ == MT::BOOL) {
      for (int64_t& v : i_) v = v != 0;
      return;
    }
    const DTypeInfo* info = FindDType(dtype_);
    const int bits = info ? info->bits : 64;
    const bool is_signed =
        dtype_ == MT::INT8 || dtype_ == MT::INT16 || dtype_ == MT::INT32 || dtype_ == MT::INT4;
    const uint64_t mask = (uint64_t(1) << bits) - 1;
    for (int64_t& v : i_) {
      uint64_t u = uint64_t(v) & mask;
      if (is_signed && (u >> (bits - 1)) & 1) u |= ~mask;
      v = int64_t(u);
    }
  }
}

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

std::string DescribeTensor(const Tensor& t) { return DTypeName(t.dtype()) + " " + ShapeText(t.shape()); }

}  // namespace palettize::eval
