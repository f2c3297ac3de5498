// Storage types. Math is done in fp32; bf16/fp16 are storage formats converted on load/store.
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>

namespace kdgrid {

// kU32: token ids and other indices (never a compute type).
enum class DType : uint8_t { kF32, kBF16, kF16, kU32 };

constexpr size_t dtypeSize(DType t) { return t == DType::kF32 || t == DType::kU32 ? 4 : 2; }
constexpr std::string_view dtypeName(DType t) {
  return t == DType::kF32    ? "fp32"
         : t == DType::kBF16 ? "bf16"
         : t == DType::kF16  ? "fp16"
                             : "uint32";
}

// bfloat16: the top 16 bits of an IEEE fp32, rounded to nearest even.
struct bf16 {
  uint16_t bits = 0;
  bf16() = default;
  explicit bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {  // NaN: keep it a (quiet) NaN
      bits = static_cast<uint16_t>((u >> 16) | 0x40);
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);
      bits = static_cast<uint16_t>(u >> 16);
    }
  }
  explicit operator float() const {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

// IEEE binary16, converted through the compiler's _Float16 (F16C/AVX-512 FP16 where present).
struct f16 {
  uint16_t bits = 0;
  f16() = default;
  explicit f16(float f) {
    _Float16 h = static_cast<_Float16>(f);
    std::memcpy(&bits, &h, 2);
  }
  explicit operator float() const {
    _Float16 h;
    std::memcpy(&h, &bits, 2);
    return static_cast<float>(h);
  }
};

template <typename T> constexpr DType dtypeOf();
template <> constexpr DType dtypeOf<float>() { return DType::kF32; }
template <> constexpr DType dtypeOf<bf16>() { return DType::kBF16; }
template <> constexpr DType dtypeOf<f16>() { return DType::kF16; }
template <> constexpr DType dtypeOf<uint32_t>() { return DType::kU32; }

inline float toFloat(float x) { return x; }
inline float toFloat(bf16 x) { return static_cast<float>(x); }
inline float toFloat(f16 x) { return static_cast<float>(x); }
template <typename T> T fromFloat(float x) { return T(x); }

}  // namespace kdgrid
