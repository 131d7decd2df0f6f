// Which kernel tables this CPU can run (the best one is used unless the caller picks a lower one).
#include "cpu-features.h"

#if (defined(__x86_64__) || defined(_M_X64)) && !defined(_MSC_VER)
#include <cpuid.h>
#endif

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <immintrin.h>
#include <intrin.h>
#endif

namespace ls {

#if defined(__x86_64__) || defined(_M_X64)
#if defined(_MSC_VER)
static bool os_saves(unsigned long long mask) { return (_xgetbv(0) & mask) == mask; }
static void cpuid(int out[4], int leaf, int sub) { __cpuidex(out, leaf, sub); }
#else
static bool os_saves(unsigned long long mask) {
  unsigned int lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((((unsigned long long)hi) << 32 | lo) & mask) == mask;
}
static void cpuid(int out[4], int leaf, int sub) {
  unsigned int a, b, c, d;
  __cpuid_count(leaf, sub, a, b, c, d);
  out[0] = (int)a;
  out[1] = (int)b;
  out[2] = (int)c;
  out[3] = (int)d;
}
#endif

CpuFeatures detect_cpu() {
  CpuFeatures f;
  int r[4];
  cpuid(r, 0, 0);
  const int maxLeaf = r[0];
  cpuid(r, 1, 0);
  const bool osxsave = (r[2] >> 27) & 1, avx = (r[2] >> 28) & 1, fma = (r[2] >> 12) & 1, f16c = (r[2] >> 29) & 1;
  if (!osxsave || !avx || maxLeaf < 7) return f;
  const bool ymm = os_saves(0x6), zmm = os_saves(0xe6);
  cpuid(r, 7, 0);
  const bool avx2 = (r[1] >> 5) & 1;
  const bool avx512f = (r[1] >> 16) & 1, avx512dq = (r[1] >> 17) & 1, avx512bw = (r[1] >> 30) & 1, avx512vl = (r[1] >> 31) & 1;
  f.avx2 = ymm && avx2 && fma && f16c;
  f.avx512 = f.avx2 && zmm && avx512f && avx512dq && avx512bw && avx512vl;
  return f;
}
#elif defined(__aarch64__) || defined(_M_ARM64)
CpuFeatures detect_cpu() {
  CpuFeatures f;
  f.neon = true;  // part of AArch64
  return f;
}
#else
CpuFeatures detect_cpu() { return CpuFeatures{}; }
#endif

}  // namespace ls
