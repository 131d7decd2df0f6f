// The kernels compiled for neon (see kernels-impl.h; binding.gyp gives this file its compiler flags).
#define LS_ISA_NEON 1
#define LS_NS isa_neon
#include "kernels-impl.h"
