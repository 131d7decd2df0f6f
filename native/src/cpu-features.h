#pragma once

namespace ls {

struct CpuFeatures {
  bool avx512 = false;  // F + BW + DQ + VL (and the OS saves zmm state)
  bool avx2 = false;    // AVX2 + FMA + F16C
  bool neon = false;
};

CpuFeatures detect_cpu();

}  // namespace ls
