// The kernels compiled for avx2 (see kernels-impl.h; binding.gyp gives this file its compiler flags).
#define LS_ISA_AVX2 1
#define LS_NS isa_avx2
#include "kernels-impl.h"
