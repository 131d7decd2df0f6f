// The kernels compiled for avx512 (see kernels-impl.h; binding.gyp gives this file its compiler flags).
#define LS_ISA_AVX512 1
#define LS_NS isa_avx512
#include "kernels-impl.h"
